"""Progress keeps its counts from the trials' state changes, not by scanning the table."""

from __future__ import annotations

from maggy.callbacks import ExperimentInfo
from maggy.progress import Progress
from maggy.trial import Trial, TrialState


def test_counts_follow_the_state_changes(capsys):
    progress = Progress("exp", verbose=True, min_interval=0.0)
    progress.on_experiment_start(ExperimentInfo("exp", "/d", {"direction": "min"}, 3, 2))
    trials = [Trial.create({"x": i}) for i in range(3)]
    for t in trials:
        t.transition(TrialState.RUNNING)
        progress.on_trial_change(t.view())
    for t, (state, metric) in zip(trials[:2], [(TrialState.FINALIZED, 0.3), (TrialState.ERROR, None)]):
        t.metric = metric
        t.transition(state)
        progress.on_trial_change(t.view())
    c = progress.counts()
    assert (c.done, c.total, c.running, c.failed, c.best) == (2, 3, 1, 1, 0.3)
    progress.on_step_end()
    assert "2/3 done, 1 running, 0 early-stopped, 1 failed, best 0.3" in capsys.readouterr().err
