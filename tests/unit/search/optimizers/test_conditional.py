"""Every optimizer over a conditional searchspace: only active hyperparameters in its points,
TPE modelling the branches, GP's imputation, PBT keeping conditions through its perturbations."""

from __future__ import annotations

import math
import statistics
import warnings

import numpy as np
import pytest

from maggy import Searchspace
from maggy.earlystop import NoStopping
from maggy.engine.scheduler import run_sequential
from maggy.optimizers import ASHA, GP, PBT, TPE, GridSearch, Hyperband, OptunaSampler, RandomSearch
from maggy.search.optimizers.encoding import INACTIVE, VectorEncoder
from maggy.search.optimizers.tpe import _Dimension
from maggy.trial import trial_id_for

#: A chain: depth only where mix is 'b', mix only where penalty is 'elasticnet'.
SP = (Searchspace(penalty=("CATEGORICAL", ["l2", "elasticnet"]), l1_ratio=("DOUBLE", [0.0, 1.0]),
                  mix=("CATEGORICAL", ["a", "b"]), depth=("INTEGER", [1, 5]), C=("DOUBLE", [1e-3, 1e2], "log"))
      .only_if("l1_ratio", penalty=["elasticnet"]).only_if("mix", penalty="elasticnet").only_if("depth", mix=["b"]))


def optuna_tpe():
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # group=True is "experimental"
        return OptunaSampler(optuna.samplers.TPESampler(seed=0, n_startup_trials=5, multivariate=True, group=True))


FACTORIES = {
    "random": RandomSearch, "grid": lambda: GridSearch(resolution=2), "tpe": lambda: TPE(n_startup=5),
    "tpe-univariate": lambda: TPE(n_startup=5, multivariate=False),
    "gp": lambda: GP(n_startup=5, n_candidates=200, n_refine=2),
    "asha": lambda: ASHA(resource_min=1, resource_max=9), "hyperband": lambda: Hyperband(resource_min=1, resource_max=9),
    "asha-tpe": lambda: ASHA(resource_min=1, resource_max=9, sampler="tpe", n_startup=4),
    "pbt": lambda: PBT(perturbation_interval=1, resource_max=4, quantile_fraction=0.5, resample_probability=0.5),
    "optuna": optuna_tpe,
}


def score(params):
    """Best with penalty='elasticnet', l1_ratio near 0.73 and C near 10**0.5."""
    fit = -0.1 * (math.log10(params["C"]) - 0.5) ** 2
    if params["penalty"] == "l2":
        return 0.7 + fit
    return 1.0 - 4 * (params["l1_ratio"] - 0.73) ** 2 + fit + 0.01 * params.get("depth", 0)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_no_inactive_value_reaches_the_objective(name):
    received = []

    def objective(params, budget, trial_id):
        received.append(params)
        return score(params) * (1 + (budget or 1) / 10)
    opt = FACTORIES[name]()
    opt.setup(SP, direction="max", seed=3, num_trials=24)
    trials = run_sequential(objective, opt, NoStopping(), total=24, direction="max")
    assert received and all(SP.contains(p) for p in received), [p for p in received if not SP.contains(p)]
    assert {len(p) for p in received} >= {2, 4, 5}  # l2; elasticnet with mix 'a'; with mix 'b' and its depth
    if not opt.resumes_trials:  # (a promoted trial keeps the id of its first budget)
        assert all(t.trial_id == trial_id_for(t.params, t.budget, t.parent) for t in trials)  # no inactive value


def test_the_grid_counts_each_branch_over_its_active_dimensions():
    opt = GridSearch(resolution=3)
    # l2: C (3); elasticnet: l1_ratio (3) x C (3) x (mix 'a': 1 + mix 'b': depth (3))
    assert opt.max_trials(SP) == 3 + 3 * 3 * (1 + 3) == len(SP.grid(3))
    opt.setup(SP, direction="max")
    points = []
    while (answer := opt.ask(pending=[])) != "done":
        points.append(answer.params)
    assert len(points) == 39 and len({tuple(sorted(p.items())) for p in points}) == 39


def best_found(factory, seed, total=30):
    sp = Searchspace(penalty=("CATEGORICAL", ["l2", "elasticnet"]), l1_ratio=("DOUBLE", [0.0, 1.0]),
                     C=("DOUBLE", [1e-3, 1e2], "log")).only_if("l1_ratio", penalty=["elasticnet"])
    opt = factory()
    opt.setup(sp, direction="max", seed=seed, num_trials=total)
    trials = run_sequential(lambda p, b, t: score(p), opt, NoStopping(), total=total, direction="max")
    return max(trials, key=lambda t: t.metric)


