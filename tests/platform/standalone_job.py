"""An ASHA experiment on the platform's Spark standalone master with its directory on HDFS, then
an ablation study in the same application.

Run by test_standalone.py in a process of its own (one SparkContext per process); prints JSON.
"""

from __future__ import annotations

import json
import os
import sys

from maggy import HyperparameterOptConfig, Searchspace, experiment
from maggy.backends import SparkBackend
from maggy.optimizers import ASHA

#: Set by main() from MAGGY_TEST_PEERS; travels by value with train (executors do not share the
#: driver's environment).
PEERS = {"path": ""}


def train(q, budget, reporter):
    import json
    import os
    import time
    if PEERS["path"]:  # trials wait (60 s at most) until both executors run one: each takes trials
        with open(PEERS["path"], "a") as f:
            f.write(f"{os.getpid()}\n")
        deadline = time.monotonic() + 60
        while len(set(open(PEERS["path"]).read().split())) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    path = os.path.join(reporter.checkpoint_dir, "state.json")
    state = {"epoch": 0, "epochs_run": 0}
    if os.path.exists(path):
        with open(path) as f:
            state = json.load(f)
    for epoch in range(state["epoch"], budget):
        state["epochs_run"] += 1
        reporter.broadcast(q * (epoch + 1), step=epoch)
    state["epoch"] = budget
    with open(path, "w") as f:
        json.dump(state, f)
    return {"metric": q * budget, "epochs_run": state["epochs_run"], "pid": os.getpid()}


def ablate(ablation):
    """A linear fit of y = 3 a + b on the columns the trial keeps: R², and the executor's pid."""
    import os

    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "noise"])
    frame["y"] = 3 * frame["a"] + frame["b"] + 0.1 * rng.normal(size=300)
    kept = ablation.drop(frame)
    x = np.column_stack([kept[c] for c in kept.columns if c != "y"] + [np.ones(len(kept))])
    coef, *_ = np.linalg.lstsq(x, kept["y"], rcond=None)
    return {"metric": float(1 - (kept["y"] - x @ coef).var() / kept["y"].var()), "pid": os.getpid()}


def main() -> None:
    master, root = sys.argv[1], sys.argv[2]
    PEERS["path"] = os.environ.get("MAGGY_TEST_PEERS", "")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    cfg = HyperparameterOptConfig(searchspace=Searchspace(q=("DOUBLE", [0.0, 1.0])),
                                  optimizer=ASHA(reduction_factor=3, resource_min=1, resource_max=9),
                                  num_trials=9, num_workers=2, hb_interval=0.1, seed=1,
                                  name="standalone", experiment_dir=root)
    backend = SparkBackend(master=master)
    result = experiment.lagom(train, cfg, backend=backend, verbose=False)
    sc = backend.spark.sparkContext
    jobs = len(sc.statusTracker().getJobIdsForGroup(backend.job_group))
    from maggy.ablation import AblationStudy
    study = experiment.lagom(ablate, AblationStudy(features=["a", "b", "noise"]), backend=backend, num_workers=2,
                             hb_interval=0.1, name="standalone-ablation", experiment_dir=root, verbose=False)
    print("RESULT " + json.dumps({
        "ablation": json.loads(study.ablation[["ablated", "delta"]].to_json(orient="records")),
        "ablation_pids": sorted(set(study.trials["pid"])),
        "experiment_dir": result.experiment_dir, "master": sc.master,
        "jobs": jobs,
        "executors": sc._jsc.sc().getExecutorMemoryStatus().size() - 1,  # minus the driver
        "trials": json.loads(result.trials[["trial_id", "state", "budget", "steps", "epochs_run", "pid"]]
                             .to_json(orient="records")),
    }))
    backend.spark.stop()


if __name__ == "__main__":
    main()
