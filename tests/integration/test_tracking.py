"""MLflow tracking on a real store (sqlite, no server): what the runs hold."""

from __future__ import annotations

import time

import pytest

from maggy import HyperparameterOptConfig, Searchspace, experiment
from tests.helpers import ThreadBackend

mlflow = pytest.importorskip("mlflow")


def config(tmp_path, name, **kw):
    kw = {"num_trials": 3, "seed": 0, "es_policy": "none", "hb_interval": 0.05, **kw}
    return HyperparameterOptConfig(searchspace=Searchspace(x=("DOUBLE", [0.0, 1.0])),
                                   experiment_dir=str(tmp_path / "exp"), name=name, **kw)


def runs_of(client, result):
    """The experiment's parent run and its trials' runs."""
    runs = client.search_runs([result.stats["tracking"]["experiment_id"]])
    parents = [r for r in runs if r.data.tags.get("maggy.role") == "experiment"]
    return parents, [r for r in runs if r.data.tags.get("mlflow.parentRunId")]


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


def test_log_trials_none_makes_only_the_parent_run_with_the_table(tmp_path, tracking_uri):
    result = experiment.lagom(lambda x: x, config(tmp_path, "quiet", log_trials="none"), backend=ThreadBackend(2),
                              verbose=False)
    client = mlflow.tracking.MlflowClient(tracking_uri)
    (parent,), children = runs_of(client, result)
    assert children == [] and parent.info.status == "FINISHED"
    assert parent.data.metrics["best_metric"] == result.best_metric and result.best_run_id is None
    assert "trials.csv" in {a.path for a in client.list_artifacts(parent.info.run_id)}


def test_the_parent_run_ends_killed_on_ctrl_c_and_failed_on_a_failure(tmp_path, tracking_uri):
    from maggy.callbacks import Callback

    class Interrupt(Callback):
        def on_trial_end(self, trial):
            raise KeyboardInterrupt

    class Broken(Callback):
        def on_trial_end(self, trial):
            raise RuntimeError("broken hook")

    with pytest.raises(KeyboardInterrupt):
        experiment.lagom(lambda x: x, config(tmp_path, "killed"), backend=ThreadBackend(1), verbose=False,
                         callbacks=[Interrupt()])
    with pytest.raises(RuntimeError, match="broken hook"):
        experiment.lagom(lambda x: x, config(tmp_path, "failed"), backend=ThreadBackend(1), verbose=False,
                         callbacks=[Broken()])
    client = mlflow.tracking.MlflowClient(tracking_uri)
    status = {r.info.run_name: r.info.status for r in client.search_runs(
        [client.get_experiment_by_name(n).experiment_id for n in ("killed", "failed")],
        filter_string="tags.`maggy.role` = 'experiment'")}
    assert status == {"killed": "KILLED", "failed": "FAILED"}


