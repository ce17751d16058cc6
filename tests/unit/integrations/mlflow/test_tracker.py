"""MLflow's driver half on a real store (sqlite, no server)."""

from __future__ import annotations

import time

import pytest

from maggy.trial import FrozenTrial, TrialState

mlflow = pytest.importorskip("mlflow")


def test_the_end_waits_while_a_slow_server_drains_and_loses_nothing(tmp_path, monkeypatch):
    """Trials that end faster than the server records them leave a backlog at the end: it is
    delivered whole, however long it takes, since each send makes progress; ``timeout`` bounds
    only a wait without progress (an outage)."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    from maggy.integrations.mlflow.tracker import MlflowTracker

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = MlflowTracker(uri, "slow")
    tracker.check()
    tracker.start({"name": "slow"})
    batch = SqlAlchemyStore.log_batch

    def slow(self, *args, **kwargs):  # a server that takes 0.2 s per batch
        time.sleep(0.2)
        return batch(self, *args, **kwargs)

    monkeypatch.setattr(SqlAlchemyStore, "log_batch", slow)
    trials = [FrozenTrial(f"t{i}", {"x": i / 10}, state=TrialState.FINALIZED, metric=i / 10, history=((0, i / 10),),
                          number=i + 1) for i in range(12)]
    for trial in trials:
        tracker.on_trial_end(trial)
    began = time.monotonic()
    report = tracker.finish({"trials": len(trials)}, status="FINISHED", timeout=0.5)
    assert time.monotonic() - began > 0.5 + 5  # longer than a wait without progress may last
    assert report["lost"] == []
    client = mlflow.tracking.MlflowClient(uri)
    runs = client.search_runs([report["experiment_id"]], filter_string="tags.`maggy.trial_id` != ''")
    assert sorted(r.data.tags["maggy.trial_id"] for r in runs) == sorted(t.trial_id for t in trials)
    assert all(r.info.status == "FINISHED" and "final_metric" in r.data.metrics for r in runs)
    assert client.get_run(report["parent_run_id"]).info.status == "FINISHED"
