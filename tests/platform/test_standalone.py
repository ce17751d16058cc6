"""The engine on a Spark standalone cluster with the experiment directory on HDFS."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from maggy.backends import SparkBackend
from maggy.exceptions import BackendUnavailableError
from tests.helpers import job_result

JOB = os.path.join(os.path.dirname(__file__), "standalone_job.py")


def test_asha_on_standalone_with_hdfs_checkpoints(platform, hdfs, tmp_path):
    env = {**os.environ, "WEBHDFS_URL": platform["WEBHDFS_URL"], "PYSPARK_PYTHON": sys.executable,
           "MAGGY_TEST_PEERS": str(tmp_path / "pids")}
    out = subprocess.run([sys.executable, JOB, platform["SPARK_MASTER"], platform["HDFS_URI"] + "/experiments"],
                         env=env, capture_output=True, text=True, timeout=300)
    res = job_result(out.stdout, out.stderr, out.returncode)
    assert res["master"] == platform["SPARK_MASTER"] and res["executors"] == 2
    assert res["jobs"] == 1
    trials = res["trials"]
    assert len(trials) == 9 and {t["state"] for t in trials} == {"FINALIZED"}
    assert len({t["pid"] for t in trials}) == 2
    assert any(t["budget"] > 1 for t in trials)
    # promoted trials found their checkpoints on HDFS: every epoch ran once
    assert all(t["epochs_run"] == t["budget"] == t["steps"] for t in trials)
    exp = res["experiment_dir"]
    assert exp.startswith(platform["HDFS_URI"] + "/experiments/")  # as the user gave it
    files = hdfs.listdir(exp)
    assert {"journal.jsonl", "result.json", "trials"} <= set(files)
    assert json.loads(hdfs.read_text(hdfs.join(exp, "result.json")))["outcome"] == "finished"
    promoted = next(t for t in trials if t["budget"] > 1)
    ckpt = hdfs.join(exp, "trials", promoted["trial_id"])
    assert json.loads(hdfs.read_text(hdfs.join(ckpt, "state.json")))["epoch"] == promoted["budget"]
    # the ablation study ran on the same executors: 'a' matters most, 'noise' not at all
    assert [row["ablated"] for row in res["ablation"]][:2] == ["a", "b"] and set(res["ablation_pids"]) <= {
        t["pid"] for t in trials}
    assert abs(next(r["delta"] for r in res["ablation"] if r["ablated"] == "noise")) < 0.01


def test_unreachable_master_is_named_before_any_work():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = SparkBackend(master=f"spark://127.0.0.1:{port}")
    with pytest.raises(BackendUnavailableError, match=f"Cannot reach the Spark master at spark://127.0.0.1:{port}"):
        backend.prepare()


def test_ctrl_c_on_standalone_cancels_the_job_and_keeps_finished_trials_on_hdfs(platform, hdfs):
    import signal

    from tests.conftest import wait_for

    root = hdfs.normalize("/interrupt-test")
    proc = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "interrupt_job.py"),
                             platform["SPARK_MASTER"], root], env={**os.environ, "PYSPARK_PYTHON": sys.executable},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def journal() -> list[dict]:
            base = hdfs.join(root, "interrupt")
            if not hdfs.exists(base):
                return []
            runs = hdfs.listdir(base)
            path = hdfs.join(root, "interrupt", runs[0], "journal.jsonl") if runs else None
            return [json.loads(x) for x in hdfs.read_text(path).splitlines()] if path and hdfs.exists(path) else []

        def states() -> list[str]:
            try:
                return [e["state"] for e in journal() if e["event"] == "trial"]
            except Exception:  # read while the driver appends: WebHDFS may cut it short; poll again
                return []

        wait_for(lambda: states().count("FINALIZED") == 2 and states().count("RUNNING") >= 4, timeout=180,
                 what="two finished trials and two long ones running")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    res = job_result(out, err, returncode=None)
    assert res["interrupted"] and res["active_jobs"] == [] and res["seconds_to_no_job"] < 10
    events = journal()
    assert [e["outcome"] for e in events if e["event"] == "experiment_end"] == ["interrupted"]
    finished = {e["params"]["k"] for e in events if e["event"] == "trial" and e["state"] == "FINALIZED"}
    assert finished == {0, 1}
