from __future__ import annotations

import pytest

from maggy import HyperparameterOptConfig, InvalidParameterError, Searchspace
from maggy.config import DEFAULT_NUM_TRIALS
from maggy.earlystop import MedianStoppingRule, NoStopping
from maggy.optimizers import GridSearch, Hyperband, RandomSearch

SP = Searchspace(x=("DOUBLE", [0, 1]), c=("CATEGORICAL", ["a", "b"]))


@pytest.mark.parametrize("kwargs, fragment", [
    ({"num_trials": 0}, "'num_trials' parameter must be an int >= 1"),
    ({"num_trials": 2.5}, "'num_trials'"),
    ({"optimizer": "bayes"}, "'optimizer' parameter must be one of 'randomsearch', 'gridsearch'"),
    ({"direction": "up"}, "'direction' parameter must be one of 'max', 'min'"),
    ({"es_policy": "mean"}, "'es_policy' parameter must be one of 'median', 'asha', 'none'"),
    ({"es_interval": 0}, "'es_interval'"),
    ({"es_min": 0}, "'es_min'"),
    ({"hb_interval": -1}, "'hb_interval'"),
    ({"num_workers": 0}, "'num_workers'"),
    ({"name": "my experiment"}, "'name'"),
    ({"name": ""}, "'name'"),
    ({"seed": -1}, "'seed'"),
    ({"seed": True}, "'seed'"),
    ({"optimization_key": ""}, "'optimization_key'"),
    ({"experiment_dir": "s3://bucket/x"}, "s3://"),
    ({"workers_per_trial": 0}, "'workers_per_trial' parameter must be an int >= 1"),
    ({"workers_per_trial": 3, "num_workers": 2}, "workers_per_trial=3 needs at least 3 workers, but there are only 2"),
    ({"dist_backend": "mpi"}, "'dist_backend' parameter must be one of 'auto', 'gloo', 'nccl'"),
    ({"dist_timeout": 0}, "'dist_timeout'"),
    ({"tls": "yes"}, "'tls' parameter must be True, False or None"),
    ({"tls": 1}, "'tls' parameter must be True, False or None"),
    ({"points_to_evaluate": {"x": 0.5, "c": "a"}}, "'points_to_evaluate' parameter must be a list of dicts"),
    ({"points_to_evaluate": [{"x": 0.5}]}, "points_to_evaluate[0] = {'x': 0.5} does not fit the searchspace: "
                                           "missing ['c']"),
    ({"points_to_evaluate": [{"x": 0.5, "c": "a"}, {"x": 2, "c": "z", "w": 1}]},
     "points_to_evaluate[1] = {'x': 2, 'c': 'z', 'w': 1} does not fit the searchspace: unknown ['w']; outside the "
     "searchspace: x=2 (x: DOUBLE [0.0, 1.0]), c='z' (c: CATEGORICAL ['a', 'b'])"),
    ({"points_to_evaluate": [{"x": 0.5, "c": "a"}] * 3, "num_trials": 2}, "raise num_trials to at least 3"),
    ({"points_to_evaluate": [{"x": 0.5, "c": "a"}], "optimizer": "gridsearch"},
     "points_to_evaluate cannot be combined with gridsearch"),
    ({"warm_start": 42}, "'warm_start' parameter must be a maggy Result, an experiment directory or a pandas DataFrame"),
    ({"driver_address": "10.0.0.5:70000"}, "'driver_address' parameter must be 'host' or 'host:port'"),
    ({"driver_address": "10.0.0.5:"}, "driver_address='10.0.0.5:40000', an address of this machine"),
    ({"driver_address": "a host"}, "'driver_address'"),
    ({"driver_bind": "[::1]x"}, "'driver_bind' parameter must be 'host' or 'host:port'"),
    ({"driver_bind": 40000}, "'driver_bind'"),
])
def test_invalid_fields_are_named(kwargs, fragment):
    with pytest.raises(InvalidParameterError) as err:
        HyperparameterOptConfig(searchspace=SP, **kwargs)
    assert fragment in str(err.value)


def test_searchspace_must_be_a_nonempty_searchspace():
    with pytest.raises(InvalidParameterError, match="maggy.Searchspace"):
        HyperparameterOptConfig(searchspace={"x": ("DOUBLE", [0, 1])})
    with pytest.raises(InvalidParameterError, match="empty"):
        HyperparameterOptConfig(searchspace=Searchspace())


def test_defaults_and_normalisation():
    cfg = HyperparameterOptConfig(searchspace=SP, optimizer="RandomSearch", direction="MIN")
    assert cfg.optimizer == "randomsearch" and cfg.direction == "min"
    assert isinstance(cfg.make_optimizer(), RandomSearch)
    assert isinstance(cfg.make_policy(), MedianStoppingRule) and cfg.make_policy().min_trials == 5
    assert cfg.total_trials(cfg.make_optimizer()) == DEFAULT_NUM_TRIALS
    assert isinstance(HyperparameterOptConfig(searchspace=SP, es_policy="none").make_policy(), NoStopping)
    # multi-fidelity optimizers stop trials themselves: no median rule on top unless asked
    assert HyperparameterOptConfig(searchspace=SP, optimizer="asha").es_policy == "none"
    assert HyperparameterOptConfig(searchspace=SP, optimizer=Hyperband()).es_policy == "none"
    assert HyperparameterOptConfig(searchspace=SP, optimizer="asha", es_policy="median").es_policy == "median"


