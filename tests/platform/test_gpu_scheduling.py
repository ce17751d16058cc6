"""Spark's own GPU scheduling, for real, on the platform's standalone worker (two GPU addresses
from spark-conf/gpu-discovery.sh): each maggy worker pins the GPU its task was given."""

from __future__ import annotations

import json
import os
import subprocess
import sys

JOB = os.path.join(os.path.dirname(__file__), "gpu_job.py")


def test_each_worker_pins_its_own_gpu(platform, tmp_path):
    out = subprocess.run([sys.executable, JOB, platform["SPARK_MASTER"], str(tmp_path)],
                         env={**os.environ, "PYSPARK_PYTHON": sys.executable},
                         capture_output=True, text=True, timeout=300)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    assert out.returncode == 0 and lines, out.stderr[-3000:]
    res = json.loads(lines[0][len("RESULT "):])
    gpus = {w["pid"]: w["gpus"] for w in res["workers"]}
    assert sorted(g for gs in gpus.values() for g in gs) == ["0", "1"]  # one address each, none shared
    for trial in res["trials"]:
        assert [trial["cuda"]] == gpus[trial["pid"]]  # CUDA_VISIBLE_DEVICES set before train_fn ran
