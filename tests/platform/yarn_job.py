"""An experiment on the platform's YARN in client mode, as a Jupyter kernel on an edge node runs it.

Run by test_yarn.py in a process of its own (one SparkContext per process), with the session's
settings in PYSPARK_SUBMIT_ARGS. It talks to the test over its standard streams, so that the test
can look at YARN before and after the experiment while the application lives: once the session
is up it prints READY and the application id and waits for a line; it runs the experiment,
prints RESULT and JSON, and waits for a line (or end of input) before it stops Spark. With a
gate file (the second argument), each trial writes its container's id to ``<gate>.calls`` and
waits until the gate exists, so that the test can hold the trials until both executors run one.
"""

from __future__ import annotations

import json
import sys

from pyspark.sql import SparkSession

from maggy import HyperparameterOptConfig, Searchspace, experiment
from maggy.backends import SparkBackend
from maggy.engine.backends.spark import get_or_create

#: Set by main(); train travels by value with it (executors do not share the driver's environment).
GATE = {"path": ""}


def train(x, reporter):
    import os
    import time
    if GATE["path"]:
        with open(GATE["path"] + ".calls", "a") as f:
            f.write(os.environ.get("CONTAINER_ID", "") + "\n")
        deadline = time.monotonic() + 240
        while not os.path.exists(GATE["path"]):
            if time.monotonic() > deadline:
                raise TimeoutError("the test never opened the gate")
            time.sleep(0.05)
    with open(os.path.join(reporter.checkpoint_dir, "seen"), "w") as f:
        f.write(str(x))
    for step in range(3):
        time.sleep(0.2)
        reporter.broadcast(x * (step + 1), step)
    return {"metric": x, "container": os.environ.get("CONTAINER_ID", ""),
            "cuda": os.environ.get("CUDA_VISIBLE_DEVICES", "")}


def main() -> None:
    root = sys.argv[1]
    GATE["path"] = sys.argv[2] if len(sys.argv) > 2 else ""
    spark = get_or_create(SparkSession.builder.appName("maggy-yarn-client"))  # once more on Spark's UI race
    print("READY " + spark.sparkContext.applicationId, flush=True)
    sys.stdin.readline()
    cfg = HyperparameterOptConfig(searchspace=Searchspace(x=("DOUBLE", [0.0, 1.0])), num_trials=8, num_workers=2,
                                  es_policy="none", hb_interval=0.1, seed=3, name="yarn", experiment_dir=root)
    backend = SparkBackend(spark)
    driver = experiment.build_driver(train, cfg, backend=backend, verbose=False)  # lagom, with the secret at hand
    result = driver.run()
    sc = spark.sparkContext
    print("RESULT " + json.dumps({
        "secret": driver.secret.hex(),  # for the test that looks for it in YARN's logs and pages
        "experiment_dir": result.experiment_dir, "master": sc.master, "app_id": sc.applicationId,
        "jobs": len(sc.statusTracker().getJobIdsForGroup(backend.job_group)),
        "workers": result.stats["workers"],
        "trials": json.loads(result.trials[["trial_id", "state", "executor", "container", "cuda"]]
                             .to_json(orient="records")),
    }), flush=True)
    sys.stdin.readline()
    spark.stop()


if __name__ == "__main__":
    main()
