"""System metrics of a running trial, sampled on its worker: CPU and memory of the worker process
(psutil), and the utilisation and memory of the GPUs it sees (pynvml, as MLflow's own system
metrics; optional: without it, or without an NVIDIA GPU, GPU metrics are skipped).

A sample is a dict of the names in :data:`METRICS`:

>>> sampler = UsageSampler(gpu=False)
>>> sample = sampler.sample()
>>> sorted(sample), sample["mem"] > 0
(['cpu_util', 'mem'], True)
"""

from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger(__name__)

#: What a sample may hold: CPU as a percentage of one core (above 100 with several threads, as
#: ``top`` shows it), the process's resident memory in MiB, the mean utilisation of its GPUs in
#: percent and the memory used on them in MiB.
METRICS = ("cpu_util", "mem", "gpu_util", "gpu_mem")


def _nvml() -> Any | None:
    """pynvml, initialised; None when it is not installed or finds no driver."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # pynvml.NVMLError: no driver, no GPU
        log.debug("maggy: no GPU metrics: %s", exc)
        return None
    return pynvml


def _visible(nvml: Any) -> list[Any]:
    """Handles of the GPUs this process sees: those ``CUDA_VISIBLE_DEVICES`` names (indices or
    UUIDs), else every one."""
    names = os.environ.get("CUDA_VISIBLE_DEVICES")
    if names is None:
        return [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
    handles = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        if name.isdigit():
            handles.append(nvml.nvmlDeviceGetHandleByIndex(int(name)))
        elif name.startswith(("GPU-", "MIG-")):
            handles.append(nvml.nvmlDeviceGetHandleByUUID(name))
        else:  # "-1" or "" hides every GPU; CUDA stops at the first invalid entry
            break
    return handles


class UsageSampler:
    """Samples this process and the GPUs it sees; each CPU figure covers the time since the
    previous sample (or :meth:`begin`)."""

    def __init__(self, gpu: bool = True) -> None:
        import psutil

        self._process = psutil.Process()
        self._process.cpu_percent(None)
        self._nvml: Any = _nvml() if gpu else None
        self._gpus: list[Any] = []
        if self._nvml is not None:
            try:
                self._gpus = _visible(self._nvml)
            except Exception as exc:
                log.warning("maggy: GPU metrics off, the visible GPUs could not be read: %s", exc)
        if not self._gpus:
            self.close()

    @property
    def gpus(self) -> int:
        """How many GPUs are sampled."""
        return len(self._gpus)

    @classmethod
    def create(cls, enabled: bool | None) -> "UsageSampler | None":
        """The sampler a worker uses: None when ``enabled`` is False, or when it is None (the
        default) and no GPU is visible; on with ``True`` (CPU and memory everywhere)."""
        if enabled is False:
            return None
        sampler = cls(gpu=True)
        if enabled is None and not sampler.gpus:
            return None
        return sampler

    def begin(self) -> None:
        """Start a new CPU interval (a trial begins)."""
        self._process.cpu_percent(None)

    def sample(self) -> dict[str, float]:
        out = {"cpu_util": float(self._process.cpu_percent(None)),
               "mem": self._process.memory_info().rss / 2**20}
        if self._gpus:
            try:
                util = [self._nvml.nvmlDeviceGetUtilizationRates(h).gpu for h in self._gpus]
                used = [self._nvml.nvmlDeviceGetMemoryInfo(h).used for h in self._gpus]
            except Exception as exc:  # a GPU that fell off the bus fails the sample, not the trial
                log.warning("maggy: GPU metrics could not be read: %s", exc)
            else:
                out["gpu_util"] = float(sum(util)) / len(util)
                out["gpu_mem"] = float(sum(used)) / 2**20
        return out

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:  # noqa: BLE001 - nothing to do about a driver that will not shut down
                pass
            self._nvml, self._gpus = None, []
