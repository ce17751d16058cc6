"""The trial table's rules: identities, promotions, duplicates and the random fallback, the point
prepared ahead, lost workers."""

from __future__ import annotations

from maggy import Searchspace
from maggy.earlystop import NoStopping
from maggy.engine.scheduler import REPEATS, Scheduler, run_sequential
from maggy.optimizers import ASHA, DONE, PBT, WAIT, GridSearch, RandomSearch, Suggestion
from maggy.trial import TrialState

SP = Searchspace(x=("DOUBLE", [0.0, 1.0]))


def test_scheduler_promotes_the_same_trial_and_keeps_its_id():
    opt = ASHA(reduction_factor=2, resource_min=1, resource_max=2)
    opt.setup(SP, direction="max", seed=0, num_trials=2)
    sched = Scheduler(opt, NoStopping(), total=2, direction="max")
    runs = []
    while (t := sched.next_trial(worker=0)) not in (DONE, WAIT):
        runs.append((t.trial_id, t.budget))
        sched.record_points(t, [[len(t.history), t.params["x"]]])
        sched.learn(sched.record_end(t.trial_id, TrialState.FINALIZED, metric=t.params["x"] * t.budget))
    ids = [r[0] for r in runs]
    assert len(runs) == 3 and len(set(ids)) == 2
    promoted = ids[2]
    assert runs[2] == (promoted, 2) and (promoted, 1) in runs[:2]
    trial = sched.trials[promoted]
    assert trial.state is TrialState.FINALIZED and [s for s, _ in trial.history] == [0, 1]
    other = next(t for t in sched.trials.values() if t.trial_id != promoted)
    assert other.state is TrialState.PAUSED
    assert sched.finished() and sched.finalize() == [other]




class Recording(RandomSearch):
    """Random search over a tiny space that records what the scheduler says of each suggestion."""

    def reset(self):
        self.accepts, self.rejects, self.told = [], [], []

    def accepted(self, trial_id, suggestion):
        self.accepts.append((trial_id, dict(suggestion.params)))

    def rejected(self, suggestion):
        self.rejects.append(dict(suggestion.params))

    def tell(self, trial):
        self.told.append(trial)


def test_the_scheduler_names_trials_and_reports_duplicates():
    opt = Recording()
    opt.setup(Searchspace(c=("CATEGORICAL", ["a", "b"])), direction="max", seed=0)
    trials = run_sequential(lambda p, b, tid: 1.0, opt, NoStopping(), total=2, direction="max")
    assert sorted(tid for tid, _ in opt.accepts) == sorted(t.trial_id for t in trials)
    assert opt.rejects, "a 2-point space asked twice draws duplicates"
    assert all(p in ({"c": "a"}, {"c": "b"}) for p in opt.rejects)
    # optimizers get read-only snapshots, not the scheduler's trials
    assert {type(t).__name__ for t in opt.told} == {"FrozenTrial"}


def test_a_rejected_duplicate_leaves_no_open_optuna_trial():
    import optuna

    from maggy.optimizers import OptunaSampler

    opt = OptunaSampler(optuna.samplers.RandomSampler(seed=0))
    opt.setup(Searchspace(c=("CATEGORICAL", ["a"])), direction="max")  # every point after the first is a duplicate
    trials = run_sequential(lambda p, b, tid: 1.0, opt, NoStopping(), total=2, direction="max")
    assert len(trials) == 1
    states = [t.state for t in opt.study.trials]
    assert len(states) > 1  # duplicates were drawn and dropped
    assert optuna.trial.TrialState.RUNNING not in states
    assert states.count(optuna.trial.TrialState.COMPLETE) == 1


def test_a_lost_trial_is_requeued_first_then_fails_after_the_retries():
    opt = RandomSearch()
    opt.setup(SP, direction="max", seed=0)
    sched = Scheduler(opt, NoStopping(), total=3, direction="max")
    first = sched.next_trial(worker=0)
    sched.record_points(first, [(0, 0.1)])
    for attempt in range(1, 4):
        sched.lose(first)
        assert first.history == () and first.attempts == attempt
        if first.state is TrialState.ERROR:
            break
        assert sched.next_trial(worker=1) is first
    assert first.state is TrialState.ERROR and first.error["type"] == "TrialLost"
    assert sched.next_trial(worker=0) is not first


