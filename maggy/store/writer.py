"""The experiment's writer: journal events, trial logs and results go to storage from a thread of
their own, so that the driver's loop never waits on a disk or on HDFS.

Writes are applied in the order they were queued. Whatever queued while the previous write was
in flight goes out together: the appends to one file as one append (on HDFS, one WebHDFS append
for a batch of journal events, however many trials ended meanwhile). A crash loses at most what
was queued and not yet written, and never reorders a file, so the journal on storage is always a
prefix of what the driver journaled. The queue is bounded: when storage is slower than the
experiment, :meth:`StorageWriter.append` waits (backpressure), and when storage fails for longer
than ``outage`` seconds, the writer gives up and every later call raises
:class:`StorageUnavailableError`, which names the storage.

>>> import tempfile, os
>>> from maggy.store.storage import LocalStorage
>>> d = tempfile.mkdtemp()
>>> w = StorageWriter(LocalStorage(), name=d).start()
>>> w.append(os.path.join(d, "log"), ["a"]); w.append(os.path.join(d, "log"), ["b"])
>>> w.flush()
>>> open(os.path.join(d, "log")).read()
'a\\nb\\n'
>>> w.close()
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Sequence

from maggy.exceptions import BackendUnavailableError
from maggy.store.storage import Storage

log = logging.getLogger(__name__)

#: Writes queued at most; more wait for the writer (backpressure on the driver's loop).
CAPACITY = 10_000
#: Seconds of failing writes after which the experiment fails.
OUTAGE = 300.0


class StorageUnavailableError(BackendUnavailableError):
    """The experiment's storage refused writes for longer than the writer's ``outage``."""


class StorageWriter:
    """One thread that applies queued appends and replacements to ``storage`` in order."""

    def __init__(self, storage: Storage, *, name: str = "", capacity: int = CAPACITY, outage: float | None = None) -> None:
        self.storage = storage
        #: What the storage is, for errors (the experiment directory).
        self.name = name
        self.capacity = capacity
        self.outage = OUTAGE if outage is None else outage
        self._ops: collections.deque[tuple[str, str, list[str] | bytes]] = collections.deque()
        self._cond = threading.Condition()
        self._queued = 0  # ops queued so far
        self._done = 0  # ops applied so far
        self._closing = False
        self.error: StorageUnavailableError | None = None
        #: Storage calls made, and ops they carried (appends merge): the batching's effect.
        self.calls = 0
        self.retries = 0
        self._thread = threading.Thread(target=self._run, name="maggy-writer", daemon=True)

    def start(self) -> "StorageWriter":
        self._thread.start()
        return self

    # ---- the loop's side ------------------------------------------------------------------

    def append(self, path: str, lines: Sequence[str]) -> None:
        """Queue ``lines`` for appending to ``path``."""
        if lines:
            self._put(path, "append", list(lines))

    def write(self, path: str, data: bytes) -> None:
        """Queue replacing ``path`` with ``data`` (atomically, as :meth:`Storage.write_bytes`)."""
        self._put(path, "write", data)

    def check(self) -> None:
        """Raise the writer's error, if it gave up."""
        if self.error is not None:
            raise self.error

    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything queued so far is written (at most ``timeout`` seconds, then
        StorageUnavailableError); raises the writer's error if it gave up."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._queued
            while self._done < target and self.error is None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise StorageUnavailableError(
                        f"{target - self._done} writes to {self.name or 'the experiment directory'} are still not "
                        f"done after {timeout:g}s: the storage is too slow or away")
                self._cond.wait(left)
        self.check()

    def close(self, timeout: float | None = None) -> None:
        """Write what is queued, then end the thread."""
        try:
            self.flush(timeout)
        finally:
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            self._thread.join(5.0)

    def _put(self, path: str, kind: str, payload: list[str] | bytes) -> None:
        with self._cond:
            while len(self._ops) >= self.capacity and self.error is None:
                self._cond.wait(1.0)
            self.check()
            self._ops.append((path, kind, payload))
            self._queued += 1
            self._cond.notify_all()

    # ---- the writer's thread ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._ops and not self._closing:
                    self._cond.wait()
                if not self._ops:
                    return
                batch = list(self._ops)
                self._ops.clear()
                self._cond.notify_all()  # room again for a waiting put
            try:
                for path, kind, payload in _merged(batch):
                    self._apply(path, kind, payload)
            except BaseException as exc:  # noqa: BLE001 - whatever ends this thread must reach the loop, never hang it
                error = exc if isinstance(exc, StorageUnavailableError) else StorageUnavailableError(
                    f"The writer of {self.name or 'the experiment directory'} failed: {type(exc).__name__}: {exc}")
                with self._cond:
                    self.error = error
                    self._cond.notify_all()
                if not isinstance(exc, StorageUnavailableError):
                    log.error("maggy: the experiment's writer failed", exc_info=exc)
                return
            with self._cond:
                self._done += len(batch)
                self._cond.notify_all()

    def _apply(self, path: str, kind: str, payload: list[str] | bytes) -> None:
        """One storage call, retried with a growing pause until it succeeds or ``outage`` passes."""
        failing_since, pause = None, 0.2
        while True:
            try:
                self.calls += 1
                if kind == "append":
                    assert isinstance(payload, list)
                    if failing_since is not None:
                        payload = self._unwritten(path, payload)
                    if payload:
                        self.storage.append_lines(path, payload)
                else:
                    assert isinstance(payload, bytes)
                    self.storage.write_bytes(path, payload)
                return
            except Exception as exc:  # noqa: BLE001 - any failure of the storage client is an outage
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since > self.outage:
                    raise StorageUnavailableError(
                        f"Cannot write to {self.name or path} for {self.outage:g}s ({type(exc).__name__}: "
                        f"{str(exc)[:300]}); the experiment stops. Its journal holds every trial written before: "
                        "once the storage is back, run the same lagom call again to continue.") from exc
                self.retries += 1
                log.warning("maggy: writing %s failed (%s: %s); retrying in %.1fs", path, type(exc).__name__, exc, pause)
                time.sleep(pause)
                pause = min(pause * 2, 5.0)

    def _unwritten(self, path: str, lines: list[str]) -> list[str]:
        """What is left of ``lines`` to append to ``path`` after a failed try: a try can fail once
        part of its data landed (a disk that filled up, a broken HDFS pipeline, a lost answer).
        The part of a line it left is cut, else the lines tried again would follow it and leave the
        file damaged in its middle; the whole lines it left are not appended again, else the
        journal would hold a trial's earlier snapshots after its later ones. Lines are told apart
        by their text (each journal event holds its time).
        """
        if not lines or not self.storage.exists(path):
            return lines
        text = self.storage.read_text(path)
        if text and not text.endswith("\n"):
            text = text[:text.rfind("\n") + 1]
            self.storage.write_text(path, text)
        tail = text.split("\n")[:-1][-len(lines):]
        wanted = [line.rstrip("\n") for line in lines]
        for n in range(len(tail), 0, -1):  # the most lines of ``lines`` that the file ends with
            if tail[-n] == wanted[0] and tail[-n:] == wanted[:n]:
                return lines[n:]
        return lines


def _merged(batch: list[tuple[str, str, list[str] | bytes]]) -> list[tuple[str, str, list[str] | bytes]]:
    """The batch as few storage calls: each file's appends merged into one, a file's order kept
    (appends queued before a replacement of the same file go before it).

    >>> _merged([("j", "append", ["1"]), ("l", "append", ["x"]), ("j", "append", ["2"]), ("r", "write", b"")])
    [('j', 'append', ['1', '2']), ('l', 'append', ['x']), ('r', 'write', b'')]
    """
    out: list[tuple[str, str, list[str] | bytes]] = []
    pending: dict[str, list[str]] = {}  # path -> the lines of its open append in ``out``
    for path, kind, payload in batch:
        if kind == "append" and path in pending:
            pending[path].extend(payload)  # type: ignore[arg-type]
            continue
        pending.pop(path, None)
        if kind == "append":
            pending[path] = list(payload)  # type: ignore[arg-type]
            out.append((path, kind, pending[path]))
        else:
            out.append((path, kind, payload))
    return out
