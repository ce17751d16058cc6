"""Experiment-level stopping rules: decisions on ended trials, and whole experiments they stop."""

from __future__ import annotations

import time

import pytest

from maggy import HyperparameterOptConfig, InvalidParameterError, Searchspace, TrialsFailedError, experiment
from maggy.engine.stopping import StoppingRules
from maggy.trial import FrozenTrial, TrialState
from tests.helpers import ThreadBackend, trial_states

SP = Searchspace(x=("DOUBLE", [0.0, 1.0]))


def ended(metric=None, state=TrialState.FINALIZED, error=None, tid="t"):
    return FrozenTrial(tid, {}, state=state, metric=metric, error=error)


def rules(**kw):
    base = dict(direction="max", target=None, patience=None, timeout=None, fail_fast=3)
    return StoppingRules(**{**base, **kw})


def test_target_respects_the_direction():
    up, down = rules(target=0.9), rules(direction="min", target=0.1)
    up.observe(ended(0.89))
    down.observe(ended(0.11))
    assert up.reason(0) is None and down.reason(0) is None
    up.observe(ended(0.9))
    down.observe(ended(0.05))
    assert "target 0.9 reached" in up.reason(0) and "target 0.1 reached" in down.reason(0)


def test_patience_counts_finished_trials_since_the_last_improvement():
    r = rules(patience=2)
    for m in (0.5, 0.6, 0.55):
        r.observe(ended(m))
    assert r.reason(0) is None
    r.observe(ended(None, TrialState.ERROR, {"type": "E", "message": "m"}))  # no metric: not a trial without progress
    assert r.reason(0) is None
    r.observe(ended(0.58))
    assert "patience=2" in r.reason(0)


def test_timeout():
    assert rules(timeout=5).reason(4.9) is None and "timeout of 5s" in rules(timeout=5).reason(5.0)


def test_fail_fast_needs_the_same_error_in_every_one_of_the_first_trials():
    def error(line, msg="boom"):
        return {"type": "ZeroDivisionError", "message": msg,
                "traceback": f'Traceback (most recent call last):\n  File "train.py", line {line}, in train\n'}

    same = rules()
    for i in range(3):
        same.observe(ended(None, TrialState.ERROR, error(7, f"x={i}"), tid=f"t{i}"))  # raised at the same place
    assert "fail_fast=3" in same.reason(0)
    assert "t0, t1, t2" in str(same.error) and "ZeroDivisionError" in str(same.error) and "line 7" in str(same.error)
    mixed = rules()
    for i, e in enumerate([error(7), error(9), error(7)]):
        mixed.observe(ended(None, TrialState.ERROR, e, tid=f"t{i}"))
    assert mixed.reason(0) is None and mixed.error is None
    lucky = rules()
    for t in (ended(None, TrialState.ERROR, error(7)), ended(0.5), ended(None, TrialState.ERROR, error(7))):
        lucky.observe(t)
    assert lucky.error is None
    off = rules(fail_fast=0)
    off.observe(ended(None, TrialState.ERROR, error(7)))
    assert off.reason(0) is None


def cfg(tmp_path, **kw):
    kw.setdefault("num_trials", 20)
    kw.setdefault("es_policy", "none")
    return HyperparameterOptConfig(searchspace=SP, optimizer="gridsearch", hb_interval=0.05,
                                   experiment_dir=str(tmp_path), **{"name": "stop", **kw})


def test_a_timeout_stops_running_trials_through_their_heartbeat_and_keeps_them(tmp_path):
    calls = []

    def train(x, reporter):
        calls.append(x)
        for step in range(250):  # 5 s unless stopped
            reporter.broadcast(x, step)
            time.sleep(0.02)
        return x

    result = experiment.lagom(train, cfg(tmp_path, timeout=1.0), backend=ThreadBackend(2), verbose=False)
    assert (result.trials["steps"] < 250).all()  # stopped mid-run through their heartbeat, not run out
    assert len(calls) == 2 and set(result.trials["state"]) == {"EARLY_STOPPED"}  # the two running ones, kept
    assert result.stats["stopped"] == "timeout of 1s reached" and "Stopped early: timeout" in result.summary()


