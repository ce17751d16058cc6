"""maggy on the platform's YARN: client mode from a Python process (a notebook on an edge node)
with dynamic allocation and GPUs, cluster mode through spark-submit (the driver, and maggy's RPC
server, in the application master's container), and the experiment's secret kept out of YARN."""

from __future__ import annotations

import base64
import collections
import itertools
import json
import os
import pathlib
import signal
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


def _gpus_used(platform) -> int:
    """How many ``yarn.io/gpu`` YARN has granted to running containers, over all its nodes."""
    used = 0
    for node in rm_get(platform, "nodes?states=RUNNING")["nodes"]["node"]:  # not a node a test lost
        infos = node["usedResource"]["resourceInformations"]["resourceInformation"]
        used += sum(int(r["value"]) for r in infos if r["name"] == "yarn.io/gpu")
    return used


def test_client_mode_asks_yarn_for_two_gpu_containers_for_waiting_workers_and_gives_them_back(platform, hdfs,
                                                                                                tmp_path):
    """One application as a notebook on an edge node runs it: in the queue it names, with dynamic
    allocation (no executor before there is work; the waiting worker tasks make Spark ask for two
    containers; idle ones go back) and Spark's GPU scheduling (``spark.executor.resource.gpu.amount``
    becomes a request for ``yarn.io/gpu``). The NodeManager here schedules GPUs without isolating
    them (that takes the LinuxContainerExecutor), so each container's discovery script reports the
    one device it would see as "0", as in a container that YARN's Docker runtime gave one GPU."""
    env = yarn_env(platform, "spark.yarn.queue=tuning", "spark.dynamicAllocation.enabled=true",
                   "spark.dynamicAllocation.shuffleTracking.enabled=true", "spark.dynamicAllocation.minExecutors=0",
                   "spark.dynamicAllocation.initialExecutors=0", "spark.dynamicAllocation.maxExecutors=2",
                   "spark.dynamicAllocation.schedulerBacklogTimeout=1s",
                   "spark.dynamicAllocation.executorIdleTimeout=3s",
                   "spark.executor.resource.gpu.amount=1", "spark.task.resource.gpu.amount=1",
                   "spark.executorEnv.MAGGY_GPU_ADDRESSES=0",
                   f"spark.executor.resource.gpu.discoveryScript={ROOT / 'spark-conf' / 'gpu-discovery.sh'}")
    env["MLFLOW_TRACKING_URI"] = ""
    gate = tmp_path / "gate"
    job = Job([sys.executable, JOB, platform["HDFS_URI"] + "/yarn", str(gate)], env, tmp_path / "job.log")

    def containers():
        return rm_get(platform, f"apps/{app_id}")["app"]["runningContainers"]

    def waiting():  # the containers whose trials wait at the gate
        path = pathlib.Path(f"{gate}.calls")
        return set(path.read_text().split()) if path.exists() else set()

    try:
        app_id = job.expect("READY", timeout=240)
        # the application master alone (once it has registered): no executor before there is work
        wait_for(lambda: containers() == 1, timeout=60, interval=0.2, what="the application master's container")
        job.go()
        wait_for(lambda: len(waiting()) == 2, timeout=240, interval=0.2, what="a trial in each of two containers")
        assert containers() == 3 and _gpus_used(platform) == 2  # two executors, one GPU each
        gate.touch()
        res = json.loads(job.expect("RESULT", timeout=300))
        secret = bytes.fromhex(res["secret"])
        # Spark's environment page, through YARN's web proxy as a user opens it, while the app lives
        url = f"{platform['YARN_RM']}/proxy/{app_id}/api/v1/applications/{app_id}/environment"
        page = urllib.request.urlopen(url, timeout=10).read()
        assert b"spark.yarn.queue" in page  # the page is really there
        _assert_secret_not_in(page, secret)
        # after the experiment the executors go idle and go back to YARN, the application lives on
        wait_for(lambda: containers() == 1, timeout=60, interval=0.5, what="the executors' containers released")
        assert rm_get(platform, f"apps/{app_id}")["app"]["state"] == "RUNNING"
    except BaseException:
        job.proc.kill()  # its trials wait at the gate: no use waiting for it
        raise
    assert job.close() == 0, open(job.log).read()[-3000:]
    assert res["master"] == "yarn" and res["jobs"] == 1 and res["app_id"] == app_id
    app = _finished(platform, app_id)
    assert app["applicationType"] == "SPARK" and app["queue"] in ("tuning", "root.tuning") and app["finalStatus"] == "SUCCEEDED"
    trials = res["trials"]
    assert len(trials) == 8 and {t["state"] for t in trials} == {"FINALIZED"}
    containers_ran = {t["container"] for t in trials}
    assert containers_ran == waiting() and all(app_id.split("_", 1)[1] in c for c in containers_ran)  # YARN's
    assert len({t["executor"] for t in trials}) == 2
    assert [w["gpus"] for w in res["workers"]] == [["0"], ["0"]]  # each worker's task was given its GPU
    assert {t["cuda"] for t in trials} == {"0"}  # and pinned it before train_fn ran
    exp = res["experiment_dir"]
    assert {"journal.jsonl", "result.json", "trials"} <= set(hdfs.listdir(exp))
    for t in trials:  # each trial's checkpoint, written in its container, is on HDFS
        assert hdfs.read_text(hdfs.join(exp, "trials", t["trial_id"], "seen"))

    _assert_secret_not_in(_aggregated_logs(platform, hdfs, app_id), secret)
    _assert_secret_not_in(_node_files(platform, app_id), secret)


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
    """What the NodeManagers wrote for the application: each container's launch script (its
    command line and environment), tokens and local logs; not the localized jars."""
    blob = b""
    for key, node in itertools.product(("yarn.nodemanager.local-dirs", "yarn.nodemanager.log-dirs"), (1, 2)):
        for top, _, names in os.walk(yarn_site(platform, key, node)):
            if app_id.split("_", 1)[1] not in top or "filecache" in top:
                continue
            for name in names:
                path = os.path.join(top, name)
                if os.path.isfile(path) and os.path.getsize(path) < 10 << 20:
                    blob += open(path, "rb").read()
    assert b"launch_container" in blob or b"CoarseGrainedExecutorBackend" in blob, "no launch scripts found"
    return blob


