"""TPE's sampler: joint kernels, integer and categorical dimensions, running trials (deterministic
seeds); the optimizer's constant liar and its check of a point prepared ahead."""

from __future__ import annotations

import numpy as np

from maggy import Searchspace
from maggy.search.optimizers.tpe import TPE, TPESampler
from maggy.trial import Trial, TrialState

SEEDS = range(30)


def suggestions(sampler, sp, obs, pending=()):
    return [sampler.sample(sp, obs, np.random.default_rng(s), pending=pending) for s in SEEDS]


def test_multivariate_kernels_keep_values_that_went_together():
    """Good results at two opposite corners: joint kernels propose near those corners, while
    dimension-wise kernels mix them into the other two corners as often."""
    sp = Searchspace(x=("DOUBLE", [0, 1]), y=("DOUBLE", [0, 1]))
    rng = np.random.default_rng(0)
    obs = [({"x": c + 0.02 * rng.standard_normal(), "y": c + 0.02 * rng.standard_normal()}, 1.0)
           for c in (0.1, 0.9) for _ in range(3)]
    obs = [({"x": min(max(p["x"], 0), 1), "y": min(max(p["y"], 0), 1)}, s) for p, s in obs]
    grid = (np.arange(8) + 0.5) / 8  # bad results everywhere, the same at every corner
    obs += [({"x": float(x), "y": float(y)}, -1.0) for x in grid for y in grid]

    def on_diagonal(points):
        return sum((p["x"] < 0.5) == (p["y"] < 0.5) for p in points)
    joint = on_diagonal(suggestions(TPESampler(), sp, obs))
    independent = on_diagonal(suggestions(TPESampler(multivariate=False), sp, obs))
    assert joint >= 27 and independent <= 22


def test_integer_and_categorical_dimensions_follow_good_results():
    sp = Searchspace(n=("INTEGER", [1, 64], "log"), act=("CATEGORICAL", ["a", "b", "c"]))
    rng = np.random.default_rng(1)
    obs = []
    for _ in range(40):
        p = sp.sample(rng)
        obs.append((p, -abs(np.log2(p["n"]) - 3) - (p["act"] != "b")))
    points = suggestions(TPESampler(), sp, obs)
    assert all(sp.contains(p) and isinstance(p["n"], int) for p in points)
    assert sum(p["act"] == "b" for p in points) >= 20
    assert np.median([p["n"] for p in points]) in range(5, 13)


def test_running_trials_count_as_bad():
    """Points still being evaluated at the best spot push the next suggestions away from it."""
    sp = Searchspace(x=("DOUBLE", [0, 1]))
    obs = [({"x": x}, -abs(x - 0.5)) for x in np.linspace(0, 1, 21).tolist()]
    pending = [{"x": 0.5 + d} for d in (-0.02, -0.01, 0.0, 0.01, 0.02)]
    alone = np.mean([abs(p["x"] - 0.5) for p in suggestions(TPESampler(), sp, obs)])
    crowded = np.mean([abs(p["x"] - 0.5) for p in suggestions(TPESampler(), sp, obs, pending)])
    assert crowded > alone


def told(opt, points):
    """Tell ``opt`` finished trials at ``points`` ((params, metric) pairs); returns their views."""
    views = []
    for params, metric in points:
        trial = Trial.create(params)
        trial.transition(TrialState.RUNNING)
        trial.update(metric=metric)
        trial.transition(TrialState.FINALIZED)
        opt.tell(trial.view())
        views.append(trial.view())
    return views


def test_a_running_trial_in_the_good_region_changes_the_proposal():
    """Constant liar at the optimizer's level: the same seed proposes near the best results
    alone, and elsewhere when a running trial sits there."""
    sp = Searchspace(x=("DOUBLE", [0, 1]))

    def proposals(pending):
        out = []
        for seed in SEEDS:
            opt = TPE(n_startup=5)
            opt.setup(sp, direction="max", seed=seed)
            told(opt, [({"x": x}, -abs(x - 0.3)) for x in np.linspace(0, 1, 21).tolist()])
            out.append(opt.ask([Trial.create({"x": x}).view() for x in pending]).params["x"])
        return np.array(out)
    alone, crowded = proposals([]), proposals([0.28, 0.3, 0.32])
    assert (alone != crowded).sum() >= 25
    assert np.mean(np.abs(crowded - 0.3)) > np.mean(np.abs(alone - 0.3))


def test_the_start_up_counts_the_trials_started_not_the_results():
    """With several workers the trials that start while the first results come in are modelled
    on those results, the running ones counted as bad: the first ``n_startup`` trials started
    are the random ones, whatever the parallelism."""
    sp = Searchspace(x=("DOUBLE", [0, 1]))
    opt = TPE(n_startup=4)
    opt.setup(sp, direction="max", seed=0)
    assert "good" not in opt.ask([Trial.create({"x": x}).view() for x in (0.1, 0.2, 0.3, 0.4)]).info  # no result yet
    told(opt, [({"x": 0.1}, 0.1), ({"x": 0.2}, 0.2)])
    running = [Trial.create({"x": x}).view() for x in (0.3, 0.4)]
    assert "good" not in opt.ask(running[:1]).info  # the fourth trial to start: random
    assert opt.ask(running).info["good"] == (1,)  # the fifth: modelled on two results and two liars


def test_a_prepared_point_is_outdated_when_a_result_joins_the_good_group():
    sp = Searchspace(x=("DOUBLE", [0, 1]))
    opt = TPE(n_startup=3)
    opt.setup(sp, direction="max", seed=0)
    told(opt, [({"x": 0.1}, 0.1), ({"x": 0.2}, 0.2)])
    startup = opt.ask([])
    told(opt, [({"x": 0.3}, 0.3)])
    assert not opt.outdated(startup)  # a start-up draw stays one
    modelled = opt.ask([])
    told(opt, [({"x": 0.05}, 0.05)])  # a poor result: it was counted as bad while it ran
    assert not opt.outdated(modelled)
    told(opt, [({"x": 0.9}, 0.9)])  # the best so far: the good group changed
    assert opt.outdated(modelled)
