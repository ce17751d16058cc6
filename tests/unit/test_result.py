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
TRIALS[3].error = {"type": "ValueError", "message": "boom", "traceback": "..."}


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


def test_summary_mentions_counts_and_best():
    df = trials_frame(TRIALS, ["x"])
    r = Result("exp", "max", {"x": 3}, 0.7, "c", df, "/tmp/exp", {"makespan": 2.0, "num_workers": 2})
    text = r.summary()
    assert "4 trials (2 finalized, 1 early_stopped, 1 error)" in text
    assert "Best max metric: 0.7 (trial c)" in text and "x=3" in text and "/tmp/exp" in text
    assert repr(r) == text
