from __future__ import annotations

from maggy.result import Result, best_trial, trials_frame
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
    df = trials_frame(TRIALS, ["x"])
    r = Result("exp", "max", {"x": 3}, 0.7, "c", df, "/tmp/exp", {"makespan": 2.0, "num_workers": 2})
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
