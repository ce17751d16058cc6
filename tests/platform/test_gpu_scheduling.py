"""Spark's own GPU scheduling, for real: on the platform's standalone worker (two GPU addresses
from spark-conf/gpu-discovery.sh) each maggy worker pins the GPU its task was given; on YARN each
executor's container is granted one ``yarn.io/gpu`` of the NodeManager's two."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

from tests.conftest import wait_for
from tests.helpers import job_result
from tests.platform.yarn import rm_get, yarn_env

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


def test_on_yarn_each_executor_container_is_granted_a_yarn_gpu(platform, tmp_path):
    """Spark turns ``spark.executor.resource.gpu.amount`` into a request for ``yarn.io/gpu``. The
    NodeManager here schedules GPUs without isolating them (that takes the LinuxContainerExecutor),
    so each container's discovery script reports the one device it would see as "0", as in a
    container that YARN's Docker runtime gave one GPU."""
    env = yarn_env(platform, "spark.executor.instances=2", "spark.executorEnv.MAGGY_GPU_ADDRESSES=0",
                   f"spark.executor.resource.gpu.discoveryScript={HERE.parents[1] / 'spark-conf' / 'gpu-discovery.sh'}")
    proc = subprocess.Popen([sys.executable, JOB, "yarn", str(tmp_path), "1"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        def gpus_used():
            node = rm_get(platform, "nodes")["nodes"]["node"][0]
            used = node["usedResource"]["resourceInformations"]["resourceInformation"]
            return next(r["value"] for r in used if r["name"] == "yarn.io/gpu") == 2

        seen = wait_for(lambda: gpus_used() or (proc.poll() is not None and "ended"), timeout=240, interval=0.2,
                        what="both of the node's GPUs granted to the executors")
        out, err = proc.communicate(timeout=300)
        assert seen is True, f"the job ended before both GPUs were granted:\n{err[-3000:]}"
    finally:
        proc.kill()
    res = _result(out, err, proc.returncode)
    assert [w["gpus"] for w in res["workers"]] == [["0"], ["0"]]
    assert {t["cuda"] for t in res["trials"]} == {"0"}
