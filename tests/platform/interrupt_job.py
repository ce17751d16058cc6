"""Ctrl-C in a driver on the platform's standalone master, with the experiment directory on HDFS.

Run by test_standalone.py: it starts this script, waits for two finished trials in the HDFS
journal, sends SIGINT, and reads the JSON line printed here.
"""

from __future__ import annotations

import json
import os
import sys
import time

from maggy import HyperparameterOptConfig, Searchspace, experiment
from maggy.backends import SparkBackend


def train(k, reporter):
    import time
    if k < 2:
        return k
    for step in range(600):  # ten minutes unless cancelled
        time.sleep(1)
        reporter.broadcast(k, step)
    return k


def main() -> None:
    master, root = sys.argv[1], sys.argv[2]
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    cfg = HyperparameterOptConfig(searchspace=Searchspace(k=("DISCRETE", list(range(6)))), optimizer="gridsearch",
                                  num_workers=2, es_policy="none", hb_interval=0.1, name="interrupt",
                                  experiment_dir=root)
    backend = SparkBackend(master=master)
    try:
        experiment.lagom(train, cfg, backend=backend, verbose=False)
        print("RESULT " + json.dumps({"interrupted": False}))
        return
    except KeyboardInterrupt:
        caught = time.monotonic()
    tracker = backend.spark.sparkContext.statusTracker()
    while tracker.getActiveJobsIds() and time.monotonic() - caught < 30:
        time.sleep(0.1)
    print("RESULT " + json.dumps({"interrupted": True, "active_jobs": list(tracker.getActiveJobsIds()),
                                  "seconds_to_no_job": time.monotonic() - caught}), flush=True)
    backend.spark.stop()


if __name__ == "__main__":
    main()