def test_an_early_stopping_check_with_nothing_to_judge_costs_nothing_per_ended_trial(monkeypatch):
    from maggy.earlystop import MedianStoppingRule
    from maggy.trial import Trial
    opt = RandomSearch()
    opt.setup(SP, direction="max", seed=0, num_trials=500)
    sched = Scheduler(opt, MedianStoppingRule(), total=500, direction="max")
    for _ in range(499):
        t = sched.next_trial(worker=0)
        sched.learn(sched.record_end(t.trial_id, TrialState.FINALIZED, metric=0.5))
    running = sched.next_trial(worker=0)
    views = []
    real = Trial.view
    monkeypatch.setattr(Trial, "view", lambda self: views.append(self.trial_id) or real(self))
    assert sched.check_early_stop() == [] and views == []  # the running trial reported nothing yet
    sched.record_points(running, [[0, 0.1]])
    sched.check_early_stop()
    assert len(views) >= 499  # with a report to judge, the ended trials are looked at


def test_run_sequential_asks_the_policy_after_each_step_of_a_stepwise_objective():
    from maggy.earlystop import MedianStoppingRule
    opt = GridSearch()
    opt.setup(Searchspace(x=("DISCRETE", [9, 8, 7, 1, 2])), direction="max", seed=0)
    steps = []

    def curve(p, b, tid):
        for s in range(1, 6):
            steps.append(p["x"])
            yield p["x"] * s

    trials = {t.params["x"]: t for t in run_sequential(curve, opt, MedianStoppingRule(min_trials=3), total=5,
                                                       direction="max")}
    assert {x: t.state for x, t in trials.items()} == {9: TrialState.FINALIZED, 8: TrialState.FINALIZED,
                                                       7: TrialState.FINALIZED, 1: TrialState.EARLY_STOPPED,
                                                       2: TrialState.EARLY_STOPPED}
    assert steps.count(1) == 1 and steps.count(9) == 5  # stopped after its first step, below the median 8
    assert trials[1].metric == 1 and trials[1].history == ((0, 1.0),) and trials[9].metric == 45


def test_the_optimizer_hears_of_each_run_before_it_is_asked_for_the_next_trial():
    """The driver answers a worker's FINAL with its next trial and only then calls learn: the
    ask tells the optimizer of the ended run first, so that a resume, which replays the journal
    in order, asks it the same questions; a paused run continues at once, and DONE comes only
    once every run is complete."""
    pbt = PBT(perturbation_interval=1, resource_max=2, quantile_fraction=0.5)
    pbt.setup(SP, direction="max", seed=0, num_trials=2)
    sched = Scheduler(pbt, NoStopping(), total=2, direction="max")
    a, b = sched.next_trial(worker=0), sched.next_trial(worker=1)

    def final(trial, worker, metric):  # as Driver._on_final: end the run, hand out, then learn
        ended = sched.record_end(trial.trial_id, TrialState.FINALIZED, metric=metric)
        reply = sched.next_trial(worker=worker)
        sched.learn(ended)
        return reply

    a2 = final(a, 0, 0.9)  # PBT heard of a's end before the ask: a continues at once
    assert (a2.trial_id, a2.budget) == (a.trial_id, 2)
    assert final(a2, 0, 0.95) == WAIT  # a is complete; b still runs
    b2 = final(b, 1, 0.1)  # b paused, the last run going: it continues (a, at the end, is no one to copy)
    assert (b2.trial_id, b2.budget) == (b.trial_id, 2)
    assert final(b2, 1, 0.2) == DONE and sched.finished()
    assert sorted(t.budget for t in sched.trials.values() if t.state is TrialState.FINALIZED) == [2, 2]


