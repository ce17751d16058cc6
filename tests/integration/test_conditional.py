"""A conditional searchspace through lagom on the local backend: train_fn gets only the active
hyperparameters, and the inactive ones are in no id, MLflow params or best_params."""

from __future__ import annotations

import json
import math
import os

import pytest

from maggy import Searchspace, experiment, load_result
from maggy.exceptions import MaggyWarning

SP = (Searchspace(penalty=("CATEGORICAL", ["l2", "elasticnet"]), l1_ratio=("DOUBLE", [0.0, 1.0]),
                  C=("DOUBLE", [0.01, 10.0], "log"))
      .only_if("l1_ratio", penalty=["elasticnet"]))


def make_train(log_path):
    def train_fn(penalty, C, l1_ratio=None):
        import json
        with open(log_path, "a") as f:  # what train_fn received, one line per trial
            f.write(json.dumps({"penalty": penalty, "C": C, "l1_ratio": l1_ratio}) + "\n")
        if penalty == "l2":
            return 0.9 - 0.01 * abs(math.log10(C))
        return 0.5 + 0.1 * l1_ratio
    return train_fn


def test_a_trial_gets_only_its_active_hyperparameters(tmp_path, tracking_uri):
    log_path = str(tmp_path / "received.jsonl")
    settings = dict(backend="local", num_workers=2, num_trials=8, seed=1, es_policy="none", hb_interval=0.05,
                    optimizer="tpe", name="cond", experiment_dir=str(tmp_path / "exp"), verbose=False,
                    tracking_uri=tracking_uri)
    result = experiment.lagom(make_train(log_path), SP, **settings)
    with open(log_path) as f:
        received = [json.loads(line) for line in f]
    assert len(received) == 8 and {r["penalty"] for r in received} == {"l2", "elasticnet"}
    assert all((r["l1_ratio"] is None) == (r["penalty"] == "l2") for r in received)  # the default, never a value
    assert result.best_params is not None and result.best_params["penalty"] == "l2"
    assert "l1_ratio" not in result.best_params
    df = result.trials
    l2 = df[df["penalty"] == "l2"]
    assert len(l2) and l2["l1_ratio"].map(lambda v: v is None or math.isnan(v)).all()  # empty in the table
    assert df[df["penalty"] == "elasticnet"]["l1_ratio"].notna().all()

    mlflow = pytest.importorskip("mlflow")
    runs = mlflow.tracking.MlflowClient(tracking_uri).search_runs([result.stats["tracking"]["experiment_id"]])
    trial_runs = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
    assert len(trial_runs) == 8
    assert all(("l1_ratio" in r.data.params) == (r.data.params["penalty"] == "elasticnet") for r in trial_runs)

    # the journal keeps the conditions; a re-run with more trials replays it and runs only the new ones
    with open(os.path.join(result.experiment_dir, "journal.jsonl")) as f:
        assert json.loads(f.readline())["config"]["searchspace"]["l1_ratio"]["only_if"] == {"penalty": ["elasticnet"]}
    with pytest.warns(MaggyWarning, match="Continuing experiment 'cond'"):
        more = experiment.lagom(make_train(log_path), SP, **{**settings, "num_trials": 10})
    assert more.experiment_dir == result.experiment_dir and len(more.trials) == 10
    assert load_result(result.experiment_dir).best_params == more.best_params
    with open(log_path) as f:
        received = [json.loads(line) for line in f]
    assert len(received) == 10 and all((r["l1_ratio"] is None) == (r["penalty"] == "l2") for r in received)
