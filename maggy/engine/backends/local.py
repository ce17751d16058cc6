"""Workers as processes on this machine, for a laptop or a GPU box without Spark."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import cloudpickle

from maggy.engine.backends.base import Backend
from maggy.runtime.worker import WorkerSpec


class LocalBackend(Backend):
    """Runs the same worker code in fresh Python processes.

    Each worker is a fresh interpreter calling :func:`serve` with its partition, reading the
    cloudpickled spec on stdin, so the caller's script is never re-imported (no ``if __name__ ==
    "__main__"`` needed) and functions defined in a notebook travel by value. (Not ``python -m
    maggy.engine.backends.local``: the package imports that module first, and runpy warns about it.)
    """

    name = "local"
    #: Restarts of one worker slot before its failure stands (Spark's spark.task.maxFailures - 1).
    MAX_RESTARTS = 3

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen] = []
        self._restarts: list[int] = []
        self._payload = b""

    def prepare(self) -> None:
        """Nothing to check: processes on this machine are always available."""

    def num_slots(self) -> int:
        return os.cpu_count() or 1

    def addresses(self) -> tuple[str, str]:
        return "127.0.0.1", "127.0.0.1"

    def start(self, spec: WorkerSpec, num_workers: int, job_name: str) -> None:
        self._payload = cloudpickle.dumps(spec)
        self._procs = [self._spawn(i) for i in range(num_workers)]
        self._restarts = [0] * num_workers

    def _spawn(self, partition: int) -> subprocess.Popen:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        proc = subprocess.Popen([sys.executable, "-c", "from maggy.runtime.entry import serve; serve()", str(partition)],
                                stdin=subprocess.PIPE, env=env)
        assert proc.stdin is not None
        proc.stdin.write(self._payload)
        proc.stdin.close()
        return proc

    def relaunch_failed(self) -> None:
        for i, proc in enumerate(self._procs):
            if proc.poll() not in (None, 0) and self._restarts[i] < self.MAX_RESTARTS:
                self._restarts[i] += 1
                self._procs[i] = self._spawn(i)

    def resubmit(self) -> bool:
        self._procs = [self._spawn(i) for i in range(len(self._procs))]
        return True

    def running(self) -> bool:
        return any(p.poll() is None for p in self._procs)

    def failure(self) -> str | None:
        codes = [p.returncode for p in self._procs if p.poll() not in (None, 0)]
        return f"worker processes exited with codes {codes} after {sum(self._restarts)} restarts" if codes else None

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for p in self._procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                return False
        return True

    def cancel(self) -> None:
        for p in self._procs:
            if p.poll() is None:
                p.terminate()
        if not self.wait(5.0):
            for p in self._procs:
                p.kill()
            self.wait(5.0)