def test_points_to_evaluate_run_first_exactly_as_given_with_the_optimizers_budget():
    sp = Searchspace(x=("DOUBLE", [0.0, 1.0]))
    given = [{"x": 0.123}, {"x": 0.456}]
    opt = ASHA(reduction_factor=2, resource_min=1, resource_max=2)
    opt.setup(sp, direction="max", seed=0, num_trials=4)
    sched = Scheduler(opt, NoStopping(), total=4, direction="max", given=given)
    first, second = sched.next_trial(worker=0), sched.next_trial(worker=1)
    assert [dict(first.params), dict(second.params)] == given and first.budget == second.budget == 1
    third = sched.next_trial(worker=2)
    assert dict(third.params) not in given  # then the optimizer's own points


def test_a_resumed_scheduler_does_not_run_the_given_points_that_already_started():
    sp = Searchspace(x=("DOUBLE", [0.0, 1.0]))
    given = [{"x": 0.1}, {"x": 0.2}, {"x": 0.3}]

    def fresh():
        opt = RandomSearch()
        opt.setup(sp, direction="max", seed=0, num_trials=4)
        return Scheduler(opt, NoStopping(), total=4, direction="max", given=given)

    sched = fresh()
    a = sched.next_trial(worker=0)
    sched.record_end(a.trial_id, TrialState.FINALIZED, metric=1.0)
    b = sched.next_trial(worker=0)  # started, then its driver died
    again = fresh()
    in_flight = again.restore([t.view() for t in (a, b)])
    assert [t.trial_id for t in in_flight] == [b.trial_id]
    assert [dict(again.next_trial(worker=0).params) for _ in range(2)][1] == {"x": 0.3}


def serve(sched, rng, ends, running=None):
    """Two workers in the driver's order, their events interleaved by ``rng``: a run ends (the
    scheduler records it, hands out the next trial, then learns) or a waiting worker asks again;
    until ``ends`` runs ended or nothing is left."""
    running = dict(running or {})
    waiting = [w for w in (0, 1) if w not in running]
    while ends and (running or waiting):
        kind, worker = rng.choice([("end", w) for w in running] + [("ask", w) for w in waiting])
        if kind == "end":
            trial = running.pop(worker)
            ended = sched.record_end(trial.trial_id, TrialState.FINALIZED, metric=trial.params["x"] * trial.budget)
            reply = sched.next_trial(worker=worker)
            sched.learn(ended)
            ends -= 1
        else:
            waiting.remove(worker)
            reply = sched.next_trial(worker=worker)
        if reply == WAIT:
            waiting.append(worker)
        elif reply != DONE:
            running[worker] = reply


def test_a_resumed_asha_asks_the_questions_it_was_asked_and_starts_every_trial(caplog):
    """The driver killed after k runs ended, for many interleavings of two workers: a scheduler
    restored from the journal's changes replays the same asks and finishes every trial. Before
    an ask told the optimizer of the runs that had ended, the live ASHA was asked before it heard
    of a run that the journal shows as ended; restored, it promoted otherwise and then offered a
    running trial again (IllegalTransition), or started a trial fewer."""
    import random

    def fresh():
        opt = ASHA(reduction_factor=2, resource_min=1, resource_max=4)
        opt.setup(SP, direction="max", seed=3, num_trials=8)
        changes = []
        return Scheduler(opt, NoStopping(), total=8, direction="max",
                         on_change=lambda t: changes.append(t.view())), changes

    for seed in range(40):
        for kill_after in range(3, 12):
            live, journal = fresh()
            serve(live, random.Random(seed), kill_after)
            restored, _ = fresh()
            restored.restore(journal)
            serve(restored, random.Random(seed + 1000), 100)
            assert "on resume the optimizer" not in caplog.text, (seed, kill_after)
            assert restored.finished() and restored.started == len(restored.trials) == 8, (seed, kill_after)


class Repeating(RandomSearch):
    """Proposes the same point every time: an optimizer stuck on a maximum it has visited."""

    def __init__(self, point):
        self.point = point

    def ask(self, pending):
        return Suggestion(dict(self.point))


def serial(sched, metric=lambda t: 1.0):
    """One worker in the driver's order, until the scheduler says DONE."""
    while (t := sched.next_trial(worker=0)) not in (DONE, WAIT):
        sched.learn(sched.record_end(t.trial_id, TrialState.FINALIZED, metric=metric(t)))


