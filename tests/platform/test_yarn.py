"""maggy on the platform's YARN: client mode from a Python process, as a notebook on an edge node runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

from tests.conftest import wait_for

JOB = os.path.join(os.path.dirname(__file__), "yarn_job.py")


def _app(rm: str, app_id: str) -> dict:
    with urllib.request.urlopen(f"{rm}/ws/v1/cluster/apps/{app_id}", timeout=10) as r:
        return json.loads(r.read())["app"]


def test_client_mode_runs_one_yarn_application_with_two_executor_containers(platform, hdfs):
    env = {**os.environ, "HADOOP_CONF_DIR": platform["HADOOP_CONF_DIR"], "PYSPARK_PYTHON": sys.executable,
           "MLFLOW_TRACKING_URI": ""}
    out = subprocess.run([sys.executable, JOB, platform["SPARK_YARN_PROPERTIES"], platform["HDFS_URI"] + "/yarn"],
                         env=env, capture_output=True, text=True, timeout=400)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    assert out.returncode == 0 and lines, out.stderr[-3000:]
    res = json.loads(lines[0][len("RESULT "):])
    assert res["master"] == "yarn" and res["jobs"] == 1
    app = wait_for(lambda: (a := _app(platform["YARN_RM"], res["app_id"]))["state"] == "FINISHED" and a,
                   timeout=60, what="the YARN application finished")
    assert app["applicationType"] == "SPARK" and app["queue"] in ("tuning", "root.tuning") and app["finalStatus"] == "SUCCEEDED"
    trials = res["trials"]
    assert len(trials) == 8 and {t["state"] for t in trials} == {"FINALIZED"}
    containers = {t["container"] for t in trials}
    app_suffix = res["app_id"].split("_", 1)[1]
    assert len(containers) == 2 and all(app_suffix in c for c in containers)  # YARN's containers ran them
    assert len({t["executor"] for t in trials}) == 2
    exp = res["experiment_dir"]
    assert {"journal.jsonl", "result.json", "trials"} <= set(hdfs.client.listdir(hdfs._path(exp)))
    for t in trials:  # each trial's checkpoint, written in its container, is on HDFS
        assert hdfs.read_text(hdfs.join(exp, "trials", t["trial_id"], "seen"))

    _secret_not_in_aggregated_logs(platform, hdfs, res["app_id"], bytes.fromhex(res["secret"]))


def _secret_not_in_aggregated_logs(platform, hdfs, app_id, secret):
    """YARN collects every container's logs on HDFS; the experiment's secret must not be in them."""
    import base64

    def aggregated():
        app = _app(platform["YARN_RM"], app_id)
        return app.get("logAggregationStatus") in ("SUCCEEDED", "TIME_OUT", "FAILED") and app["logAggregationStatus"]

    assert wait_for(aggregated, timeout=90, what="log aggregation") == "SUCCEEDED"
    client = hdfs.client  # pyhdfs
    files = [f"{d}/{n}" for d, _, names in client.walk("/tmp/yarn-logs") for n in names if app_id in f"{d}/{n}"]
    assert files, "no aggregated logs found"
    blob = b"".join(client.open(f).read() for f in files)
    assert b"CoarseGrainedExecutorBackend" in blob or b"stdout" in blob  # the logs are really there
    for form in (secret, secret.hex().encode(), base64.b64encode(secret)):
        assert form not in blob
