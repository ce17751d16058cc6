"""The system metrics a worker samples: its process's CPU and memory, and its visible GPUs."""

from __future__ import annotations

import sys

import pytest

from maggy.runtime.usage import UsageSampler
from tests.helpers import fake_pynvml


def test_cpu_of_a_busy_process_and_its_memory():
    sampler = UsageSampler(gpu=False)
    sampler.begin()
    x = 0
    for i in range(3_000_000):  # about 0.2 s of one core
        x += i
    sample = sampler.sample()
    assert set(sample) == {"cpu_util", "mem"} and sample["cpu_util"] > 20 and sample["mem"] > 10


@pytest.mark.parametrize("visible, util, mem", [(None, 50.0, 4096.0), ("1", 60.0, 3072.0),
                                               ("GPU-fake-0", 40.0, 1024.0), ("-1", None, None)])
def test_gpus_are_the_visible_ones(monkeypatch, visible, util, mem):
    nvml = fake_pynvml()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    sampler = UsageSampler.create(None)
    if util is None:  # no GPU visible: off by default, and nvml shut down again
        assert sampler is None and nvml.calls[-1][0] == "shutdown"
        return
    sample = sampler.sample()
    assert (sample["gpu_util"], sample["gpu_mem"]) == (util, mem)
    sampler.close()
    assert nvml.calls[-1][0] == "shutdown"


def test_off_by_default_without_pynvml_and_on_when_asked(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    assert UsageSampler.create(None) is None and UsageSampler.create(False) is None
    assert set(UsageSampler.create(True).sample()) == {"cpu_util", "mem"}
