"""Conditional searchspaces: only_if, which points are valid, sampling, the grid and refusals."""

from __future__ import annotations

import numpy as np
import pytest

from maggy import InvalidParameterError, Searchspace


def logistic():
    return Searchspace(penalty=("CATEGORICAL", ["l2", "elasticnet"]),
                       l1_ratio=("DOUBLE", [0.0, 1.0])).only_if("l1_ratio", penalty=["elasticnet"])


def chain():
    """a -> b -> c: c applies only where b does and b is 'on'."""
    return (Searchspace(c=("INTEGER", [1, 4]), b=("CATEGORICAL", ["on", "off"]), a=("DISCRETE", [1, 2, 3]),
                        x=("DOUBLE", [0.0, 1.0]))
            .only_if("b", a=[2, 3]).only_if("c", b="on"))


def test_only_if_chains_and_a_point_holds_only_its_active_hyperparameters():
    sp = logistic()
    assert sp.contains({"penalty": "l2"}) and sp.contains({"penalty": "elasticnet", "l1_ratio": 0.3})
    assert not sp.contains({"penalty": "l2", "l1_ratio": 0.3})  # inactive, yet given
    assert not sp.contains({"penalty": "elasticnet"})  # active, yet missing
    assert sp.mismatch({"penalty": "l2", "l1_ratio": 0.3}) == [
        "inactive here, leave out: l1_ratio (only if penalty in ['elasticnet'])"]
    points = [sp.sample(seed=s) for s in range(40)]
    assert all(sp.contains(p) for p in points)
    assert {tuple(p) for p in points} == {("penalty",), ("penalty", "l1_ratio")}


def test_a_child_of_a_conditional_parent_applies_only_where_the_parent_does():
    sp = chain()
    assert sp.contains({"a": 1, "x": 0.5})
    assert sp.contains({"a": 2, "b": "off", "x": 0.5})
    assert sp.contains({"a": 3, "b": "on", "c": 2, "x": 0.5})
    assert not sp.contains({"a": 1, "b": "on", "c": 2, "x": 0.5})
    rng = np.random.default_rng(0)
    points = [sp.sample(rng) for _ in range(200)]
    assert all(sp.contains(p) for p in points)
    assert all(("c" in p) == (p["a"] != 1 and p.get("b") == "on") for p in points)
    assert all(list(p) == [n for n in sp.names if n in p] for p in points)  # the searchspace's order


def test_fill_draws_the_children_a_changed_parent_activates_and_drops_the_others():
    sp = logistic()
    rng = np.random.default_rng(0)
    assert sp.fill({"penalty": "l2", "l1_ratio": 0.4}, rng) == {"penalty": "l2"}
    grown = sp.fill({"penalty": "elasticnet"}, rng)
    assert set(grown) == {"penalty", "l1_ratio"} and sp.contains(grown)
    assert sp.drop_inactive({"penalty": "l2", "l1_ratio": 0.4}) == {"penalty": "l2"}


def test_the_grid_enumerates_each_branch_over_its_active_dimensions():
    sp = logistic()
    grid = sp.grid(resolution=5)
    assert len(grid) == 1 + 5  # not 2 * 5
    assert [len(p) for p in grid] == [1, 2, 2, 2, 2, 2]
    assert all(sp.contains(p) for p in grid)
    assert grid[-1] == {"penalty": "elasticnet", "l1_ratio": 1.0}
    deep = chain().grid({"x": 2, "c": 4})
    # a=1: x; a in {2, 3}: b=off: x, b=on: 4 values of c and x
    assert len(deep) == 2 + 2 * (2 + 4 * 2)
    assert len({tuple(sorted(p.items())) for p in deep}) == len(deep)
    assert all(chain().contains(p) for p in deep)
    assert chain().points() is None  # x is continuous: not finite


def test_points_of_a_finite_conditional_space_are_its_branches():
    sp = Searchspace(kind=("CATEGORICAL", ["tree", "linear"]), depth=("INTEGER", [1, 3]),
                     alpha=("DISCRETE", [0.1, 1.0])).only_if("depth", kind="tree").only_if("alpha", kind="linear")
    points = sp.points()
    assert points is not None and len(points) == 3 + 2
    assert [p for p in points] == [{"kind": "tree", "depth": 1}, {"kind": "tree", "depth": 2},
                                   {"kind": "tree", "depth": 3}, {"kind": "linear", "alpha": 0.1},
                                   {"kind": "linear", "alpha": 1.0}]


def test_conditions_round_trip_and_a_dict_without_them_still_loads():
    sp = chain()
    again = Searchspace.from_dict(sp.to_dict())
    assert again == sp and again.to_dict()["c"]["only_if"] == {"b": ["on"]}
    old = {"lr": {"type": "DOUBLE", "values": [0.001, 0.1], "log": True}}  # as a journal before conditions
    assert Searchspace.from_dict(old).to_dict() == old
    assert sp != Searchspace.from_dict({n: {k: v for k, v in d.items() if k != "only_if"}
                                        for n, d in sp.to_dict().items()})
    assert "l1_ratio: DOUBLE [0.0, 1.0]  only if penalty in ['elasticnet']" in repr(logistic())


@pytest.mark.parametrize("call, fragment", [
    (lambda sp: sp.only_if("nope", penalty=["l2"]), "no such hyperparameter"),
    (lambda sp: sp.only_if("l1_ratio", solver=["saga"]), "unknown parent 'solver'"),
    (lambda sp: sp.only_if("l1_ratio", penalty=["lasso"]), "'penalty' cannot take ['lasso']"),
    (lambda sp: sp.only_if("l1_ratio", penalty=[]), "no values given for 'penalty'"),
    (lambda sp: sp.only_if("l1_ratio"), "no parent given"),
    (lambda sp: sp.only_if("penalty", C=[1.0]), "the parent 'C' is a DOUBLE range"),
    (lambda sp: sp.only_if("penalty", penalty=["l2"]), "conditioned on itself"),
    (lambda sp: sp.only_if("l1_ratio", penalty=["elasticnet"]).only_if("l1_ratio", penalty=["l2"]),
     "already depends on 'penalty'"),
    (lambda sp: sp.only_if("fit", mode=["b"]).only_if("mode", fit=["y"]), "a cycle: mode -> fit -> mode"),
])
def test_bad_conditions_are_refused_naming_the_problem_and_the_fix(call, fragment):
    sp = Searchspace(penalty=("CATEGORICAL", ["l2", "elasticnet"]), l1_ratio=("DOUBLE", [0.0, 1.0]),
                     C=("DOUBLE", [0.01, 10.0]), mode=("CATEGORICAL", ["a", "b"]), fit=("CATEGORICAL", ["y", "n"]))
    with pytest.raises(InvalidParameterError) as err:
        call(sp)
    assert fragment in str(err.value) and "Searchspace condition on" in str(err.value)
    assert str(err.value).rstrip().endswith(".")  # the problem, then the fix


def test_a_refused_condition_changes_nothing():
    sp = logistic().add("mode", ("CATEGORICAL", ["a", "b"]))
    before = sp.to_dict()
    with pytest.raises(InvalidParameterError):
        sp.only_if("l1_ratio", mode=["a"], penalty=["lasso"])  # the first parent is fine, the second not
    assert sp.to_dict() == before
