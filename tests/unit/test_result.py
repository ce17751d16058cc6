from __future__ import annotations

from maggy.result import Result, trials_frame
from maggy.search.best import best_trial
from maggy.trial import Trial, TrialState


def finished(tid, value, state, metric, extra=None):
    return Trial(tid, {"x": value}, state=state, metric=metric, extra=extra or {},
                 start=100.0 + value, end=101.0 + value, history=[(0, metric or 0.0)], worker=0, host="h")


TRIALS = [
    finished("a", 1, TrialState.FINALIZED, 0.5, {"loss": 0.1, "metric_extra": 1}),
    finished("b", 2, TrialState.EARLY_STOPPED, 0.9),
    finished("c", 3, TrialState.FINALIZED, 0.7, {"x": 99}),
    finished("d", 4, TrialState.ERROR, None),
    Trial("e", {"x": 5}, state=TrialState.RUNNING),
]
TRIALS[3].update(error={"type": "ValueError", "message": "boom", "traceback": "..."})


def test_best_prefers_finalized_and_respects_direction():
    assert best_trial(TRIALS, "max").trial_id == "c"
    assert best_trial(TRIALS, "min").trial_id == "a"
    assert best_trial(TRIALS[1:2], "max").trial_id == "b"
    assert best_trial(TRIALS[3:], "max") is None


def test_frame_columns_and_rows():
    df = trials_frame(TRIALS, ["x"])
    assert list(df["trial_id"]) == ["a", "b", "c", "d"]  # running trials are not rows
    assert list(df.columns[:4]) == ["trial_id", "state", "x", "metric"]
    assert {"loss", "metric_extra", "extra_x", "steps", "start", "end", "duration", "worker", "host", "error"} <= set(df.columns)
    assert df.loc[2, "extra_x"] == 99 and df.loc[2, "x"] == 3  # an extra key never hides a parameter
    assert df.loc[3, "error"] == "ValueError: boom"
    assert df.loc[0, "duration"] == 1.0


def test_a_summary_without_a_metric_says_what_failed():
    trials = [Trial(f"t{i}", {"x": i}, state=TrialState.ERROR, start=i,
                    error={"type": "TypeError", "message": "train_fn returned None", "traceback": ""}) for i in range(3)]
    text = Result.of("e", "max", trials, ["x"], "/d", {}).summary()
    assert "No trial produced a metric. 3 failed; the most common error (3 times): TypeError: train_fn returned None" in text


def test_summary_mentions_counts_and_best():
    r = Result.of("exp", "max", TRIALS, ["x"], "/tmp/exp", {"makespan": 2.0, "num_workers": 2})
    text = r.summary()
    assert "4 trials (2 finalized, 1 early_stopped, 1 error)" in text
    assert "Best metric (maximised): 0.7 (trial c)" in text and "x=3" in text and "/tmp/exp" in text
    assert repr(r) == text


def test_best_trial_history_and_the_parquet_table_that_spark_sql_reads_across_experiments(tmp_path, spark):
    from maggy import HyperparameterOptConfig, Searchspace, experiment, load_result
    from tests.helpers import ThreadBackend

    def train(x, reporter):
        for step in range(3):
            reporter.broadcast(x * (step + 1), step)
        return {"metric": x * 3, "note": "ok" if x < 0.5 else 7}

    sp = Searchspace(x=("DOUBLE", [0.0, 1.0]))
    results = [experiment.lagom(train, HyperparameterOptConfig(searchspace=sp, num_trials=n, es_policy="none", seed=n,
                                                               name=f"exp{n}", experiment_dir=str(tmp_path)),
                                backend=ThreadBackend(), verbose=False) for n in (3, 4)]
    res = results[0]
    best = res.best_trial
    assert best.trial_id == res.best_trial_id and best.metric == res.best_metric and best.params == res.best_params
    assert [s for s, _ in best.history] == [0, 1, 2] and best.history[-1][1] == best.metric
    assert best.checkpoint_dir == f"{res.experiment_dir}/trials/{best.trial_id}"
    hist = res.history
    assert list(hist.columns) == ["trial_id", "step", "value"] and len(hist) == 9
    assert set(hist["trial_id"]) == set(res.trials["trial_id"])
    loaded = load_result(res.experiment_dir)  # the same, rebuilt from the journal
    assert loaded.best_trial == best and loaded.history.equals(hist)
    # every experiment leaves its table as Parquet; Spark SQL reads them all at once
    table = spark.read.parquet(str(tmp_path / "*" / "*" / "trials.parquet"))
    rows = table.groupBy("experiment").count().collect()
    assert {r["experiment"]: r["count"] for r in rows} == {"exp3": 3, "exp4": 4}
    top = table.orderBy(table.metric.desc()).first()
    assert top["metric"] == max(r.best_metric for r in results) and top["experiment_dir"] in {r.experiment_dir for r in results}


