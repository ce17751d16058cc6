"""The driver: one event loop that owns the trial table and answers the workers.

The RPC thread only verifies and enqueues; this loop decides. On every request it replies
first (with a suggestion prepared ahead of time, checked against the runs that ended since) and
only then lets the optimizer prepare the next and the callbacks run; it never waits on storage
or a tracker: the journal and the trial logs go to the experiment's
:class:`~maggy.store.writer.StorageWriter`, trackers send from threads of their own.
"""

from __future__ import annotations

import logging
import queue
import time
from typing import Any, Callable, Sequence

from maggy.callbacks import Callback, CallbackList, ExperimentInfo
from maggy.config import HyperparameterOptConfig
from maggy.engine.backends.base import Backend
from maggy.engine.dispatch import Dispatcher
from maggy.engine.endpoints import listen
from maggy.engine.grants import Grants
from maggy.engine.registry import WorkerInfo, WorkerRegistry
from maggy.engine.reports import TrialReports
from maggy.engine.scheduler import Scheduler
from maggy.engine.server import Inbound, Replies
from maggy.engine.stats import RunStats
from maggy.engine.stopping import StoppingRules, none_succeeded
from maggy.engine.supervisor import Supervisor
from maggy.engine.unreported import UnreportedMetrics
from maggy.exceptions import ExperimentFailedError, TrialsFailedError
from maggy.integrations.tracker import Tracker
from maggy.result import Result
from maggy.rpc.messages import Final, Get, Log, Message, Metric, Ok, Register, Rendezvous, Wait, Welcome, WorkerError
from maggy.rpc.protocol import new_secret
from maggy.rpc.tls import server_identity
from maggy.runtime.trainfn import Signature
from maggy.runtime.worker import WorkerSpec
from maggy.store.events import Outcome
from maggy.store.replay import ExperimentLog
from maggy.store.storage import Storage, as_given
from maggy.store.writer import StorageWriter
from maggy.trial import Trial, TrialState

log = logging.getLogger(__name__)

#: Seconds to let workers hear DONE and end their tasks before cancelling them.
SHUTDOWN_GRACE = 30.0
#: Why a trial whose worker dropped runs again.
LOST = "its worker was lost"
#: At most this many queued messages are handled before the workers' silence is judged again.
MAX_DRAIN = 10_000


