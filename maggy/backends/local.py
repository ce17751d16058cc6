"""Workers as processes on this machine, for a laptop or a GPU box without Spark."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import cloudpickle

from maggy.backends.base import Backend
from maggy.worker import WorkerSpec, worker_main


class LocalBackend(Backend):
    """Runs the same worker code in fresh Python processes.

    Each worker is ``python -m maggy.backends.local PARTITION`` reading the cloudpickled spec on
    stdin, so the caller's script is never re-imported (no ``if __name__ == "__main__"`` needed)
    and functions defined in a notebook travel by value.
    """

    name = "local"

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen] = []

    def prepare(self) -> None:
        """Nothing to check: processes on this machine are always available."""

    def num_slots(self) -> int:
        return os.cpu_count() or 1

    def addresses(self) -> tuple[str, str]:
        return "127.0.0.1", "127.0.0.1"

    def start(self, spec: WorkerSpec, num_workers: int, job_name: str) -> None:
        payload = cloudpickle.dumps(spec)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        for i in range(num_workers):
            proc = subprocess.Popen([sys.executable, "-m", "maggy.backends.local", str(i)],
                                    stdin=subprocess.PIPE, env=env)
            self._procs.append(proc)
            proc.stdin.write(payload)
            proc.stdin.close()

    def running(self) -> bool:
        return any(p.poll() is None for p in self._procs)

    def failure(self) -> str | None:
        codes = [p.returncode for p in self._procs if p.poll() not in (None, 0)]
        return f"worker processes exited with codes {codes}" if codes else None

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


def _main() -> None:
    spec = cloudpickle.loads(sys.stdin.buffer.read())
    worker_main(spec, int(sys.argv[1]))


if __name__ == "__main__":
    _main()
