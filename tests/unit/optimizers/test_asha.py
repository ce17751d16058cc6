from __future__ import annotations

import pytest

from maggy import InvalidParameterError, Searchspace
from maggy.earlystop import NoStopping
from maggy.optimizers import ASHA, DONE, WAIT, Hyperband, Suggestion
from maggy.optimizers.asha import rung_budgets
from maggy.scheduler import Scheduler, run_sequential
from maggy.trial import Trial, TrialState

SP = Searchspace(x=("DOUBLE", [0.0, 1.0]))


def test_rung_budgets():
    assert rung_budgets(1, 27, 3) == [1, 3, 9, 27]
    assert rung_budgets(1, 10, 3) == [1, 3, 9]
    assert rung_budgets(0.5, 2, 2) == [0.5, 1.0, 2.0]
    with pytest.raises(InvalidParameterError, match="resource_max"):
        ASHA(resource_min=9, resource_max=3)
    with pytest.raises(InvalidParameterError, match="reduction_factor"):
        ASHA(reduction_factor=1)


def finish(opt, suggestion, metric):
    """Tell ``opt`` that a run of ``suggestion`` ended with ``metric``, as the scheduler would."""
    trial = Trial.create(suggestion.params, suggestion.budget)
    trial.metric = metric
    trial.state = TrialState.FINALIZED if opt.completes(trial) else TrialState.PAUSED
    opt.tell(trial)
    return trial


def fresh(direction="max", **kw):
    opt = ASHA(reduction_factor=3, resource_min=1, resource_max=9, **kw)
    opt.setup(SP, direction=direction, seed=0, num_trials=100)
    return opt


@pytest.mark.parametrize("direction, metrics, winner", [("max", [0.2, 0.9, 0.5], 1), ("min", [0.2, 0.9, 0.5], 0)])
def test_no_promotion_before_eta_results_then_the_best(direction, metrics, winner):
    opt = fresh(direction)
    first = [opt.ask(pending=[]) for _ in range(3)]
    assert all(s.budget == 1 and s.trial_id is None for s in first)
    trials = [finish(opt, first[0], metrics[0]), finish(opt, first[1], metrics[1])]
    assert all(t.state is TrialState.PAUSED for t in trials)
    assert opt.ask(pending=[]).trial_id is None  # two results: nothing in the top third yet
    trials.append(finish(opt, first[2], metrics[2]))
    promo = opt.ask(pending=[])
    assert isinstance(promo, Suggestion)
    assert promo.trial_id == trials[winner].trial_id and promo.budget == 3
    assert promo.params == trials[winner].params
    assert opt.ask(pending=[]).trial_id is None  # promoted once only


def test_top_third_of_six_promotes_two():
    opt = fresh()
    sugg = [opt.ask(pending=[]) for _ in range(6)]
    trials = [finish(opt, s, m) for s, m in zip(sugg, [0.1, 0.6, 0.3, 0.8, 0.2, 0.4])]
    promos = [opt.ask(pending=[]) for _ in range(3)]
    assert [p.trial_id for p in promos[:2]] == [trials[3].trial_id, trials[1].trial_id]
    assert promos[2].trial_id is None


def test_wait_then_done_when_no_new_trials_are_left():
    opt = ASHA(resource_min=1, resource_max=9)
    opt.setup(SP, direction="max", seed=0, num_trials=2)
    a, b = opt.ask(pending=[]), opt.ask(pending=[])
    pending = [Trial.create(b.params, b.budget)]
    finish(opt, a, 0.5)
    assert opt.ask(pending=pending) == WAIT
    finish(opt, b, 0.4)
    assert opt.ask(pending=[]) == DONE


def test_full_run_funnels_trials_up_the_rungs():
    opt = ASHA(reduction_factor=3, resource_min=1, resource_max=9)
    opt.setup(SP, direction="max", seed=1, num_trials=27)
    trials = run_sequential(lambda p, b, tid: p["x"] * b, opt, NoStopping(), total=27, direction="max")
    per_rung = {b: sum(1 for t in trials if b in [r for r, _ in t.rungs]) for b in (1, 3, 9)}
    assert per_rung[1] == 27 and 3 <= per_rung[3] < 27 and 1 <= per_rung[9] < per_rung[3]
    best = max(trials, key=lambda t: t.params["x"])
    assert best.budget == 9 and [r for r, _ in best.rungs] == [1, 3, 9]
    assert all(t.state is TrialState.FINALIZED for t in trials)
    top = [t for t in trials if t.budget == 9]
    assert all(t.rungs[-1][1] == t.metric for t in top)


def test_scheduler_promotes_the_same_trial_and_keeps_its_id():
    opt = ASHA(reduction_factor=2, resource_min=1, resource_max=2)
    opt.setup(SP, direction="max", seed=0, num_trials=2)
    sched = Scheduler(opt, NoStopping(), total=2, direction="max")
    runs = []
    while (t := sched.next_trial(worker=0)) not in (DONE, WAIT):
        runs.append((t.trial_id, t.budget))
        sched.record_points(t, [[len(t.history), t.params["x"]]])
        sched.learn(sched.record_end(t.trial_id, "FINALIZED", metric=t.params["x"] * t.budget))
    ids = [r[0] for r in runs]
    assert len(runs) == 3 and len(set(ids)) == 2
    promoted = ids[2]
    assert runs[2] == (promoted, 2) and (promoted, 1) in runs[:2]
    trial = sched.trials[promoted]
    assert trial.state is TrialState.FINALIZED and [s for s, _ in trial.history] == [0, 1]
    other = next(t for t in sched.trials.values() if t.trial_id != promoted)
    assert other.state is TrialState.PAUSED
    assert sched.finished() and sched.finalize() == [other]


def test_hyperband_brackets_start_at_growing_budgets():
    opt = Hyperband(reduction_factor=3, resource_min=1, resource_max=9)
    opt.setup(SP, direction="max", seed=0, num_trials=6)
    assert [opt.ask(pending=[]).budget for _ in range(6)] == [1, 3, 9, 1, 3, 9]
    trial = Trial("t", {}, budget=9)
    assert opt.completes(trial) and not opt.completes(Trial("u", {}, budget=3))


def test_model_based_sampling_starts_after_enough_results(monkeypatch):
    opt = fresh(sampler="tpe", n_startup=4)
    calls = []
    real = opt._tpe.sample
    monkeypatch.setattr(opt._tpe, "sample", lambda *a: calls.append(len(a[1])) or real(*a))
    first = [opt.ask(pending=[]) for _ in range(4)]
    for i, s in enumerate(first[:3]):
        finish(opt, s, i / 10)
    assert opt.ask(pending=[]).trial_id is not None  # the best of three is promoted
    assert opt.ask(pending=[]).trial_id is None and calls == []  # three results: still random
    finish(opt, first[3], 0.05)
    assert opt.ask(pending=[]).trial_id is None and calls == [4]  # four results at rung 0: TPE
