"""What the framework callbacks' lagom runs share: good trials first, then poor ones that the
median rule stops, one worker so that the order holds, and the checks on what each trial says."""

from __future__ import annotations

import time

from maggy import Searchspace, experiment
from maggy.backends import LocalBackend

#: Rounds, epochs or steps a trial that is not stopped runs.
GOOD, POOR = [0.3, 0.25, 0.2], [0.0005, 0.001]


def hold(reporter, lr, poor=POOR, seconds=5.0):
    """Called after a step was reported: a poor trial waits there until the driver has told it to
    stop (at most ``seconds``), so that the median rule's stop reaches it at its next step however
    loaded the machine is; good trials, and a gang's other ranks (the stop reaches them at the next
    report), go on at once."""
    if lr not in poor or getattr(reporter, "rank", 0) != 0:
        return
    deadline = time.monotonic() + seconds
    while not reporter.stop_requested and time.monotonic() < deadline:
        time.sleep(0.01)


def median_run(train_fn, tmp_path, name, direction, good=GOOD, poor=POOR, **settings):
    """A lagom on one local worker: the ``good`` learning rates run first and finish, so the median
    rule (es_min=len(good)) then judges the ``poor`` ones at every heartbeat."""
    points = [{"lr": v} for v in [*good, *poor]]
    settings = {"es_policy": "median", "es_min": len(good), "es_interval": 0.05, "hb_interval": 0.05,
                "num_workers": 1, "seed": 0, "fail_fast": 1, **settings}
    return experiment.lagom(train_fn, Searchspace(lr=("DOUBLE", [1e-8, 1.0])), backend=LocalBackend(), verbose=False,
                            name=name, direction=direction, num_trials=len(points), points_to_evaluate=points,
                            experiment_dir=str(tmp_path / "exp"), **settings)


def check_median_run(result, counter, total, good=GOOD, poor=POOR, past=1):
    """The good trials ran all ``total`` framework steps (``counter``: the column of the
    framework's own count); each poor one was stopped at a step: its count is ``past`` the
    last step it reported (1 for a count of rounds or epochs from step 0), short of ``total``. The
    best trial's metric is the framework's last value (column ``framework_last``), which is also
    the last point it reported."""
    df = result.trials.set_index("lr")
    assert set(df.loc[good, "state"]) == {"FINALIZED"}, df[["state", counter]]
    assert (df.loc[good, counter] == total).all(), df[["state", counter]]
    assert set(df.loc[poor, "state"]) == {"EARLY_STOPPED"}, df[["state", counter]]
    history = result.history
    for lr in poor:
        row = df.loc[lr]
        steps = history[history["trial_id"] == row["trial_id"]]["step"]
        assert row[counter] < total and row[counter] == steps.iloc[-1] + past, (lr, row[counter], list(steps))
    best = result.best_trial
    assert best is not None and best.params["lr"] in good
    assert best.metric == df.loc[best.params["lr"], "framework_last"] == best.history[-1][1]
    return df
