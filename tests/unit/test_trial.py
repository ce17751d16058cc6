from __future__ import annotations

import pytest

from maggy.trial import IllegalTransition, Trial, TrialState, error_record, exception_record, trial_id_for


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


def test_views_are_snapshots_that_cannot_be_changed():
    t = Trial.create({"x": 1})
    t.update(history=[(0, 0.5)])
    view = t.view()
    t.update(history=t.history + ((1, 0.7),), params={"x": 2})
    assert view.history == ((0, 0.5),) and view.params["x"] == 1 and view.last_metric == 0.5
    assert t.history == ((0, 0.5), (1, 0.7)) and t.params["x"] == 2
    with pytest.raises(AttributeError):
        view.metric = 1.0
    with pytest.raises(TypeError):
        view.params["x"] = 3
    with pytest.raises(AttributeError, match="read-only: the scheduler changes trials with update"):
        t.metric = 1.0
    with pytest.raises(TypeError, match="cannot set"):
        t.update(state=TrialState.FINALIZED)  # states change through transition() alone
    assert view.to_record()["history"] == [[0, 0.5]]


def test_error_records():
    assert error_record("TrialLost", "gone") == {"type": "TrialLost", "message": "gone", "traceback": ""}
    try:
        raise ValueError("bad lr")
    except ValueError as exc:
        rec = exception_record(exc)
    assert rec["type"] == "ValueError" and rec["message"] == "bad lr" and "raise ValueError" in rec["traceback"]
    assert len(error_record("E", "m", "x" * 100_000)["traceback"]) == 64 * 1024


def test_trials_and_snapshots_pickle_and_copy():
    """A callback may pickle or copy what it is given (to send it on, to keep it)."""
    import copy
    import pickle

    t = Trial.create({"x": 1})
    t.update(metric=0.5, extra={"sizes": [1, 2]}, history=[(0, 0.1)])
    view = t.view()
    assert pickle.loads(pickle.dumps(view)) == view and copy.deepcopy(view) == view
    again = pickle.loads(pickle.dumps(t))
    assert again.view() == view and copy.deepcopy(t).view() == view
    again.update(metric=0.9)
    assert t.metric == 0.5  # a copy, not the same trial
