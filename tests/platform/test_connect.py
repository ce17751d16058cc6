"""lagom from a Spark Connect client in a process of its own, through a Connect server that
``scripts/platform connect up`` starts against the standalone master: the trials run in that
application's executors, in one stage, and Ctrl-C leaves no task running."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.platform.conftest import PLATFORM

JOB = Path(__file__).parents[1] / "integration" / "connect_job.py"


@pytest.fixture(scope="module")
def connect_server(platform):
    """SPARK_REMOTE and SPARK_CONNECT_UI of a Connect server, stopped after the module: it holds the
    standalone worker's cores."""
    out = subprocess.run([*PLATFORM, "connect", "up"], capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        pytest.fail(f"scripts/platform connect up failed:\n{out.stdout}\n{out.stderr}")
    yield dict(re.findall(r"^(SPARK_REMOTE|SPARK_CONNECT_UI)=(\S+)$", out.stdout, flags=re.MULTILINE))
    subprocess.run([*PLATFORM, "connect", "down"], timeout=120)


def test_a_connect_client_runs_its_trials_in_the_servers_executors_and_ctrl_c_stops_them(connect_server, tmp_path):
    out = tmp_path / "facts.json"
    proc = subprocess.run([sys.executable, str(JOB), str(out), str(tmp_path), connect_server["SPARK_REMOTE"],
                           "trials", "interrupt"], capture_output=True, text=True, timeout=420,
                          env={**os.environ, "SPARK_CONNECT_UI": connect_server["SPARK_CONNECT_UI"]})
    assert out.exists(), f"the Connect client wrote nothing (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    facts = json.loads(out.read_text())
    for scenario in ("trials", "interrupt"):
        assert "error" not in facts[scenario], facts[scenario]["error"]
    run = facts["trials"]
    stats, trials = run["stats"], run["trials"]
    assert stats["spark_connect"] == "127.0.0.1" and stats["spark_master"].startswith("spark://")
    assert stats["num_workers"] == 2  # spark.cores.max=2 over one-core executors, from the server's settings
    assert len(trials) == 6 and {t["state"] for t in trials} == {"FINALIZED"}
    # each trial ran in an executor of the Connect server's application (its working directory is the
    # standalone worker's directory for that application and executor), none in the client
    assert all(f"/spark-work/{stats['spark_app_id']}/" in t["cwd"] for t in trials), [t["cwd"] for t in trials]
    assert run["client_pid"] not in {t["pid"] for t in trials}
    assert len({t["stage"] for t in trials}) == 1 and {w["partition"] for w in stats["workers"]} == {0, 1}
    stop = facts["interrupt"]
    assert stop["interrupted"] and len(stop["pids"]) == 2
    assert stop["stages_ended_after"] < 30 and stop["ended_after"] < 30  # a trial alone would run 5 minutes
