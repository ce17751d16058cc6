"""Resume on the platform: the experiment directory on HDFS, tracking on the MLflow server."""

from __future__ import annotations

import collections
import json
import os
import pathlib
import signal
import subprocess
import sys
import uuid

from tests.conftest import wait_for
from tests.helpers import job_result

JOB = pathlib.Path(__file__).resolve().parents[1] / "integration" / "resume_job.py"


def journal_on(hdfs, root: str) -> dict[str, dict]:
    """Each trial's latest journal event in the experiment 'resumable' under ``root`` (whole lines)."""
    base = hdfs.join(root, "resumable")
    if not hdfs.exists(base) or not hdfs.listdir(base):
        return {}
    path = hdfs.join(base, hdfs.listdir(base)[0], "journal.jsonl")
    text = hdfs.read_text(path) if hdfs.exists(path) else ""
    return {e["trial_id"]: e for e in map(json.loads, [ln for ln in text.splitlines(keepends=True)
                                                      if ln.endswith("\n")]) if e["event"] == "trial"}


def completed(calls: pathlib.Path) -> set[str]:
    """The trials whose every epoch ran, as the workers wrote them (before their FINAL)."""
    lines = calls.read_text().splitlines() if calls.exists() else []
    epochs = collections.Counter(line.split()[0] for line in lines if line)
    return {t for t, n in epochs.items() if n >= 4}


def test_a_killed_driver_resumes_on_hdfs_with_one_parent_run_and_no_duplicate_children(platform, hdfs, tmp_path):
    from mlflow.tracking import MlflowClient

    root = hdfs.normalize(f"/maggy-tests/{uuid.uuid4().hex}")
    calls = tmp_path / "calls.txt"
    env = {**os.environ, "MLFLOW_TRACKING_URI": platform["MLFLOW_TRACKING_URI"]}
    cmd = [sys.executable, str(JOB), "local", "randomsearch", root, str(calls)]

    def journal():
        return journal_on(hdfs, root)

    def ready_to_kill():  # three trials ended, and every running one has its MLflow run journaled
        states = journal()
        running = [e for e in states.values() if e["state"] == "RUNNING"]
        return sum(e["state"] == "FINALIZED" for e in states.values()) >= 3 and running and \
            all(e.get("run_id") for e in running)

    # trials that start once three completed wait at a gate that never opens: the driver is killed
    # with trials running, however fast or slow the machine
    held = {**env, "MAGGY_TEST_GATE": str(tmp_path / "never"), "MAGGY_TEST_HOLD_AFTER": "3"}
    driver = subprocess.Popen(cmd, env=held, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        wait_for(ready_to_kill, timeout=180, interval=0.1, what="trials to end on HDFS")
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(30)
    finished = {tid for tid, e in journal().items() if e["state"] == "FINALIZED"}

    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    result = job_result(out.stdout, out.stderr, out.returncode)
    assert result["experiment_dir"].startswith("webhdfs://") and result["stats"]["resumes"] == 1
    trials = result["trials"]
    assert len(trials) == 8 and {t["state"] for t in trials} == {"FINALIZED"}
    ran = collections.Counter(line.split()[0] for line in calls.read_text().splitlines())
    assert all(ran[tid] == 4 for tid in finished)  # 4 epochs each, none again

    client = MlflowClient(platform["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name("resumable")
    runs = client.search_runs([exp.experiment_id], max_results=200)
    parents = [r for r in runs if r.data.tags.get("maggy.role") == "experiment"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    per_trial = collections.Counter(r.data.tags["maggy.trial_id"] for r in children)
    assert per_trial == {t["trial_id"]: 1 for t in trials}
    assert {r.info.status for r in children} == {"FINISHED"}


def test_a_driver_killed_with_trial_ends_not_yet_journaled_on_hdfs_runs_nothing_journaled_as_finished_again(
        platform, hdfs, tmp_path):
    """SIGKILL while trials that the workers finished are still on their way to the journal (in
    the driver's queue or its writer's batch in flight to HDFS): what the journal holds is a
    consistent prefix, the resume runs no trial it shows FINALIZED, and every trial ends once."""
    root = hdfs.normalize(f"/maggy-tests/{uuid.uuid4().hex}")
    calls = tmp_path / "calls.txt"
    cmd = [sys.executable, str(JOB), "local", "randomsearch", root, str(calls), "16"]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    driver = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    seen: dict[str, set[str]] = {}

    def unjournaled_ends():  # trials done on their workers and not FINALIZED in the journal yet
        done = completed(calls)
        finalized = {t for t, e in journal_on(hdfs, root).items() if e["state"] == "FINALIZED"}
        seen.update(finalized=finalized, pending=done - finalized)
        return len(finalized) >= 3 and seen["pending"]

    try:
        wait_for(unjournaled_ends, timeout=180, interval=0.01, what="a trial end on its way to the journal")
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(30)
    finalized = {t for t, e in journal_on(hdfs, root).items() if e["state"] == "FINALIZED"}
    assert seen["finalized"] <= finalized  # nothing journaled was lost or reordered away
    before = collections.Counter(line.split()[0] for line in calls.read_text().splitlines())

    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    result = job_result(out.stdout, out.stderr, out.returncode)
    assert result["stats"]["resumes"] == 1
    trials = result["trials"]
    assert len(trials) == 16 and {t["state"] for t in trials} == {"FINALIZED"}
    after = collections.Counter(line.split()[0] for line in calls.read_text().splitlines())
    assert all(after[t] == before[t] == 4 for t in finalized)  # journaled as finished: never ran again
