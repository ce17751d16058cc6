"""MLflow tracking on a real store (sqlite, no server): what the runs hold."""

from __future__ import annotations

import time

import pytest

from maggy import HyperparameterOptConfig, Searchspace, experiment
from tests.helpers import ThreadBackend

mlflow = pytest.importorskip("mlflow")


@pytest.fixture
def tracking_uri(tmp_path, monkeypatch):
    """A fresh sqlite tracking store; the environment variable is restored after the test (the
    in-process workers set it too), and artifacts go to ./mlruns of the test's own directory."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    return uri


def test_system_metrics_and_utilization_land_in_the_runs(tmp_path, tracking_uri):
    def train(x, reporter):
        for step in range(3):
            time.sleep(0.1)
            reporter.broadcast(x * step, step)
        return x

    cfg = HyperparameterOptConfig(searchspace=Searchspace(x=("DOUBLE", [0.0, 1.0])), num_trials=2, seed=0,
                                  es_policy="none", hb_interval=0.05, experiment_dir=str(tmp_path / "exp"),
                                  name="sysmetrics", system_metrics=True)
    result = experiment.lagom(train, cfg, backend=ThreadBackend(2), verbose=False)
    client = mlflow.tracking.MlflowClient(tracking_uri)
    assert result.stats["tracking"]["lost"] == []
    for trial_id, samples in zip(result.trials["trial_id"], result.trials["cpu_util"]):
        (run,) = client.search_runs([result.stats["tracking"]["experiment_id"]],
                                    filter_string=f"tags.`maggy.trial_id` = '{trial_id}'")
        cpu = client.get_metric_history(run.info.run_id, "system/cpu_utilization_percentage")
        mem = client.get_metric_history(run.info.run_id, "system/memory_usage_megabytes")
        assert len(cpu) >= 3 and [m.step for m in cpu] == list(range(len(cpu)))
        assert all(m.value > 10 for m in mem) and samples == pytest.approx(sum(m.value for m in cpu) / len(cpu))
        assert not client.get_metric_history(run.info.run_id, "system/gpu_utilization_percentage")  # no GPU here
    parent = client.get_run(result.stats["tracking"]["parent_run_id"])
    assert parent.data.metrics["utilization"] == pytest.approx(result.stats["utilization"])
