"""Optimisers with several objectives: what each learns from non-dominated sorting (fixed seeds)."""

from __future__ import annotations

import numpy as np
import pytest

from maggy import Searchspace
from maggy.earlystop import NoStopping
from maggy.engine.scheduler import run_sequential
from maggy.optimizers import ASHA, GP, PBT, TPE, GridSearch, Hyperband, RandomSearch, Suggestion
from maggy.search.optimizers.tpe import TPESampler
from maggy.search.pareto import hypervolume
from maggy.trial import Trial, TrialState

SP = Searchspace(x=("DOUBLE", [0.0, 1.0]), y=("DOUBLE", [0.0, 1.0]), z=("DOUBLE", [0.0, 1.0]))


def zdt1(p):
    """ZDT1 on three dimensions, both objectives minimised; the front is y = z = 0."""
    g = 1 + 9 * (p["y"] + p["z"]) / 2
    f1 = p["x"]
    return f1, g * (1 - np.sqrt(f1 / g))


def run(opt, total, objective=zdt1):
    opt.setup(SP, direction=["min", "min"], seed=0, num_trials=total)
    trials = run_sequential(lambda p, b, t: tuple(float(v) for v in objective(p)), opt, NoStopping(),
                            total=total, direction="min")
    return [t for t in trials if t.state is TrialState.FINALIZED]


def front_volume(trials):
    return hypervolume([[-a, -b] for a, b in (t.values for t in trials)], reference=[-1.1, -11.0])


@pytest.mark.parametrize("make", [RandomSearch, lambda: GridSearch(resolution=3), TPE,
                                  lambda: GP(n_candidates=200, n_refine=0), lambda: ASHA(resource_max=9),
                                  lambda: Hyperband(resource_max=9)])
def test_each_multi_objective_optimizer_runs_and_keeps_every_value(make):
    done = run(make(), 12)
    assert len(done) >= 12 and all(t.values is not None and len(t.values) == 2 for t in done)
    assert all(t.metric == t.values[0] for t in done)


def test_tpe_finds_a_larger_front_than_random_search_with_the_same_seed():
    volumes = {name: front_volume(run(make(), 60)) for name, make in (("tpe", TPE), ("random", RandomSearch))}
    assert volumes["tpe"] > volumes["random"] * 1.02, volumes


def test_tpe_splits_good_from_bad_by_non_dominated_sorting():
    """The front lies at y = 0 (every x trades one objective for the other); a scalar sort by
    either objective would pick one end of it, non-dominated sorting picks along the whole front."""
    sp = Searchspace(x=("DOUBLE", [0, 1]), y=("DOUBLE", [0, 1]))
    rng = np.random.default_rng(3)
    obs = []
    for _ in range(60):
        p = {"x": float(rng.uniform()), "y": float(rng.uniform())}
        obs.append((p, (p["x"] - p["y"], 1 - p["x"] - p["y"])))  # both maximised: y = 0 is the front
    points = [TPESampler().sample(sp, obs, np.random.default_rng(s)) for s in range(30)]
    assert np.median([p["y"] for p in points]) < 0.15
    assert 0.3 < np.median([p["x"] for p in points]) < 0.7  # neither end, which sorting by one objective finds


def test_gp_steers_towards_the_front_on_random_trade_offs():
    done = run(GP(n_startup=6, n_candidates=300, n_refine=0), 16)
    late = [t for t in done if t.number > 6]
    assert np.median([t.params["y"] + t.params["z"] for t in late]) < 0.4


def suggested(opt, pending=()):
    answer = opt.ask(pending=list(pending))
    if isinstance(answer, Suggestion) and answer.trial_id is None:
        opt.accepted(Trial.create(answer.params, answer.budget).trial_id, answer)
    return answer


def test_asha_promotes_by_non_dominated_sorting_and_hypervolume():
    opt = ASHA(reduction_factor=2, resource_min=1, resource_max=2)
    opt.setup(SP, direction=["max", "max"], seed=0, num_trials=4)
    started = [suggested(opt) for _ in range(4)]
    for s, values in zip(started, [(1.0, 0.0), (0.1, 0.1), (0.5, 0.5), (0.0, 1.0)]):
        trial = Trial.create(s.params, s.budget)
        trial.transition(TrialState.RUNNING)
        trial.update(metric=values[0], values=values)
        trial.transition(TrialState.PAUSED)
        opt.tell(trial.view())
    first, second = suggested(opt), suggested(opt)
    assert first.budget == second.budget == 2
    promoted = [started[[Trial.create(s.params, 1).trial_id for s in started].index(p.trial_id)] for p in (first, second)]
    # the knee first (it adds the most hypervolume), then one end of the front; never the dominated (0.1, 0.1)
    assert promoted[0] is started[2] and promoted[1] in (started[0], started[3])


def test_a_single_objective_optimizer_refuses_several_directions():
    with pytest.raises(ValueError, match="PBT optimises one objective"):
        PBT(resource_max=4).setup(SP, direction=["max", "min"], seed=0, num_trials=4)


def test_optuna_sampler_runs_a_multi_objective_study():
    optuna = pytest.importorskip("optuna")
    from maggy.optimizers import OptunaSampler

    opt = OptunaSampler(optuna.samplers.NSGAIISampler(seed=0, population_size=4))
    done = run(opt, 10)
    assert len(done) == 10
    told = [t for t in opt.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert opt.study.directions == [optuna.study.StudyDirection.MINIMIZE] * 2
    assert sorted(tuple(t.values) for t in told) == sorted(t.values for t in done)
