from __future__ import annotations

import numpy as np
import pytest

from maggy import InvalidParameterError, Searchspace
from maggy.runtime.trainfn import inspect_train_fn, parse_return

SP = Searchspace(lr=("DOUBLE", [0.1, 1]), act=("CATEGORICAL", ["relu"]))


def test_signature_detects_reporter_and_budget():
    def f(lr, act, reporter, budget=None): ...
    def g(lr, act): ...
    assert inspect_train_fn(f, SP).wants_reporter and inspect_train_fn(f, SP).wants_budget
    assert not inspect_train_fn(g, SP).wants_reporter and not inspect_train_fn(g, SP).wants_budget


def test_missing_and_unexpected_names_are_reported():
    def missing(lr, act, dropout): ...
    def unexpected(lr): ...
    def kwargs(lr, **rest): ...
    def defaulted(lr, act, dropout=0.1): ...
    with pytest.raises(InvalidParameterError, match=r"requires \['dropout'\]"):
        inspect_train_fn(missing, SP)
    with pytest.raises(InvalidParameterError, match=r"defines \['act'\], which train_fn does not accept"):
        inspect_train_fn(unexpected, SP)
    inspect_train_fn(kwargs, SP)
    inspect_train_fn(defaulted, SP)


def test_not_callable_and_positional_only():
    def pos(lr, act, /): ...
    with pytest.raises(InvalidParameterError, match="must be a function"):
        inspect_train_fn(42, SP)
    with pytest.raises(InvalidParameterError, match="positional-only"):
        inspect_train_fn(pos, SP)


def test_parse_return_numbers_and_dicts():
    assert parse_return(0.5, "metric") == (0.5, {})
    assert parse_return(np.float32(2.0), "metric") == (2.0, {})
    metric, extra = parse_return({"acc": np.int64(3), "loss": np.float64(0.25), "tag": object},
                                 "acc")
    assert metric == 3.0 and extra["loss"] == 0.25 and isinstance(extra["loss"], float)
    assert extra["tag"] == repr(object)


@pytest.mark.parametrize("value, fragment", [
    ("0.9", "returned str '0.9'"),
    (None, "returned NoneType"),
    ({"loss": 1.0}, "dict with keys ['loss']"),
    ({"metric": "high"}, "returned dict"),
    (float("nan"), "the metric is nan"),
    (True, "returned bool"),
])
def test_parse_return_rejects_with_what_and_what_is_expected(value, fragment):
    with pytest.raises(TypeError) as err:
        parse_return(value, "metric")
    assert fragment in str(err.value) and "must return a number or a dict with the key 'metric'" in str(err.value)


def test_several_objectives_each_must_be_a_finite_number():
    keys = ["acc", "ms"]
    assert parse_return({"acc": np.float32(0.5), "ms": 3, "note": "x"}, keys) == (0.5, {"note": "x", "ms": 3.0})
    for value, fragment in [({"acc": 0.5}, "with keys ['acc']"), (0.5, "returned float 0.5"),
                            ({"acc": 0.5, "ms": "fast"}, "whose 'ms' is str"), ({"acc": 0.5, "ms": float("inf")}, "'ms' is inf")]:
        with pytest.raises(TypeError) as err:
            parse_return(value, keys)
        assert "must return a dict with a number for each of the keys ['acc', 'ms']" in str(err.value)
        assert fragment in str(err.value)