def test_an_optimizer_that_repeats_itself_gets_random_points_counted_and_warned_once(caplog):
    opt = Repeating({"x": 0.5})
    opt.setup(SP, direction="max", seed=0)
    sched = Scheduler(opt, NoStopping(), total=6, direction="max")
    with caplog.at_level("WARNING"):
        serial(sched)
    assert sched.started == 6 and sched.short is None  # a continuous space never runs out
    assert sched.fallbacks == 5 and sched.figures()["search"]["fallbacks"] == 5
    assert len({t.params["x"] for t in sched.trials.values()}) == 6
    assert caplog.text.count("already tried") == 1
    # each fallback followed REPEATS duplicates of the optimizer's own, replayed on resume from ``asks``
    assert sorted(t.asks for t in sched.trials.values()) == [1] + [REPEATS + 1] * 5


def test_a_finite_searchspace_ends_only_when_every_point_was_tried_and_says_so():
    sp = Searchspace(n=("INTEGER", [1, 3]), c=("CATEGORICAL", ["a", "b"]))  # 6 points
    opt = Repeating({"n": 2, "c": "a"})
    opt.setup(sp, direction="max", seed=0)
    sched = Scheduler(opt, NoStopping(), total=10, direction="max")
    serial(sched)
    points = sorted((t.params["n"], t.params["c"]) for t in sched.trials.values())
    assert points == [(n, c) for n in (1, 2, 3) for c in "ab"] and sched.finished()
    assert sched.figures()["short"] == "6 of 10 trials started: every point of the searchspace was tried (6 trials)"


class Learning(RandomSearch):
    """Proposes random points; ``outdated`` says whether a result told since a point was made
    reached ``bar``, as a model-based optimizer says that a result changed its model."""

    bar = 0.9

    def reset(self):
        self.asked, self.rejects, self.told = 0, [], []

    def ask(self, pending):
        self.asked += 1
        return Suggestion(self.searchspace.sample(self.rng), info={"told": len(self.told)})

    def rejected(self, suggestion):
        self.rejects.append(dict(suggestion.params))

    def tell(self, trial):
        self.told.append(trial.metric)

    def outdated(self, suggestion):
        return any(m >= self.bar for m in self.told[suggestion.info["told"]:])


def test_the_point_prepared_ahead_is_checked_against_the_results_that_ended_since():
    """The driver's order: a run ends, its worker is handed the next trial, then the optimizer
    learns and a point is prepared ahead. Handing that point out, the scheduler first tells the
    optimizer of the run that just ended: an outdated point is rejected and asked for again
    before the reply, one that is not goes out as it was prepared."""
    opt = Learning()
    opt.setup(SP, direction="max", seed=0)
    sched = Scheduler(opt, NoStopping(), total=10, direction="max")
    a, b = sched.next_trial(worker=0), sched.next_trial(worker=1)
    sched.learn(sched.record_end(a.trial_id, TrialState.FINALIZED, metric=0.1))  # as a GET would find it
    prepared = sched.ahead.trial
    assert prepared.trial_id not in sched.trials  # not a trial until handed out
    assert [t.trial_id for t in sched._pending()] == [b.trial_id, prepared.trial_id]

    def final(trial, worker, metric):
        ended = sched.record_end(trial.trial_id, TrialState.FINALIZED, metric=metric)
        reply = sched.next_trial(worker=worker)
        sched.learn(ended)
        return reply

    asked = opt.asked
    c = final(b, 1, 0.2)  # a poor result: the prepared point stands
    assert c is prepared and opt.asked == asked + 1 and sched.revised == 0 and not opt.rejects
    prepared = sched.ahead.trial
    d = final(c, 1, 0.95)  # a result that changes the model: asked again before the reply
    assert d.trial_id != prepared.trial_id and sched.revised == 1
    assert opt.rejects == [dict(prepared.params)] and opt.told[-1] == 0.95
    assert d.asks == 2  # the outdated ask is replayed on resume before the trial's own


def test_a_stop_drops_the_point_prepared_ahead():
    opt = Learning()
    opt.setup(SP, direction="max", seed=0)
    sched = Scheduler(opt, NoStopping(), total=10, direction="max")
    sched.prepare()
    sched.stop()
    assert sched.ahead is None and len(opt.rejects) == 1 and sched.finished()
