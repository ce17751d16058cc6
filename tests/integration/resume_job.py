"""A checkpointing experiment that a test kills and runs again; prints the result as JSON.

    python resume_job.py BACKEND OPTIMIZER EXPERIMENT_DIR CALLS_FILE [NUM_TRIALS]

With MAGGY_TEST_WORKERS_PER_TRIAL=2 each trial runs on a gang of two workers, whose rank 0 logs
and checkpoints. With MAGGY_TEST_GATE set to a path, trials wait (2 minutes at most) until that file exists; with
MAGGY_TEST_HOLD_AFTER=N too, only the trials that start once N trials have computed every epoch.

Every run of ``train`` appends ``trial_id epoch`` to CALLS_FILE for each epoch it computes, so the
test can tell which epochs ran twice. A trial saves its epoch in its checkpoint directory after
each epoch and continues from there.
"""

from __future__ import annotations

import json
import os
import sys

from maggy import HyperparameterOptConfig, Searchspace, experiment
from maggy.optimizers import ASHA, PBT

EPOCHS = 4


def train(q, reporter, budget=None):
    import json
    import os
    import time

    calls = os.environ["MAGGY_TEST_CALLS"]
    gate = os.environ.get("MAGGY_TEST_GATE")
    if gate and os.environ.get("MAGGY_TEST_HOLD_AFTER"):  # only trials that start once that many completed
        lines = open(calls).read().split("\n") if os.path.exists(calls) else []
        epochs = [line.split()[0] for line in lines if line]
        completed = sum(epochs.count(t) >= EPOCHS for t in set(epochs))
        gate = gate if completed >= int(os.environ["MAGGY_TEST_HOLD_AFTER"]) else None
    deadline = time.monotonic() + 120
    while gate and not os.path.exists(gate) and time.monotonic() < deadline:  # held until the test opens it
        time.sleep(0.02)
    path = os.path.join(reporter.checkpoint_dir, "state.json")
    epoch = 0
    if os.path.exists(path):
        with open(path) as f:
            epoch = json.load(f)["epoch"]
    budget = int(budget or EPOCHS)  # ASHA's rung budget or PBT's interval's end, else every epoch
    for epoch in range(epoch, budget):  # noqa: B020 - continues from the checkpoint's epoch
        time.sleep(0.15)
        if reporter.rank == 0:  # in a gang, rank 0 speaks for the trial
            with open(calls, "a") as f:
                f.write(f"{reporter.trial_id} {epoch}\n")
            with open(path + ".tmp", "w") as f:
                json.dump({"epoch": epoch + 1}, f)
            os.replace(path + ".tmp", path)
        reporter.broadcast(q * (epoch + 1), step=epoch)
    return q * budget


def main() -> None:
    backend, optimizer, root, calls = sys.argv[1:5]
    num_trials = int(sys.argv[5]) if len(sys.argv) > 5 else 8
    os.environ["MAGGY_TEST_CALLS"] = calls
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    opt = {"asha": ASHA(reduction_factor=2, resource_min=1, resource_max=4),
           "pbt": PBT(perturbation_interval=1, resource_max=4, quantile_fraction=0.5)}.get(optimizer, optimizer)
    cfg = HyperparameterOptConfig(searchspace=Searchspace(q=("DOUBLE", [0.0, 1.0])), optimizer=opt,
                                  num_trials=num_trials, num_workers=2, hb_interval=0.05, es_policy="none",
                                  seed=3, name="resumable", experiment_dir=root,
                                  workers_per_trial=int(os.environ.get("MAGGY_TEST_WORKERS_PER_TRIAL", "1")))
    if backend == "spark":
        from pyspark.sql import SparkSession
        SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false").getOrCreate()
    result = experiment.lagom(train, cfg, backend=backend, verbose=False)
    cols = ["trial_id", "state", "q", "metric"] + [c for c in ("budget", "resumes", "parent", "parent_budget")
                                                   if c in result.trials]
    print("RESULT " + json.dumps({"experiment_dir": result.experiment_dir, "stats": {
        "resumes": result.stats.get("resumes"), "states": result.stats.get("states")},
        "trials": json.loads(result.trials[cols].to_json(orient="records"))}))


if __name__ == "__main__":
    main()
