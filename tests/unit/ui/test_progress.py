"""Progress keeps its counts from the trials' state changes, not by scanning the table."""

from __future__ import annotations

from maggy.callbacks import ExperimentInfo
from maggy.trial import Trial, TrialState
from maggy.ui.progress import Progress


def test_counts_follow_the_state_changes(capsys):
    progress = Progress("exp", verbose=True, min_interval=0.0)
    progress.on_experiment_start(ExperimentInfo("exp", "/d", {"direction": "min"}, 3, 2))
    trials = [Trial.create({"x": i}) for i in range(3)]
    for n, t in enumerate(trials, 1):
        t.update(number=n)
        t.transition(TrialState.RUNNING)
        progress.on_trial_change(t.view())
    for t, (state, metric) in zip(trials[:2], [(TrialState.FINALIZED, 0.3), (TrialState.ERROR, None)]):
        t.update(metric=metric)
        t.transition(state)
        progress.on_trial_change(t.view())
    c = progress.counts()
    assert (c.done, c.total, c.running, c.failed, c.best) == (2, 3, 1, 1, 0.3)
    progress.on_step_end()
    line = capsys.readouterr().err
    assert "exp:  67%" in line and "2/3 [" in line and "1 running, 0 early-stopped, 1 failed, best 0.3" in line
    # the notebook view: the running trial with its latest step and metric
    progress.on_trial_result(trials[2].view(), [(4, 0.25), (5, 0.125)])
    view = progress.html(progress.text(progress.counts()))
    # named as its MLflow run is, its id on hover
    assert f"<code title='{trials[2].trial_id}'>exp-3</code>" in view and "<td>x=2</td><td>5</td><td>0.125</td>" in view
    assert trials[0].trial_id not in view and "exp-1" not in view  # ended: not running


def test_the_best_is_kept_as_trials_end_and_change(monkeypatch):
    import maggy.ui.progress
    examined = []
    real = maggy.ui.progress.best_trial
    monkeypatch.setattr(maggy.ui.progress, "best_trial", lambda ts, d: examined.append(len(ts := list(ts))) or real(ts, d))
    progress = Progress("exp", verbose=False)
    progress.on_experiment_start(ExperimentInfo("exp", "/d", {"direction": "max"}, 2000, 2))
    trials = []
    for i in range(2000):
        t = Trial.create({"x": i}, budget=1 if i % 2 else 3)
        t.transition(TrialState.RUNNING)
        t.update(metric=float(i % 500))
        t.transition(TrialState.PAUSED if t.budget == 3 else TrialState.FINALIZED)  # ASHA-like: the top budget wins
        progress.on_trial_change(t.view())
        trials.append(t)
        assert progress.counts().best == max(x.metric for x in trials if x.budget == 3)
    assert sum(examined) < 10 * 2000  # a few trials per refresh, not all of them
    best = next(t for t in trials if t.budget == 3 and t.metric == 498)  # the best is promoted: it leaves
    for t in [x for x in trials if x.budget == 3 and x.metric == 498]:
        t.transition(TrialState.PENDING)
        progress.on_trial_change(t.view())
    assert progress.counts().best == 496 and best.state is TrialState.PENDING


def test_a_continued_experiment_says_resumed(capsys):
    progress = Progress("exp", verbose=True, min_interval=0.0)
    progress.on_experiment_start(ExperimentInfo("exp", "/d", {"direction": "max"}, 3, 2, resumes=1))
    progress.on_step_end()
    assert capsys.readouterr().err.startswith("exp (resumed):")


def test_the_eta_counts_from_the_first_trial_not_from_the_executors_start_up(monkeypatch):
    import maggy.ui.progress as module

    clock = [0.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: clock[0])  # the progress meter's clock only
    progress = Progress("exp", verbose=False)
    progress.on_experiment_start(ExperimentInfo("exp", "/d", {"direction": "max"}, 4, 2))
    trials = [Trial.create({"x": i}) for i in range(4)]
    clock[0] = 100.0  # executors took 100 s to come up
    for t in trials[:2]:
        t.transition(TrialState.RUNNING)
        progress.on_trial_change(t.view())
    clock[0] = 110.0
    for t in trials[:2]:
        t.update(metric=1.0)
        t.transition(TrialState.FINALIZED)
        progress.on_trial_change(t.view())
    text = progress.text(progress.counts())
    # two trials in 10 s of trials: two more take 10 s (from lagom's start it would say 110 s)
    assert "2/4 [01:50<00:10," in text, text


def multi_info(total):
    return ExperimentInfo("exp", "/d", {"direction": ["max", "min"], "optimization_key": ["acc", "ms"]}, total, 2)


def test_several_objectives_show_the_size_of_the_pareto_front(capsys):
    progress = Progress("exp", verbose=True, min_interval=0.0)
    progress.on_experiment_start(multi_info(5))
    trials = [Trial.create({"x": i}) for i in range(5)]
    for n, t in enumerate(trials, 1):
        t.update(number=n)
        t.transition(TrialState.RUNNING)
        progress.on_trial_change(t.view())
    assert progress.counts().front is None and "failed, front -" in progress.text(progress.counts())
    # (0.9, 30) and (0.8, 10) are on the front; (0.7, 20) is beaten by (0.8, 10); the error has no values
    for t, values in zip(trials, [(0.9, 30.0), (0.8, 10.0), (0.7, 20.0), None]):
        t.update(metric=None if values is None else values[0], values=values)
        t.transition(TrialState.FINALIZED if values else TrialState.ERROR)
        progress.on_trial_change(t.view())
    c = progress.counts()
    assert (c.done, c.running, c.failed, c.best, c.front) == (4, 1, 1, None, 2)
    progress.on_step_end()
    line = capsys.readouterr().err
    assert "1 running, 0 early-stopped, 1 failed, front 2" in line and "best" not in line


def test_the_front_is_kept_as_trials_end_and_leave(monkeypatch):
    import numpy as np

    import maggy.ui.progress
    from maggy.search.pareto import pareto_mask

    examined = []
    real = maggy.ui.progress.pareto_front
    monkeypatch.setattr(maggy.ui.progress, "pareto_front", lambda ts, o: examined.append(len(ts := list(ts))) or real(ts, o))
    progress = Progress("exp", verbose=False)
    progress.on_experiment_start(multi_info(600))
    rng = np.random.default_rng(0)
    trials = []

    def front():  # the trials of the top budget that no other beats on both (accuracy up, milliseconds down)
        top = [x for x in trials if x.state in (TrialState.FINALIZED, TrialState.PAUSED) and x.budget == 3]
        return [x for x, keep in zip(top, pareto_mask([(x.values[0], -x.values[1]) for x in top])) if keep]

    for i in range(600):
        t = Trial.create({"x": i}, budget=1 if i % 3 else 3)
        t.transition(TrialState.RUNNING)
        acc, ms = rng.random(2)
        t.update(metric=float(acc), values=(float(acc), float(ms)))
        t.transition(TrialState.PAUSED if i % 2 else TrialState.FINALIZED)
        progress.on_trial_change(t.view())
        trials.append(t)
        if i % 100 == 99:  # ASHA-like: paused trials of the front are promoted; they leave until they end again
            for p in [x for x in front() if x.state is TrialState.PAUSED]:
                p.transition(TrialState.PENDING)
                progress.on_trial_change(p.view())
        assert progress.counts().front == len(front())
    assert sum(examined) < 10 * 600  # a few trials per refresh, not all of them
