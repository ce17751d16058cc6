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


def test_anything_float_takes_is_a_metric_text_and_bools_are_not():
    torch = pytest.importorskip("torch")
    assert parse_return(torch.tensor(0.95), "metric")[0] == pytest.approx(0.95)
    assert parse_return({"metric": torch.tensor([0.5]), "loss": 1}, "metric") == (0.5, {"loss": 1})
    assert parse_return(np.array(2), "metric") == (2.0, {})
    with pytest.raises(TypeError, match="returned Tensor"):
        parse_return(torch.tensor([0.5, 0.6]), "metric")


@pytest.mark.parametrize("value", [float("nan"), np.float32("inf"), {"metric": float("-inf")}])
def test_a_nan_or_infinite_metric_is_a_diverged_trial(value):
    from maggy.exceptions import Diverged
    with pytest.raises(Diverged, match="the metric is (nan|inf|-inf): the trial diverged"):
        parse_return(value, "metric")


def test_a_dict_without_the_objective_names_optimization_key():
    with pytest.raises(TypeError) as err:
        parse_return({"accuracy": 0.9, "note": "x"}, "metric")
    assert "without 'metric' (the optimization_key); it has ['accuracy', 'note']" in str(err.value)
    assert "Pass optimization_key='accuracy' to lagom" in str(err.value)


def test_config_or_trial_parameters_are_explained():
    def ray_style(config): ...
    def optuna_style(trial): ...
    for fn, who in [(ray_style, "Ray Tune trainable"), (optuna_style, "Optuna objective")]:
        with pytest.raises(InvalidParameterError, match=f"as a {who} does, but maggy calls train_fn with one keyword "
                                                        r"argument per hyperparameter: train_fn\(lr=..., act=...\)"):
            inspect_train_fn(fn, SP)


def test_a_budget_without_a_default_is_needed():
    def needs(lr, act, budget): ...
    def optional(lr, act, budget=None): ...
    assert inspect_train_fn(needs, SP).needs_budget and not inspect_train_fn(optional, SP).needs_budget


@pytest.mark.parametrize("value, fragment", [
    ("0.9", "returned str '0.9'"),
    (None, "returned NoneType"),
    ({"metric": "high"}, "returned dict"),
    (True, "returned bool"),
])
def test_parse_return_rejects_with_what_and_what_is_expected(value, fragment):
    with pytest.raises(TypeError) as err:
        parse_return(value, "metric")
    assert fragment in str(err.value) and "must return a number or a dict with the key 'metric'" in str(err.value)


def test_several_objectives_each_must_be_a_finite_number():
    keys = ["acc", "ms"]
    assert parse_return({"acc": np.float32(0.5), "ms": 3, "note": "x"}, keys) == (0.5, {"note": "x", "ms": 3.0})
    for value, fragment in [({"acc": 0.5}, "without ['ms'] of the objectives (optimization_key=['acc', 'ms'])"),
                            (0.5, "returned float 0.5"), ({"acc": 0.5, "ms": "fast"}, "whose 'ms' is str")]:
        with pytest.raises(TypeError) as err:
            parse_return(value, keys)
        assert fragment in str(err.value)
    from maggy.exceptions import Diverged
    with pytest.raises(Diverged, match="the metric 'ms' is inf"):
        parse_return({"acc": 0.5, "ms": float("inf")}, keys)


def test_a_conditional_parameter_needs_a_default_and_an_unconditional_one_does_not():
    sp = Searchspace(penalty=("CATEGORICAL", ["l2", "elasticnet"]), l1_ratio=("DOUBLE", [0.0, 1.0]),
                     C=("DOUBLE", [0.1, 10.0])).only_if("l1_ratio", penalty=["elasticnet"])

    def no_default(penalty, l1_ratio, C):
        return 0.0
    with pytest.raises(InvalidParameterError) as err:
        inspect_train_fn(no_default, sp)
    assert "['l1_ratio'] have no default" in str(err.value)
    assert "only if penalty in ['elasticnet']" in str(err.value) and "l1_ratio=None" in str(err.value)

    def with_default(penalty, C, l1_ratio=0.5):
        return 0.0
    inspect_train_fn(with_default, sp)  # penalty and C need none
    inspect_train_fn(lambda penalty, C, **rest: 0.0, sp)  # **kwargs: absent when inactive