def test_several_objectives_give_the_exact_pareto_front_and_no_single_best():
    import itertools

    import pytest

    from maggy.search.objectives import NoSingleBestError, Objectives

    o = Objectives.of(["acc", "ms"], ["max", "min"])
    grid = list(itertools.product([0.5, 0.7, 0.9], [10.0, 20.0, 30.0]))
    trials = [Trial(f"t{i}", {"x": i}, state=TrialState.FINALIZED, metric=a, values=(a, ms), start=i, end=i + 1)
              for i, (a, ms) in enumerate(grid)]
    trials.append(Trial("err", {"x": 99}, state=TrialState.ERROR, start=50))
    r = Result.of("mo", o, trials, ["x"], "/tmp/mo", {})

    def beaten(a, ms):
        return any(a2 >= a and m2 <= ms and (a2, m2) != (a, ms) for a2, m2 in grid)
    assert set(r.front_ids) == {f"t{i}" for i, v in enumerate(grid) if not beaten(*v)} == {"t6"}
    front = r.pareto_front
    assert list(front["trial_id"]) == ["t6"] and list(front.columns[2:5]) == ["x", "acc", "ms"]
    assert "metric" not in r.trials.columns and r.trials["ms"].dtype == float
    for what in ("best_params", "best_metric", "best_trial_id", "best_trial"):
        with pytest.raises(NoSingleBestError, match=rf"result\.{what}: this experiment has 2 objectives "
                                                    r"\(acc \(max\), ms \(min\)\).*result\.pareto_front"):
            getattr(r, what)
    assert "Pareto front (acc (max), ms (min)): 1 trials" in r.summary() and "acc=0.9, ms=10" in r.summary()
    assert r.to_dict()["pareto_front"] == [{"trial_id": "t6", "params": {"x": 6}, "values": [0.9, 10.0]}]
    assert r.to_dict()["optimization_key"] == ["acc", "ms"] and "best_params" not in r.to_dict()


def test_a_front_of_trade_offs_in_first_objective_order_and_only_at_the_top_budget():
    from maggy.search.objectives import Objectives

    o = Objectives.of(["acc", "ms"], ["max", "min"])
    points = [("a", 0.9, 30.0, 9), ("b", 0.8, 10.0, 9), ("c", 0.7, 20.0, 9), ("d", 0.99, 1.0, 3)]
    trials = [Trial(t, {"x": i}, budget=b, state=TrialState.FINALIZED, metric=a, values=(a, ms), start=i, end=i + 1)
              for i, (t, a, ms, b) in enumerate(points)]
    r = Result.of("mo", o, trials, ["x"], "/tmp/mo", {})
    assert r.front_ids == ("a", "b")  # d dominates them all, but only at a smaller budget


def test_an_experiment_that_runs_out_of_points_says_so_in_its_summary(tmp_path):
    """A finite searchspace of three points and five trials asked: three run, and the result says
    why the other two never started (a stopping rule is not the reason, so no 'Stopped early')."""
    from maggy import HyperparameterOptConfig, Searchspace, experiment
    from tests.helpers import ThreadBackend

    sp = Searchspace(c=("CATEGORICAL", ["a", "b", "c"]))
    cfg = HyperparameterOptConfig(searchspace=sp, optimizer="tpe", num_trials=5, es_policy="none", seed=0,
                                  name="few", experiment_dir=str(tmp_path))
    result = experiment.lagom(lambda c: {"a": 1.0, "b": 2.0, "c": 3.0}[c], cfg, backend=ThreadBackend(), verbose=False)
    assert sorted(result.trials["c"]) == ["a", "b", "c"]
    assert result.stats["short"] == "3 of 5 trials started: every point of the searchspace was tried (3 trials)"
    assert set(result.stats["search"]) == {"fallbacks", "revised"}
    assert "Ended early: 3 of 5 trials started" in result.summary() and "Stopped early" not in result.summary()
