"""Warm starts and points to evaluate through lagom on Spark local mode."""

from __future__ import annotations

import json
import os
import statistics

import pytest

from maggy import Searchspace, experiment
from maggy.backends import SparkBackend
from maggy.exceptions import MaggyWarning

SP = Searchspace(x=("DOUBLE", [0.0, 1.0]), y=("DOUBLE", [0.0, 1.0]))


def peak(x, y):
    return -((x - 0.8) ** 2 + (y - 0.2) ** 2)


def in_order(result):
    """The trials in the order they were created."""
    return sorted(result.views, key=lambda t: t.number)


def test_a_warm_started_gp_runs_the_given_point_first_then_follows_the_earlier_experiment(spark, tmp_path):
    settings = {"optimizer": "gp", "es_policy": "none", "backend": SparkBackend(spark), "verbose": False,
                "experiment_dir": str(tmp_path)}
    earlier = experiment.lagom(peak, SP, num_trials=12, seed=0, name="earlier", **settings)
    given = {"x": 0.25, "y": 0.75}
    warm = experiment.lagom(peak, SP, num_trials=7, seed=1, name="warm", warm_start=earlier.experiment_dir,
                            points_to_evaluate=[given], **settings)
    cold = experiment.lagom(peak, SP, num_trials=7, seed=1, name="cold", points_to_evaluate=[given], **settings)
    for result in (warm, cold):
        assert dict(in_order(result)[0].params) == given  # exactly as given, before anything else
    # the GP models once it has 5 results: warm, the 12 earlier ones count, so trials 2-7 follow them
    # (near the peak); cold, trials 2-5 are its random start-up draws (uniform: -0.35 on average)
    warm_after = statistics.median(t.metric for t in in_order(warm)[1:])
    cold_after = statistics.median(t.metric for t in in_order(cold)[1:])
    assert warm_after > -0.1 > cold_after, (warm_after, cold_after)
    with open(os.path.join(warm.experiment_dir, "journal.jsonl")) as f:
        config = json.loads(f.readline())["config"]  # the journal's start keeps what the experiment began from
    assert config["warm_start"] == earlier.experiment_dir and config["points_to_evaluate"] == [given]


def test_a_warm_start_that_random_search_cannot_use_is_a_warning(spark, tmp_path):
    import pandas as pd

    with pytest.warns(MaggyWarning, match="warm_start has no effect on optimizer 'randomsearch'"):
        experiment.lagom(peak, SP, num_trials=1, warm_start=pd.DataFrame({"x": [0.1], "y": [0.2], "metric": [1.0]}),
                         backend=SparkBackend(spark), verbose=False, experiment_dir=str(tmp_path))
