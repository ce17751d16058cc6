"""Ablation studies through lagom: on Spark local mode with MLflow, and resumed after a driver kill."""

from __future__ import annotations

import collections
import json
import os
import pathlib
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from maggy import experiment
from maggy.ablation import AblationStudy
from maggy.backends import SparkBackend
from tests.conftest import wait_for
from tests.helpers import job_result, trial_states

mlflow = pytest.importorskip("mlflow")
torch = pytest.importorskip("torch")

HERE = pathlib.Path(__file__).resolve().parent


def data(seed: int = 0) -> pd.DataFrame:
    """y depends much on 'strong', a little on 'weak', not at all on 'noise'."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(400, 3)), columns=["strong", "weak", "noise"])
    frame["y"] = 3 * frame["strong"] + 0.7 * frame["weak"] + 0.1 * rng.normal(size=400)
    return frame


def net():
    return torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))


def test_each_removal_is_one_trial_and_the_table_ranks_them_by_harm(spark, tmp_path, tracking_uri):
    seen = tmp_path / "seen"
    seen.mkdir()
    uri = tracking_uri

    def train(ablation):
        frame = ablation.drop(data())
        x = np.column_stack([frame[c] for c in frame.columns if c != "y"] + [np.ones(len(frame))])
        coef, *_ = np.linalg.lstsq(x[:300], frame["y"][:300], rcond=None)
        residual = frame["y"][300:] - x[300:] @ coef
        model = ablation.apply(net())
        (seen / str(ablation.name)).write_text(json.dumps({"columns": list(frame.columns),
                                                           "modules": [type(m).__name__ for m in model]}))
        return float(1 - residual.var() / frame["y"][300:].var())  # R², larger is better

    study = AblationStudy(features=["strong", "weak", "noise"], components=["1"], groups={"signal": ["strong", "weak"]},
                          columns=data(), model=net)
    result = experiment.lagom(train, study, backend=SparkBackend(spark), name="ablate", tracking_uri=uri,
                              experiment_dir=str(tmp_path / "exp"), hb_interval=0.1, verbose=False)

    runs = {p.name: json.loads(p.read_text()) for p in seen.iterdir()}
    assert set(runs) == {"None", "strong", "weak", "noise", "1", "signal"}  # one trial each, the base included
    assert runs["None"]["columns"] == ["strong", "weak", "noise", "y"]
    assert runs["weak"]["columns"] == ["strong", "noise", "y"] and runs["signal"]["columns"] == ["noise", "y"]
    replaced = [name for name, r in runs.items() if r["modules"][1] == "Identity"]
    assert replaced == ["1"] and runs["None"]["modules"] == ["Linear", "Tanh", "Linear"]

    table = result.ablation
    assert table["ablated"].tolist()[:3] == ["signal", "strong", "weak"]  # the most harmful first
    assert table.set_index("ablated")["delta"]["noise"] == pytest.approx(0.0, abs=0.01)
    assert table["kind"].tolist()[:3] == ["group", "feature", "feature"]
    assert (table["delta"] <= 0.01).all() and table["delta"].iloc[0] < -0.9

    client = mlflow.tracking.MlflowClient(uri)
    parent = next(r for r in client.search_runs([result.stats["tracking"]["experiment_id"]])
                  if r.data.tags.get("maggy.role") == "experiment")
    path = mlflow.artifacts.download_artifacts(run_id=parent.info.run_id, artifact_path="ablation.csv", tracking_uri=uri)
    assert pd.read_csv(path)["ablated"].tolist()[:3] == ["signal", "strong", "weak"]


def test_a_study_resumes_after_a_driver_kill_without_rerunning_finished_ablations(tmp_path):
    calls, root = tmp_path / "calls.txt", tmp_path / "exp"
    cmd = [sys.executable, str(HERE / "ablation_job.py"), str(root), str(calls)]
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    def finalized():  # the names train_fn writes: "feature:a" is "a", the base "None"
        return {e["params"]["ablation"].partition(":")[2] or "None" for e in trial_states(root).values()
                if e["state"] == "FINALIZED"}
    try:  # finished means journaled: train_fn may have ended on a trial whose end the kill cut off
        wait_for(lambda: len(finalized()) >= 2, timeout=120, interval=0.05, what="two ablations to end")
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(30)
    before = finalized()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    result = job_result(out.stdout, out.stderr, out.returncode)
    ran = collections.Counter(calls.read_text().splitlines())
    assert result["stats"]["resumes"] == 1
    assert set(ran) == {"None", "a", "b", "c", "d", "ab"} and all(ran[name] == 1 for name in before)
    order = [row["ablated"] for row in result["ablation"]]
    assert order[0] == "ab" and set(order[1:5]) == {"a", "b", "c", "d"} and order[5] is None  # -2, then -1 each, then 0
