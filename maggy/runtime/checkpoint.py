"""A trial's checkpoint directory on a worker, and the checkpoints ``train_fn`` marks in it.

``train_fn`` sees a local directory (``reporter.checkpoint_dir``), made when it first asks for
it: a trial that keeps no checkpoint costs no directory and no round trip to HDFS. A directory
that does not exist yet may start as a copy of another (``seed``: the previous run's checkpoint,
or another trial's, under PBT). On local
storage it is the trial's directory itself, and a checkpoint is safe the moment
``reporter.checkpoint()`` marks it. On HDFS it is a local copy, filled from HDFS when it is made;
each marked checkpoint is copied
aside on local disk (all that training waits for) and uploaded by a thread of its own to
``<dir>.partial``, which then replaces ``<dir>``, so a crash mid-upload leaves the last complete
checkpoint in place. Only the newest waiting checkpoint is uploaded; :attr:`complete` is the step
of the latest one that is safe. At the end of the run the final state is uploaded as before.

In a gang only rank 0 writes: the other ranks open the same checkpoint to read it
(``writer=False``), and never copy, mark or upload anything.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time

from maggy.store.storage import storage_for

log = logging.getLogger(__name__)

#: Seconds between the tries to save a run's final checkpoint (after the last, the run fails).
FINAL_UPLOAD_WAITS = (2.0, 4.0, 8.0)


class TrialCheckpoint:
    """The checkpoint directory of one run of a trial; see the module docstring."""

    def __init__(self, location: str, seed: str | None = None, writer: bool = True) -> None:
        self.location = location
        self.seed = seed
        self.writer = writer
        self.storage = storage_for(location)
        self.complete: int | None = None
        self._pending: tuple[int, str] | None = None
        self._busy = False
        self._closed = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._marked: tuple[int, tuple] | None = None  # step and files of the latest mark
        self._local: str | None = None
        self._open_lock = threading.Lock()

    @property
    def local(self) -> str:
        """The directory ``train_fn`` works in, made (and filled from HDFS) on first use."""
        return self.open()

    def open(self) -> str:
        """:attr:`local`; a storage failure names the checkpoint location."""
        with self._open_lock:
            if self._local is None:
                if self.storage.is_local:
                    self._local = self._open_local()
                else:
                    local = tempfile.mkdtemp(prefix="maggy-checkpoint-")
                    try:
                        source = self._complete(self.location)
                        if source is None and self.seed is not None:
                            source = self._complete(self.seed)
                        if source is not None:
                            self.storage.download_dir(source, local)
                    except Exception as exc:
                        shutil.rmtree(local, ignore_errors=True)
                        raise OSError(f"checkpoint {self.location}: {exc}") from exc
                    self._local = local
            return self._local

    def _open_local(self) -> str:
        if not self.writer:  # rank 0 makes the directory; meanwhile the seed is what there is to read
            if not os.path.isdir(self.location) and self.seed is not None and os.path.isdir(self.seed):
                return self.seed
            return self.location if os.path.isdir(self.location) else tempfile.mkdtemp(prefix="maggy-checkpoint-")
        if not os.path.isdir(self.location) and self.seed is not None and os.path.isdir(self.seed):
            partial = self.location + ".partial"  # a copy cut short is never taken for the checkpoint
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(self.seed, partial)
            os.replace(partial, self.location)
        os.makedirs(self.location, exist_ok=True)
        return self.location

    def _complete(self, location: str) -> str | None:
        """``location``, or its ``.partial`` copy when a swap was cut short (that copy is
        complete), or None when neither exists."""
        if self.storage.exists(location):
            return location
        partial = location + ".partial"
        return partial if self.storage.exists(partial) else None

    def mark(self, step: int) -> None:
        """``train_fn`` says the directory holds a consistent state as of ``step``."""
        if not self.writer:
            return
        if self.storage.is_local:
            self.complete = step
            return
        staging = tempfile.mkdtemp(prefix="maggy-checkpoint-staging-")
        shutil.copytree(self.local, staging, dirs_exist_ok=True)
        self._marked = (step, _files(self.local))
        with self._cond:
            if self._pending is not None:  # superseded before its upload began
                shutil.rmtree(self._pending[1], ignore_errors=True)
            self._pending = (step, staging)
            self._cond.notify()
        if self._thread is None:
            self._thread = threading.Thread(target=self._upload_loop, name="maggy-checkpoint", daemon=True)
            self._thread.start()

    def _upload_loop(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closed:
                    self._cond.wait()
                if self._pending is None:
                    return
                step, staging = self._pending
                self._pending, self._busy = None, True
            try:
                self._replace_from(staging)
                self.complete = step
            except Exception as exc:  # the previous complete checkpoint still stands
                log.warning("maggy: could not upload the checkpoint of step %s to %s: %s", step, self.location, exc)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _replace_from(self, local: str) -> None:
        partial = self.location + ".partial"
        self.storage.delete(partial)
        self.storage.makedirs(partial)
        self.storage.upload_dir(local, partial)
        self.storage.delete(self.location)
        self.storage.rename(partial, self.location)

    def finish(self) -> None:
        """After the run: wait for the uploads, then save the final state (raises on failure)."""
        if not self.writer:  # a copy of its own (HDFS, or nothing to read yet) goes
            if self._local is not None and self._local not in (self.location, self.seed):
                shutil.rmtree(self._local, ignore_errors=True)
            return
        if self.storage.is_local or self._local is None:
            return
        with self._cond:
            while self._pending is not None or self._busy:
                self._cond.wait()
            self._closed = True
            self._cond.notify_all()
        unchanged = self._marked is not None and self.complete == self._marked[0] and \
            _files(self.local) == self._marked[1]  # the last mark, safe already, is the final state
        if not unchanged and (os.listdir(self.local) or self.storage.exists(self.location)):
            self._final_upload()
        shutil.rmtree(self.local, ignore_errors=True)

    def _final_upload(self) -> None:
        """The final state, tried again over a storage hiccup (a NameNode failover) before the
        run fails: it replaces the checkpoint whole or not at all, so a retry is safe."""
        for wait in FINAL_UPLOAD_WAITS:
            try:
                self._replace_from(self.local)
                return
            except Exception as exc:  # noqa: BLE001 - tried again; the last try raises
                log.warning("maggy: saving the checkpoint %s failed (%s); trying again in %.0f s", self.location, exc, wait)
                time.sleep(wait)
        self._replace_from(self.local)


def _files(root: str) -> tuple:
    """Name, size and modification time of every file under ``root``: what changed since a mark."""
    out = []
    for base, _, names in os.walk(root):
        for name in names:
            st = os.stat(os.path.join(base, name))
            out.append((os.path.relpath(os.path.join(base, name), root), st.st_size, st.st_mtime_ns))
    return tuple(sorted(out))
