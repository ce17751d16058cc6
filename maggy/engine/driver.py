"""The driver: one event loop that owns the trial table and answers the workers.

The RPC thread only verifies and enqueues; this loop decides. On every request it replies
first (with a suggestion prepared ahead of time) and only then does the slow work: telling the
optimizer, writing the journal and trial logs, preparing the next suggestion.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import logging
import queue
import statistics
import time
from typing import Any, Callable, Protocol, Sequence

from maggy.callbacks import Callback, ExperimentInfo
from maggy.config import HyperparameterOptConfig
from maggy.engine.backends.base import Backend
from maggy.engine.gangs import IdlePool, Member, gang_outcome
from maggy.engine.registry import WorkerInfo, WorkerRegistry
from maggy.engine.scheduler import Scheduler
from maggy.engine.server import Inbound, RpcServer
from maggy.engine.stopping import StoppingRules
from maggy.engine.supervisor import Supervisor
from maggy.engine.unreported import UnreportedMetrics
from maggy.engine.utilization import Utilization
from maggy.exceptions import ExperimentFailedError
from maggy.result import Result
from maggy.rpc.messages import (
    Assignment,
    Done,
    Final,
    Get,
    Log,
    Message,
    Metric,
    Ok,
    Register,
    Rendezvous,
    Stop,
    Wait,
    WorkerError,
)
from maggy.rpc.protocol import new_secret
from maggy.runtime.tracking import TrackingSpec
from maggy.runtime.trainfn import Signature
from maggy.runtime.worker import WorkerSpec
from maggy.search.optimizers.base import DONE, WAIT
from maggy.store.events import Outcome
from maggy.store.replay import ExperimentLog
from maggy.store.storage import Storage, as_given
from maggy.trial import Trial, TrialState, error_record

log = logging.getLogger(__name__)

#: Seconds a worker waits before asking again when no trial is ready.
WAIT_RETRY = 0.05
#: Seconds to let workers hear DONE and end their tasks before cancelling them.
SHUTDOWN_GRACE = 30.0
#: Seconds a free worker waits unanswered for enough others to form a gang, before it hears WAIT
#: and asks again (well within the worker's request timeout).
GANG_WAIT = 2.0
#: At most this many queued messages are handled before the workers' silence is judged again.
MAX_DRAIN = 10_000


class Replies(Protocol):
    """Where the driver's replies go: the RPC server, or a test's stand-in."""

    def reply(self, conn: int, message: Message) -> None: ...

    def close_connection(self, conn: int) -> None: ...


class Driver:
    """Runs one experiment on ``backend`` and returns its :class:`Result`.

    ``callbacks`` watch the experiment (progress, the journal, MLflow, the user's own); each
    hook runs after the reply of the step that caused it. ``tracking`` tells the workers which
    MLflow parent run their trial runs belong to. ``previous`` is the journal of an earlier run
    of this experiment, which the driver continues. ``warm`` holds earlier ``(params, metric)``
    observations for the optimizer (``warm_start``).
    """

    def __init__(self, config: HyperparameterOptConfig, train_fn: Callable, signature: Signature,
                 backend: Backend, storage: Storage, exp_dir: str, *, callbacks: Sequence[Callback] = (),
                 tracking: TrackingSpec | None = None, previous: ExperimentLog | None = None,
                 fingerprint: str | None = None, warm: Sequence[tuple[dict[str, Any], float]] = ()) -> None:
        self.config = config
        self.train_fn = train_fn
        self.signature = signature
        self.backend = backend
        self.storage = storage
        self.exp_dir = exp_dir
        optimizer = config.make_optimizer()
        if warm:
            optimizer.warm_start(warm)
        self.total = config.total_trials(optimizer)
        self.objectives = config.objectives
        # several objectives admit no stopping policy or rule that compares metrics (checked at the
        # door), so the first objective's direction serves them
        direction = str(self.objectives.directions[0])
        self.sched = Scheduler(optimizer, config.make_policy(), total=self.total, direction=direction,
                               on_change=self._changed, max_retries=config.max_trial_retries,
                               given=config.points_to_evaluate or ())
        self.per_trial = config.workers_per_trial
        self.num_workers = min(config.num_workers or backend.num_slots(), self.total * self.per_trial)
        self.callbacks = list(callbacks)
        if config.es_policy_given and config.es_policy != "none":  # a chosen policy that may never act
            self.callbacks.insert(0, UnreportedMetrics(str(config.es_policy), config.es_min))
        self._events: list[tuple[str, tuple[Any, ...]]] = []
        self.inbox: queue.Queue[Inbound] = queue.Queue()
        self.registry = WorkerRegistry()
        #: Free workers waiting for a trial, and the other ranks of each gang whose rank 0 has
        #: not yet said where its store is (they are answered when it has).
        self.pool = IdlePool()
        self._held: dict[str, list[tuple[int, Assignment]]] = {}
        self._attempts = itertools.count(1)
        self.supervisor = Supervisor(backend, config.worker_timeout)
        self.stopping = StoppingRules(direction=direction, target=config.target, patience=config.patience,
                                      timeout=config.timeout, fail_fast=config.fail_fast)
        #: Why the experiment stopped before its trials ran out (a stopping rule), if it did.
        self.stop_reason: str | None = None
        self._began = time.monotonic()
        self.worker_errors: list[str] = []
        self.secret = new_secret()
        self.server: Replies | None = None
        self.rpc: dict[str, str] = {}
        self.tracking = tracking
        self.previous = previous
        self.fingerprint = fingerprint
        self.utilization = Utilization(self.num_workers)
        self.resumes = len(previous.starts) if previous is not None else 0
        self._handlers: dict[type, Callable[[int, Any], None]] = {
            Register: self._on_register, Get: self._on_get, Metric: self._on_metric,
            Final: self._on_final, Log: self._on_log, WorkerError: self._on_error, Rendezvous: self._on_rendezvous}

    # ---- lifecycle -------------------------------------------------------------------------

    def run(self) -> Result:
        bind, advertised = self.backend.addresses()
        server = RpcServer(self.secret, self.inbox, host=bind).start()
        self.server = server
        self.rpc = {"bind": f"{bind}:{server.address[1]}", "advertised": f"{advertised}:{server.address[1]}"}
        spec = WorkerSpec(advertised, server.address[1], self.secret, self.train_fn, self.signature,
                          self.config.optimization_key, self.config.hb_interval, self.tracking,
                          self.config.system_metrics, self.config.dist_backend, self.config.dist_timeout)
        started = time.time()
        self._began = time.monotonic()
        outcome = Outcome.FAILED
        graceful = False
        try:
            self.storage.makedirs(self.storage.join(self.exp_dir, "trials"))
            self.sched.restore(self.previous.changes if self.previous is not None else ())
            self._notify("on_experiment_start", ExperimentInfo(
                self.config.name, self.exp_dir, self.config.to_dict(), self.total, self.num_workers,
                tuple(t.view() for t in self.sched.trials.values()), self.resumes,
                None if self.tracking is None else dataclasses.asdict(self.tracking), self.fingerprint,
                self.sched.optimizer.versions_checkpoints, self.rpc["advertised"]))
            self.sched.prepare()
            self._flush()
            self.backend.start(spec, self.num_workers, self.config.name)
            self._loop()
            self.utilization.ended(time.time())
            graceful = True
            outcome = (Outcome.FAILED if self.stopping.error else Outcome.STOPPED if self.stop_reason
                       else Outcome.FINISHED)
        except KeyboardInterrupt:
            outcome = Outcome.INTERRUPTED
            raise
        finally:
            self._shutdown(graceful)
            server.stop()
            self.sched.finalize()
            self._flush()
            result = self._result(started)
            for cb in self.callbacks:  # each may hand on an amended copy (MLflow's run ids)
                result = cb.on_experiment_end(result, outcome.value) or result
        if self.stopping.error is not None:
            raise self.stopping.error
        return result

    def _loop(self) -> None:
        next_es = time.monotonic() + self.config.es_interval
        while not self.sched.finished():
            try:
                self.handle(self.inbox.get(timeout=0.2))
                # what queued while the driver was busy (a journal write waiting on a paused
                # DataNode) is heard before silence is judged: those workers were not silent
                for _ in range(MAX_DRAIN):
                    self.handle(self.inbox.get_nowait())
            except queue.Empty:
                pass
            now = time.monotonic()
            self._check_stop(now)
            if now >= next_es:
                self.sched.check_early_stop()
                next_es = now + self.config.es_interval
            self.check_workers(now)
            self._flush()

    def _check_stop(self, now: float) -> None:
        """Apply a stopping rule that has just come true: nothing more starts, running trials stop."""
        if self.stop_reason is None and (reason := self.stopping.reason(now - self._began)):
            self.stop_reason = reason
            log.info("maggy: stopping the experiment: %s", reason)
            self.sched.stop()

    def check_workers(self, now: float) -> None:
        """Stale workers lose their trials, overlong trials are stopped, workers that waited
        GANG_WAIT for a gang ask again, the backend's workers are kept going; the experiment fails
        when none can run (see :class:`Supervisor`)."""
        assert self.config.hb_timeout is not None  # the config's default is set when it is built
        for conn in self.pool.waited(now, GANG_WAIT):
            self._reply(conn, Wait(retry_after=0.0))
        for trial_id, silence in self.registry.stale(now, self.config.hb_timeout):
            trial = self.sched.running.get(trial_id)
            if trial is not None:
                log.warning("maggy: a worker of trial %s was silent for %.0fs: the trial continues elsewhere",
                            trial_id, silence)
            self._lose(trial_id, "its worker was lost or silent")
        for trial_id in self.registry.overdue(now, self.config.trial_timeout):
            if trial_id in self.sched.running:
                self.sched.request_stop(self.sched.running[trial_id])
        workers = len(self.registry.workers)
        why = self.supervisor.check(now, finished=self.sched.finished(), quiet=self.inbox.empty(),
                                    workers=workers if workers >= self.per_trial else 0)
        if why is not None:
            raise self._failed(why)

    def _reply(self, conn: int, message: Message) -> None:
        assert self.server is not None, "the driver replies only while it runs"
        self.server.reply(conn, message)

    def _failed(self, what: str) -> ExperimentFailedError:
        """The error that ends an experiment without workers: why, and that its trials are kept."""
        return ExperimentFailedError(
            f"{what} ({self.backend.failure() or 'no error reported'}); {len(self.sched.ended())} finished "
            f"trials are kept in {self.exp_dir}: run the same lagom call again to continue.")

    def _shutdown(self, graceful: bool) -> None:
        """Answer DONE until the workers have ended, then make sure none is left."""
        if graceful:
            self._dispatch()  # the workers still waiting for a trial hear DONE
            deadline = time.monotonic() + SHUTDOWN_GRACE
            while self.backend.running() and time.monotonic() < deadline:
                try:
                    self.handle(self.inbox.get(timeout=0.1))
                except queue.Empty:
                    pass
        self.backend.cancel()
        self.backend.wait(10.0)

    # ---- callbacks -------------------------------------------------------------------------

    def _notify(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    def _changed(self, trial: Trial, transition: bool = True) -> None:
        """A state change (from the scheduler), or a new fact of a trial: queue its events for
        after the reply."""
        view = trial.view()
        self._events.append(("on_trial_change", (view,)))
        if not transition:
            return
        if view.state is TrialState.RUNNING:
            self._events.append(("on_trial_start", (view,)))
        elif view.state.finished or view.state is TrialState.PAUSED:
            self._events.append(("on_trial_end", (view,)))
            self.stopping.observe(view)

    def _flush(self) -> None:
        """Deliver the events of the last step to the callbacks, then end the step."""
        events, self._events = self._events, []
        for hook, args in events:
            self._notify(hook, *args)
        self._notify("on_step_end")

    # ---- requests --------------------------------------------------------------------------

    def handle(self, inbound: Inbound) -> None:
        """One verified, typed message: reply, then do the slow work and notify the callbacks.

        Messages were validated on the RPC thread; an exception here is a maggy bug and ends
        the experiment with its traceback.
        """
        if inbound.message is None:
            self._disconnected(inbound.conn)
        else:
            self.registry.touch(inbound.conn, time.monotonic())
            self._handlers[type(inbound.message)](inbound.conn, inbound.message)
        self._flush()

    def _on_register(self, conn: int, msg: Register) -> None:
        self.utilization.registered(time.time())
        info = WorkerInfo(msg.worker, msg.host, msg.pid, tuple(msg.gpus), msg.executor)
        for trial_id in self.registry.register(conn, info, time.monotonic()):
            self._lose(trial_id)
        self._reply(conn, Ok())

    def _on_get(self, conn: int, msg: Get) -> None:
        self._ask(conn)

    def _current(self, conn: int, trial_id: str) -> Trial | None:
        """The running trial ``trial_id`` if ``conn`` runs it; None for a late or stray report
        (its worker was declared lost and the trial re-queued), which must change nothing."""
        return self.sched.running.get(trial_id) if self.registry.holds(conn, trial_id) else None

    def _chief(self, conn: int, trial_id: str) -> bool:
        """Whether ``conn`` runs rank 0 of ``trial_id``: the one whose reports count."""
        return self.registry.runs[trial_id].rank(conn) == 0

    def _on_metric(self, conn: int, msg: Metric) -> None:
        trial = self._current(conn, msg.trial_id)
        # a trial that is not this worker's any more (it was declared stale) stops at once
        self._reply(conn, Stop() if trial is None or self.sched.stop_requested(msg.trial_id) else Ok())
        if trial is not None and self._chief(conn, msg.trial_id):
            self._record_points(trial, msg.points, msg.run_id, msg.checkpoint)
            self._record_system(trial, msg.system)

    def _on_final(self, conn: int, msg: Final) -> None:
        trial = self._current(conn, msg.trial_id)
        if trial is None:
            self._ask(conn)
            return
        if self._chief(conn, msg.trial_id):
            self._record_points(trial, msg.points, msg.run_id, msg.checkpoint)
            self._record_system(trial, msg.system)
        self.utilization.ran(msg.end - msg.start)
        run = self.registry.end_rank(msg.trial_id, conn, msg)
        if run is None:  # other ranks of its gang still run
            if msg.state is TrialState.ERROR and not msg.peer_failure:
                self.sched.request_stop(trial)  # the trial has failed: its other ranks stop
            self._ask(conn)
            self._write_log(trial, list(msg.logs))
            return
        state, metric, extra, error = gang_outcome([run.ended[rank] for rank in sorted(run.ended)])
        chief = run.ended[0]
        if run.timed_out and state is not TrialState.ERROR:
            state, error = TrialState.ERROR, error_record(
                "TrialTimeout", f"the trial ran longer than trial_timeout={self.config.trial_timeout:g}s")
        values, extra = self.objectives.split(metric, extra)
        self.sched.record_end(msg.trial_id, state, metric=metric, values=values, extra=extra, error=error,
                              start=chief.start, end=chief.end, handoff=chief.handoff)
        self._ask(conn)
        # off the reply path from here on
        self._write_log(trial, list(msg.logs), trial.error)
        self.sched.learn(trial)

    def _on_rendezvous(self, conn: int, msg: Rendezvous) -> None:
        """Rank 0 of a gang opened its store: the other ranks get their assignments, with its
        address. A message of an attempt that is over (its gang lost a rank) is refused."""
        run = self.registry.runs.get(msg.trial_id)
        if run is None or run.attempt != msg.attempt or run.conns[0] != conn or msg.trial_id not in self._held:
            self._reply(conn, Stop())
            return
        self._reply(conn, Ok())
        for member, assignment in self._held.pop(msg.trial_id):
            self._reply(member, dataclasses.replace(assignment, master_addr=msg.host, master_port=msg.port))

    def _record_points(self, trial: Trial, points: Sequence[tuple[int, float]], run_id: str | None,
                       checkpoint: int | None = None) -> None:
        """The metric points of a METRIC or FINAL, into the trial table and to the callbacks, with
        the trial's MLflow run and latest checkpoint, journaled as soon as they are known."""
        news = self.sched.record_run(trial, run_id, checkpoint)
        if points:
            self.sched.record_points(trial, points)
            self._events.append(("on_trial_result", (trial.view(), tuple(points))))
        if news:
            self._changed(trial, transition=False)

    def _record_system(self, trial: Trial, system: Sequence[tuple[str, float]]) -> None:
        """A sample of the trial's system metrics: into its means and to the callbacks."""
        if system:
            sample = dict(system)
            self.sched.record_usage(trial, sample)
            self._events.append(("on_system_metrics", (trial.view(), sample)))

    def _on_log(self, conn: int, msg: Log) -> None:
        self._reply(conn, Ok())
        trial = self.sched.trials.get(msg.trial_id)
        if trial is not None:
            self._write_log(trial, list(msg.lines))

    def _on_error(self, conn: int, msg: WorkerError) -> None:
        self._reply(conn, Ok())
        self.worker_errors.append(msg.message)
        log.error("maggy worker %s: %s", msg.worker, msg.message)

    def _disconnected(self, conn: int) -> None:
        """A worker's connection dropped: the trial it was running is lost. Only that one: a
        worker of an aborted Spark job may still run a trial of the same partition, which the
        replacement job's worker for that partition must not take with it when it ends."""
        self.pool.remove(conn)
        trial_id = self.registry.dropped(conn)
        if trial_id is not None:
            self._lose(trial_id)

    def _lose(self, trial_id: str, why: str = "its worker was lost") -> None:
        """The run of ``trial_id`` is lost (a worker, or a rank of its gang, dropped or went
        silent): the trial is re-queued, and ranks still waiting for their gang wait for a trial
        again; ranks still running hear STOP at their next heartbeat."""
        self.registry.release(trial_id)
        for member, _ in self._held.pop(trial_id, []):
            if member in self.registry.workers:
                self.pool.park(member, self.registry.workers[member].host, time.monotonic())
        if trial_id in self.sched.running:
            self.sched.lose(self.sched.running[trial_id], why)
        self._dispatch()

    # ---- trials ----------------------------------------------------------------------------

    def _ask(self, conn: int) -> None:
        """The worker on ``conn`` wants a trial (GET, or the FINAL of its last one)."""
        worker = self.registry.workers.get(conn)
        if worker is None:  # never registered: nothing to give it
            self._reply(conn, Done())
            return
        self.pool.park(conn, worker.host, time.monotonic())
        self._dispatch()

    def _dispatch(self) -> None:
        """Answer the waiting workers: a trial for each complete gang that can form (one worker
        per trial without gangs), WAIT when no trial is ready, DONE when none can come. Workers
        left over while a trial waits for a gang stay waiting (GANG_WAIT at most)."""
        self._check_stop(time.monotonic())  # a trial that just ended may have met a stopping rule
        while len(self.pool):
            outlook = self.sched.peek()
            if outlook == DONE or outlook == WAIT:
                for conn in self.pool.drain():
                    self._reply(conn, Done() if outlook == DONE else Wait(retry_after=WAIT_RETRY))
                return
            members = self.pool.take(self.per_trial)
            if members is None:
                return
            self._start(members)

    def _start(self, members: list[Member]) -> None:
        """The next trial runs on ``members`` (rank 0 first), all assigned in this one step. Rank
        0 hears at once; the others when it has said where its store is (RENDEZVOUS)."""
        worker = self.registry.workers[members[0].conn]
        trial = self.sched.next_trial(worker.partition, worker.host, worker.executor)
        assert isinstance(trial, Trial), "peek said a trial is ready"
        attempt = next(self._attempts)
        self.registry.assign(trial.trial_id, tuple(m.conn for m in members), time.monotonic(), attempt)
        own, source = self.sched.checkpoint_names(trial)
        trials = self.storage.join(self.exp_dir, "trials")
        base = Assignment(
            trial_id=trial.trial_id, params=dict(trial.params), budget=trial.budget,
            next_step=trial.history[-1][0] + 1 if trial.history else 0, run_id=trial.run_id,
            checkpoint_dir=self.storage.join(trials, own),
            restore_from=None if source is None else self.storage.join(trials, source),
            run_name=f"{self.config.name}-{trial.number}", world_size=len(members), attempt=attempt)
        ranks = [dataclasses.replace(base, rank=m.rank, local_rank=m.local_rank, local_world_size=m.local_world_size)
                 for m in members]
        if len(members) > 1:
            self._held[trial.trial_id] = [(m.conn, a) for m, a in zip(members[1:], ranks[1:])]
        self._reply(members[0].conn, ranks[0])

    def _write_log(self, trial: Trial, lines: list[str], error: dict | None = None) -> None:
        if error:
            lines = [*lines, f"{error['type']}: {error['message']}", error.get("traceback", "")]
        if lines:
            self.storage.append_lines(self.storage.join(self.exp_dir, "trials", f"{trial.trial_id}.log"), lines)

    # ---- reporting -------------------------------------------------------------------------

    def _result(self, started: float) -> Result:
        done = self.sched.ended()
        handoffs = sorted(t.handoff for t in done if t.handoff is not None)
        stats: dict[str, Any] = {
            "makespan": time.time() - started, "num_workers": self.num_workers,
            "total_trials": self.total, "resumes": self.resumes,
            "states": dict(collections.Counter(t.state.value for t in done)),
            "bad_frames": dict(getattr(self.server, "bad_frames", {})),
            "workers": [w.describe() for w in self.registry.registered],
            "worker_errors": self.worker_errors,
            **self.backend.describe(),
        }
        if self.rpc:  # where the driver listened, and where workers were told to reach it
            stats["rpc"] = self.rpc
        if self.stop_reason:
            stats["stopped"] = self.stop_reason
        stats.update(self.utilization.stats())
        if handoffs:
            stats["handoff_p50_ms"] = 1000 * statistics.median(handoffs)
            stats["handoff_p99_ms"] = 1000 * handoffs[min(len(handoffs) - 1, int(0.99 * len(handoffs)))]
        return Result.of(self.config.name, self.objectives, self.sched.trials.values(),
                         list(self.config.searchspace.names), as_given(self.exp_dir, self.config.experiment_dir), stats,
                         versioned_checkpoints=self.sched.optimizer.versions_checkpoints,
                         log_scale=[hp.name for hp in self.config.searchspace if hp.log])
