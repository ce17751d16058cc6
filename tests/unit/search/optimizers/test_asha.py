from __future__ import annotations

import collections
import copy

import pytest

from maggy import InvalidParameterError, Searchspace
from maggy.earlystop import NoStopping
from maggy.engine.scheduler import run_sequential
from maggy.optimizers import ASHA, DONE, WAIT, Hyperband, Suggestion
from maggy.search.optimizers.asha import rung_budgets
from maggy.search.optimizers.tpe import TPESampler
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


def ask(opt, pending=()):
    """``opt.ask``, with a new point accepted under its trial id as the scheduler would."""
    answer = opt.ask(pending=list(pending))
    if isinstance(answer, Suggestion) and answer.trial_id is None:
        opt.accepted(Trial.create(answer.params, answer.budget).trial_id, answer)
    return answer


def finish(opt, suggestion, metric):
    """Tell ``opt`` that a run of ``suggestion`` ended with ``metric``, as the scheduler would."""
    trial = Trial.create(suggestion.params, suggestion.budget)
    trial.update(metric=metric)
    trial.transition(TrialState.RUNNING)
    trial.transition(TrialState.FINALIZED if opt.completes(trial.view()) else TrialState.PAUSED)
    opt.tell(trial.view())
    return trial


def fresh(direction="max", **kw):
    opt = ASHA(reduction_factor=3, resource_min=1, resource_max=9, **kw)
    opt.setup(SP, direction=direction, seed=0, num_trials=100)
    return opt


@pytest.mark.parametrize("direction, metrics, winner", [("max", [0.2, 0.9, 0.5], 1), ("min", [0.2, 0.9, 0.5], 0)])
def test_no_promotion_before_eta_results_then_the_best(direction, metrics, winner):
    opt = fresh(direction)
    first = [ask(opt) for _ in range(3)]
    assert all(s.budget == 1 and s.trial_id is None for s in first)
    trials = [finish(opt, first[0], metrics[0]), finish(opt, first[1], metrics[1])]
    assert all(t.state is TrialState.PAUSED for t in trials)
    assert ask(opt).trial_id is None  # two results: nothing in the top third yet
    trials.append(finish(opt, first[2], metrics[2]))
    promo = ask(opt)
    assert isinstance(promo, Suggestion)
    assert promo.trial_id == trials[winner].trial_id and promo.budget == 3
    assert promo.params == trials[winner].params
    assert ask(opt).trial_id is None  # promoted once only


def test_top_third_of_six_promotes_two():
    opt = fresh()
    sugg = [ask(opt) for _ in range(6)]
    trials = [finish(opt, s, m) for s, m in zip(sugg, [0.1, 0.6, 0.3, 0.8, 0.2, 0.4])]
    promos = [ask(opt) for _ in range(3)]
    assert [p.trial_id for p in promos[:2]] == [trials[3].trial_id, trials[1].trial_id]
    assert promos[2].trial_id is None


def test_wait_then_done_when_no_new_trials_are_left():
    opt = ASHA(resource_min=1, resource_max=9)
    opt.setup(SP, direction="max", seed=0, num_trials=2)
    a, b = ask(opt), ask(opt)
    pending = [Trial.create(b.params, b.budget).view()]
    finish(opt, a, 0.5)
    assert ask(opt, pending) == WAIT
    finish(opt, b, 0.4)
    assert ask(opt) == DONE


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


def test_hyperband_fills_its_brackets_in_hyperbands_proportions():
    opt = Hyperband(reduction_factor=3, resource_min=1, resource_max=27)
    opt.setup(SP, direction="max", seed=0, num_trials=98)
    budgets = [ask(opt).budget for _ in range(98)]
    assert budgets[:49] == [1] * 27 + [3] * 12 + [9] * 6 + [27] * 4  # bracket by bracket, aggressive first
    # n_s = ceil((s_max + 1) / (s + 1) * eta**s) new trials per cycle of 49, for s = 3, 2, 1, 0 halvings
    assert collections.Counter(budgets[:49]) == {1: 27, 3: 12, 9: 6, 27: 4}
    assert collections.Counter(budgets) == {1: 54, 3: 24, 9: 12, 27: 8}
    assert opt.completes(Trial("t", {}, budget=27).view()) and not opt.completes(Trial("u", {}, budget=9).view())


