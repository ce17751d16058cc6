"""Warm starts: what each source gives, and how a differing searchspace is met."""

from __future__ import annotations

import pandas as pd
import pytest

from maggy import Searchspace, experiment, load_result
from maggy.exceptions import InvalidParameterError
from maggy.store.warmstart import warm_observations
from tests.helpers import ThreadBackend

SP = Searchspace(x=("DOUBLE", [0.0, 1.0]), k=("CATEGORICAL", ["a", "b"]))


def test_a_dataframe_gives_its_rows_that_fit_with_numpy_values_made_plain():
    frame = pd.DataFrame({"x": [0.2, 0.4, 3.0, 0.5], "k": ["a", "b", "a", "c"], "metric": [1.0, 2.0, 3.0, float("nan")],
                          "state": ["FINALIZED"] * 4})
    obs, notes = warm_observations(frame, SP)
    assert obs == [({"x": 0.2, "k": "a"}, 1.0), ({"x": 0.4, "k": "b"}, 2.0)]
    assert all(type(p["x"]) is float for p, _ in obs)
    assert notes == ["1 of 3 rows lie outside the searchspace and are left out"]  # the NaN metric is no row


def test_a_result_and_its_directory_give_the_finished_trials(tmp_path):
    def train(x, k, reporter):
        if x > 0.9:
            raise ValueError("diverged")
        return x + (k == "b")

    result = experiment.lagom(train, SP, num_trials=6, seed=2, backend=ThreadBackend(), verbose=False, es_policy="none",
                              experiment_dir=str(tmp_path), fail_fast=0)
    finished = result.trials[result.trials["state"] == "FINALIZED"]
    expected = sorted((r["x"], r["k"], r["metric"]) for _, r in finished.iterrows())
    for source in (result, result.experiment_dir, load_result(result.experiment_dir)):
        obs, notes = warm_observations(source, SP)
        assert sorted((p["x"], p["k"], m) for p, m in obs) == expected and notes == []


def test_a_differing_searchspace_keeps_the_shared_dimensions_and_says_which_are_drawn():
    new = Searchspace(x=("DOUBLE", [0.0, 0.5]), depth=("INTEGER", [1, 3]))
    obs, notes = warm_observations(pd.DataFrame({"x": [0.1, 0.9], "k": ["a", "b"], "metric": [1.0, 2.0]}), new)
    assert obs == [({"x": 0.1}, 1.0)]
    assert notes == ["1 of 2 rows lie outside the searchspace and are left out",
                     "the source lacks ['depth']: drawn from the prior"]


def test_sources_that_cannot_warm_start_are_named(tmp_path):
    with pytest.raises(InvalidParameterError, match=r"has none of the searchspace's hyperparameters \['x', 'k'\]"):
        warm_observations(pd.DataFrame({"lr": [0.1], "metric": [1.0]}), SP)
    with pytest.raises(InvalidParameterError, match=r"no column 'acc' \(the optimization_key\)"):
        warm_observations(pd.DataFrame({"x": [0.1], "metric": [1.0]}), SP, "acc")
    with pytest.raises(InvalidParameterError, match="no experiment to read there"):
        warm_observations(str(tmp_path / "nothing"), SP)
    with pytest.raises(InvalidParameterError, match="warm_start must be a maggy Result, an experiment directory"):
        warm_observations([{"x": 0.1}], SP)


def test_a_conditional_hyperparameters_empty_cell_means_it_was_inactive():
    sp = Searchspace(penalty=("CATEGORICAL", ["l2", "elasticnet"]), l1_ratio=("DOUBLE", [0.0, 1.0]),
                     solver=("CATEGORICAL", ["saga", "lbfgs"])).only_if("l1_ratio", penalty=["elasticnet"]) \
        .only_if("solver", penalty=["l2"])
    frame = pd.DataFrame({"penalty": ["l2", "elasticnet"], "l1_ratio": [float("nan"), 0.3],
                          "solver": ["lbfgs", None], "metric": [0.8, 0.9]})
    obs, notes = warm_observations(frame, sp)
    assert obs == [({"penalty": "l2", "solver": "lbfgs"}, 0.8), ({"penalty": "elasticnet", "l1_ratio": 0.3}, 0.9)]
    assert notes == []
