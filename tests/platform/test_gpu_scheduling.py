"""Spark's own GPU scheduling, for real: on the platform's standalone worker (two GPU addresses
from spark-conf/gpu-discovery.sh) each maggy worker pins the GPU its task was given. (On YARN, each
executor's container granted one ``yarn.io/gpu``: tests/platform/test_yarn.py.)"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

from tests.helpers import job_result

HERE = pathlib.Path(__file__).resolve().parent
JOB = str(HERE / "gpu_job.py")


def _result(out: str, err: str, code: int) -> dict:
    return job_result(out, err, code)


def test_each_worker_pins_its_own_gpu(platform, tmp_path):
    out = subprocess.run([sys.executable, JOB, platform["SPARK_MASTER"], str(tmp_path)],
                         env={**os.environ, "PYSPARK_PYTHON": sys.executable},
                         capture_output=True, text=True, timeout=300)
    res = _result(out.stdout, out.stderr, out.returncode)
    gpus = {w["pid"]: w["gpus"] for w in res["workers"]}
    assert sorted(g for gs in gpus.values() for g in gs) == ["0", "1"]  # one address each, none shared
    for trial in res["trials"]:
        assert [trial["cuda"]] == gpus[trial["pid"]]  # CUDA_VISIBLE_DEVICES set before train_fn ran
