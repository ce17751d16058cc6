"""The journal: trial snapshots appended, the last state replayed; as a callback, one append per step."""

from __future__ import annotations

import json
import os

from maggy.callbacks import ExperimentInfo
from maggy.journal import Journal
from maggy.storage import LocalStorage
from maggy.trial import Trial, TrialState


def test_journal_replays_the_last_state(tmp_path):
    journal = Journal(LocalStorage(), str(tmp_path))
    t = Trial.create({"x": 0.5})
    t.transition(TrialState.RUNNING)
    journal.append_trials([t.to_record()])
    t.history = [(0, 0.1), (1, 0.2)]
    t.metric = 0.2
    t.transition(TrialState.FINALIZED)
    journal.append_trials([t.to_record()])
    replayed = journal.replay()
    assert list(replayed) == [t.trial_id]
    again = replayed[t.trial_id]
    assert again.state is TrialState.FINALIZED and again.history == t.history and again.metric == 0.2
    lines = (tmp_path / "journal.jsonl").read_text().splitlines()
    assert [json.loads(line)["state"] for line in lines] == ["RUNNING", "FINALIZED"]


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
    assert events[1]["time"] == events[2]["time"]  # one append


def test_a_torn_last_line_is_left_out_a_damaged_middle_is_an_error(tmp_path):
    import pytest

    journal = Journal(LocalStorage(), str(tmp_path))
    t = Trial.create({"x": 1})
    t.transition(TrialState.RUNNING)
    journal.append_trials([t.to_record()])
    with open(tmp_path / "journal.jsonl", "a") as f:
        f.write('{"event": "trial", "trial_id": "ab')  # the driver died mid-append
    assert list(journal.replay()) == [t.trial_id]
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
    with caplog.at_level(logging.WARNING, logger="maggy.journal"):
        result = experiment.lagom(lambda x: x, HyperparameterOptConfig(searchspace=Searchspace(x=("DOUBLE", [0, 1])),
                                                                       num_trials=2, experiment_dir=str(tmp_path)),
                                  backend=ThreadBackend(), verbose=False)
    files = set(os.listdir(result.experiment_dir))
    assert "result.json" in files and "trials.parquet" not in files
    assert "trials.parquet not written (ValueError: cannot convert)" in caplog.text
