"""Several objectives through lagom on Spark local mode, tracked in MLflow (a sqlite store)."""

from __future__ import annotations

import os

import pyarrow.parquet as pq
import pytest

from maggy import Searchspace, experiment, load_result
from maggy.backends import SparkBackend
from maggy.search.objectives import NoSingleBestError

mlflow = pytest.importorskip("mlflow")

SP = Searchspace(x=("DOUBLE", [0.0, 1.0]), y=("DOUBLE", [0.0, 1.0]))
BROKEN = {"x": 0.95, "y": 0.5}  # run first: its train_fn leaves out one objective


def accuracy(x, y):
    return 1 - (x - 0.7) ** 2 - y


def latency(x, y):
    return 10 * x + 5 * y


def test_two_objectives_give_the_pareto_front_in_the_result_the_journal_and_mlflow(spark, tmp_path, tracking_uri):
    calls = tmp_path / "calls"
    calls.mkdir()
    uri = tracking_uri

    def train(x, y):
        (calls / f"{os.getpid()}-{x:.12f}-{y:.12f}").touch()
        if (x, y) == (BROKEN["x"], BROKEN["y"]):
            return {"accuracy": accuracy(x, y)}
        return {"accuracy": accuracy(x, y), "latency": latency(x, y), "note": "ok"}

    result = experiment.lagom(train, SP, optimizer="tpe", num_trials=14, seed=0, name="tradeoff",
                              optimization_key=["accuracy", "latency"], direction=["max", "min"],
                              points_to_evaluate=[BROKEN], tracking_uri=uri, backend=SparkBackend(spark),
                              experiment_dir=str(tmp_path / "exp"), hb_interval=0.1, verbose=False)
    trials = result.trials
    assert len(list(calls.iterdir())) == 14 == len(trials)  # train_fn ran once per trial
    broken = trials[trials["x"] == BROKEN["x"]].iloc[0]
    assert broken["state"] == "ERROR" and "it has ['accuracy']" in broken["error"] and \
        "without ['latency'] of the objectives (optimization_key=['accuracy', 'latency'])" in broken["error"]
    done = trials[trials["state"] == "FINALIZED"]
    assert len(done) == 13 and "metric" not in trials.columns and (done["note"] == "ok").all()
    assert done["accuracy"].tolist() == pytest.approx([accuracy(x, y) for x, y in zip(done["x"], done["y"])])
    assert done["latency"].tolist() == pytest.approx([latency(x, y) for x, y in zip(done["x"], done["y"])])

    rows = list(zip(done["trial_id"], done["accuracy"], done["latency"]))
    front = {t for t, a, ms in rows if not any(a2 >= a and m2 <= ms and (a2, m2) != (a, ms) for _, a2, m2 in rows)}
    assert set(result.front_ids) == front and set(result.pareto_front["trial_id"]) == front
    assert list(result.pareto_front["accuracy"]) == sorted(result.pareto_front["accuracy"], reverse=True)
    with pytest.raises(NoSingleBestError, match="pareto_front"):
        _ = result.best_params

    # the journal tells the same front; trials.parquet has a column per objective
    again = load_result(result.experiment_dir)
    assert again.front_ids == result.front_ids and again.objectives == result.objectives
    table = pq.read_table(os.path.join(result.experiment_dir, "trials.parquet")).to_pandas()
    assert {"accuracy", "latency"} <= set(table.columns) and "metric" not in table.columns

    # MLflow: every objective on each trial's run; the front's runs tagged, and named on the parent run
    client = mlflow.tracking.MlflowClient(uri)
    runs = client.search_runs([result.stats["tracking"]["experiment_id"]])
    (parent,) = [r for r in runs if r.data.tags.get("maggy.role") == "experiment"]
    children = {r.data.tags["maggy.trial_id"]: r for r in runs if r.data.tags.get("mlflow.parentRunId")}
    for row in done.itertuples():
        data = children[row.trial_id].data
        assert data.metrics["accuracy"] == pytest.approx(row.accuracy) and data.metrics["latency"] == pytest.approx(row.latency)
        assert (data.tags.get("maggy.pareto") == "true") == (row.trial_id in front)
    assert set(parent.data.tags["maggy.pareto_front"].split(",")) == front
    assert parent.data.metrics["pareto_front_size"] == len(front)
    assert "maggy.best_trial_id" not in parent.data.tags
    report = mlflow.artifacts.download_artifacts(run_id=parent.info.run_id, artifact_path="plots/report.html",
                                                 tracking_uri=uri)
    page = open(report, encoding="utf-8").read()
    assert 'id="maggy-pareto_front"' in page and "Pareto front (accuracy (max), latency (min))" in page
