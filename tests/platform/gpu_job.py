"""Spark's GPU scheduling with maggy: each worker's task gets one GPU address and pins it.

Run by test_gpu_scheduling.py in a process of its own against the platform's standalone master,
whose worker offers two GPU addresses through spark-conf/gpu-discovery.sh. Arguments: master,
experiment directory. Prints JSON.
"""

from __future__ import annotations

import json
import os
import sys

from pyspark.sql import SparkSession

from maggy import HyperparameterOptConfig, Searchspace, experiment
from maggy.backends import SparkBackend
from maggy.engine.backends.spark import get_or_create


def main() -> None:
    master, root = sys.argv[1], sys.argv[2]

    def train(k):
        import os
        return {"metric": k, "cuda": os.environ.get("CUDA_VISIBLE_DEVICES", ""), "pid": os.getpid()}

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = get_or_create(SparkSession.builder.master(master).appName("maggy-gpu")  # once more on Spark's UI race
                          .config("spark.executor.cores", "1").config("spark.task.cpus", "1")
                          .config("spark.executor.resource.gpu.amount", "1").config("spark.task.resource.gpu.amount", "1"))
    cfg = HyperparameterOptConfig(searchspace=Searchspace(k=("DISCRETE", list(range(6)))), optimizer="gridsearch",
                                  num_workers=2, es_policy="none", name="gpu", experiment_dir=root)
    result = experiment.lagom(train, cfg, backend=SparkBackend(spark), verbose=False)
    print("RESULT " + json.dumps({"workers": result.stats["workers"],
                                  "trials": json.loads(result.trials[["k", "cuda", "pid"]].to_json(orient="records"))}))
    spark.stop()


if __name__ == "__main__":
    main()