def test_cluster_mode_runs_the_driver_in_the_application_master_and_its_second_attempt_resumes(platform, hdfs):
    """spark-submit --deploy-mode cluster of the PyTorch example: maggy's driver, and its RPC server,
    run inside YARN's AM container. The AM is SIGKILLed (its whole container) once a trial ended
    and another runs; with ``spark.yarn.maxAppAttempts=2`` YARN's second attempt takes the lease
    over at once and continues the experiment: the results land on HDFS and in MLflow (one parent
    run, one run per trial) and the best model is registered once."""
    import pyspark
    from mlflow.tracking import MlflowClient

    base = "/yarn-cluster"
    root = platform["HDFS_URI"] + base
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_")}
    env["HADOOP_CONF_DIR"] = platform["HADOOP_CONF_DIR"]
    spark_submit = pathlib.Path(pyspark.__file__).parent / "bin" / "spark-submit"
    submit = subprocess.Popen([str(spark_submit), "--master", "yarn", "--deploy-mode", "cluster",
                               "--properties-file", platform["SPARK_YARN_PROPERTIES"], "--queue", "tuning",
                               "--conf", "spark.executor.instances=2", "--conf", "spark.yarn.maxAppAttempts=2",
                               "--conf", f"spark.yarn.appMasterEnv.MLFLOW_TRACKING_URI={platform['MLFLOW_TRACKING_URI']}",
                               str(ROOT / "examples" / "tune_digits_torch.py"), "--experiment-dir", root,
                               "--trials", "3", "--register", "digits-yarn"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    exp: list[str] = []

    def journal() -> dict:
        if not exp:
            found = [d for d, _, names in hdfs.client.walk(base) if "lease.json" in names] if hdfs.exists(
                hdfs.normalize(root)) else []
            if not found:
                return {}
            exp.append(found[0])
        text = hdfs.client.open(exp[0] + "/journal.jsonl").read().decode() if hdfs.client.exists(
            exp[0] + "/journal.jsonl") else ""
        return {e["trial_id"]: e for e in map(json.loads, [ln for ln in text.splitlines(keepends=True)
                                                          if ln.endswith("\n")]) if e["event"] == "trial"}

    def ready_to_kill():  # a trial ended, and a running one has its MLflow run journaled
        states = journal()
        running = [e for e in states.values() if e["state"] == "RUNNING"]
        return any(e["state"] == "FINALIZED" for e in states.values()) and any(e.get("run_id") for e in running)

    try:
        wait_for(ready_to_kill, timeout=300, interval=0.2, what="a trial ended in the application master's driver")
        holder = json.loads(hdfs.client.open(exp[0] + "/lease.json").read())
        assert holder["yarn"]["attempt"] == 1
        os.killpg(os.getpgid(holder["pid"]), signal.SIGKILL)  # the AM container: launcher, JVM, Python driver
        finished = {tid for tid, e in journal().items() if e["state"] == "FINALIZED"}
        out, err = submit.communicate(timeout=500)
    finally:
        if submit.poll() is None:
            submit.kill()
    assert submit.returncode == 0, err[-4000:]
    assert 1 <= len(finished) < 3
    saved = json.loads(hdfs.client.open(exp[0] + "/result.json").read())
    stats = saved["stats"]
    app = _finished(platform, stats["spark_app_id"])
    assert app["finalStatus"] == "SUCCEEDED" and app["queue"] in ("tuning", "root.tuning")
    assert stats["spark_app_id"] == holder["yarn"]["app"] and stats["resumes"] == 1
    assert saved["outcome"] == "finished" and {t["state"] for t in saved["trials"]} == {"FINALIZED"}
    assert len(saved["trials"]) == 3
    # the driver ran in the second attempt's application master container, and its RPC server listened
    # on the address Spark's driver uses there (loopback on this platform); both executors reached it
    assert stats["spark_master"] == "yarn" and stats["spark_deploy_mode"] == "cluster"
    attempts = rm_get(platform, f"apps/{stats['spark_app_id']}/appattempts")["appAttempts"]["appAttempt"]
    assert len(attempts) == 2 and stats["driver_container"] == attempts[-1]["containerId"]
    bind, advertised = stats["rpc"]["bind"], stats["rpc"]["advertised"]
    assert bind == advertised and socket.gethostbyname(bind.rsplit(":", 1)[0]) == "127.0.0.1"
    assert len({w["executor"] for w in stats["workers"]}) == 2
    # a trial that ended before the kill was not run again
    assert {t["trial_id"] for t in saved["trials"] if t["trial_id"] in finished and not t.get("resumes")} == finished
    # MLflow has one parent run and one finished run per trial under it, and the registry one version
    client = MlflowClient(platform["MLFLOW_TRACKING_URI"])
    tracking = stats["tracking"]
    runs = client.search_runs([tracking["experiment_id"]], max_results=200)
    mine = [r for r in runs if tracking["parent_run_id"] in (r.info.run_id, r.data.tags.get("mlflow.parentRunId"))]
    # (the MLflow experiment also holds the runs of other tests' experiments with the example's name)
    assert [r.info.run_id for r in runs if r.data.tags.get("maggy.role") == "experiment"
            and r.data.params.get("experiment_dir") == root] == [tracking["parent_run_id"]]
    children = [r for r in mine if r.info.run_id != tracking["parent_run_id"]]
    assert collections.Counter(r.data.tags["maggy.trial_id"] for r in children) == {
        t["trial_id"]: 1 for t in saved["trials"]}
    assert {r.info.status for r in children} == {"FINISHED"}
    version = client.get_model_version_by_alias("digits-yarn", "champion")
    assert version.run_id == saved["best_run_id"] == tracking["best_run_id"]
    assert len(client.search_model_versions("name = 'digits-yarn'")) == 1