def test_a_rejected_suggestion_gives_its_place_in_the_bracket_back():
    opt = Hyperband(reduction_factor=3, resource_min=1, resource_max=9)
    opt.setup(SP, direction="max", seed=0, num_trials=20)
    first = opt.ask(pending=[])
    opt.rejected(first)
    assert opt.ask(pending=[]).budget == first.budget == 1


def test_over_full_cycles_each_hyperband_bracket_spends_about_the_same_budget():
    opt = Hyperband(reduction_factor=3, resource_min=1, resource_max=27)
    opt.setup(SP, direction="max", seed=0, num_trials=98)
    trials = run_sequential(lambda p, b, tid: p["x"] * b, opt, NoStopping(), total=98, direction="max")
    spent = collections.Counter()  # a promoted trial continues from its checkpoint: it spends its final budget
    for t in trials:
        spent[t.rungs[0][0]] += t.budget
    assert set(spent) == {1, 3, 9, 27}
    assert max(spent.values()) / min(spent.values()) < 1.6, spent


def test_model_based_sampling_starts_after_enough_results():
    """A new trial is drawn from the searchspace until a rung has ``n_startup`` results, then
    from TPE fitted on that rung's results: the very point each would draw from the optimizer's
    generator as it stands."""
    opt = fresh(sampler="tpe", n_startup=4)
    first = [ask(opt) for _ in range(4)]
    metrics = [0.0, 0.1, 0.2, 0.05]
    for s, m in zip(first[:3], metrics):
        finish(opt, s, m)
    assert ask(opt).trial_id is not None  # the best of three is promoted
    expected = SP.sample(copy.deepcopy(opt.rng))
    assert ask(opt).params == expected  # three results: still random
    finish(opt, first[3], metrics[3])
    rung0 = [(s.params, m) for s, m in zip(first, metrics)]  # direction max: the score is the metric
    expected = TPESampler().sample(SP, rung0, copy.deepcopy(opt.rng))
    assert expected != SP.sample(copy.deepcopy(opt.rng))  # the two samplers tell apart
    new = ask(opt)
    assert new.trial_id is None and new.params == expected  # four results at rung 0: TPE on all four


def test_model_based_sampling_counts_the_trials_running_without_a_result_as_bad():
    """The rung's TPE sees the running trials that have no result at its rung as bad ones
    (constant liar), as TPE does; a trial already scored there (running at a higher rung) is
    known, not pending."""
    opt = fresh(sampler="tpe", n_startup=4)
    first = [ask(opt) for _ in range(4)]
    for s, m in zip(first, [0.0, 0.1, 0.2, 0.05]):
        finish(opt, s, m)
    rung0 = [(s.params, m) for s, m in zip(first, [0.0, 0.1, 0.2, 0.05])]
    running = Trial.create({"x": 0.5}, 1).view()
    promoted = Trial.create(first[2].params, first[2].budget).view()  # its rung-0 result is known
    expected = TPESampler().sample(SP, rung0, copy.deepcopy(opt.rng), pending=[{"x": 0.5}])
    assert expected != TPESampler().sample(SP, rung0, copy.deepcopy(opt.rng))
    opt.ladders[0].promoted[0].add(Trial.create(first[2].params, 1).trial_id)  # nothing left to promote
    assert ask(opt, [running, promoted]).params == expected


def test_a_prepared_new_trial_is_outdated_once_a_promotion_is_possible_or_its_model_changed():
    opt = fresh(sampler="tpe", n_startup=3)
    first = [ask(opt) for _ in range(3)]
    finish(opt, first[0], 0.1)
    finish(opt, first[1], 0.2)
    prepared = ask(opt)
    assert prepared.trial_id is None and not opt.outdated(prepared)
    finish(opt, first[2], 0.3)  # three results at rung 0: the best can be promoted
    assert opt.outdated(prepared)
    assert ask(opt).trial_id is not None  # the promotion
    modelled = ask(opt)
    assert not opt.outdated(modelled)
    finish(opt, ask(opt), 0.9)  # a new best at rung 0: the good group changed (and it may be promoted)
    assert opt.outdated(modelled)