def test_tpe_finds_the_optimum_that_lies_in_the_conditional_branch():
    seeds = range(3)
    tpe = [best_found(lambda: TPE(n_startup=10), s) for s in seeds]
    for top in tpe:
        assert top.params["penalty"] == "elasticnet" and abs(top.params["l1_ratio"] - 0.73) < 0.05, top.params
        assert top.metric > 0.985
    random = [best_found(RandomSearch, s) for s in seeds]  # the same 30 trials drawn at random
    assert statistics.median(t.metric for t in tpe) > statistics.median(t.metric for t in random)


def test_tpe_fits_a_conditional_dimension_only_on_the_trials_where_it_was_active():
    opt = TPE()
    opt.setup(SP, direction="max", seed=0)
    points = [{"penalty": "l2", "C": 1.0}, {"penalty": "elasticnet", "l1_ratio": 0.5, "mix": "a", "C": 1.0},
              {"penalty": "elasticnet", "l1_ratio": 0.2, "mix": "b", "depth": 2, "C": 2.0}]
    groups = opt.sampler._groups([_Dimension(hp) for hp in SP], points)
    assert [[d.hp.name for d in g] for g in groups] == [["penalty", "C"], ["l1_ratio", "mix"], ["depth"]]
    # only elasticnet trials are good: the child's kernels centre on their l1_ratio, never on an l2 trial's
    obs = [({"penalty": "l2", "C": 1.0}, 0.0)] * 20 + \
          [({"penalty": "elasticnet", "l1_ratio": 0.9, "mix": "a", "C": 1.0}, 1.0)] * 3
    proposals = [opt.sampler.sample(SP, obs, np.random.default_rng(s)) for s in range(10)]
    assert all(SP.contains(p) for p in proposals)
    assert statistics.median(p["l1_ratio"] for p in proposals if "l1_ratio" in p) > 0.7


def test_gp_imputes_inactive_dimensions_with_a_fixed_value_and_drops_them_from_its_point():
    enc = VectorEncoder(SP)
    x = enc.encode({"penalty": "l2", "C": 1.0})
    by_name = {hp.name: sl for hp, sl in enc.slices}
    assert x[by_name["l1_ratio"]].tolist() == [INACTIVE] and x[by_name["mix"]].tolist() == [0.0, 0.0]
    moved = x.copy()
    moved[by_name["l1_ratio"]] = 0.4  # a candidate perturbed in an inactive coordinate
    assert enc.impute(moved).tolist() == x.tolist()
    assert enc.decode(moved) == {"penalty": "l2", "C": 1.0}


def test_pbt_keeps_the_conditions_when_it_perturbs_a_parent():
    pbt = PBT(perturbation_interval=1, resource_max=2, resample_probability=1.0,
              mutations={"penalty": ["l2", "elasticnet"], "mix": ["a", "b"]})
    pbt.setup(SP, direction="max", seed=0, num_trials=4)
    start = {"penalty": "elasticnet", "l1_ratio": 0.3, "mix": "b", "depth": 3, "C": 1.0}
    explored = [pbt._explore(start) for _ in range(40)]
    assert all(SP.contains(p) for p in explored)
    assert {p["penalty"] for p in explored} == {"l2", "elasticnet"}
    assert all(p == {"penalty": "l2", "C": 1.0} for p in explored if p["penalty"] == "l2")  # children dropped
    grown = [pbt._explore({"penalty": "l2", "C": 1.0}) for _ in range(40)]
    assert any("l1_ratio" in p and "mix" in p for p in grown)  # children drawn when the parent activates them
    assert all(SP.contains(p) for p in grown)


def test_a_warm_start_keeps_the_active_values_and_draws_the_missing_ones():
    opt = TPE()
    opt.setup(SP, direction="max", seed=0)
    opt.warm_start([({"penalty": "l2", "l1_ratio": 0.4, "C": 1.0}, 0.5), ({"penalty": "elasticnet", "C": 2.0}, 0.7)])
    (first, _), (second, _) = opt.prior
    assert first == {"penalty": "l2", "C": 1.0}  # an earlier experiment's value, inactive here
    assert SP.contains(second) and {"l1_ratio", "mix"} <= set(second) and second["C"] == 2.0
