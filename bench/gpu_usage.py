"""GPU and CPU use per trial, and the workers' busy share, on a machine with an NVIDIA GPU.

    python bench/gpu_usage.py [--trials 6] [--workers 2] [--seconds 1.5]

Runs one ``lagom`` on ``LocalBackend`` workers that all see the machine's GPUs: each trial
multiplies matrices on CUDA for about ``--seconds`` with a size from the searchspace and
reports a metric per step. System metrics are left at their default, which turns them on
because a GPU is visible; the table shows each trial's mean GPU utilisation and memory as pynvml
sampled them, and the GPU memory in use on the device after the experiment (the workers
ended: it should be back where it started). Needs torch with CUDA and nvidia-ml-py.
"""

from __future__ import annotations

import argparse
import tempfile

SECONDS = 1.5


def train(size, reporter):
    import time

    import torch

    x = torch.randn(int(size), int(size), device="cuda")
    began, step = time.time(), 0
    while time.time() - began < SECONDS:
        for _ in range(20):
            x = torch.tanh(x @ x / x.shape[0] ** 0.5)
        torch.cuda.synchronize()
        reporter.broadcast(float(x.abs().mean()), step)
        step += 1
    return float(x.abs().mean())


def main() -> None:
    global SECONDS
    import pynvml

    from maggy import HyperparameterOptConfig, Searchspace, experiment
    from maggy.backends import LocalBackend

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=1.5)
    args = parser.parse_args()
    SECONDS = args.seconds
    pynvml.nvmlInit()
    gpu = pynvml.nvmlDeviceGetHandleByIndex(0)
    used_before = pynvml.nvmlDeviceGetMemoryInfo(gpu).used / 2**20
    with tempfile.TemporaryDirectory() as root:
        cfg = HyperparameterOptConfig(searchspace=Searchspace(size=("DISCRETE", [1024, 4096, 8192])),
                                      num_trials=args.trials, num_workers=args.workers, es_policy="none",
                                      hb_interval=0.25, experiment_dir=root, seed=0, name="gpu-usage")
        result = experiment.lagom(train, cfg, backend=LocalBackend(),
                                  verbose=False)
    used_after = pynvml.nvmlDeviceGetMemoryInfo(gpu).used / 2**20
    cols = ["trial_id", "state", "size", "steps", "duration", "worker", "cpu_util", "mem", "gpu_util", "gpu_mem"]
    print(result.trials[[c for c in cols if c in result.trials]].to_string(index=False, float_format="%.1f"))
    print(f"\nutilization {result.stats['utilization']:.1%} of {result.stats['worker_seconds']:.1f} worker-seconds; "
          f"GPU memory used before {used_before:.0f} MiB, after {used_after:.0f} MiB")


if __name__ == "__main__":
    main()
