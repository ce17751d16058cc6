"""The trial table and its rules, without any I/O.

The scheduler decides which trial a free worker gets next, what an ended run means (FINALIZED,
or PAUSED for a multi-fidelity optimizer to promote later), which running trials the stopping
policy ends, and when the experiment is over. The driver wraps it with the network, the journal
and progress; :func:`run_sequential` runs it in this process for tests and benchmarks.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import itertools
import logging
from typing import Any, Callable, Iterable, Literal, Mapping, Sequence

import numpy as np

from maggy.search.earlystop.base import EarlyStopPolicy
from maggy.search.optimizers.base import DONE, WAIT, Optimizer, Suggestion
from maggy.trial import (
    FrozenTrial,
    IllegalTransition,
    Trial,
    TrialState,
    checkpoint_name,
    error_record,
    exception_record,
)

log = logging.getLogger(__name__)

#: How often a trial whose worker vanished is re-queued before it counts as ERROR, by default.
MAX_LOST_RETRIES = 2
#: Points already tried that an optimizer may propose in a row before it gets a random one.
REPEATS = 3
#: Random draws that look for an untried point before a finite searchspace is enumerated.
_DRAWS = 16


@dataclasses.dataclass
class _Ahead:
    """A new point asked for ahead of the request it answers; it becomes a trial when handed out."""

    suggestion: Suggestion
    trial: Trial  # not in the table yet
    asks: int
    given: bool  # a point given to run first (never asked for again)


class Scheduler:
    """Owns every :class:`Trial` of one experiment; ``total`` bounds the new trials started."""

    def __init__(self, optimizer: Optimizer, policy: EarlyStopPolicy, *, total: int, direction: str,
                 on_change: Callable[[Trial], None] | None = None, max_retries: int = MAX_LOST_RETRIES,
                 given: Sequence[Mapping[str, Any]] = ()) -> None:
        self.optimizer = optimizer
        self.on_change = on_change
        self.policy = policy
        self.total = total
        self.direction = direction
        self.trials: dict[str, Trial] = {}
        self.ready: collections.deque[Trial] = collections.deque()
        self.running: dict[str, Trial] = {}
        #: Running trials whose worker is to hear STOP.
        self.stopping: set[str] = set()
        self.exhausted = False
        #: Why no more trials start although fewer than ``total`` did (None: none ended it early).
        self.short: str | None = None
        #: The new point prepared ahead of the next request, not yet a trial (see :meth:`prepare`).
        self.ahead: _Ahead | None = None
        #: Points the optimizer repeated, replaced by random ones; points prepared ahead that were
        #: outdated when handed out, and asked for again.
        self.fallbacks = 0
        self.revised = 0
        self._withdrawn = 0  # asks of outdated points, counted in the next new trial's ``asks``
        #: Runs that ended and that the optimizer has not been told of yet (between
        #: :meth:`record_end` and :meth:`learn`): its DONE waits for them.
        self._untold: dict[str, None] = {}  # in the order the runs ended
        self.max_retries = max_retries
        #: Trials started from scratch: what ``total`` bounds (PBT's children start from a
        #: parent's checkpoint and do not count).
        self.started = 0
        #: Points to run first, as given (``points_to_evaluate``), in place of the optimizer's.
        self.given: collections.deque[dict[str, Any]] = collections.deque(dict(p) for p in given)

    def _move(self, trial: Trial, state: TrialState) -> None:
        """Every state change goes through here, so that ``on_change`` sees each one."""
        trial.transition(state)
        if self.on_change is not None:
            self.on_change(trial)

    # ---- handing out -----------------------------------------------------------------------

    def next_trial(self, worker: int, host: str | None = None,
                   executor: str | None = None) -> Trial | Literal["wait", "done"]:
        """The trial for a free worker, WAIT, or DONE when no trial can come for it any more
        (none is left to start, and the optimizer continues none), so that its executor can go."""
        outlook = self.peek()
        if not isinstance(outlook, Trial):
            return outlook
        trial = self.ready.popleft() if self.ready else self._admit_ahead()
        trial.update(worker=worker, host=host, executor=executor, run_start=len(trial.history))
        self.stopping.discard(trial.trial_id)
        self._move(trial, TrialState.RUNNING)
        self.running[trial.trial_id] = trial
        return trial

    def peek(self) -> Trial | Literal["wait", "done"]:
        """The trial :meth:`next_trial` would hand out now, without handing it out; or WAIT, or DONE.
        The point prepared ahead is checked first against the runs that ended (:meth:`_revise`)."""
        self._revise()
        if not self.ready and self.ahead is None:
            self.prepare()
        if self.ready:
            return self.ready[0]
        if self.ahead is not None:
            return self.ahead.trial
        return DONE if self.finished() or self._no_more_starts() else WAIT

    def prepare(self) -> None:
        """Keep one suggestion ready ahead of the next request, so that a worker's FINAL is
        answered at once. A new point stays a suggestion (:attr:`ahead`) until it is handed out,
        and is checked then against the runs that ended since (:meth:`_revise`)."""
        while not self.ready and self.ahead is None and not self.exhausted:
            if self.started >= self.total and not self.optimizer.resumes_trials:
                return
            self._tell_untold()
            answer = self.optimizer.ask(self._pending())
            if answer == WAIT:
                return
            if answer == DONE:  # having heard of every run that ended (above)
                self._end("the optimizer had nothing more to propose")
                return
            if not self._propose(answer):
                return

    def _revise(self) -> None:
        """The point prepared ahead, about to be handed out, is checked against the runs that
        ended since it was asked for: the optimizer hears of them now, and a point it finds
        :meth:`~Optimizer.outdated` is rejected, to be asked for again."""
        ahead = self.ahead
        if ahead is None or not self._untold:
            return
        self._tell_untold()
        if not ahead.given and self.optimizer.outdated(ahead.suggestion):
            self.optimizer.rejected(ahead.suggestion)
            self.ahead = None
            self._withdrawn = ahead.asks
            self.revised += 1

    def _pending(self) -> list[FrozenTrial]:
        """Trials handed out or about to be (the point prepared ahead too), and not yet ended."""
        ahead = () if self.ahead is None else (self.ahead.trial,)
        return [t.view() for t in (*self.running.values(), *self.ready, *ahead)]

    def _propose(self, answer: Suggestion) -> bool:
        """Make a suggestion the next trial to hand out: a promoted PAUSED trial at once, a new
        point as :attr:`ahead` (a trial with a ``parent`` at once: it starts from that trial's
        completed run at ``parent_budget``, with its history up to there and its checkpoint).

        A point already tried is rejected and asked for again; after :data:`REPEATS` of them in a
        row the optimizer gets a random point that was not tried (counted in :attr:`fallbacks`),
        and only a finite searchspace whose every point was tried ends the search. False when
        nothing is ready (the optimizer waits, or the search ended).
        """
        asks = self._withdrawn
        while True:
            asks += 1
            if answer.trial_id is not None:
                trial = self.trials[answer.trial_id]
                trial.update(budget=answer.budget)
                self._move(trial, TrialState.PENDING)
                self.ready.append(trial)
                return True
            given = bool(self.given) and answer.parent is None
            if given:  # a point given to run first, with the optimizer's budget
                answer = dataclasses.replace(answer, params=self.given.popleft())
            if answer.parent is None and self.started >= self.total:
                self.optimizer.rejected(answer)
                self.exhausted = True
                return False
            if asks - self._withdrawn > REPEATS:
                point = self._untried(answer)
                if point is None:
                    self.optimizer.rejected(answer)
                    self._end(f"every point of the searchspace was tried ({len(self.trials)} trials)")
                    return False
                answer = dataclasses.replace(answer, params=point)
                self._fell_back()
            trial = Trial.create(answer.params, answer.budget, answer.parent)
            if trial.trial_id not in self.trials:
                break
            self.optimizer.rejected(answer)
            again = self.optimizer.ask(self._pending())
            if not isinstance(again, Suggestion):
                return False
            answer = again
        self._withdrawn = 0
        if answer.parent is None:
            self.ahead = _Ahead(answer, trial, asks, given)
        else:
            self._admit(trial, answer, asks)
            self.ready.append(trial)
        return True

    def _untried(self, suggestion: Suggestion) -> dict[str, Any] | None:
        """A random point that makes a new trial with ``suggestion``'s budget and parent; None when
        the searchspace is finite and every point of it was tried (it is enumerated to know)."""
        space = self.optimizer.searchspace
        rng = np.random.default_rng(len(self.trials))

        def new(point: Mapping[str, Any]) -> bool:
            return Trial.create(point, suggestion.budget, suggestion.parent).trial_id not in self.trials

        every = space.points()
        for _ in itertools.count() if every is None else range(_DRAWS):
            point = space.sample(rng)
            if new(point):
                return point
        assert every is not None  # a continuous searchspace always has a new point
        untried = [i for i in range(len(every)) if new(every[i])]
        return every[int(rng.choice(untried))] if untried else None

    def _fell_back(self) -> None:
        if not self.fallbacks:
            log.warning("maggy: the optimizer proposed %d points in a row that were already tried; it gets a random "
                        "point instead whenever it repeats itself (result.stats['search']['fallbacks'] counts "
                        "them)", REPEATS)
        self.fallbacks += 1

    def _admit(self, trial: Trial, suggestion: Suggestion, asks: int) -> None:
        """Enter a new trial into the table, and tell the optimizer which trial its suggestion became."""
        trial.update(asks=asks, number=len(self.trials) + 1)
        if suggestion.parent is None:
            self.started += 1
        else:
            self._inherit(trial, self.trials[suggestion.parent], suggestion.parent_budget)
        self.trials[trial.trial_id] = trial
        self.optimizer.accepted(trial.trial_id, suggestion)
        if self.on_change is not None:  # its creation, so that a resume can replay the asks
            self.on_change(trial)

    def _admit_ahead(self) -> Trial:
        ahead = self.ahead
        assert ahead is not None, "peek said a trial is ready"
        self.ahead = None
        self._admit(ahead.trial, ahead.suggestion, ahead.asks)
        return ahead.trial

    def _end(self, why: str) -> None:
        """No more trials start: ``why``, kept when fewer than ``total`` started."""
        self.exhausted = True
        if self.started < self.total and self.short is None:
            self.short = f"{self.started} of {self.total} trials started: {why}"

    @staticmethod
    def _inherit(child: Trial, parent: Trial, budget: float | None) -> None:
        """``child`` starts where ``parent``'s completed run at ``budget`` (default: its latest)
        ended: from that run's checkpoint, with the metrics that led there (so that its steps
        continue them)."""
        budgets = [b for b, _ in parent.rungs]
        if not budgets or (budget is not None and budget not in budgets):
            raise ValueError(f"trial {parent.trial_id} completed no run at budget {budget} to start a trial from "
                             f"(its runs: {budgets}): a bug in the optimizer")
        k = budgets.index(budget) if budget is not None else len(budgets) - 1
        child.update(parent_budget=budgets[k], history=parent.history[:parent.rung_steps[k]])

    def checkpoint_names(self, trial: Trial) -> tuple[str, str | None]:
        """The directory (a name under ``trials/``) of the run ``trial`` is about to start, and
        the one it starts from (None: its own, or none).

        One directory per trial, unless the optimizer keeps a checkpoint per run (PBT): then
        each run writes ``<trial>@<budget>`` and starts from a copy of the previous run's, or of
        its parent's, so that a checkpoint another trial copies never changes under it.
        """
        if not self.optimizer.versions_checkpoints:
            return trial.trial_id, None
        own = checkpoint_name(trial.trial_id, trial.budget, True)
        if trial.rungs:
            return own, checkpoint_name(trial.trial_id, trial.rungs[-1][0], True)
        if trial.parent is not None:
            return own, checkpoint_name(trial.parent, trial.parent_budget, True)
        return own, None

    # ---- resuming --------------------------------------------------------------------------

    def restore(self, changes: Iterable[FrozenTrial]) -> list[Trial]:
        """Rebuild the table, the optimizer and the stopping policy from a journal's trial changes
        (:attr:`maggy.store.replay.ExperimentLog.changes`).

        The changes are replayed in order: each trial's creation asks the optimizer again (as
        many times as it did then, so that seeded random draws repeat exactly), each run's end is
        told to it and shown to the policy. Trials that ended stay as they are; a PAUSED one stays
        promotable. Trials in flight when the driver stopped go back to the front of the queue
        with their current run's points dropped; they are returned.
        """
        pending: dict[str, FrozenTrial] = {}
        for facts in changes:
            known = self.trials.get(facts.trial_id)
            before = None if known is None else known.state
            if before is TrialState.PAUSED and facts.state is TrialState.FINALIZED:
                # finalized only because that run ended: promotable again
                facts = dataclasses.replace(facts, state=TrialState.PAUSED)
            rec = Trial.of(facts)
            if known is None and rec.parent is None:
                self.started += 1
            if known is None or (before is TrialState.PAUSED and rec.state is TrialState.PENDING):
                self._replay_ask(rec, list(pending.values()), rec.asks if known is None else 1)
                pending[rec.trial_id] = rec.view()
            rec.update(number=known.number if known is not None else len(self.trials) + 1)
            self.trials[rec.trial_id] = rec
            ended = rec.state.finished or rec.state is TrialState.PAUSED
            if ended and before in (None, TrialState.PENDING, TrialState.RUNNING, TrialState.LOST):
                pending.pop(rec.trial_id, None)
                self.optimizer.tell(rec.view())
                if rec.history:  # stateful policies (ASHA's rungs) see the trial's history again
                    self.policy.should_stop(rec.view(), [], self.direction)
        for _ in range(min(self.started, len(self.given))):  # the points given that already ran
            self.given.popleft()
        in_flight = [t for t in self.trials.values()
                     if t.state in (TrialState.PENDING, TrialState.RUNNING, TrialState.LOST)]
        for trial in in_flight:
            self._rewind(trial)
            if trial.state is TrialState.RUNNING:
                trial.update(resumes=trial.resumes + 1)
                self._move(trial, TrialState.LOST)
            if trial.state is TrialState.LOST:
                self._move(trial, TrialState.PENDING)
            self.ready.append(trial)
        return in_flight

    def _replay_ask(self, rec: Trial, pending: list[FrozenTrial], asks: int) -> None:
        """Ask the optimizer as it was asked for ``rec`` and tell it which trial that became."""
        for attempt in range(asks):
            answer = self.optimizer.ask(pending)
            if not isinstance(answer, Suggestion):
                log.warning("maggy: on resume the optimizer had no suggestion where trial %s began", rec.trial_id)
                return
            if answer.trial_id is not None:  # a promotion
                if answer.trial_id != rec.trial_id:
                    log.warning("maggy: on resume the optimizer promoted %s where the journal has %s",
                                answer.trial_id, rec.trial_id)
                return
            if attempt < asks - 1:
                self.optimizer.rejected(answer)
                continue
            if Trial.create(answer.params, answer.budget, answer.parent).trial_id != rec.trial_id:
                # the journal's point stands
                answer = Suggestion(dict(rec.params), rec.budget, info=answer.info, parent=rec.parent,
                                    parent_budget=rec.parent_budget)
            self.optimizer.accepted(rec.trial_id, answer)

    # ---- reports ---------------------------------------------------------------------------

    def record_points(self, trial: Trial, points: Sequence[tuple[int, float]]) -> None:
        trial.extend_history(points)
        for step, value in points:
            self.optimizer.on_metric(trial.trial_id, int(step), float(value))

    def record_end(self, trial_id: str, state: TrialState, *, metric: float | None = None,
                   values: Sequence[float] | None = None, extra: dict[str, Any] | None = None,
                   error: dict[str, str] | None = None, start: float | None = None, end: float | None = None,
                   handoff: float | None = None) -> Trial | None:
        """Apply a run's end to the running trial ``trial_id``; None if it is not running.

        A run that ended normally but does not complete the trial (a multi-fidelity rung below
        the top) leaves it PAUSED. ``values`` holds each objective's value when there are
        several. Call :meth:`learn` once the reply has gone out.
        """
        trial = self.running.pop(trial_id, None)
        if trial is None:
            return None
        if not state.finished:
            raise IllegalTransition(f"a run cannot end in state {state.value}")
        self._untold[trial_id] = None
        self.stopping.discard(trial_id)
        trial.update(metric=metric, values=values, extra=extra, error=error, start=start, end=end, handoff=handoff)
        if state is TrialState.FINALIZED and metric is not None and trial.budget is not None:
            trial.update(rungs=(*trial.rungs, (trial.budget, metric)), rung_steps=(*trial.rung_steps, len(trial.history)))
        if state is TrialState.FINALIZED and not self.optimizer.completes(trial.view()):
            state = TrialState.PAUSED
        if start is not None and end is not None:
            trial.update(runs=(*trial.runs, (start, end, trial.worker, state.value)))
        self._move(trial, state)
        return trial

    @staticmethod
    def record_usage(trial: Trial, sample: Mapping[str, float]) -> None:
        """Fold a sample of system metrics into the trial's running means (``usage``).

        >>> t = Trial("a1", {})
        >>> Scheduler.record_usage(t, {"cpu_util": 50.0}); Scheduler.record_usage(t, {"cpu_util": 100.0})
        >>> dict(t.usage)
        {'samples': 2, 'cpu_util': 75.0}
        """
        usage = dict(trial.usage)
        n = usage.get("samples", 0)
        usage["samples"] = n + 1
        for name, value in sample.items():
            usage[name] = (usage.get(name, value) * n + value) / (n + 1)
        trial.update(usage=usage)

    @staticmethod
    def record_run(trial: Trial, run_id: str | None = None, checkpoint: int | None = None) -> bool:
        """What a worker said of the trial's run: its MLflow run (a resumed trial keeps the one it
        had) and the step of its latest complete checkpoint. True if either is news."""
        news: dict[str, Any] = {}
        if run_id and trial.run_id is None:
            news["run_id"] = run_id
        if checkpoint is not None and checkpoint != trial.checkpoint_step:
            news["checkpoint_step"] = checkpoint  # a lost trial continues from here
        if news:
            trial.update(**news)
        return bool(news)

    def request_stop(self, trial: Trial) -> None:
        """Its worker is told STOP at the next heartbeat (the run ends EARLY_STOPPED)."""
        self.stopping.add(trial.trial_id)

    def stop_requested(self, trial_id: str) -> bool:
        return trial_id in self.stopping

    def learn(self, trial: Trial) -> None:
        """Tell the optimizer about an ended run (unless an ask told it already) and prepare the
        next suggestion."""
        if self._untold.pop(trial.trial_id, False) is None:
            self.optimizer.tell(trial.view())
        self.prepare()

    def _tell_untold(self) -> None:
        """Tell the optimizer every ended run before it is asked: it then knows what the journal
        shows as ended, and a resume, which replays the journal in order, asks it the same
        questions (an ASHA that was asked before it heard of a run's end promoted otherwise on
        resume, and lost a trial)."""
        while self._untold:
            trial_id = next(iter(self._untold))
            del self._untold[trial_id]
            self.optimizer.tell(self.trials[trial_id].view())

    def _no_more_starts(self) -> bool:
        return self.exhausted or (self.started >= self.total and not self.optimizer.resumes_trials)

    @staticmethod
    def _rewind(trial: Trial) -> None:
        """Drop the current run's points past its latest complete checkpoint (all of them without
        one): the run that continues the trial computes them again, with the same steps."""
        run = trial.history[trial.run_start:]
        keep = 0 if trial.checkpoint_step is None else sum(1 for s, _ in run if s <= trial.checkpoint_step)
        trial.update(history=trial.history[:trial.run_start + keep])

    def lose(self, trial: Trial, why: str = "its worker was lost") -> None:
        """The worker of a running trial vanished: re-queue the trial first, to continue from its
        checkpoint, or fail it after ``max_retries``."""
        self.running.pop(trial.trial_id, None)
        self.stopping.discard(trial.trial_id)
        trial.update(attempts=trial.attempts + 1)
        self._rewind(trial)
        self._move(trial, TrialState.LOST)
        if trial.attempts > self.max_retries:
            trial.update(error=error_record(
                "TrialLost", f"{why} {trial.attempts} times, more than max_trial_retries={self.max_retries}"))
            self._move(trial, TrialState.ERROR)
            self.optimizer.tell(trial.view())
        else:
            self._move(trial, TrialState.PENDING)
            self.ready.appendleft(trial)

    def check_early_stop(self) -> list[Trial]:
        """Mark the running trials the policy stops; returns them."""
        candidates = [t for t in self.running.values()
                      if t.trial_id not in self.stopping and len(t.history) > t.run_start]
        if not candidates:  # nothing to judge: spare the views of every ended trial
            return []
        done = [t.view() for t in self.trials.values()
                if t.state in (TrialState.FINALIZED, TrialState.EARLY_STOPPED, TrialState.PAUSED)]
        stopped = []
        for trial in candidates:
            if self.policy.should_stop(trial.view(), done, self.direction):
                self.stopping.add(trial.trial_id)
                stopped.append(trial)
        return stopped

    # ---- the end ---------------------------------------------------------------------------

    def stop(self) -> None:
        """End the experiment early: start nothing more (queued trials stay PENDING, for a
        resume), and mark the running trials to stop at their next heartbeat."""
        self.exhausted = True
        self.ready.clear()
        if self.ahead is not None:
            self.optimizer.rejected(self.ahead.suggestion)
            self.ahead = None
        self.stopping.update(self.running)

    def finished(self) -> bool:
        if self.running or self.ready or self.ahead is not None:
            return False
        return self.exhausted or (self.started >= self.total and not self.optimizer.resumes_trials)

    def finalize(self) -> list[Trial]:
        """At the end, PAUSED trials are final at the budget they reached; returns them."""
        paused = [t for t in self.trials.values() if t.state is TrialState.PAUSED]
        for t in paused:
            self._move(t, TrialState.FINALIZED)
        return paused

    def ended(self) -> list[Trial]:
        """Trials with an outcome (FINALIZED, PAUSED, EARLY_STOPPED, ERROR)."""
        return [t for t in self.trials.values() if t.state.finished or t.state is TrialState.PAUSED]

    def figures(self) -> dict[str, Any]:
        """The search's figures for ``result.stats``: ``search`` (points replaced because the
        optimizer repeated itself, points prepared ahead asked for again), and ``short``, why
        fewer trials started than planned, when the search (not a stopping rule) ended early."""
        out: dict[str, Any] = {"search": {"fallbacks": self.fallbacks, "revised": self.revised}}
        if self.short is not None:
            out["short"] = self.short
        return out


def run_sequential(objective: Callable[..., float | Sequence[float] | Iterable[float]], optimizer: Optimizer,
                   policy: EarlyStopPolicy, *, total: int, direction: str,
                   checkpoints: bool = False) -> list[Trial]:
    """Run trials one after another in this process; ``objective(params, budget, trial_id)``.

    For tests and benchmarks of optimizers and stopping policies: the same scheduling rules as
    the driver, no workers. ``objective`` returns the metric, or yields one value per step, as
    ``reporter.broadcast`` would, or a tuple of every objective's value (several objectives,
    the first being the metric): the policy is asked after each value yielded, and stops the trial
    (EARLY_STOPPED, with its last value) as a STOP heartbeat would. An exception in
    ``objective`` fails that trial. With ``checkpoints``, it gets a fourth argument, a dict that
    stands for ``reporter.checkpoint_dir``: kept per trial, or per run and copied from the run
    it continues (:meth:`Scheduler.checkpoint_names`), as workers keep directories.
    """
    sched = Scheduler(optimizer, policy, total=total, direction=direction)
    saved: dict[str, dict[str, Any]] = {}
    while True:
        trial = sched.next_trial(worker=0)
        if trial == DONE:
            break
        if trial == WAIT:
            raise RuntimeError("the optimizer waits with no trial running: it can never proceed")
        try:
            if checkpoints:
                own, source = sched.checkpoint_names(trial)
                if own not in saved:
                    saved[own] = copy.deepcopy(saved.get(source, {})) if source is not None else {}
                out = objective(dict(trial.params), trial.budget, trial.trial_id, saved[own])
            else:
                out = objective(dict(trial.params), trial.budget, trial.trial_id)
            state, metric, values = TrialState.FINALIZED, None, None
            if isinstance(out, (int, float)):
                metric = float(out)
            elif isinstance(out, tuple):
                values = tuple(float(v) for v in out)
                metric = values[0]
            else:
                for value in out:
                    metric = float(value)
                    sched.record_points(trial, [(len(trial.history), metric)])
                    if sched.check_early_stop():
                        state = TrialState.EARLY_STOPPED
                        break
            ended = sched.record_end(trial.trial_id, state, metric=metric, values=values)
        except Exception as exc:
            ended = sched.record_end(trial.trial_id, TrialState.ERROR, error=exception_record(exc))
        assert ended is not None  # the trial was running
        sched.learn(ended)
    sched.finalize()
    return list(sched.trials.values())
