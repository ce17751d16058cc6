"""On fixed seeds, the model-based optimizers beat random search (deterministic, not flaky)."""

from __future__ import annotations

import statistics

import pytest

from bench.problems import BRANIN, HARTMANN6
from maggy.earlystop import NoStopping
from maggy.engine.scheduler import run_sequential
from maggy.optimizers import GP, TPE, RandomSearch

SEEDS = range(5)


def median_best(factory, problem, trials):
    bests = []
    for seed in SEEDS:
        opt = factory()
        opt.setup(problem.searchspace, direction=problem.direction, seed=seed, num_trials=trials)
        result = run_sequential(lambda p, b, t: problem.objective(p), opt, NoStopping(), total=trials,
                                direction=problem.direction)
        bests.append(min(t.metric for t in result))
    return statistics.median(bests)


@pytest.mark.parametrize("problem", [BRANIN, HARTMANN6], ids=lambda p: p.name)
def test_tpe_beats_random(problem):
    assert median_best(TPE, problem, 60) < median_best(RandomSearch, problem, 60)


@pytest.mark.parametrize("problem", [BRANIN, HARTMANN6], ids=lambda p: p.name)
def test_gp_beats_random_by_far(problem):
    random = median_best(RandomSearch, problem, 30)
    gp = median_best(lambda: GP(n_candidates=500, n_refine=2), problem, 30)
    assert gp - problem.optimum < 0.5 * (random - problem.optimum)
