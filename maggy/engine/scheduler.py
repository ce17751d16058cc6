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
import logging
from typing import Any, Callable, Iterable, Literal, Mapping, Sequence

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
_DUPLICATE_ASKS = 50


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
        trial = self.ready.popleft()
        trial.update(worker=worker, host=host, executor=executor, run_start=len(trial.history))
        self.stopping.discard(trial.trial_id)
        self._move(trial, TrialState.RUNNING)
        self.running[trial.trial_id] = trial
        return trial

    def peek(self) -> Trial | Literal["wait", "done"]:
        """The trial :meth:`next_trial` would hand out now, without handing it out; or WAIT, or DONE."""
        if not self.ready:
            self.prepare()
        if not self.ready:
            return DONE if self.finished() or self._no_more_starts() else WAIT
        return self.ready[0]

    def prepare(self) -> None:
        """Keep one suggestion ready ahead of the next request."""
        while not self.ready and not self.exhausted:
            if self.started >= self.total and not self.optimizer.resumes_trials:
                return
            self._tell_untold()
            answer = self.optimizer.ask(self._pending())
            if answer == WAIT:
                return
            if answer == DONE:  # having heard of every run that ended (above)
                self.exhausted = True
                return
            trial = self._accept(answer)
            if trial is None:
                return
            self.ready.append(trial)

    def _pending(self) -> list[FrozenTrial]:
        """Trials handed out or about to be, and not yet ended."""
        return [t.view() for t in (*self.running.values(), *self.ready)]

    def _accept(self, suggestion: Suggestion) -> Trial | None:
        """The trial a suggestion asks for: a promoted PAUSED one, or a new, unseen point.

        The scheduler names new trials (a hash of the point) and tells the optimizer which
        trial its suggestion became, or that it was dropped. A new trial with a ``parent``
        starts from that trial's completed run at ``parent_budget``: its history up to there,
        and its checkpoint.
        """
        if suggestion.trial_id is not None:
            trial = self.trials[suggestion.trial_id]
            trial.update(budget=suggestion.budget)
            self._move(trial, TrialState.PENDING)
            return trial
        for attempt in range(_DUPLICATE_ASKS):
            if attempt:
                answer = self.optimizer.ask(self._pending())
                if not isinstance(answer, Suggestion):
                    return None
                suggestion = answer
            if self.given and suggestion.parent is None:  # a point given to run first, with the optimizer's budget
                suggestion = dataclasses.replace(suggestion, params=self.given.popleft())
            if suggestion.parent is None and self.started >= self.total:
                self.optimizer.rejected(suggestion)
                self.exhausted = True
                return None
            trial = Trial.create(suggestion.params, suggestion.budget, suggestion.parent)
            if trial.trial_id not in self.trials:
                trial.update(asks=attempt + 1, number=len(self.trials) + 1)
                if suggestion.parent is None:
                    self.started += 1
                else:
                    self._inherit(trial, self.trials[suggestion.parent], suggestion.parent_budget)
                self.trials[trial.trial_id] = trial
                self.optimizer.accepted(trial.trial_id, suggestion)
                if self.on_change is not None:  # its creation, so that a resume can replay the asks
                    self.on_change(trial)
                return trial
            self.optimizer.rejected(suggestion)
        log.warning("maggy: the optimizer keeps proposing points already tried; the searchspace "
                    "looks exhausted after %d trials", len(self.trials))
        self.exhausted = True
        return None

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
        self.stopping.update(self.running)

    def finished(self) -> bool:
        if self.running or self.ready:
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