def test_target_and_patience_end_the_experiment_with_the_trials_so_far(tmp_path):
    calls = []

    def train(x):
        calls.append(x)
        return x

    hit = experiment.lagom(train, cfg(tmp_path, target=0.5, num_workers=1), backend=ThreadBackend(1), verbose=False)
    assert hit.best_metric >= 0.5 and "target 0.5" in hit.stats["stopped"] and len(calls) < 20
    calls.clear()
    flat = experiment.lagom(lambda x: 1.0, cfg(tmp_path, name="flat", patience=3, num_workers=1),
                            backend=ThreadBackend(1), verbose=False)
    assert len(flat.trials) == 4 and "patience=3" in flat.stats["stopped"]  # one best, then three without progress


def test_fail_fast_raises_the_train_fn_error_with_its_traceback_and_keeps_the_journal(tmp_path):
    calls = []

    def train(x):
        calls.append(x)
        return {"metric": 1 / 0}

    with pytest.raises(TrialsFailedError, match="ZeroDivisionError") as info:
        experiment.lagom(train, cfg(tmp_path, num_workers=1), backend=ThreadBackend(1), verbose=False)
    assert len(calls) == 3 and "1 / 0" in str(info.value)
    # fail_fast=0: every trial runs and fails alone; an experiment in which none succeeded still fails
    calls.clear()
    with pytest.raises(TrialsFailedError, match=r"No trial of experiment 'all' succeeded: 5 failed, the most common "
                                                r"error \(5 times\): ZeroDivisionError"):
        experiment.lagom(train, cfg(tmp_path, name="all", fail_fast=0, num_trials=5), backend=ThreadBackend(1),
                         verbose=False)
    assert len(calls) == 5 and {t["state"] for t in trial_states(tmp_path).values()} == {"ERROR"}


def test_diverged_trials_fail_alone_and_tensors_are_results(tmp_path):
    torch = pytest.importorskip("torch")
    calls = []

    def train(x):
        calls.append(x)
        return float("nan") if len(calls) <= 3 else torch.tensor(x)  # the first three diverge

    result = experiment.lagom(train, cfg(tmp_path, num_trials=5, num_workers=1), backend=ThreadBackend(1),
                              verbose=False)
    table = result.trials.sort_values("start")
    assert list(table["state"]) == ["ERROR"] * 3 + ["FINALIZED"] * 2  # fail_fast=3 passed over the divergences
    assert table["error"].iloc[:3].str.startswith("Diverged: the metric is nan: the trial diverged").all()
    assert result.best_metric == pytest.approx(max(calls[3:]))


def test_stopping_settings_are_checked():
    with pytest.raises(InvalidParameterError, match="patience"):
        HyperparameterOptConfig(searchspace=SP, patience=0)
    with pytest.raises(InvalidParameterError, match="timeout"):
        HyperparameterOptConfig(searchspace=SP, timeout=-1)
    with pytest.raises(InvalidParameterError, match="fail_fast"):
        HyperparameterOptConfig(searchspace=SP, fail_fast=-1)


def test_a_chosen_policy_that_never_gets_a_report_is_warned_about_once(tmp_path):
    from maggy.exceptions import MaggyWarning

    def train(x, reporter):  # takes a reporter, never broadcasts
        return x

    with pytest.warns(MaggyWarning, match="has nothing to act on: the first 2 trials") as record:
        experiment.lagom(train, cfg(tmp_path, es_policy="median", es_min=2, num_trials=6), backend=ThreadBackend(1),
                         verbose=False)
    assert len([w for w in record if issubclass(w.category, MaggyWarning)]) == 1
