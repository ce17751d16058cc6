"""maggy on the platform's YARN: client mode from a Python process (a notebook on an edge node),
cluster mode through spark-submit (the driver, and maggy's RPC server, in the application
master's container), dynamic allocation, and the experiment's secret kept out of YARN."""

from __future__ import annotations

import base64
import json
import os
import pathlib
import socket
import subprocess
import sys
import urllib.request

from tests.conftest import wait_for
from tests.platform.yarn import Job, rm_get, yarn_env, yarn_site

ROOT = pathlib.Path(__file__).resolve().parents[2]
JOB = os.path.join(os.path.dirname(__file__), "yarn_job.py")


def _finished(platform, app_id):
    return wait_for(lambda: (a := rm_get(platform, f"apps/{app_id}")["app"])["state"] == "FINISHED" and a,
                    timeout=90, what=f"YARN application {app_id} finished")


def test_client_mode_runs_one_yarn_application_with_two_executor_containers(platform, hdfs, tmp_path):
    env = {**yarn_env(platform, "spark.executor.instances=2", "spark.yarn.queue=tuning"), "MLFLOW_TRACKING_URI": ""}
    job = Job([sys.executable, JOB, platform["HDFS_URI"] + "/yarn"], env, tmp_path / "job.log")
    try:
        job.expect("READY", timeout=240)
        job.go()
        res = json.loads(job.expect("RESULT", timeout=300))
        secret = bytes.fromhex(res["secret"])
        # Spark's environment page, through YARN's web proxy as a user opens it, while the app lives
        url = f"{platform['YARN_RM']}/proxy/{res['app_id']}/api/v1/applications/{res['app_id']}/environment"
        page = urllib.request.urlopen(url, timeout=10).read()
        assert b"spark.yarn.queue" in page  # the page is really there
        _assert_secret_not_in(page, secret)
    finally:
        assert job.close() == 0, open(job.log).read()[-3000:]
    assert res["master"] == "yarn" and res["jobs"] == 1
    app = _finished(platform, res["app_id"])
    assert app["applicationType"] == "SPARK" and app["queue"] in ("tuning", "root.tuning") and app["finalStatus"] == "SUCCEEDED"
    trials = res["trials"]
    assert len(trials) == 8 and {t["state"] for t in trials} == {"FINALIZED"}
    containers = {t["container"] for t in trials}
    app_suffix = res["app_id"].split("_", 1)[1]
    assert len(containers) == 2 and all(app_suffix in c for c in containers)  # YARN's containers ran them
    assert len({t["executor"] for t in trials}) == 2
    exp = res["experiment_dir"]
    assert {"journal.jsonl", "result.json", "trials"} <= set(hdfs.listdir(exp))
    for t in trials:  # each trial's checkpoint, written in its container, is on HDFS
        assert hdfs.read_text(hdfs.join(exp, "trials", t["trial_id"], "seen"))

    _assert_secret_not_in(_aggregated_logs(platform, hdfs, res["app_id"]), secret)
    _assert_secret_not_in(_node_files(platform, res["app_id"]), secret)


def _assert_secret_not_in(blob: bytes, secret: bytes) -> None:
    for form in (secret, secret.hex().encode(), base64.b64encode(secret)):
        assert form not in blob


def _aggregated_logs(platform, hdfs, app_id) -> bytes:
    """Every container's logs of the application, as YARN collected them on HDFS."""
    def aggregated():
        app = rm_get(platform, f"apps/{app_id}")["app"]
        return app.get("logAggregationStatus") in ("SUCCEEDED", "TIME_OUT", "FAILED") and app["logAggregationStatus"]

    assert wait_for(aggregated, timeout=90, what="log aggregation") == "SUCCEEDED"
    client = hdfs.client  # pyhdfs
    files = [f"{d}/{n}" for d, _, names in client.walk("/tmp/yarn-logs") for n in names if app_id in f"{d}/{n}"]
    assert files, "no aggregated logs found"
    blob = b"".join(client.open(f).read() for f in files)
    assert b"CoarseGrainedExecutorBackend" in blob or b"stdout" in blob  # the logs are really there
    return blob


def _node_files(platform, app_id) -> bytes:
    """What the NodeManager wrote for the application: each container's launch script (its
    command line and environment), tokens and local logs; not the localized jars."""
    blob = b""
    for key in ("yarn.nodemanager.local-dirs", "yarn.nodemanager.log-dirs"):
        for top, _, names in os.walk(yarn_site(platform, key)):
            if app_id.split("_", 1)[1] not in top or "filecache" in top:
                continue
            for name in names:
                path = os.path.join(top, name)
                if os.path.isfile(path) and os.path.getsize(path) < 10 << 20:
                    blob += open(path, "rb").read()
    assert b"launch_container" in blob or b"CoarseGrainedExecutorBackend" in blob, "no launch scripts found"
    return blob