def test_grid_search_runs_the_whole_grid_unless_capped():
    cfg = HyperparameterOptConfig(searchspace=SP, optimizer="gridsearch")
    assert cfg.total_trials(cfg.make_optimizer()) == 5 * 2
    capped = HyperparameterOptConfig(searchspace=SP, optimizer=GridSearch(resolution=2), num_trials=3)
    assert capped.total_trials(capped.make_optimizer()) == 3
    assert capped.optimizer_name == "GridSearch"


def test_to_dict_is_json_ready():
    import json
    d = HyperparameterOptConfig(searchspace=SP, seed=4, name="exp-1").to_dict()
    assert json.loads(json.dumps(d))["searchspace"]["x"] == {"type": "DOUBLE", "values": [0.0, 1.0]}
    assert d["seed"] == 4 and d["name"] == "exp-1"


def test_several_objectives_are_normalised_and_reach_the_optimizer():
    cfg = HyperparameterOptConfig(SP, optimizer="tpe", optimization_key=["acc", "ms"], direction=["maximize", "min"])
    assert cfg.objectives.multi and cfg.optimization_key == ["acc", "ms"] and cfg.direction == ["max", "min"]
    assert cfg.es_policy == "none"  # the median rule compares one metric
    assert cfg.make_optimizer().directions == ("max", "min")
    assert cfg.to_dict()["optimization_key"] == ["acc", "ms"] and cfg.to_dict()["direction"] == ["max", "min"]
    one = HyperparameterOptConfig(SP, optimization_key=["acc"], direction=["min"])
    assert not one.objectives.multi and one.optimization_key == "acc" and one.direction == "min"


@pytest.mark.parametrize("kwargs, fragment", [
    ({"direction": "max"}, "must be a list of one direction per optimization_key (2 keys: ['acc', 'ms'])"),
    ({"direction": ["max"]}, "must be a list of one direction per optimization_key"),
    ({"direction": ["max", "up"]}, "'direction[1]' parameter must be one of"),
    ({"optimization_key": ["acc", "acc"]}, "distinct names"),
    ({"optimizer": "pbt"}, "optimizer 'pbt' optimises one objective, but there are 2 objectives (acc (max), ms (min))"),
    ({"es_policy": "median"}, "es_policy='median' compares trials by one metric"),
    ({"target": 0.9}, "target stops at a metric value, but there are 2 objectives"),
    ({"patience": 3}, "patience counts trials without a better metric"),
    ({"register_model": "m"}, "register a model of a trial on result.pareto_front"),
    ({"warm_start": "/tmp/x"}, "warm_start reads one metric"),
])
def test_what_several_objectives_cannot_do_is_refused_at_the_door(kwargs, fragment):
    base = {"optimizer": "tpe", "optimization_key": ["acc", "ms"], "direction": ["max", "min"]}
    with pytest.raises(InvalidParameterError) as err:
        HyperparameterOptConfig(SP, **{**base, **kwargs})
    assert fragment in str(err.value)


def test_one_key_with_a_list_of_directions_says_how_to_name_several():
    with pytest.raises(InvalidParameterError, match=r"For several objectives make optimization_key a list too"):
        HyperparameterOptConfig(SP, direction=["max", "min"])


def test_direction_follows_the_keys_name_unless_given():
    from maggy.experiment import _config

    assert HyperparameterOptConfig(searchspace=SP, optimization_key="val_loss").direction == "min"
    assert HyperparameterOptConfig(searchspace=SP, optimization_key="accuracy").direction == "max"
    assert HyperparameterOptConfig(searchspace=SP).direction == "max"  # 'metric' says nothing
    assert HyperparameterOptConfig(searchspace=SP, optimization_key=["val_loss", "auc"]).direction == ["min", "max"]
    # lagom's settings over a config: a default direction is chosen again for the new key, a given one stays
    assert _config(HyperparameterOptConfig(searchspace=SP), {"optimization_key": "val_loss"}).direction == "min"
    given = HyperparameterOptConfig(searchspace=SP, direction="max")
    assert _config(given, {"optimization_key": "val_loss"}).direction == "max"


@pytest.mark.parametrize("key", [None, 3, []])
def test_an_optimization_key_that_is_no_name_is_refused_naming_it(key):
    with pytest.raises(InvalidParameterError, match="'optimization_key' parameter must be a metric's name"):
        HyperparameterOptConfig(searchspace=SP, optimization_key=key)
