"""Who drives an experiment: a lease file in its directory, so that two drivers never write to it.

The driver takes the lease before it starts, renews it while it runs (as a callback, every
``ttl / 4`` seconds) and gives it back at the end. A lease is stale, and may be taken over, when
it has not been renewed for ``ttl`` seconds, or at once when its owner ran on this host and its
process is gone (a SIGKILLed driver, a restarted kernel) or is this very process (a notebook cell
run again after an interrupt). Creation is atomic on local disks and
on HDFS (a CREATE without overwrite), so of two drivers starting at once exactly one wins.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from typing import TYPE_CHECKING

from maggy.callbacks import Callback
from maggy.exceptions import MaggyError
from maggy.store.storage import Storage

if TYPE_CHECKING:
    from maggy.result import Result

#: Seconds without renewal after which a lease of another host is stale.
DEFAULT_TTL = 60.0


class ExperimentLockedError(MaggyError):
    """Another driver holds the experiment's lease."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Lease(Callback):
    """The lease on ``exp_dir``; see the module docstring."""

    def __init__(self, storage: Storage, exp_dir: str, ttl: float = DEFAULT_TTL) -> None:
        self.storage = storage
        self.path = storage.join(exp_dir, "lease.json")
        self.ttl = ttl
        self.token = uuid.uuid4().hex
        self._renewed = 0.0

    def _record(self) -> str:
        return json.dumps({"token": self.token, "host": socket.gethostname(), "pid": os.getpid(),
                           "renewed": time.time()})

    def acquire(self) -> None:
        """Take the lease, or raise ExperimentLockedError naming the driver that holds it."""
        for _ in range(2):
            if self.storage.create_exclusive(self.path, self._record()):
                self._renewed = time.monotonic()
                return
            try:
                holder = json.loads(self.storage.read_text(self.path))
            except (OSError, ValueError):  # gone meanwhile, or torn by a crash: stale
                holder = {}
            if holder and not self._stale(holder):
                raise ExperimentLockedError(
                    f"Another driver runs this experiment (host {holder.get('host')}, pid {holder.get('pid')}, "
                    f"lease renewed {time.time() - holder.get('renewed', 0):.0f}s ago, in {self.path}). Wait for "
                    "it to end, stop it, or start a separate experiment with resume=False or another name.")
            self.storage.delete(self.path)
        raise ExperimentLockedError(f"Another driver took the lease {self.path} at the same moment; try again.")

    def _stale(self, holder: dict) -> bool:
        if time.time() - float(holder.get("renewed", 0)) > self.ttl:
            return True
        if holder.get("host") != socket.gethostname():
            return False
        pid = int(holder.get("pid", 0))
        return pid == os.getpid() or not _alive(pid)  # our own leftover, or its process is gone

    def on_step_end(self) -> None:
        if time.monotonic() - self._renewed > self.ttl / 4:
            self.storage.write_text(self.path, self._record())
            self._renewed = time.monotonic()

    def release(self) -> None:
        """Give the lease back."""
        self.storage.delete(self.path)

    def on_experiment_end(self, result: "Result", outcome: str) -> None:
        self.release()
