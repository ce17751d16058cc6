"""An experiment on the secure platform's YARN in client mode, as a data scientist with a Kerberos
ticket runs it: its directory on the HA nameservice, its best model registered in MLflow with
the artifacts on the secure HDFS.

Run by test_secure_maggy.py in a process of its own, with the user's ticket cache (KRB5CCNAME)
and the platform's settings in its environment. It prints READY and the application id, runs the
experiment, and prints RESULT and JSON. Each trial reports what its executor holds: whether
``klist -s`` finds a ticket, and any keytab in its environment.
"""

from __future__ import annotations

import json
import sys

from pyspark.sql import SparkSession

from maggy import Searchspace, experiment
from maggy.backends import SparkBackend
from maggy.engine.backends.spark import get_or_create

#: Set by main(); travels by value with train.
TRIAL = {"seconds": 1.0}


def train(x, reporter):
    import os
    import subprocess
    import time

    import mlflow
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    started = time.time()
    ticket = subprocess.run(["klist", "-s"], capture_output=True).returncode == 0
    keytabs = sorted(f"{k}={v}" for k, v in os.environ.items() if "keytab" in f"{k}={v}".lower())
    steps = 4
    for step in range(steps):
        with open(os.path.join(reporter.checkpoint_dir, "state"), "w") as f:
            f.write(f"{x} {step}")
        reporter.checkpoint()
        reporter.broadcast(x * (step + 1), step)
        time.sleep(TRIAL["seconds"] / steps)
    if mlflow.active_run() is not None:  # maggy opened this trial's run; its artifacts go to the secure HDFS
        model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1]))
        mlflow.sklearn.log_model(model, name="model")
    return {"metric": x, "ticket": ticket, "keytabs": ";".join(keytabs), "ccache": os.environ.get("KRB5CCNAME", ""),
            "container": os.environ.get("CONTAINER_ID", ""), "started": started, "ended": time.time()}


def main() -> None:
    root, trials, TRIAL["seconds"] = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    spark = get_or_create(SparkSession.builder.appName("maggy-secure"))  # once more on Spark's UI race
    print("READY " + spark.sparkContext.applicationId, flush=True)
    result = experiment.lagom(train, Searchspace(x=("DOUBLE", [0.0, 1.0])), num_trials=trials, num_workers=2,
                              es_policy="none", hb_interval=0.2, seed=5, name="secure", experiment_dir=root,
                              register_model="secure-model", backend=SparkBackend(spark), verbose=False)
    print("RESULT " + json.dumps({
        "master": spark.sparkContext.master, "app": spark.sparkContext.applicationId,
        "experiment_dir": result.experiment_dir, "stats": result.stats, "tracking": result.stats.get("tracking"),
        "trials": json.loads(result.trials.to_json(orient="records"))}, default=str), flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
