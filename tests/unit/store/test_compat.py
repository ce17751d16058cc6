"""Journals written by the previous release (20d968a) still read, and still resume.

The fixtures under ``data/`` are real journals of that release, cut after their first lines as
a driver that died leaves them:

- ``journal_20d968a.jsonl``: ``lagom(train, Searchspace(x=("DOUBLE", [0, 1])), backend="local",
  num_trials=6, name="old", es_policy="none")`` with ``train`` as in
  ``tests/integration/test_old_journal.py``; two trials finalized, one running, one pending.
- ``journal_20d968a_mlflow.jsonl``: the same with ``num_trials=2`` and an MLflow
  ``tracking_uri`` (a sqlite file), so its ``experiment_start`` holds MLflow's state in the form
  of that release: one unnamed dict ``{uri, experiment_id, parent_run_id, log_trials}``.
"""

from __future__ import annotations

import pathlib
import shutil

from maggy import HyperparameterOptConfig, Searchspace
from maggy.store.events import ExperimentStarted
from maggy.store.replay import ExperimentLog, load_result
from maggy.store.resume import differences
from maggy.store.storage import LocalStorage
from maggy.trial import TrialState

DATA = pathlib.Path(__file__).resolve().parent / "data"
#: MLflow's state as 20d968a journaled it.
OLD_MLFLOW = {"uri": "sqlite:////tmp/gen/ml/mlflow.db", "experiment_id": "1",
              "parent_run_id": "2782ac04ad7d47e69311b748386bcaee", "log_trials": "all"}


def journal(tmp_path, name: str) -> ExperimentLog:
    shutil.copy(DATA / name, tmp_path / "journal.jsonl")
    return ExperimentLog.read(LocalStorage(), str(tmp_path))


def test_an_old_journal_with_mlflow_gives_its_state_to_the_mlflow_tracker(tmp_path):
    log = journal(tmp_path, "journal_20d968a_mlflow.jsonl")
    assert log.tracking == {"mlflow": OLD_MLFLOW}  # trackers are plug-ins now, found by name
    assert log.starts[-1].tracking == OLD_MLFLOW  # the journal itself is read as written
    assert not log.finished and log.end is None and log.total == 2
    states = {tid: t.state for tid, t in log.trials.items()}
    assert sorted(states.values()) == [TrialState.FINALIZED, TrialState.RUNNING]
    done = next(t for t in log.trials.values() if t.state is TrialState.FINALIZED)
    assert done.run_id == "8d8e6fd8169b4a3690d548a5b23c188e"  # the trial's own MLflow run
    result = load_result(str(tmp_path))
    assert result.stats["outcome"] == "unfinished" and result.best_trial_id == done.trial_id


def test_tracking_state_by_tracker_name_is_read_as_it_is(tmp_path):
    named = {"mlflow": OLD_MLFLOW, "tensorboard": {"logdir": "/tb"}}
    assert ExperimentLog(str(tmp_path), [ExperimentStarted({"name": "e"}, 1, 1, tracking=named)]).tracking == named
    assert ExperimentLog(str(tmp_path), [ExperimentStarted({"name": "e"}, 1, 1)]).tracking == {}


def test_an_old_unfinished_journal_is_the_same_experiment_as_the_same_call_now(tmp_path):
    log = journal(tmp_path, "journal_20d968a.jsonl")
    assert log.started and not log.finished and log.total == 6 and log.tracking == {}
    assert log.starts[0].version == 2 and log.fingerprint == "cd48d6e5110d1c39"
    assert sorted(t.state.value for t in log.trials.values()) == ["FINALIZED", "FINALIZED", "PENDING", "RUNNING"]
    assert log.ended == 2
    now = HyperparameterOptConfig(searchspace=Searchspace(x=("DOUBLE", [0, 1])), num_trials=6, name="old",
                                  es_policy="none")
    assert differences(log, now) == []  # so resume="auto" continues it (tests/integration/test_old_journal.py)