def test_tracking_switched_on_by_mlflow_set_tracking_uri(tmp_path, tracking_uri, monkeypatch):
    """No tracking_uri and no MLFLOW_TRACKING_URI: the URI a notebook set with mlflow.set_tracking_uri."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(tracking_uri)
    result = experiment.lagom(lambda x: x, config(tmp_path, "set-in-mlflow"), backend=ThreadBackend(2),
                              verbose=False)
    assert result.stats["tracking"]["tracking_uri"] == tracking_uri
    (parent,), children = runs_of(mlflow.tracking.MlflowClient(tracking_uri), result)
    assert len(children) == 3 and {c.data.tags["maggy.trial_id"] for c in children} == set(result.trials["trial_id"])


def test_a_gang_trial_has_one_run_opened_by_rank_zero_and_tagged_with_its_world_size(tmp_path, tracking_uri):
    pytest.importorskip("torch")
    from maggy.backends import LocalBackend

    def train(x, reporter):
        import mlflow
        mlflow.set_tag(f"rank{reporter.rank}", "here")  # rank 0's run; rank 1 starts a stray run of its own
        for step in range(2):
            reporter.broadcast(x * step, step)
        return x

    result = experiment.lagom(train, config(tmp_path, "gangrun", workers_per_trial=2), backend=LocalBackend(),
                              verbose=False)
    client = mlflow.tracking.MlflowClient(tracking_uri)
    _, children = runs_of(client, result)
    assert len(children) == 3 and {r.data.tags["maggy.trial_id"] for r in children} == set(result.trials["trial_id"])
    assert result.stats["tracking"]["lost"] == []  # no stray run was left active for a later trial's rank 0
    for run in children:
        assert run.data.tags["maggy.world_size"] == "2" and run.data.tags["rank0"] == "here"
        assert "rank1" not in run.data.tags
        assert [m.step for m in client.get_metric_history(run.info.run_id, "metric")] == [0, 1]


def test_one_metric_column_sorts_every_run_the_best_run_is_marked_and_unset_settings_are_not_params(tmp_path,
                                                                                                     tracking_uri):
    def train(x, reporter):
        for step in range(2):
            reporter.broadcast(x + 1 + step, step)
        return {"acc": x}  # not the last broadcast, and below it: the column shows the result all the same

    result = experiment.lagom(train, config(tmp_path, "columns", optimization_key="acc"), backend=ThreadBackend(2),
                              verbose=False)
    (parent,), children = runs_of(mlflow.tracking.MlflowClient(tracking_uri), result)
    assert parent.data.metrics["acc"] == result.best_metric  # the parent's best, under the trials' own column
    assert sorted(c.data.metrics["acc"] for c in children) == sorted(result.trials["metric"])
    marked = [c for c in children if c.data.tags.get("maggy.best") == "true"]
    assert [c.info.run_id for c in marked] == [result.best_run_id]
    params = parent.data.params
    assert "tracking_uri" not in params and "target" not in params and "None" not in params.values()
    assert params["optimization_key"] == "acc" and params["num_trials"] == "3"


def test_a_trial_that_never_broadcast_has_its_result_in_the_objectives_column(tmp_path, tracking_uri):
    result = experiment.lagom(lambda x: x, config(tmp_path, "silent", num_trials=2), backend=ThreadBackend(2),
                              verbose=False)
    _, children = runs_of(mlflow.tracking.MlflowClient(tracking_uri), result)
    assert sorted(c.data.metrics["metric"] for c in children) == sorted(result.trials["metric"])


def test_the_experiment_opens_as_model_development_and_the_parent_run_describes_the_search(tmp_path, tracking_uri):
    client = mlflow.tracking.MlflowClient(tracking_uri)
    older = client.create_experiment("described-older")  # made before, with no kind: tagged when maggy uses it
    for name in ("described", "described-older"):
        result = experiment.lagom(lambda x: x, config(tmp_path, name, optimizer="tpe", description="a sweep"),
                                  backend=ThreadBackend(2), verbose=False)
        exp = client.get_experiment(result.stats["tracking"]["experiment_id"])
        assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
        (parent,), _ = runs_of(client, result)
        assert parent.data.tags["mlflow.note.content"] == (
            f"maggy experiment '{name}': a sweep\n\n- optimizer: tpe, 3 trials\n- objective: metric (max)\n"
            "- searchspace: x DOUBLE [0.0, 1.0]")
    assert exp.experiment_id == older


def test_a_trial_whose_worker_died_before_reporting_its_run_keeps_that_one_run(tmp_path, tracking_uri):
    """The worker opens the trial's run before ``train_fn`` starts, but the run's id reaches the
    driver only with a heartbeat: a worker that dies first leaves the run unknown to the journal.
    The trial's next worker takes it up again instead of opening a second run."""
    from maggy.backends import LocalBackend

    died = tmp_path / "died"

    def train(x):
        import os
        if not os.path.exists(died):
            open(died, "w").close()
            os._exit(9)  # at once: the heartbeat that would carry the run's id is a second away
        return x

    result = experiment.lagom(train, config(tmp_path, "revived", num_trials=2, num_workers=1,
                                                     hb_interval=1.0), backend=LocalBackend(), verbose=False)
    assert sorted(result.trials["restarts"]) == [0, 1] and set(result.trials["state"]) == {"FINALIZED"}
    (parent,), children = runs_of(mlflow.tracking.MlflowClient(tracking_uri), result)
    assert sorted(r.data.tags["maggy.trial_id"] for r in children) == sorted(result.trials["trial_id"])
    assert {r.info.status for r in children} == {"FINISHED"}


def test_a_trial_run_is_ended_once_by_the_driver_with_its_state_and_runs_train_fn_opened_are_ended(
        tmp_path, tracking_uri, monkeypatch):
    """Three requests per trial run (create, one batch, its end): the worker lets go of its run
    without ending it, the driver ends it with the trial's state; a run train_fn left open ends."""
    from mlflow.entities import RunStatus
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    ends: list[tuple[str, str]] = []
    update = SqlAlchemyStore.update_run_info

    def recorded(self, run_id, run_status, *args, **kwargs):
        ends.append((run_id, run_status if isinstance(run_status, str) else RunStatus.to_string(run_status)))
        return update(self, run_id, run_status, *args, **kwargs)

    monkeypatch.setattr(SqlAlchemyStore, "update_run_info", recorded)

    def train(x, reporter):
        if x < 0.3:
            raise ValueError("poor x")
        if x > 0.7:
            mlflow.start_run(nested=True, run_name="own")  # left open on purpose
        return x

    result = experiment.lagom(train, config(tmp_path, "ends", num_trials=8), backend=ThreadBackend(2), verbose=False)
    client = mlflow.tracking.MlflowClient(tracking_uri)
    runs = client.search_runs([result.stats["tracking"]["experiment_id"]])
    trial_runs = {r.data.tags["maggy.trial_id"]: r for r in runs if "maggy.trial_id" in r.data.tags}
    states = dict(zip(result.trials["trial_id"], result.trials["state"]))
    assert set(trial_runs) == set(states) and set(states.values()) == {"FINALIZED", "ERROR"}
    for trial_id, run in trial_runs.items():
        expected = "FAILED" if states[trial_id] == "ERROR" else "FINISHED"
        assert run.info.status == expected
        assert [s for r, s in ends if r == run.info.run_id] == [expected]  # one end, the driver's
    own = client.search_runs([e.experiment_id for e in client.search_experiments()], "attributes.run_name = 'own'")
    assert len(own) == (result.trials["x"] > 0.7).sum() > 0  # nested in its trial's run (in MLflow's default experiment)
    assert {r.data.tags["mlflow.parentRunId"] for r in own} <= {r.info.run_id for r in trial_runs.values()}
    assert all(r.info.status == "FINISHED" for r in own)
    assert mlflow.active_run() is None
