"""Gangs: the same tuning job with one and two workers per trial, and DDP tuned the way Spark users
do it today, one PySpark ``TorchDistributor`` run per trial; all on Spark local[2], in one sitting.

    .venv/bin/python bench/gangs.py [--trials 6] [--work 0.5]

The model is compute-bound: an MLP trained for a fixed number of samples on one CPU thread per
process (``--work`` seconds of compute per trial on one worker, measured first). Rows:

- maggy, ``workers_per_trial=1``: two trials at a time, one per worker;
- maggy, ``workers_per_trial=2``: one trial at a time on both workers, each rank on half the data;
- TorchDistributor: for each trial, ``TorchDistributor(num_processes=2).run(...)``: a Spark barrier
  job whose tasks start ``torchrun``, which starts the ranks.

Printed per row: the wall time of the whole job, per trial, and the overhead per trial beyond the
compute (wall x slots / trials - compute per trial). For gangs also the hand-off: from the last rank
of one trial returning to the last rank of the next one starting to train (store, process group
and the RPC round trip included), median over the job.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

SAMPLES = 1024


def epochs_for(seconds: float) -> int:
    """How many epochs over SAMPLES rows take ``seconds`` on one thread here."""
    import torch

    torch.set_num_threads(1)
    model, x = _model(), torch.randn(SAMPLES, 64)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    _epoch(model, x, opt)  # warm: the first epoch pays for torch's first calls
    t0 = time.perf_counter()
    for _ in range(3):
        _epoch(model, x, opt)
    return max(1, round(seconds / ((time.perf_counter() - t0) / 3)))


def _model():
    import torch
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(64, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512), torch.nn.ReLU(),
                               torch.nn.Linear(512, 1))


def _epoch(model, x, opt):
    import torch
    for idx in torch.arange(len(x)).split(128):
        opt.zero_grad()
        (model(x[idx]) ** 2).mean().backward()
        opt.step()


def make_train(epochs: int, log: str):
    """train_fn for maggy: DDP when a gang runs it; logs when it starts and ends training."""
    def train(lr, reporter):
        import json
        import time

        import torch
        import torch.distributed as dist

        torch.set_num_threads(1)
        model = _model()
        world = dist.get_world_size() if dist.is_initialized() else 1
        rank = dist.get_rank() if dist.is_initialized() else 0
        net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
        x = torch.randn(SAMPLES // world, 64, generator=torch.Generator().manual_seed(rank))
        opt = torch.optim.SGD(net.parameters(), lr=lr)
        start = time.time()
        for epoch in range(epochs):
            _epoch(net, x, opt)
            reporter.broadcast(float(epoch), step=epoch)
        with open(log, "a") as f:
            f.write(json.dumps({"trial": reporter.trial_id, "rank": rank, "start": start, "end": time.time()}) + "\n")
        return float(epochs)
    return train


def run_maggy(spark, k: int, trials: int, epochs: int, tmp: str) -> dict:
    from maggy import Searchspace, experiment
    from maggy.backends import SparkBackend

    log = os.path.join(tmp, f"k{k}.jsonl")
    t0 = time.perf_counter()
    experiment.lagom(make_train(epochs, log), Searchspace(lr=("DOUBLE", [0.001, 0.01])), num_trials=trials,
                     workers_per_trial=k, es_policy="none", seed=0, backend=SparkBackend(spark), verbose=False,
                     experiment_dir=tmp, name=f"gangs-k{k}", resume=False)
    wall = time.perf_counter() - t0
    rows = [json.loads(line) for line in open(log)]
    spans: dict[str, tuple[float, float]] = {}
    for r in rows:
        a, b = spans.get(r["trial"], (0.0, 0.0))
        spans[r["trial"]] = (max(a, r["start"]), max(b, r["end"]))
    ordered = sorted(spans.values())
    handoffs = [nxt[0] - prev[1] for prev, nxt in zip(ordered, ordered[1:])] if k > 1 else []
    return {"wall": wall, "handoff": statistics.median(handoffs) if handoffs else None}


def ddp_main(lr: float, epochs: int) -> float:
    """What TorchDistributor runs under torchrun: the ranks set up their own process group."""
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    torch.set_num_threads(1)
    model = _model()
    net = torch.nn.parallel.DistributedDataParallel(model)
    x = torch.randn(SAMPLES // dist.get_world_size(), 64, generator=torch.Generator().manual_seed(dist.get_rank()))
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    for _ in range(epochs):
        _epoch(net, x, opt)
    dist.destroy_process_group()
    return float(epochs)


def run_distributor(trials: int, epochs: int) -> dict:
    from pyspark.ml.torch.distributor import TorchDistributor

    t0 = time.perf_counter()
    for i in range(trials):
        TorchDistributor(num_processes=2, local_mode=False, use_gpu=False).run(ddp_main, 0.001 + i * 0.001, epochs)
    return {"wall": time.perf_counter() - t0, "handoff": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--work", type=float, default=0.5, help="seconds of compute per trial on one worker")
    args = parser.parse_args()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[2]").appName("bench-gangs")
             .config("spark.ui.showConsoleProgress", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    epochs = epochs_for(args.work)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        run_maggy(spark, 1, 2, epochs, tmp)  # warm: the Python workers and torch imported
        rows["maggy, workers_per_trial=1"] = run_maggy(spark, 1, args.trials, epochs, tmp)
        rows["maggy, workers_per_trial=2"] = run_maggy(spark, 2, args.trials, epochs, tmp)
        rows["TorchDistributor per trial"] = run_distributor(args.trials, epochs)
    spark.stop()
    print(f"{args.trials} trials of {epochs} epochs (~{args.work:g} s of compute each on one worker), local[2]\n")
    print(f"{'contender':<30} {'wall s':>8} {'s/trial':>8} {'overhead s/trial':>17} {'gang hand-off ms':>17}")
    for name, r in rows.items():
        per = r["wall"] / args.trials
        overhead = r["wall"] * 2 / args.trials - args.work
        handoff = "" if r["handoff"] is None else f"{1000 * r['handoff']:.0f}"
        print(f"{name:<30} {r['wall']:>8.2f} {per:>8.2f} {overhead:>17.2f} {handoff:>17}")
    base = rows["maggy, workers_per_trial=2"]["wall"]
    print(f"\nTorchDistributor per trial / maggy k=2: {rows['TorchDistributor per trial']['wall'] / base:.1f}x")


if __name__ == "__main__":
    main()