class Driver:
    """Runs one experiment on ``backend`` and returns its :class:`Result`.

    ``callbacks`` watch the experiment (progress, trackers, the journal, the user's own); each
    hook runs after the reply of the step that caused it. ``trackers`` (among the callbacks)
    give the workers their halves and the journal their state. ``previous`` is the journal of an
    earlier run of this experiment, which the driver continues. ``warm`` holds earlier
    ``(params, metric)`` observations for the optimizer (``warm_start``). ``writer`` writes the
    trial logs (a new one for ``storage`` when none is given); the driver closes it at the end.
    """

    def __init__(self, config: HyperparameterOptConfig, train_fn: Callable, signature: Signature,
                 backend: Backend, storage: Storage, exp_dir: str, *, callbacks: Sequence[Callback] = (),
                 trackers: Sequence[Tracker] = (), previous: ExperimentLog | None = None,
                 fingerprint: str | None = None, warm: Sequence[tuple[dict[str, Any], float]] = (),
                 writer: StorageWriter | None = None) -> None:
        self.config, self.train_fn, self.signature, self.backend = config, train_fn, signature, backend
        self.storage, self.exp_dir = storage, exp_dir
        self.writer = writer or StorageWriter(storage, name=exp_dir)
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
        watchers = list(callbacks)
        if config.es_policy_given and config.es_policy != "none":  # a chosen policy that may never act
            watchers.insert(0, UnreportedMetrics(str(config.es_policy), config.es_min))
        self.callbacks = CallbackList(watchers)
        self.inbox: queue.Queue[Inbound] = queue.Queue()
        self.registry = WorkerRegistry()
        self.stats = RunStats(self.num_workers, len(previous.starts) if previous is not None else 0)
        self.dispatcher = Dispatcher(self.sched, self.registry, self._reply, per_trial=self.per_trial,
                                     trials_dir=storage.join(exp_dir, "trials"), join=storage.join,
                                     experiment=config.name, resumed=previous is not None,
                                     before=lambda: self._check_stop(time.monotonic()))
        self.reports = TrialReports(self.sched, self.registry, self.dispatcher, self.callbacks, self.stats, self._reply,
                                    self._changed, self.writer, storage.join(exp_dir, "trials"), storage.join,
                                    config.trial_timeout, self.objectives)
        self.supervisor = Supervisor(backend, config.worker_timeout)
        self.stopping = StoppingRules(direction=direction, target=config.target, patience=config.patience,
                                      timeout=config.timeout, fail_fast=config.fail_fast)
        self._began = time.monotonic()
        #: Why the experiment failed because of its trials (fail-fast, or none succeeded), once known.
        self.failure: TrialsFailedError | None = None
        self.secret = new_secret()
        self.grants = Grants(storage.delegation())  # a secure HDFS's token, granted to the workers
        self.server: Replies | None = None
        self.rpc: dict[str, str] = {}
        self.trackers = list(trackers)
        self.previous, self.fingerprint = previous, fingerprint
        self._handlers: dict[type, Callable[[int, Any], None]] = {
            Register: self._on_register, Get: lambda conn, _: self.dispatcher.ask(conn), Metric: self.reports.on_metric,
            Final: self.reports.on_final, Log: self.reports.on_log, WorkerError: self._on_error,
            Rendezvous: self.dispatcher.rendezvous}

    # ---- lifecycle -------------------------------------------------------------------------

    def run(self) -> Result:
        # by default on where Spark encrypts its own traffic, and where a token crosses the channel
        tls = self.config.tls if self.config.tls is not None else (
            self.backend.network_encrypted() or self.grants.keeper is not None)
        identity = server_identity() if tls else None
        server, (advertised, advertised_port), self.rpc = listen(
            self.secret, self.inbox, self.backend.addresses, self.config.driver_address, self.config.driver_bind,
            identity)
        self.server, self.supervisor.advertised = server, self.rpc["advertised"]
        halves = tuple(h for h in (t.worker() for t in self.trackers) if h is not None)
        spec = WorkerSpec(advertised, advertised_port, self.secret, self.train_fn, self.signature,
                          self.config.optimization_key, self.config.hb_interval, halves,
                          self.config.system_metrics, self.config.dist_backend, self.config.dist_timeout,
                          identity.fingerprint if identity else None, str(self.objectives.directions[0]))
        self.writer.start()
        started, self._began = time.time(), time.monotonic()
        outcome, graceful = Outcome.FAILED, False
        try:
            self.storage.makedirs(self.storage.join(self.exp_dir, "trials"))
            self.grants.start()
            self.sched.restore(self.previous.changes if self.previous is not None else ())
            tracking = {t.name: dict(s) for t in self.trackers if (s := t.state()) is not None}
            self.callbacks.notify("on_experiment_start", ExperimentInfo(
                self.config.name, self.exp_dir, self.config.to_dict(), self.total, self.num_workers,
                tuple(t.view() for t in self.sched.trials.values()), self.stats.resumes, tracking or None,
                self.fingerprint, self.sched.optimizer.versions_checkpoints, self.rpc["advertised"]))
            self.sched.prepare()
            self.callbacks.flush()
            self.backend.start(spec, self.num_workers, self.config.name)
            self._loop()
            self.stats.ended(time.time())
            graceful = True
            self.failure = self.stopping.error or none_succeeded(self.config.name, [t.view() for t in self.sched.ended()])
            outcome = (Outcome.FAILED if self.failure else Outcome.STOPPED if self.stopping.stopped
                       else Outcome.FINISHED)
        except KeyboardInterrupt:
            outcome = Outcome.INTERRUPTED
            raise
        finally:
            try:
                self._shutdown(graceful)
                server.stop()
                self.grants.stop()
                self.sched.finalize()
                self.callbacks.flush()
                result = self.callbacks.end(self._result(started), outcome.value)
            finally:
                self.writer.close()
        if self.failure is not None:
            raise self.failure
        return result

    def _loop(self) -> None:
        next_es = time.monotonic() + self.config.es_interval
        while not self.sched.finished():
            try:
                self.handle(self.inbox.get(timeout=0.2))
                # what queued while the driver was busy is heard before silence is judged: those
                # workers were not silent
                for _ in range(MAX_DRAIN):
                    self.handle(self.inbox.get_nowait())
            except queue.Empty:
                pass
            self.writer.check()  # storage away past its outage: the experiment fails, naming it
            now = time.monotonic()
            self._check_stop(now)
            if now >= next_es:
                self.sched.check_early_stop()
                next_es = now + self.config.es_interval
            self.check_workers(now)
            self.callbacks.flush()

    def _check_stop(self, now: float) -> None:
        """Apply a stopping rule that has just come true: nothing more starts, running trials stop."""
        if reason := self.stopping.stops(now - self._began):
            log.info("maggy: stopping the experiment: %s", reason)
            self.sched.stop()

    def check_workers(self, now: float) -> None:
        """Act on a look at the workers (see :meth:`Supervisor.look`); the experiment fails when
        none can run."""
        assert self.config.hb_timeout is not None  # the config's default is set when it is built
        seen = self.supervisor.look(now, self.registry, hb_timeout=self.config.hb_timeout,
                                    trial_timeout=self.config.trial_timeout)
        for conn in seen.ask_again:
            self._reply(conn, Wait(retry_after=0.0))
        for trial_id, silence in seen.silent:
            if trial_id in self.sched.running:
                log.warning("maggy: a worker of trial %s was silent for %.0fs: the trial continues elsewhere",
                            trial_id, silence)
            self.dispatcher.lose(trial_id, "its worker was lost or silent")
        for trial_id in seen.overdue:
            if trial_id in self.sched.running:
                self.sched.request_stop(self.sched.running[trial_id])
        workers = len(self.registry.workers)  # judged once the losses above are applied
        failure = self.supervisor.check(now, finished=self.sched.finished(), quiet=self.inbox.empty(),
                                        workers=workers if workers >= self.per_trial else 0)
        if failure is not None:
            raise ExperimentFailedError(
                f"{failure} ({self.backend.failure() or 'no error reported'}); {len(self.sched.ended())} finished trials "
                f"are kept in {self.exp_dir}: run the same lagom call again to continue.{self.supervisor.unreached()}")

    def _reply(self, conn: int, message: Message) -> None:
        assert self.server is not None, "the driver replies only while it runs"
        self.server.reply(conn, self.grants.fresh(conn, message))

    def _shutdown(self, graceful: bool) -> None:
        """Answer DONE until the workers have ended, then make sure none is left."""
        if graceful:
            self.dispatcher.dispatch()  # the workers still waiting for a trial hear DONE
            deadline = time.monotonic() + SHUTDOWN_GRACE
            while self.backend.running() and time.monotonic() < deadline:
                try:
                    self.handle(self.inbox.get(timeout=0.1))
                except queue.Empty:
                    pass
        self.backend.cancel()
        self.backend.wait(10.0)

    def _changed(self, trial: Trial, transition: bool = True) -> None:
        """A state change (from the scheduler), or a new fact of a trial: its events, for after the reply."""
        view = trial.view()
        self.callbacks.queue("on_trial_change", view)
        if not transition:
            return
        if view.state is TrialState.RUNNING:
            self.callbacks.queue("on_trial_start", view)
        elif view.state.finished or view.state is TrialState.PAUSED:
            self.callbacks.queue("on_trial_end", view)
            self.stopping.observe(view)

    # ---- requests --------------------------------------------------------------------------

    def handle(self, inbound: Inbound) -> None:
        """One verified, typed message: reply, then tell the optimizer and the callbacks.

        Messages were validated on the RPC thread; an exception here is a maggy bug and ends
        the experiment with its traceback.
        """
        if inbound.message is None:
            self._disconnected(inbound.conn)
        else:
            self.registry.touch(inbound.conn, time.monotonic())
            self._handlers[type(inbound.message)](inbound.conn, inbound.message)
        self.callbacks.flush()

    def _on_register(self, conn: int, msg: Register) -> None:
        self.stats.registered(time.time())
        info = WorkerInfo(msg.worker, msg.host, msg.pid, tuple(msg.gpus), msg.executor)
        for trial_id in self.registry.register(conn, info, time.monotonic()):
            self.dispatcher.lose(trial_id, LOST)
        self._reply(conn, Welcome(self.grants.welcome(conn)))

    def _on_error(self, conn: int, msg: WorkerError) -> None:
        self._reply(conn, Ok())
        self.stats.worker_errors.append(msg.message)
        log.error("maggy worker %s: %s", msg.worker, msg.message)

    def _disconnected(self, conn: int) -> None:
        """A worker's connection dropped: the trial it was running is lost. Only that one: a
        worker of an aborted Spark job may still run a trial of the same partition, which the
        replacement job's worker for that partition must not take with it when it ends."""
        trial_id = self.registry.dropped(conn)
        if trial_id is not None:
            self.dispatcher.lose(trial_id, LOST)

    def _result(self, started: float) -> Result:
        stats = self.stats.figures(self.sched.ended(), started, self.total, self.registry, self.backend.describe(),
                                   getattr(self.server, "bad_frames", {}), self.rpc, self.stopping.stopped)
        stats["writes"] = {"calls": self.writer.calls, "retries": self.writer.retries}
        stats.update(self.sched.figures())
        if self.failure is not None:  # the journal keeps it: a re-run raises it again (see engine/setup.py)
            stats["failure"] = str(self.failure)
        stats.update(self.grants.stats())
        return Result.of(self.config.name, self.objectives, self.sched.trials.values(),
                         list(self.config.searchspace.names), as_given(self.exp_dir, self.config.experiment_dir), stats,
                         versioned_checkpoints=self.sched.optimizer.versions_checkpoints,
                         log_scale=[hp.name for hp in self.config.searchspace if hp.log])
