"""A checkpointing experiment on a Spark standalone master, directory on HDFS; prints JSON.

    python lost_executor_job.py MASTER EXPERIMENT_DIR CALLS_FILE NUM_TRIALS NUM_WORKERS

Run by test_lost_executors.py, which kills executors under it. ``train`` logs
``k epoch pid`` per epoch to CALLS_FILE and marks a checkpoint after every second epoch. With
``MAGGY_TEST_GATE`` set to a path, trials other than the first log ``k -1 pid`` and wait until
that file exists.
"""

from __future__ import annotations

import json
import os
import sys

from maggy import HyperparameterOptConfig, Searchspace, experiment
from maggy.backends import SparkBackend

EPOCHS = 6
#: Set by main(); train_fn travels by value with it (executors do not share the driver's environment).
SETTINGS = {"calls": "", "epoch": 0.4, "slow_victim": True, "gate": ""}


# The same loop as tests/integration/test_lost_workers.py: it must live in this __main__ so that
# cloudpickle sends it by value; the executors cannot import the tests package.
def train(k, reporter):
    import json
    import os
    import time

    if SETTINGS["gate"] and k >= 1:  # the test opens the gate once the executors it waits for run trials
        with open(SETTINGS["calls"], "a") as f:
            f.write(f"{k} -1 {os.getpid()}\n")
        deadline = time.monotonic() + 300
        while not os.path.exists(SETTINGS["gate"]):
            if time.monotonic() > deadline:
                raise TimeoutError("the test never opened the gate")
            time.sleep(0.05)
    path = os.path.join(reporter.checkpoint_dir, "state.json")
    start = json.load(open(path))["epoch"] if os.path.exists(path) else 0
    for epoch in range(start, 6):
        # trial 0 slows down after its checkpoint at epoch 3, so that the test kills its executor mid-run
        time.sleep(SETTINGS["epoch"] * (5 if k == 0 and epoch >= 4 and SETTINGS["slow_victim"] else 1))
        with open(SETTINGS["calls"], "a") as f:
            f.write(f"{k} {epoch} {os.getpid()}\n")
        reporter.broadcast(k + epoch / 10, step=epoch)
        if epoch % 2 == 1:
            with open(path, "w") as f:
                json.dump({"epoch": epoch + 1}, f)
            reporter.checkpoint()
    return {"metric": k, "pid": os.getpid(), "container": os.environ.get("CONTAINER_ID", "")}


def main() -> None:
    master, root, calls, num_trials, num_workers = sys.argv[1:6]
    SETTINGS.update(calls=calls, epoch=float(os.environ.get("MAGGY_TEST_EPOCH", "0.4")),
                    slow_victim="MAGGY_TEST_EPOCH" not in os.environ, gate=os.environ.get("MAGGY_TEST_GATE", ""))
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    cfg = HyperparameterOptConfig(searchspace=Searchspace(k=("DISCRETE", list(range(int(num_trials))))),
                                  optimizer="gridsearch", es_policy="none", hb_interval=0.1,
                                  num_workers=int(num_workers), name="lost-executors", experiment_dir=root)
    backend = SparkBackend(master=master)
    result = experiment.lagom(train, cfg, backend=backend, verbose=False)
    sc = backend.spark.sparkContext
    from maggy.store.storage import storage_for
    storage = storage_for(result.experiment_dir)
    saved = json.loads(storage.read_text(storage.join(result.experiment_dir, "result.json")))
    print("RESULT " + json.dumps({
        "master": sc.master,
        "active_jobs": list(sc.statusTracker().getActiveJobsIds()),
        "jobs": len(sc.statusTracker().getJobIdsForGroup(backend.job_group)),
        "workers": result.stats["workers"],
        "trials": json.loads(result.trials[["trial_id", "k", "state", "restarts", "executor", "pid", "container",
                                            "steps"]]
                             .to_json(orient="records")),
        "histories": {t["trial_id"]: [s for s, _ in t["history"]] for t in saved["trials"]},
    }))
    backend.spark.stop()


if __name__ == "__main__":
    main()
