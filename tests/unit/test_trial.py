from __future__ import annotations

import json

import pytest

from maggy.journal import Journal
from maggy.reporter import Reporter
from maggy.storage import LocalStorage
from maggy.trial import IllegalTransition, Trial, TrialState, trial_id_for
from maggy import EarlyStopped


def test_trial_id_is_stable_and_depends_on_budget():
    assert trial_id_for({"a": 1, "b": "x"}) == trial_id_for({"b": "x", "a": 1})
    assert trial_id_for({"a": 1}) != trial_id_for({"a": 2})
    assert trial_id_for({"a": 1}, budget=3) != trial_id_for({"a": 1})


def test_state_machine():
    t = Trial.create({"a": 1})
    assert t.state is TrialState.PENDING
    with pytest.raises(IllegalTransition):
        t.transition(TrialState.FINALIZED)
    t.transition(TrialState.RUNNING)
    t.transition(TrialState.LOST)
    t.transition(TrialState.PENDING)
    t.transition(TrialState.RUNNING)
    t.transition(TrialState.EARLY_STOPPED)
    assert t.state.finished
    with pytest.raises(IllegalTransition):
        t.transition(TrialState.RUNNING)


def test_journal_replays_the_last_state(tmp_path):
    journal = Journal(LocalStorage(), str(tmp_path / "journal.jsonl"))
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


def test_reporter_steps_stop_and_validation():
    r = Reporter("t", {"x": 1})
    r.broadcast(0.5)
    r.broadcast(0.6)
    r.broadcast(0.9, step=10)
    r.log("hello")
    assert r.take() == ([[0, 0.5], [1, 0.6], [10, 0.9]], ["hello"])
    assert r.take() == ([], [])
    with pytest.raises(TypeError, match="finite number"):
        r.broadcast("0.5")
    with pytest.raises(TypeError, match="needs an int"):
        r.broadcast(0.5, step=1.5)
    r.request_stop()
    with pytest.raises(EarlyStopped):
        r.broadcast(0.7)
    assert r.last == (11, 0.7)
