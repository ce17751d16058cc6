"""Helpers that tests share: an in-process backend, journal and result readers."""

from __future__ import annotations

import glob
import json
import os
import shutil
import threading

from maggy.backends import Backend
from maggy.runtime.worker import worker_main


class ThreadBackend(Backend):
    """Workers as threads of this process: the real worker loop and RPC, no processes."""

    name = "threads"

    def __init__(self, slots: int = 2) -> None:
        self.slots = slots
        self.threads: list[threading.Thread] = []

    def prepare(self) -> None:
        pass

    def num_slots(self) -> int:
        return self.slots

    def addresses(self) -> tuple[str, str]:
        return "127.0.0.1", "127.0.0.1"

    def start(self, spec, num_workers, job_name) -> None:
        def serve(partition):
            try:
                worker_main(spec, partition)
            except (OSError, ConnectionError):  # the driver went away first
                pass
        self.threads = [threading.Thread(target=serve, args=(i,), daemon=True) for i in range(num_workers)]
        for t in self.threads:
            t.start()

    def running(self) -> bool:
        return any(t.is_alive() for t in self.threads)

    def failure(self) -> str | None:
        return None

    def wait(self, timeout: float) -> bool:
        for t in self.threads:
            t.join(timeout)
        return not self.running()

    def cancel(self) -> None:
        pass


def fake_pynvml(count: int = 2, util: tuple[int, ...] = (40, 60), used_mib: tuple[int, ...] = (1024, 3072)):
    """A stand-in for pynvml at its boundary (NVML itself needs an NVIDIA driver): ``count``
    GPUs with the given utilisation and memory in use; records the calls it gets."""
    import types

    module = types.ModuleType("pynvml")
    module.calls = []

    def record(name, result=None):
        def call(*args):
            module.calls.append((name, args))
            return result(*args) if callable(result) else result
        return call

    module.nvmlInit = record("init")
    module.nvmlShutdown = record("shutdown")
    module.nvmlDeviceGetCount = record("count", count)
    module.nvmlDeviceGetHandleByIndex = record("by_index", lambda i: i)
    module.nvmlDeviceGetHandleByUUID = record("by_uuid", lambda u: int(u.rsplit("-", 1)[1]))
    module.nvmlDeviceGetUtilizationRates = record("util", lambda h: types.SimpleNamespace(gpu=util[h]))
    module.nvmlDeviceGetMemoryInfo = record("memory", lambda h: types.SimpleNamespace(used=used_mib[h] * 2**20))
    return module


def job_result(stdout: str, stderr: str = "", returncode: int | None = 0) -> dict:
    """The JSON a job script printed on its ``RESULT `` line; fails the test with the job's
    output tails when the line is missing or the job did not exit with ``returncode`` (None:
    any exit, for a job that was interrupted on purpose)."""
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert lines and (returncode is None or returncode == 0), stdout[-2000:] + stderr[-4000:]
    return json.loads(lines[0][len("RESULT "):])


def journal_records(root) -> list[dict]:
    """Every trial record, in order, from the complete lines of each experiment's journal under
    ``root`` (the ``experiment_dir``): a driver may be mid-append, or killed there."""
    records = []
    for path in sorted(glob.glob(os.path.join(str(root), "*", "*", "journal.jsonl"))):
        with open(path) as f:
            records += [e for e in map(json.loads, (line for line in f if line.endswith("\n"))) if e["event"] == "trial"]
    return records


def trial_states(root) -> dict[str, dict]:
    """The latest journaled record of each trial under ``root``, by trial id."""
    return {e["trial_id"]: e for e in journal_records(root)}


def chromium() -> str:
    """Debian's chromium, which ./scripts/test installs; the browser tests are skipped, with the
    reason, on a machine where it could not be installed (no apt-get, or not as root)."""
    import pytest

    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("no chromium: ./scripts/test installs Debian's (apt-get install chromium) where it runs as root")
    return path
