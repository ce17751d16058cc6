"""On fixed seeds, the model-based optimizers beat random search (deterministic, not flaky)."""

from __future__ import annotations

import statistics

import pytest

from bench.problems import BRANIN, HARTMANN6
from maggy.earlystop import NoStopping
from maggy.optimizers import GP, TPE, RandomSearch
from maggy.scheduler import run_sequential

SEEDS = range(5)
TRIALS = 30


def median_best(factory, problem):
    bests = []
    for seed in SEEDS:
        opt = factory()
        opt.setup(problem.searchspace, direction=problem.direction, seed=seed, num_trials=TRIALS)
        trials = run_sequential(lambda p, b, t: problem.objective(p), opt, NoStopping(), total=TRIALS,
                                direction=problem.direction)
        bests.append(min(t.metric for t in trials))
    return statistics.median(bests)


@pytest.mark.parametrize("problem", [BRANIN, HARTMANN6], ids=lambda p: p.name)
def test_tpe_and_gp_beat_random(problem):
    random = median_best(RandomSearch, problem)
    tpe = median_best(TPE, problem)
    gp = median_best(lambda: GP(n_candidates=500, n_refine=2), problem)
    assert tpe < random
    assert gp < random
    assert gp - problem.optimum < 0.5 * (random - problem.optimum)
