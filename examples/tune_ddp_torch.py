"""Tune a PyTorch network trained with DistributedDataParallel inside each trial, with ASHA.

    spark-submit --master "$SPARK_MASTER" examples/tune_ddp_torch.py \\
        --experiment-dir "$HDFS_URI/experiments" [--workers-per-trial 2] [--trials 6]

Each trial runs on ``--workers-per-trial`` executor slots at once, as one torch.distributed process
group that maggy sets up before ``train`` is called (gloo on CPU, NCCL on GPUs): every rank trains
on its own shard of the data, DDP averages the gradients, rank 0 saves the checkpoint that a
promoted trial continues from, and rank 0's metrics and returned value are the trial's. Without
spark-submit it runs on Spark local mode (``python examples/tune_ddp_torch.py``).
"""

from __future__ import annotations

import argparse
import json
import sys

from maggy import HyperparameterOptConfig, Searchspace, experiment
from maggy.optimizers import ASHA


def train(lr, hidden, budget, reporter):
    """An MLP on 8x8 digits, data-parallel over the trial's gang; ``budget`` epochs in all."""
    import json
    import os
    import socket

    import mlflow
    import torch
    import torch.distributed as dist
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    x, y = load_digits(return_X_y=True)
    xt, xv, yt, yv = train_test_split(x / 16.0, y, test_size=0.3, random_state=0)
    xt, yt = xt[rank::world], yt[rank::world]  # this rank's shard
    xt, xv = torch.tensor(xt, dtype=torch.float32), torch.tensor(xv, dtype=torch.float32)
    yt, yv = torch.tensor(yt), torch.tensor(yv)
    model = torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=lr)
    path = os.path.join(reporter.checkpoint_dir, "state.pt")
    start = 0
    if os.path.exists(path):  # promoted: every rank continues from rank 0's checkpoint
        state = torch.load(path)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start = state["epoch"]
    acc = 0.0
    for epoch in range(start, int(budget)):
        for idx in torch.randperm(len(xt), generator=torch.Generator().manual_seed(epoch)).split(32):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(ddp(xt[idx]), yt[idx]).backward()
            opt.step()
        with torch.no_grad():
            acc = (model(xv).argmax(dim=1) == yv).float().mean().item()
        reporter.broadcast(acc, step=epoch)  # every rank, every epoch: a stop reaches all of them at once
    if rank == 0:
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": int(budget)}, path)
        if mlflow.active_run() is not None:  # rank 0 holds the trial's MLflow run
            mlflow.pytorch.log_model(model, name="model", input_example=xv[:2].numpy())
    where = {"host": socket.gethostname(), "pid": os.getpid(), "cwd": os.getcwd(),
             "container": os.environ.get("CONTAINER_ID", ""), "shard": len(xt),
             "weights": float(sum(p.detach().double().sum() for p in model.parameters()))}
    ranks: list = [None] * world
    dist.all_gather_object(ranks, where)  # what each rank saw, returned by rank 0
    return {"metric": acc, "ranks": json.dumps(ranks)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment-dir", default=None)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--workers-per-trial", type=int, default=2)
    parser.add_argument("--register", default=None, help="registered model name for the best model")
    args = parser.parse_args()
    sp = Searchspace(lr=("DOUBLE", [1e-2, 0.5], "log"), hidden=("INTEGER", [16, 64], "log"))
    config = HyperparameterOptConfig(searchspace=sp, optimizer=ASHA(reduction_factor=2, resource_min=1, resource_max=4),
                                     num_trials=args.trials, workers_per_trial=args.workers_per_trial,
                                     name="digits-ddp", experiment_dir=args.experiment_dir,
                                     register_model=args.register, seed=0)
    result = experiment.lagom(train, config)
    print(result.summary())
    print("RESULT " + json.dumps({"experiment_dir": result.experiment_dir, "best_metric": result.best_metric,
                                  "spark_master": result.stats.get("spark_master"),
                                  "spark_app_id": result.stats.get("spark_app_id"),
                                  "workers": result.stats.get("workers"), "model_uri": result.model_uri,
                                  "trials": json.loads(result.trials[["trial_id", "state", "metric", "budget",
                                                                      "ranks"]].to_json(orient="records"))}))
    sys.exit(0 if result.best_trial_id is not None else 1)


if __name__ == "__main__":
    main()
