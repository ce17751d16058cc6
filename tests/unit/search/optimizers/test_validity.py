"""Every optimizer proposes valid points and is reproducible for a seed and a result sequence."""

from __future__ import annotations

import math

import pytest

from maggy import Searchspace
from maggy.earlystop import NoStopping
from maggy.engine.scheduler import run_sequential
from maggy.optimizers import ASHA, GP, TPE, GridSearch, Hyperband, OptunaSampler, RandomSearch

SP = Searchspace(lr=("DOUBLE", [1e-5, 1e-1], "log"), wd=("DOUBLE", [0.0, 0.3]),
                 layers=("INTEGER", [1, 6]), width=("INTEGER", [8, 512], "log"),
                 batch=("DISCRETE", [16, 32, 64]), act=("CATEGORICAL", ["relu", "tanh", "gelu"]))

FACTORIES = {
    "random": RandomSearch, "grid": lambda: GridSearch(resolution=2), "tpe": lambda: TPE(n_startup=5),
    "gp": lambda: GP(n_startup=5, n_candidates=200, n_refine=1),
    "asha": lambda: ASHA(resource_min=1, resource_max=9), "hyperband": lambda: Hyperband(resource_min=1, resource_max=9),
    "asha-tpe": lambda: ASHA(resource_min=1, resource_max=9, sampler="tpe", n_startup=4),
}


def objective(params, budget, trial_id):
    score = -abs(math.log10(params["lr"]) + 3) - params["wd"] + 0.1 * params["layers"]
    score += {"relu": 0.0, "tanh": 0.2, "gelu": 0.4}[params["act"]] + math.log(params["width"]) / 10
    return score * (1 + (budget or 1) / 10)


def run(factory, seed, total=20):
    opt = factory()
    opt.setup(SP, direction="max", seed=seed, num_trials=total)
    trials = run_sequential(objective, opt, NoStopping(), total=total, direction="max")
    return trials, [(t.trial_id, t.params, t.budget, t.state.value) for t in trials]


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_valid_points_and_reproducible(name):
    trials, record = run(FACTORIES[name], seed=5)
    assert trials and all(SP.contains(t.params) for t in trials)
    assert all(isinstance(t.params["layers"], int) and isinstance(t.params["width"], int) for t in trials)
    assert {t.state.value for t in trials} == {"FINALIZED"}
    assert run(FACTORIES[name], seed=5)[1] == record
    if name != "grid":
        assert run(FACTORIES[name], seed=6)[1] != record


def test_optuna_sampler_is_valid_and_reproducible():
    import optuna

    def make():
        return OptunaSampler(optuna.samplers.TPESampler(seed=3, n_startup_trials=5))
    trials, record = run(make, seed=0)
    assert len(trials) == 20 and all(SP.contains(t.params) for t in trials)
    assert run(make, seed=0)[1] == record
    assert len(trials[0].params) == len(SP)
