"""An experiment on the platform's YARN in client mode, as a Jupyter kernel on an edge node runs it.

Run by test_yarn.py in a process of its own (one SparkContext per process); prints JSON.
"""

from __future__ import annotations

import json
import sys

from pyspark.sql import SparkSession

from maggy import HyperparameterOptConfig, Searchspace, experiment
from maggy.backends import SparkBackend


def train(x, reporter):
    import os
    import time
    with open(os.path.join(reporter.checkpoint_dir, "seen"), "w") as f:
        f.write(str(x))
    for step in range(3):
        time.sleep(0.2)
        reporter.broadcast(x * (step + 1), step)
    return {"metric": x, "container": os.environ.get("CONTAINER_ID", "")}


def main() -> None:
    properties, root = sys.argv[1], sys.argv[2]
    builder = SparkSession.builder.master("yarn").appName("maggy-yarn-client")
    for line in open(properties):
        if line.strip() and not line.startswith("#"):
            key, value = line.split(None, 1)
            builder = builder.config(key, value.strip())
    spark = (builder.config("spark.executor.instances", "2").config("spark.executor.cores", "1")
             .config("spark.yarn.queue", "tuning").getOrCreate())
    cfg = HyperparameterOptConfig(searchspace=Searchspace(x=("DOUBLE", [0.0, 1.0])), num_trials=8, num_workers=2,
                                  es_policy="none", hb_interval=0.1, seed=3, name="yarn", experiment_dir=root)
    backend = SparkBackend(spark)
    driver = experiment.build_driver(train, cfg, backend=backend, verbose=False)  # lagom, with the secret at hand
    result = driver.run()
    sc = spark.sparkContext
    print("RESULT " + json.dumps({
        "secret": driver.secret.hex(),  # for the test that looks for it in YARN's logs
        "experiment_dir": result.experiment_dir, "master": sc.master, "app_id": sc.applicationId,
        "jobs": len(sc.statusTracker().getJobIdsForGroup(backend.job_group)),
        "trials": json.loads(result.trials[["trial_id", "state", "executor", "container"]].to_json(orient="records")),
    }))
    spark.stop()


if __name__ == "__main__":
    main()
