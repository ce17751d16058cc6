"""The journal: trial snapshots appended, the last state replayed; as a callback, one append per step."""

from __future__ import annotations

import json
import os

import pytest

from maggy.callbacks import ExperimentInfo
from maggy.store.events import FORMAT_VERSION, ExperimentStarted, JournalFormatError, Outcome, TrialChanged
from maggy.store.journal import Journal
from maggy.store.replay import ExperimentLog, load_result
from maggy.store.storage import LocalStorage
from maggy.trial import Trial, TrialState


def test_journal_replays_the_last_state(tmp_path):
    journal = Journal(LocalStorage(), str(tmp_path))
    journal.append(ExperimentStarted({"name": "e"}, 1, 1))
    t = Trial.create({"x": 0.5})
    t.transition(TrialState.RUNNING)
    journal.append(TrialChanged(t.view()))
    t.update(history=[(0, 0.1), (1, 0.2)], metric=0.2)
    t.transition(TrialState.FINALIZED)
    journal.append(TrialChanged(t.view()))
    replayed = ExperimentLog.read(LocalStorage(), str(tmp_path)).trials
    assert list(replayed) == [t.trial_id]
    assert replayed[t.trial_id] == t.view()
    lines = (tmp_path / "journal.jsonl").read_text().splitlines()
    assert [json.loads(line).get("state") for line in lines] == [None, "RUNNING", "FINALIZED"]


def test_as_a_callback_one_append_per_step(tmp_path):
    journal = Journal(LocalStorage(), str(tmp_path))
    journal.on_experiment_start(ExperimentInfo("e", str(tmp_path), {"name": "e"}, 2, 1))
    t = Trial.create({"x": 1})
    t.transition(TrialState.RUNNING)
    journal.on_trial_change(t.view())
    t.transition(TrialState.FINALIZED)
    journal.on_trial_change(t.view())
    path = tmp_path / "journal.jsonl"
    assert len(path.read_text().splitlines()) == 1  # buffered until the step ends
    journal.on_step_end()
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e.get("state") for e in events] == [None, "RUNNING", "FINALIZED"]
    assert events[0]["v"] == FORMAT_VERSION
    assert len(path.read_text().splitlines()) == 3  # the two changes in one append


def test_a_torn_last_line_is_left_out_a_damaged_middle_is_an_error(tmp_path):
    journal = Journal(LocalStorage(), str(tmp_path))
    t = Trial.create({"x": 1})
    t.transition(TrialState.RUNNING)
    journal.append(TrialChanged(t.view()))
    with open(tmp_path / "journal.jsonl", "a") as f:
        f.write('{"event": "trial", "trial_id": "ab')  # the driver died mid-append
    assert [e.trial.trial_id for e in journal.read()] == [t.trial_id]
    with open(tmp_path / "journal.jsonl", "a") as f:
        f.write("\n" + json.dumps({"event": "trial", **t.to_record()}) + "\n")
    with pytest.raises(ValueError, match="line 2 of 3 is not JSON"):
        journal.read()


def test_a_trial_table_pyarrow_cannot_type_leaves_result_json_and_a_warning(tmp_path, monkeypatch, caplog):
    import logging

    from maggy import HyperparameterOptConfig, Searchspace, experiment
    from maggy.result import Result
    from tests.helpers import ThreadBackend

    def untypable(self):
        raise ValueError("cannot convert")
    monkeypatch.setattr(Result, "to_parquet", untypable)
    with caplog.at_level(logging.WARNING, logger="maggy.store.journal"):
        result = experiment.lagom(lambda x: x, HyperparameterOptConfig(searchspace=Searchspace(x=("DOUBLE", [0, 1])),
                                                                       num_trials=2, experiment_dir=str(tmp_path)),
                                  backend=ThreadBackend(), verbose=False)
    files = set(os.listdir(result.experiment_dir))
    assert "result.json" in files and "trials.parquet" not in files
    assert "trials.parquet not written (ValueError: cannot convert)" in caplog.text


#: Two lines of a journal as maggy wrote it before the format had a version (main at dbbc796):
#: a PBT experiment, whose trials kept a checkpoint directory per run.
FORMAT_1 = [
    {"event": "experiment_start", "time": 1764467000.0, "config": {
        "name": "old", "description": "", "searchspace": {"x": {"type": "DOUBLE", "values": [0.0, 1.0]}},
        "optimizer": "pbt", "num_trials": 2, "direction": "max", "optimization_key": "metric", "es_policy": "none",
        "seed": 0}, "total": 2, "num_workers": 1, "resumes": 0, "tracking": None},
    {"event": "trial", "time": 1764467001.0, "trial_id": "a1b2c3d4e5f60718", "params": {"x": 0.25}, "budget": 2,
     "state": "FINALIZED", "metric": 0.5, "extra": {"loss": 0.1}, "history": [[0, 0.25], [1, 0.5]],
     "start": 1764467000.5, "end": 1764467001.0, "worker": 0, "host": "h", "error": None, "handoff": None,
     "attempts": 0, "rungs": [[2, 0.5]], "run_id": None, "run_start": 0, "resumes": 0, "asks": 1,
     "checkpoint_step": 1, "executor": "driver", "parent": None, "parent_budget": None, "rung_steps": [2]},
    {"event": "experiment_end", "time": 1764467002.0, "outcome": "finished", "stats": {"makespan": 2.0}},
]


def test_a_journal_of_format_1_reads_and_loads(tmp_path):
    (tmp_path / "journal.jsonl").write_text("".join(json.dumps(r) + "\n" for r in FORMAT_1))
    log = ExperimentLog.read(LocalStorage(), str(tmp_path))
    assert log.starts[0].version == 1 and log.fingerprint is None and log.finished and log.ended == 1
    assert log.versioned_checkpoints  # PBT's, derived for format 1; recorded from format 2 on
    (trial,) = log.trials.values()
    assert trial.history == ((0, 0.25), (1, 0.5)) and trial.rungs == ((2.0, 0.5),) and trial.runs == ()
    result = load_result(str(tmp_path))
    assert result.best_trial_id == "a1b2c3d4e5f60718" and result.stats["outcome"] == "finished"
    assert result.best_trial.checkpoint_dir.endswith("/trials/a1b2c3d4e5f60718@2")
    assert log.end.outcome is Outcome.FINISHED


def test_a_journal_of_a_newer_format_is_refused_with_the_fix(tmp_path):
    (tmp_path / "journal.jsonl").write_text(json.dumps({**FORMAT_1[0], "v": FORMAT_VERSION + 1}) + "\n")
    with pytest.raises(JournalFormatError, match="upgrade maggy"):
        ExperimentLog.read(LocalStorage(), str(tmp_path))
