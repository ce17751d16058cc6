from __future__ import annotations

import math

import numpy as np
import pytest

from maggy import InvalidParameterError, Searchspace


def make():
    return Searchspace(lr=("DOUBLE", [1e-4, 1e-1], "log"), layers=("INTEGER", [1, 4]),
                       units=("DISCRETE", [16, 32, 64]), act=("CATEGORICAL", ["relu", "tanh"]))


@pytest.mark.parametrize("spec, fragment", [
    (("FLOAT", [0, 1]), "unknown type 'FLOAT'"),
    (("DOUBLE", []), "two finite numbers"),
    (("DOUBLE", [1, 1]), "empty or reversed"),
    (("DOUBLE", [2, 1]), "empty or reversed"),
    (("INTEGER", [1.5, 3]), "integer bounds"),
    (("DOUBLE", [0, 1], "log"), "bounds > 0"),
    (("INTEGER", [-1, 5], "log"), "bounds > 0"),
    (("CATEGORICAL", ["a"], "log"), "only to DOUBLE and INTEGER"),
    (("DOUBLE", [1, 2], "ln"), "unknown scale"),
    (("CATEGORICAL", []), "at least one value"),
    (("CATEGORICAL", ["a", "a"]), "duplicates"),
    (("DISCRETE", [1, "two"]), "finite numbers"),
    (("CATEGORICAL", [object()]), "strings, numbers"),
    (("DOUBLE", "0,1"), "must be a list"),
    ("DOUBLE", "expected a tuple"),
    (("DOUBLE", [float("nan"), 1]), "two finite numbers"),
])
def test_bad_specs_name_the_parameter_and_the_problem(spec, fragment):
    with pytest.raises(InvalidParameterError) as err:
        Searchspace(p=spec)
    assert "'p'" in str(err.value) and fragment in str(err.value)


@pytest.mark.parametrize("name", ["reporter", "budget"])
def test_reserved_names_are_rejected(name):
    with pytest.raises(InvalidParameterError, match="reserved"):
        Searchspace(**{name: ("DOUBLE", [0, 1])})


def test_duplicate_and_invalid_names():
    sp = Searchspace(x=("DOUBLE", [0, 1]))
    with pytest.raises(InvalidParameterError, match="already in the searchspace"):
        sp.add("x", ("DOUBLE", [0, 1]))
    with pytest.raises(InvalidParameterError, match="not a valid Python identifier"):
        sp.add("learning rate", ("DOUBLE", [0, 1]))


def test_type_names_are_case_insensitive_and_add_chains():
    sp = Searchspace().add("x", ("double", [0, 1])).add("n", ("Integer", [1, 2]))
    assert [p.type for p in sp] == ["DOUBLE", "INTEGER"]


def test_sampling_is_seeded_and_valid():
    sp = make()
    a = [sp.sample(np.random.default_rng(7)) for _ in range(3)]
    b = [sp.sample(np.random.default_rng(7)) for _ in range(3)]
    assert a == b
    assert sp.sample(seed=1) == sp.sample(seed=1) != sp.sample(seed=2)
    rng = np.random.default_rng(0)
    points = [sp.sample(rng) for _ in range(2000)]
    assert all(sp.contains(p) for p in points)
    assert all(isinstance(p["layers"], int) and isinstance(p["lr"], float) for p in points)
    assert {p["layers"] for p in points} == {1, 2, 3, 4}
    assert {p["units"] for p in points} == {16, 32, 64}
    # log scale: about a third of the draws in each decade
    decades = np.histogram([math.log10(p["lr"]) for p in points], bins=[-4, -3, -2, -1])[0]
    assert all(500 < d < 830 for d in decades)


def test_integer_log_sampling_covers_the_range():
    sp = Searchspace(n=("INTEGER", [1, 1000], "log"))
    rng = np.random.default_rng(0)
    values = [sp.sample(rng)["n"] for _ in range(3000)]
    assert min(values) == 1 and max(values) <= 1000 and max(values) > 500
    assert sum(v < 32 for v in values) > 1000  # log-uniform: half the mass below sqrt(1000)


def test_grid_is_complete_and_unique():
    sp = make()
    grid = sp.grid(resolution=3)
    assert len(grid) == 3 * 3 * 3 * 2 == sp.grid_size(3)
    assert len({tuple(sorted(p.items())) for p in grid}) == len(grid)
    assert sorted({p["lr"] for p in grid}) == pytest.approx([1e-4, 10 ** -2.5, 1e-1])
    assert {p["layers"] for p in grid} == {1, 2, 4}
    assert {p["layers"] for p in sp.grid(4)} == {1, 2, 3, 4}
    assert all(sp.contains(p) for p in grid)


def test_grid_resolution_per_name_and_errors():
    sp = Searchspace(x=("DOUBLE", [0, 1]), n=("INTEGER", [0, 100]))
    grid = sp.grid({"x": 2, "n": 3})
    assert sorted({p["x"] for p in grid}) == [0.0, 1.0]
    assert sorted({p["n"] for p in grid}) == [0, 50, 100]
    with pytest.raises(InvalidParameterError, match="unknown hyperparameters"):
        sp.grid({"y": 2})
    with pytest.raises(InvalidParameterError, match=">= 1"):
        sp.grid(0)


def test_round_trip_and_repr():
    sp = make()
    again = Searchspace.from_dict(sp.to_dict())
    assert again == sp and again.names == sp.names
    text = repr(sp)
    assert "lr: DOUBLE [0.0001, 0.1], log" in text and "act: CATEGORICAL ['relu', 'tanh']" in text


def test_contains_rejects_points_outside():
    sp = make()
    p = sp.sample(seed=0)
    assert sp.contains(p)
    assert not sp.contains({**p, "layers": 5})
    assert not sp.contains({**p, "act": "gelu"})
    assert not sp.contains({**p, "lr": 1.0})
    assert not sp.contains({k: v for k, v in p.items() if k != "lr"})


def test_grid_points_come_from_their_index_in_product_order():
    import itertools
    import tracemalloc
    sp = Searchspace(a=("DISCRETE", [1, 2, 3]), b=("CATEGORICAL", ["x", "y"]), c=("INTEGER", [0, 10]))
    grid = sp.grid(3)
    expected = [dict(zip("abc", combo)) for combo in itertools.product([1, 2, 3], ["x", "y"], [0, 5, 10])]
    assert list(grid) == expected and grid[-1] == expected[-1]
    with pytest.raises(IndexError):
        grid[len(expected)]
    huge = Searchspace(**{f"p{i}": ("DISCRETE", [1, 2, 3, 4, 5]) for i in range(12)})
    tracemalloc.start()
    try:
        g = huge.grid()
        assert len(g) == 5 ** 12 == huge.grid_size()
        assert g[5 ** 12 - 1] == {f"p{i}": 5 for i in range(12)}
        assert tracemalloc.get_traced_memory()[1] < 1_000_000  # bytes: nothing materialised
    finally:
        tracemalloc.stop()
