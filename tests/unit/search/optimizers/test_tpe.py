"""TPE's sampler: joint kernels, integer and categorical dimensions, running trials (deterministic seeds)."""

from __future__ import annotations

import numpy as np

from maggy import Searchspace
from maggy.search.optimizers.tpe import TPESampler

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
