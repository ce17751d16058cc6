"""An ASHA experiment on the platform's Spark standalone master with its directory on HDFS.

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
    print("RESULT " + json.dumps({
        "experiment_dir": result.experiment_dir, "master": sc.master,
        "jobs": len(sc.statusTracker().getJobIdsForGroup(backend.job_group)),
        "executors": sc._jsc.sc().getExecutorMemoryStatus().size() - 1,  # minus the driver
        "trials": json.loads(result.trials[["trial_id", "state", "budget", "steps", "epochs_run", "pid"]]
                             .to_json(orient="records")),
    }))
    backend.spark.stop()


if __name__ == "__main__":
    main()
