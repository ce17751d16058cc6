"""A job for spark-submit that calls lagom without creating a SparkSession itself; prints JSON.

Run by test_spark_submit.py, so that the test sees which master Spark gave maggy.
"""

from __future__ import annotations

import json
import os
import sys

from maggy import HyperparameterOptConfig, Searchspace, experiment


def train(x):
    import os
    return {"metric": x, "pid": os.getpid()}


def main() -> None:
    cfg = HyperparameterOptConfig(searchspace=Searchspace(x=("DOUBLE", [0.0, 1.0])), num_trials=2,
                                  num_workers=1, es_policy="none", seed=0, hb_interval=0.1,
                                  name="probe", experiment_dir=sys.argv[1])
    result = experiment.lagom(train, cfg, verbose=False)
    print("RESULT " + json.dumps({"spark_master": result.stats["spark_master"], "driver_pid": os.getpid(),
                                  "states": sorted(result.trials["state"])}))


if __name__ == "__main__":
    main()
