"""Gangs across executors: the DDP example submitted to the standalone cluster and to YARN, each
trial's two ranks in two executors (two YARN containers), checkpoints on HDFS."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import urllib.request

import pyspark

from tests.helpers import job_result

ROOT = pathlib.Path(__file__).resolve().parents[2]
SPARK_SUBMIT = str(pathlib.Path(pyspark.__file__).parent / "bin" / "spark-submit")
EXAMPLE = str(ROOT / "examples" / "tune_ddp_torch.py")


def submit(args: list[str], env: dict) -> dict:
    out = subprocess.run([SPARK_SUBMIT, *args], env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    return job_result(out.stdout, out.stderr, out.returncode)


def check_gangs(res: dict, hdfs) -> list[list[dict]]:
    """Every trial ran on two ranks in two processes, each on its half of the data, and ended
    with the same parameters; the promoted ones continued from rank 0's checkpoint on HDFS."""
    trials = res["trials"]
    assert len(trials) == 3 and {t["state"] for t in trials} == {"FINALIZED"}
    gangs = [json.loads(t["ranks"]) for t in trials]
    for ranks in gangs:
        assert len(ranks) == 2 and ranks[0]["pid"] != ranks[1]["pid"]
        assert ranks[0]["weights"] == ranks[1]["weights"] and {r["shard"] for r in ranks} == {629, 628}
    exp = res["experiment_dir"]
    assert json.loads(hdfs.read_text(hdfs.join(exp, "result.json")))["outcome"] == "finished"
    for t in trials:
        assert hdfs.exists(hdfs.join(exp, "trials", t["trial_id"], "state.pt"))
    return gangs


def test_a_gang_spans_two_executors_of_the_standalone_cluster(platform, hdfs):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_")}
    env.update(platform)
    env["MLFLOW_TRACKING_URI"] = ""
    res = submit(["--master", platform["SPARK_MASTER"], "--conf", "spark.executor.cores=1", EXAMPLE,
                  "--experiment-dir", platform["HDFS_URI"] + "/gangs", "--trials", "3"], env)
    assert res["spark_master"] == platform["SPARK_MASTER"]
    master = json.loads(urllib.request.urlopen(platform["SPARK_MASTER_UI"] + "/json/", timeout=10).read())
    executors = set()
    for worker in master["workers"]:
        info = json.loads(urllib.request.urlopen(worker["webuiaddress"] + "/json/", timeout=10).read())
        executors |= {str(e["id"]) for e in info["executors"] + info["finishedexecutors"]
                      if e["appid"] == res["spark_app_id"]}
    for ranks in check_gangs(res, hdfs):
        # a standalone executor's Python workers run in its own directory: work/<app>/<executor id>
        dirs = [pathlib.PurePath(r["cwd"]) for r in ranks]
        assert all(d.parent.name == res["spark_app_id"] for d in dirs)
        assert {d.name for d in dirs} <= executors and len({d.name for d in dirs}) == 2


def test_a_gang_spans_two_yarn_containers(platform, hdfs):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_")}
    env["HADOOP_CONF_DIR"] = platform["HADOOP_CONF_DIR"]
    env["MLFLOW_TRACKING_URI"] = ""
    res = submit(["--master", "yarn", "--properties-file", platform["SPARK_YARN_PROPERTIES"],
                  "--conf", "spark.executor.instances=2", EXAMPLE,
                  "--experiment-dir", platform["HDFS_URI"] + "/yarn-gangs", "--trials", "3"], env)
    assert res["spark_master"] == "yarn"
    app_suffix = res["spark_app_id"].split("_", 1)[1]
    for ranks in check_gangs(res, hdfs):
        containers = {r["container"] for r in ranks}
        assert len(containers) == 2 and all(app_suffix in c for c in containers)
