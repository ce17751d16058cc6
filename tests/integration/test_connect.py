"""lagom from a Spark Connect client (``SparkSession.builder.remote("local[2]")``) in a process of
its own, as a notebook attached through Connect runs it: where the trials ran, early stopping, a
killed Python worker, gangs with MLflow, Ctrl-C. One client process serves every scenario (one
Connect server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pandas as pd
import pytest

from tests.integration.test_gangs import check_gangs
from tests.integration.test_lost_workers import check_continued_from_checkpoint

JOB = Path(__file__).with_name("connect_job.py")

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def connect_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("connect")
    out = work / "facts.json"
    proc = subprocess.run([sys.executable, str(JOB), str(out), str(work), "local[2]",
                           "trials", "early", "killed", "gang", "resume", "interrupt"], capture_output=True, text=True,
                          timeout=420, cwd=work,  # MLflow's artifacts land in the working directory
                          env={**os.environ, "PYTHONPATH": str(JOB.parents[2])})  # the workers import tests.*
    assert out.exists(), f"the Connect client wrote nothing (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    return json.loads(out.read_text())


def facts_of(run, scenario):
    facts = run[scenario]
    assert "error" not in facts, facts["error"]
    return facts


def test_trials_run_in_the_executor_tasks_of_one_stage_not_in_the_client(connect_run):
    facts = facts_of(connect_run, "trials")
    trials = facts["trials"]
    assert len(trials) == 6 and {t["state"] for t in trials} == {"FINALIZED"}
    assert all(t["stage"] >= 0 for t in trials)  # a Spark task's context: not the client's process
    assert facts["client_pid"] not in {t["pid"] for t in trials}
    assert len({t["stage"] for t in trials}) == 1  # one stage served the whole experiment
    stats = facts["stats"]
    # the session's local[2]: two slots, from its settings, two tasks that served the trials
    assert {w["partition"] for w in stats["workers"]} == {0, 1} and {t["partition"] for t in trials} <= {0, 1}
    assert stats["spark_connect"] == "localhost" and stats["spark_master"] == "local[2]"
    assert stats["num_workers"] == 2 and stats["rpc"]["advertised"].startswith("127.0.0.1:")


def test_the_median_rule_stops_poor_trials_under_connect(connect_run):
    states = {t["q"]: t["state"] for t in facts_of(connect_run, "early")["trials"]}
    assert states[6] == "FINALIZED" and "EARLY_STOPPED" in {states[q] for q in (1, 2, 3)}


def test_a_killed_python_worker_continues_from_its_checkpoint_under_connect(connect_run):
    facts = facts_of(connect_run, "killed")
    result = types.SimpleNamespace(trials=pd.DataFrame(facts["trials"]), experiment_dir=facts["experiment_dir"])
    check_continued_from_checkpoint([tuple(c) for c in facts["calls"]], result, facts["victim"], facts["killed_pid"])


def test_gangs_train_with_ddp_and_are_tracked_in_mlflow_under_connect(connect_run):
    facts = facts_of(connect_run, "gang")
    result = types.SimpleNamespace(trials=pd.DataFrame(facts["trials"]), history=pd.DataFrame(facts["history"]))
    check_gangs(result, facts["ranks"], steps=4)
    assert facts["runs"] == {"parents": 1, "trials": sorted(result.trials["trial_id"])}


def test_the_same_call_again_continues_the_experiment_under_connect(connect_run):
    facts = facts_of(connect_run, "resume")
    again = {t["trial_id"]: t for t in facts["again"]}
    assert facts["same_dir"] and facts["resumes"] == 1 and len(again) == 4
    assert set(facts["first"]) <= set(again) and {t["state"] for t in again.values()} == {"FINALIZED"}
    # the first call's trials did not run again: they ran in the first call's job, a stage of their own
    assert len({t["stage"] for t in again.values()}) == 2


def test_ctrl_c_interrupts_the_tagged_job_and_leaves_no_running_task(connect_run):
    facts = facts_of(connect_run, "interrupt")
    assert facts["interrupted"] and len(facts["pids"]) == 2
    # within 30 s of Ctrl-C the server runs no stage, and the trials' Python workers have ended
    # (a trial alone would run 5 minutes)
    assert facts["stages_ended_after"] < 30 and facts["ended_after"] < 30
