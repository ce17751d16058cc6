"""Warm starts reach the models: the first suggestions after one follow the earlier results."""

from __future__ import annotations

import pytest

from maggy import Searchspace
from maggy.optimizers import ASHA, GP, TPE, RandomSearch

SP = Searchspace(x=("DOUBLE", [0.0, 1.0]), y=("DOUBLE", [0.0, 1.0]))
# earlier results: the closer to (0.8, 0.2), the better (maximised)
EARLIER = [({"x": i / 19, "y": (i * 7 % 19) / 19}, -((i / 19 - 0.8) ** 2 + ((i * 7 % 19) / 19 - 0.2) ** 2))
           for i in range(20)]


def first_points(make, warm, n=8, seeds=range(6)):
    out = []
    for seed in seeds:
        opt = make()
        opt.setup(SP, direction="max", seed=seed, num_trials=50)
        if warm:
            opt.warm_start(warm)
        out.append(opt.ask(pending=[]).params)
    return out


def distance(p):
    return ((p["x"] - 0.8) ** 2 + (p["y"] - 0.2) ** 2) ** 0.5


@pytest.mark.parametrize("make", [lambda: TPE(n_startup=10), lambda: GP(),
                                  lambda: ASHA(sampler="tpe", n_startup=10, resource_max=9)])
def test_a_warm_started_model_suggests_near_the_earlier_best_from_the_first_trial(make):
    cold = first_points(make, None)
    warm = first_points(make, EARLIER)
    assert make().learns
    assert all(c != w for c, w in zip(cold, warm))  # not the random start-up draw
    assert max(distance(p) for p in warm) < 0.35 < max(distance(p) for p in cold)


def test_observations_missing_a_dimension_get_it_from_the_prior_and_scores_follow_the_direction():
    opt = TPE()
    opt.setup(SP, direction="min", seed=0)
    opt.warm_start([({"x": 0.3}, 2.0)])
    ((params, score),) = opt.observations([])
    assert params["x"] == 0.3 and 0.0 <= params["y"] <= 1.0 and score == -2.0


def test_random_search_does_not_learn_and_its_draws_are_unchanged_by_a_warm_start():
    assert not RandomSearch().learns and not ASHA().learns
    assert first_points(RandomSearch, EARLIER) == first_points(RandomSearch, None)


def test_an_optuna_sampler_gets_the_earlier_trials_as_finished_trials_of_its_study():
    pytest.importorskip("optuna")
    import optuna

    from maggy.optimizers import OptunaSampler

    opt = OptunaSampler(optuna.samplers.RandomSampler(seed=0))
    opt.setup(SP, direction="max", seed=0)
    opt.warm_start(EARLIER[:3])
    trials = opt.study.get_trials()
    assert [t.value for t in trials] == [m for _, m in EARLIER[:3]] and [t.params for t in trials] == \
        [p for p, _ in EARLIER[:3]]
