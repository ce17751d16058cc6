"""What workers report of their trials (METRIC, FINAL, LOG), into the trial table, the callbacks'
events and the trial logs: only rank 0 of a run speaks for it, and a report of a run that is not
the sender's any more (it was declared lost) changes nothing. A FINAL is answered with the
worker's next trial before the optimizer learns and the next point is prepared; the point
prepared ahead is checked against the run's end as it is handed out (``Scheduler.next_trial``).
"""

from __future__ import annotations

from typing import Callable, Mapping

from maggy.callbacks import CallbackList
from maggy.engine.dispatch import Dispatcher
from maggy.engine.gangs import run_outcome
from maggy.engine.registry import WorkerRegistry
from maggy.engine.scheduler import Scheduler
from maggy.engine.stats import RunStats
from maggy.rpc.messages import Final, Log, Message, Metric, Ok, Stop
from maggy.search.objectives import Objectives
from maggy.store.writer import StorageWriter
from maggy.trial import Trial, TrialState


class TrialReports:
    """Applies the reports of the workers of ``registry`` to ``sched``; the other arguments are
    where the driver's replies, a trial's new facts (``changed``), the figures and the trial logs go."""

    def __init__(self, sched: Scheduler, registry: WorkerRegistry, dispatcher: Dispatcher, callbacks: CallbackList,
                 stats: RunStats, reply: Callable[[int, Message], None], changed: Callable[..., None],
                 writer: StorageWriter, trials_dir: str, join: Callable[..., str], trial_timeout: float | None,
                 objectives: Objectives) -> None:
        self.sched, self.registry, self.dispatcher, self.callbacks = sched, registry, dispatcher, callbacks
        self.stats, self.reply, self.changed, self.writer = stats, reply, changed, writer
        self.trials_dir, self.join, self.trial_timeout, self.objectives = trials_dir, join, trial_timeout, objectives

    def _current(self, conn: int, trial_id: str) -> Trial | None:
        """The running trial ``trial_id`` if ``conn`` runs it; None for a late or stray report
        (its worker was declared lost and the trial re-queued), which must change nothing."""
        return self.sched.running.get(trial_id) if self.registry.holds(conn, trial_id) else None

    def on_metric(self, conn: int, msg: Metric) -> None:
        trial = self._current(conn, msg.trial_id)
        # a trial that is not this worker's any more (it was declared stale) stops at once
        self.reply(conn, Stop() if trial is None or self.sched.stop_requested(msg.trial_id) else Ok())
        if trial is not None:
            self.record(conn, trial, msg)

    def on_final(self, conn: int, msg: Final) -> None:
        trial = self._current(conn, msg.trial_id)
        if trial is None:
            self.dispatcher.ask(conn)
            return
        self.record(conn, trial, msg)
        self.stats.ran(msg.end - msg.start)
        run = self.registry.end_rank(msg.trial_id, conn, msg)
        if run is None:  # other ranks of its gang still run
            if msg.state is TrialState.ERROR and not msg.peer_failure:
                self.sched.request_stop(trial)  # the trial has failed: its other ranks stop
            self.dispatcher.ask(conn)
            self.write_log(trial, list(msg.logs))
            return
        state, metric, extra, error = run_outcome([run.ended[rank] for rank in sorted(run.ended)],
                                                  self.trial_timeout if run.timed_out else None)
        chief = run.ended[0]
        values, extra = self.objectives.split(metric, extra)
        self.sched.record_end(msg.trial_id, state, metric=metric, values=values, extra=extra, error=error,
                              start=chief.start, end=chief.end, handoff=chief.handoff)
        self.dispatcher.ask(conn)
        # off the reply path from here on
        self.write_log(trial, list(msg.logs), trial.error)
        self.sched.learn(trial)

    def record(self, conn: int, trial: Trial, msg: Metric | Final) -> None:
        """What rank 0 of a run reported (a METRIC or FINAL): its metric points, the trial's
        tracked run, latest checkpoint and system metrics, into the table and to the callbacks."""
        if self.registry.runs[trial.trial_id].rank(conn) != 0:
            return
        news = self.sched.record_run(trial, msg.run_id, msg.checkpoint)
        if msg.points:
            self.sched.record_points(trial, msg.points)
            self.callbacks.queue("on_trial_result", trial.view(), tuple(msg.points))
        if news:
            self.changed(trial, transition=False)
        if msg.system:
            sample = dict(msg.system)
            self.sched.record_usage(trial, sample)
            self.callbacks.queue("on_system_metrics", trial.view(), sample)

    def on_log(self, conn: int, msg: Log) -> None:
        self.reply(conn, Ok())
        trial = self.sched.trials.get(msg.trial_id)
        if trial is not None:
            self.write_log(trial, list(msg.lines))

    def write_log(self, trial: Trial, lines: list[str], error: Mapping[str, str] | None = None) -> None:
        """The lines to the trial's log file (and its error, when it failed); the callbacks hear them."""
        if lines:
            self.callbacks.queue("on_trial_log", trial.view(), tuple(lines))
        if error:
            lines = [*lines, f"{error['type']}: {error['message']}", error.get("traceback", "")]
        self.writer.append(self.join(self.trials_dir, f"{trial.trial_id}.log"), lines)