def test_dynamic_allocation_requests_containers_for_waiting_workers_and_releases_them(platform, tmp_path):
    env = yarn_env(platform, "spark.dynamicAllocation.enabled=true",
                   "spark.dynamicAllocation.shuffleTracking.enabled=true", "spark.dynamicAllocation.minExecutors=0",
                   "spark.dynamicAllocation.initialExecutors=0", "spark.dynamicAllocation.maxExecutors=2",
                   "spark.dynamicAllocation.schedulerBacklogTimeout=1s",
                   "spark.dynamicAllocation.executorIdleTimeout=3s")
    env["MLFLOW_TRACKING_URI"] = ""
    job = Job([sys.executable, JOB, str(tmp_path / "exp")], env, tmp_path / "job.log")

    def containers():
        return rm_get(platform, f"apps/{app_id}")["app"]["runningContainers"]

    try:
        app_id = job.expect("READY", timeout=240)
        assert containers() == 1  # the application master alone: no executor before there is work
        job.go()
        res = json.loads(job.expect("RESULT", timeout=300))
        # the waiting worker tasks made Spark ask YARN for containers, and two ran the trials
        assert {t["state"] for t in res["trials"]} == {"FINALIZED"}
        assert len({t["container"] for t in res["trials"]}) == 2
        # after the experiment the executors go idle and go back to YARN, the application lives on
        wait_for(lambda: containers() == 1, timeout=60, interval=0.5, what="the executors' containers released")
        assert rm_get(platform, f"apps/{app_id}")["app"]["state"] == "RUNNING"
    finally:
        assert job.close() == 0, open(job.log).read()[-3000:]


def test_cluster_mode_runs_the_driver_and_its_rpc_server_in_the_application_master(platform, hdfs):
    """spark-submit --deploy-mode cluster of the PyTorch example: the results land on HDFS and in
    MLflow and the best model is registered, with maggy's driver inside YARN's AM container."""
    import pyspark
    from mlflow.tracking import MlflowClient

    root = platform["HDFS_URI"] + "/yarn-cluster"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_")}
    env["HADOOP_CONF_DIR"] = platform["HADOOP_CONF_DIR"]
    spark_submit = pathlib.Path(pyspark.__file__).parent / "bin" / "spark-submit"
    out = subprocess.run([str(spark_submit), "--master", "yarn", "--deploy-mode", "cluster",
                          "--properties-file", platform["SPARK_YARN_PROPERTIES"], "--queue", "tuning",
                          "--conf", "spark.executor.instances=2",
                          "--conf", f"spark.yarn.appMasterEnv.MLFLOW_TRACKING_URI={platform['MLFLOW_TRACKING_URI']}",
                          str(ROOT / "examples" / "tune_digits_torch.py"), "--experiment-dir", root, "--trials", "4",
                          "--register", "digits-yarn"], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    found = [d for d, _, names in hdfs.client.walk("/yarn-cluster") if "result.json" in names]
    assert len(found) == 1, found
    saved = json.loads(hdfs.read_text(hdfs.join(hdfs.normalize(root), found[0][len("/yarn-cluster/"):],
                                                "result.json")))
    stats = saved["stats"]
    app = _finished(platform, stats["spark_app_id"])
    assert app["finalStatus"] == "SUCCEEDED" and app["queue"] in ("tuning", "root.tuning")
    assert saved["outcome"] == "finished" and {t["state"] for t in saved["trials"]} == {"FINALIZED"}
    assert len(saved["trials"]) == 4
    # the driver ran in the application master's container, and its RPC server listened on the
    # address Spark's driver uses there (loopback on this platform); both executors reached it
    assert stats["spark_master"] == "yarn" and stats["spark_deploy_mode"] == "cluster"
    attempts = rm_get(platform, f"apps/{stats['spark_app_id']}/appattempts")["appAttempts"]["appAttempt"]
    assert stats["driver_container"] == attempts[-1]["containerId"]
    bind, advertised = stats["rpc"]["bind"], stats["rpc"]["advertised"]
    assert bind == advertised and socket.gethostbyname(bind.rsplit(":", 1)[0]) == "127.0.0.1"
    assert len({w["executor"] for w in stats["workers"]}) == 2
    # MLflow has every trial's run under the parent, and the registry the best model as champion
    client = MlflowClient(platform["MLFLOW_TRACKING_URI"])
    tracking = stats["tracking"]
    children = client.search_runs([tracking["experiment_id"]],
                                  filter_string=f"tags.mlflow.parentRunId = '{tracking['parent_run_id']}'")
    assert len(children) == 4 and {c.info.status for c in children} == {"FINISHED"}
    version = client.get_model_version_by_alias("digits-yarn", "champion")
    assert version.run_id == saved["best_run_id"] == tracking["best_run_id"]
