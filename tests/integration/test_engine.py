"""The async engine end to end, on Spark local[2] and on LocalBackend."""

from __future__ import annotations

import json
import os

import pytest

from maggy import HyperparameterOptConfig, Searchspace, experiment
from maggy.backends import SparkBackend
from maggy.optimizers import GridSearch


def config(tmp_path, sp, **kw):
    kw.setdefault("num_workers", 2)
    kw.setdefault("hb_interval", 0.05)
    return HyperparameterOptConfig(searchspace=sp, experiment_dir=str(tmp_path), **kw)


def two_peers(seen: str):
    """A train_fn whose first trials wait (60 s at most) until two worker processes run one, so
    that both workers take trials whichever asks first (the driver serves whoever asks)."""
    def train(x):
        import os
        import time
        with open(seen, "a") as f:
            f.write(f"{os.getpid()}\n")
        deadline = time.monotonic() + 60
        while len(set(open(seen).read().split())) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        return {"metric": x, "pid": os.getpid()}
    return train


def test_one_spark_job_and_two_resident_workers(spark, tmp_path):
    sc = spark.sparkContext
    ungrouped_before = set(sc.statusTracker().getJobIdsForGroup(None))
    sp = Searchspace(x=("DOUBLE", [0.0, 1.0]))
    train = two_peers(str(tmp_path / "pids"))

    backend = SparkBackend(spark)
    result = experiment.lagom(train, config(tmp_path, sp, num_trials=12, es_policy="none", seed=3),
                              backend=backend, verbose=False)
    assert len(result.trials) == 12
    assert set(result.trials["state"]) == {"FINALIZED"}
    assert result.trials["pid"].nunique() == 2
    assert len(sc.statusTracker().getJobIdsForGroup(backend.job_group)) == 1
    assert set(sc.statusTracker().getJobIdsForGroup(None)) == ungrouped_before
    assert result.best_metric == result.trials["metric"].max()


def test_two_worker_processes_on_local_backend(tmp_path):
    sp = Searchspace(x=("DOUBLE", [0.0, 1.0]))
    train = two_peers(str(tmp_path / "pids"))
    result = experiment.lagom(train, config(tmp_path, sp, num_trials=12, es_policy="none"),
                              backend="local", verbose=False)
    assert len(result.trials) == 12
    assert result.trials["pid"].nunique() == 2
    assert os.getpid() not in set(result.trials["pid"])


@pytest.mark.parametrize("policy", ["median", "asha"])
def test_stopping_policy_stops_bad_trials_midway(backend, policy, tmp_path):
    steps = 20
    sp = Searchspace(quality=("CATEGORICAL", ["good", "bad"]), i=("INTEGER", [0, 3]))

    def train(quality, i, reporter):
        import time
        value = 1.0 if quality == "good" else 0.1
        for step in range(steps):
            time.sleep(0.05)
            reporter.broadcast(metric=value, step=step)
        return value

    cfg = config(tmp_path, sp, optimizer=GridSearch(), es_policy=policy, es_min=2, es_interval=0.05)
    result = experiment.lagom(train, cfg, backend=backend, verbose=False)
    trials = result.trials.set_index("quality")
    good, bad = trials.loc["good"], trials.loc["bad"]
    assert len(good) == 4 and len(bad) == 4
    assert set(good["state"]) == {"FINALIZED"} and set(good["steps"]) == {steps}
    assert set(bad["state"]) == {"EARLY_STOPPED"}
    assert (bad["steps"] < steps).all()
    assert (bad["metric"] == 0.1).all()
    assert result.best_metric == 1.0


def test_failing_trials_fail_alone(backend, tmp_path):
    sp = Searchspace(k=("DISCRETE", [0, 1, 2, 3, 4, 5]))

    def train(k, reporter):
        reporter.log(f"starting k={k}")
        if k == 1:
            raise ValueError("k=1 is not allowed")
        if k == 2:
            return "not a number"
        return {"metric": k, "double": 2 * k}

    result = experiment.lagom(train, config(tmp_path, sp, optimizer="gridsearch"), backend=backend,
                              verbose=False)
    rows = result.trials.set_index("k")
    assert rows.loc[1, "state"] == "ERROR"
    assert rows.loc[1, "error"] == "ValueError: k=1 is not allowed"
    assert rows.loc[2, "state"] == "ERROR"
    assert "returned str 'not a number'" in rows.loc[2, "error"]
    assert set(rows.loc[[0, 3, 4, 5], "state"]) == {"FINALIZED"}
    assert rows.loc[5, "double"] == 10
    assert result.best_params == {"k": 5}
    tid = rows.loc[1, "trial_id"]
    log = open(os.path.join(result.experiment_dir, "trials", f"{tid}.log")).read()
    assert "starting k=1" in log and "ValueError: k=1 is not allowed" in log and "Traceback" in log
    saved = json.load(open(os.path.join(result.experiment_dir, "result.json")))
    assert saved["best_trial_id"] == result.best_trial_id and saved["outcome"] == "finished"
    assert len(saved["trials"]) == 6
