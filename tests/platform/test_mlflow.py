"""MLflow tracking against real tracking servers."""

from __future__ import annotations

import glob
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from maggy import HyperparameterOptConfig, Searchspace, experiment
from maggy.backends import LocalBackend
from maggy.earlystop import EarlyStopPolicy
from maggy.exceptions import BackendUnavailableError
from tests.conftest import wait_for
from tests.helpers import journal_records

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
from local_platform import free_port, mlflow_server  # noqa: E402


class StopK2(EarlyStopPolicy):
    """Stops the trial with k == 2 as soon as it reports: a deterministic KILLED run."""

    def should_stop(self, trial, finished, direction):
        return trial.params["k"] == 2


def train(k, reporter):
    import mlflow
    for step in range(5):
        reporter.broadcast(k + step / 10, step=step)
        time.sleep(0.05)
    if k == 1:
        raise RuntimeError("k=1 fails")
    mlflow.log_metric("inside_train_fn", k * 10)
    return {"metric": k, "aux": 2 * k}


def runs_of(uri, name):
    from mlflow.tracking import MlflowClient
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(name)
    runs = client.search_runs([exp.experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get("maggy.role") == "experiment"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return client, parents, children


def test_parent_and_child_runs_with_statuses_and_histories(platform, tmp_path):
    sp = Searchspace(k=("DISCRETE", [0, 1, 2, 3]))
    cfg = HyperparameterOptConfig(searchspace=sp, optimizer="gridsearch", es_policy=StopK2(), es_interval=0.05,
                                  hb_interval=0.05, num_workers=2, name="tracked", experiment_dir=str(tmp_path),
                                  tracking_uri=platform["MLFLOW_TRACKING_URI"])
    result = experiment.lagom(train, cfg, backend=LocalBackend(), verbose=False)
    assert result.stats["tracking"]["lost"] == []
    client, parents, children = runs_of(platform["MLFLOW_TRACKING_URI"], "tracked")
    assert len(parents) == 1 and len(children) == 4
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.data.params["optimizer"] == "gridsearch"
    assert parent.data.metrics["best_metric"] == 3
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    by_k = {int(c.data.params["k"]): c for c in children}
    assert {k: c.info.status for k, c in by_k.items()} == {0: "FINISHED", 1: "FAILED", 2: "KILLED", 3: "FINISHED"}
    history = client.get_metric_history(by_k[3].info.run_id, "metric")
    # the broadcasts 3.0 to 3.4, then the result 3 at the last step: the latest value, the runs table's
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: (m.step, m.timestamp))] == [
        (0, 3.0), (1, 3.1), (2, 3.2), (3, 3.3), (4, 3.4), (4, 3.0)]
    assert by_k[3].data.metrics["metric"] == 3
    assert by_k[3].data.metrics["final_metric"] == 3 and by_k[3].data.metrics["aux"] == 6
    assert by_k[3].data.metrics["inside_train_fn"] == 30  # plain mlflow calls land in the trial's run
    assert "k=1 fails" in by_k[1].data.tags["maggy.error"]
    # runs named <experiment>-<n>, the trial id a tag; the parent points at the best
    assert sorted(c.info.run_name for c in children) == ["tracked-1", "tracked-2", "tracked-3", "tracked-4"]
    assert {c.data.tags["maggy.trial_id"] for c in children} == set(result.trials["trial_id"])
    tags = parent.data.tags
    assert tags["maggy.best_run_id"] == by_k[3].info.run_id == result.best_run_id
    assert tags["maggy.best.k"] == "3" and tags["maggy.best_trial_id"] == result.best_trial_id
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)} | {
        a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert {"trials.csv", "plots/report.html"} <= artifacts
    page = client.download_artifacts(parent.info.run_id, "plots/report.html", str(tmp_path))
    text = open(page, encoding="utf-8").read()
    assert 'src="https://cdn.plot.ly' not in text and text.count('class="plotly-graph-div"') >= 4  # renders offline


def test_log_trials_best_makes_one_run_at_the_end_with_the_metric_under_its_key(platform, tmp_path):
    def train(k, reporter):
        for step in range(3):
            reporter.broadcast(k * (step + 1), step=step)
        return {"acc": k * 3}

    cfg = HyperparameterOptConfig(searchspace=Searchspace(k=("DISCRETE", [0, 1, 2])), optimizer="gridsearch",
                                  es_policy="none", optimization_key="acc", log_trials="best", name="best-only",
                                  experiment_dir=str(tmp_path), tracking_uri=platform["MLFLOW_TRACKING_URI"])
    result = experiment.lagom(train, cfg, backend=LocalBackend(), verbose=False)
    client, parents, children = runs_of(platform["MLFLOW_TRACKING_URI"], "best-only")
    assert len(parents) == 1 and len(children) == 1
    (best,) = children
    assert best.data.tags["maggy.trial_id"] == result.best_trial_id and best.info.status == "FINISHED"
    assert [m.value for m in sorted(client.get_metric_history(best.info.run_id, "acc"), key=lambda m: m.step)] == [2, 4, 6]
    assert parents[0].data.metrics["best_acc"] == 6 and parents[0].data.tags["maggy.best_run_id"] == best.info.run_id
    assert "trials.csv" in {a.path for a in client.list_artifacts(parents[0].info.run_id)}


def test_an_mlflow_outage_loses_no_trial_and_no_data(tmp_path):
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(mlflow_server(port, tmp_path / "mlflow"), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: _up(uri), timeout=60, what="MLflow server")
        gate = tmp_path / "go"
        sp = Searchspace(k=("DISCRETE", [0, 1, 2, 3, 4, 5]))

        def gated(k, reporter):
            import os
            import time
            if k >= 2:
                while not os.path.exists(str(gate)):
                    time.sleep(0.02)
            for step in range(3):
                reporter.broadcast(float(k), step=step)
            return k

        cfg = HyperparameterOptConfig(searchspace=sp, optimizer="gridsearch", es_policy="none", num_workers=2,
                                      hb_interval=0.05, name="outage", experiment_dir=str(tmp_path / "exp"),
                                      tracking_uri=uri)
        out = {}
        runner = threading.Thread(target=lambda: out.setdefault(
            "r", experiment.lagom(gated, cfg, backend=LocalBackend(), verbose=False)))
        runner.start()
        finished = lambda: sum(e["state"] == "FINALIZED" for e in journal_records(tmp_path / "exp"))
        wait_for(lambda: finished() >= 2, timeout=60, what="two trials before the outage")
        stop(server)
        gate.touch()
        wait_for(lambda: finished() == 6, timeout=60, what="every trial finishing during the outage")
        server = subprocess.Popen(mlflow_server(port, tmp_path / "mlflow"), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        runner.join(120)
        result = out["r"]
        assert set(result.trials["state"]) == {"FINALIZED"} and len(result.trials) == 6
        stats = result.stats["tracking"]
        assert stats["lost"] == [] and stats["retries"] > 0
        client, parents, children = runs_of(uri, "outage")
        assert len(parents) == 1 and parents[0].info.status == "FINISHED"
        assert sorted(int(c.data.params["k"]) for c in children) == [0, 1, 2, 3, 4, 5]
        assert all(c.info.status == "FINISHED" for c in children)
        for c in children:
            steps = sorted(m.step for m in client.get_metric_history(c.info.run_id, "metric"))
            assert steps == [0, 1, 2], (c.data.params, steps)
    finally:
        stop(server)


def stop(server: subprocess.Popen) -> None:
    """End the MLflow server this test started, with its workers (its own process group): politely,
    then, if it has not gone within 30 s (a loaded machine), for good."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(30)
    except ProcessLookupError:  # it had gone already
        server.wait(30)


def _up(uri):
    import urllib.request
    try:
        return urllib.request.urlopen(f"{uri}/health", timeout=2).status == 200
    except OSError:
        return False


def test_unreachable_mlflow_is_named_before_any_trial(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = HyperparameterOptConfig(searchspace=Searchspace(k=("DISCRETE", [0, 1])), tracking_uri=f"http://127.0.0.1:{port}",
                                  experiment_dir=str(tmp_path))
    t0 = time.monotonic()
    with pytest.raises(BackendUnavailableError, match=f"Cannot reach the MLflow tracking server at http://127.0.0.1:{port}"):
        experiment.lagom(lambda k: k, cfg, backend=LocalBackend(), verbose=False)
    assert time.monotonic() - t0 < 30
    assert not glob.glob(str(tmp_path / "*" / "*" / "journal.jsonl"))
