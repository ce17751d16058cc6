"""The driver: one event loop that owns the trial table and answers the workers.

The RPC thread only verifies and enqueues; this loop decides. On every request it replies
first (with a suggestion prepared ahead of time) and only then does the slow work: telling the
optimizer, writing the journal and trial logs, preparing the next suggestion.
"""

from __future__ import annotations

import collections
import json
import logging
import queue
import statistics
import time
from typing import Any, Callable

from maggy.backends.base import Backend
from maggy.config import HyperparameterOptConfig
from maggy.exceptions import ExperimentFailedError
from maggy.journal import Journal
from maggy.optimizers.base import DONE, WAIT
from maggy.progress import Counts, Progress
from maggy.result import Result, best_trial, trials_frame
from maggy.rpc.protocol import MsgType, new_secret
from maggy.rpc.server import Inbound, RpcServer
from maggy.scheduler import Scheduler
from maggy.storage import Storage
from maggy.tracking import MlflowTracker, TrackingSpec
from maggy.trainfn import Signature
from maggy.trial import IllegalTransition, Trial, TrialState
from maggy.worker import WorkerSpec

log = logging.getLogger(__name__)

#: Seconds a worker waits before asking again when no trial is ready.
WAIT_RETRY = 0.05
#: Seconds to let workers hear DONE and end their tasks before cancelling them.
SHUTDOWN_GRACE = 30.0


class Driver:
    """Runs one experiment on ``backend`` and returns its :class:`Result`."""

    def __init__(self, config: HyperparameterOptConfig, train_fn: Callable, signature: Signature,
                 backend: Backend, storage: Storage, exp_dir: str, *, verbose: bool = True,
                 tracker: MlflowTracker | None = None, tracking: TrackingSpec | None = None) -> None:
        self.config = config
        self.train_fn = train_fn
        self.signature = signature
        self.backend = backend
        self.storage = storage
        self.exp_dir = exp_dir
        self.journal = Journal(storage, storage.join(exp_dir, "journal.jsonl"))
        optimizer = config.make_optimizer()
        self.total = config.total_trials(optimizer)
        self.sched = Scheduler(optimizer, config.make_policy(), total=self.total, direction=config.direction,
                               on_change=lambda t: self._changes.append(t.to_record()))
        self._changes: list[dict[str, Any]] = []
        self.num_workers = min(config.num_workers or backend.num_slots(), self.total)
        self.progress = Progress(config.name, verbose)
        self.inbox: queue.Queue[Inbound] = queue.Queue()
        self.workers: dict[int, dict[str, Any]] = {}
        self.registered: list[dict[str, Any]] = []
        self.worker_errors: list[str] = []
        self.secret = new_secret()
        self.server: RpcServer | None = None
        self.tracker = tracker
        self.tracking = tracking

    # ---- lifecycle -------------------------------------------------------------------------

    def run(self) -> Result:
        bind, advertised = self.backend.addresses()
        self.server = RpcServer(self.secret, self.inbox, host=bind).start()
        spec = WorkerSpec(advertised, self.server.address[1], self.secret, self.train_fn, self.signature,
                          self.config.optimization_key, self.config.hb_interval, self.tracking)
        self.storage.makedirs(self.storage.join(self.exp_dir, "trials"))
        self.journal.append("experiment_start", config=self.config.to_dict(), total=self.total,
                            num_workers=self.num_workers)
        self.sched.prepare()
        started = time.time()
        outcome = "interrupted"
        try:
            self.backend.start(spec, self.num_workers, self.config.name)
            self._loop()
            outcome = "finished"
        except ExperimentFailedError:
            outcome = "failed"
            raise
        finally:
            self._shutdown(outcome == "finished")
            self.sched.finalize()
            self._write_changes()
            result = self._result(started)
            self._save(result, outcome)
            if self.tracker is not None:  # may wait for MLflow: everything is on disk already
                self._finish_tracking(result, outcome)
                self._save(result, outcome)
            self.journal.append("experiment_end", outcome=outcome, stats=result.stats)
            self.progress.close(self._counts)
        return result

    def _save(self, result: Result, outcome: str) -> None:
        self.storage.write_text(self.storage.join(self.exp_dir, "result.json"),
                                json.dumps({**result.to_dict(), "outcome": outcome,
                                            "trials": [t.to_record() for t in self.sched.trials.values()]},
                                           indent=1, default=str))

    def _finish_tracking(self, result: Result, outcome: str) -> None:
        summary = {"best_metric": result.best_metric, "trials": len(result.trials),
                   **{f"trials_{k.lower()}": v for k, v in result.stats["states"].items()}}
        report = self.tracker.finish(
            summary, status={"finished": "FINISHED", "interrupted": "KILLED"}.get(outcome, "FAILED"),
            best_trial_id=result.best_trial_id, register_model=self.config.register_model)
        result.stats["tracking"] = report
        result.best_run_id, result.model_uri = report["best_run_id"], report["model_uri"]

    def _loop(self) -> None:
        next_es = time.monotonic() + self.config.es_interval
        while not self.sched.finished():
            try:
                msg = self.inbox.get(timeout=0.2)
            except queue.Empty:
                msg = None
            if msg is not None:
                self._handle(msg)
            now = time.monotonic()
            if now >= next_es:
                self.sched.check_early_stop()
                next_es = now + self.config.es_interval
            self.backend.relaunch_failed()
            if not self.backend.running() and self.inbox.empty():
                raise ExperimentFailedError(
                    f"All workers ended before the experiment finished "
                    f"({self.backend.failure() or 'no error reported'}); "
                    f"{len(self.sched.ended())} finished trials are kept in {self.exp_dir}.")
            self.progress.update(self._counts)

    def _shutdown(self, graceful: bool) -> None:
        """Answer DONE until the workers have ended, then make sure none is left."""
        if graceful:
            deadline = time.monotonic() + SHUTDOWN_GRACE
            while self.backend.running() and time.monotonic() < deadline:
                try:
                    self._handle(self.inbox.get(timeout=0.1))
                except queue.Empty:
                    pass
        self.backend.cancel()
        self.backend.wait(10.0)
        if self.server is not None:
            self.server.stop()

    # ---- requests --------------------------------------------------------------------------

    def _handle(self, msg: Inbound) -> None:
        if msg.mtype is None:
            self._disconnected(msg.conn)
            return
        handler = {
            MsgType.REGISTER: self._on_register, MsgType.GET: self._on_get,
            MsgType.METRIC: self._on_metric, MsgType.FINAL: self._on_final,
            MsgType.LOG: self._on_log, MsgType.ERROR: self._on_error,
        }.get(msg.mtype)
        if handler is None:
            self.server.close_connection(msg.conn)
            return
        try:
            handler(msg)
        except (KeyError, TypeError, ValueError, IllegalTransition) as exc:  # malformed but authentic
            log.warning("maggy: dropped a malformed %s message: %s", msg.mtype.name, exc)
            self.server.close_connection(msg.conn)
        self._write_changes()

    def _write_changes(self) -> None:
        """Journal the trial state changes of the last message, after its reply has gone out."""
        if self._changes:
            changes, self._changes = self._changes, []
            self.journal.append_trials(changes)

    def _on_register(self, msg: Inbound) -> None:
        b = msg.body
        partition = int(b["worker"])
        for trial in self.sched.running_on(partition):  # the task was relaunched: its trial was lost
            self.sched.lose(trial)
        self.workers[msg.conn] = {"partition": partition, "host": str(b.get("host")), "pid": b.get("pid"),
                                  "gpus": b.get("gpus") or []}
        self.registered.append(self.workers[msg.conn])
        self.server.reply(msg.conn, MsgType.OK, {})
        self.journal.append("worker", **self.workers[msg.conn])

    def _on_get(self, msg: Inbound) -> None:
        self._hand_out(msg.conn)

    def _on_metric(self, msg: Inbound) -> None:
        trial = self.sched.running.get(msg.body["trial_id"])
        stop = trial is not None and trial.stop_requested
        self.server.reply(msg.conn, MsgType.STOP if stop else MsgType.OK, {})
        if trial is not None:
            self._record_report(trial, msg.body)

    def _on_final(self, msg: Inbound) -> None:
        b = msg.body
        trial = self.sched.record_end(
            b["trial_id"], b["state"],
            metric=None if b.get("metric") is None else float(b["metric"]),
            extra=dict(b.get("extra") or {}), error=b.get("error"),
            start=b.get("start"), end=b.get("end"), handoff=b.get("handoff"))
        self._hand_out(msg.conn)
        if trial is None:  # a late report of a trial already re-queued
            return
        # off the reply path from here on
        self._record_report(trial, b)
        if self.tracker is not None:
            self.tracker.trial_ended(trial, self.config.optimization_key)
        self._write_log(trial, b.get("logs") or [], trial.error)
        self.sched.learn(trial)
        self.progress.update(self._counts, force=True)

    def _record_report(self, trial: Trial, body: dict[str, Any]) -> None:
        """The metric points a METRIC or FINAL carries, into the trial table and the tracker."""
        points = body.get("points") or []
        self.sched.record_points(trial, points)
        if self.tracker is not None:
            self.tracker.bind(trial, body.get("run_id"))
            self.tracker.metrics(trial, points)

    def _on_log(self, msg: Inbound) -> None:
        self.server.reply(msg.conn, MsgType.OK, {})
        trial = self.sched.trials.get(msg.body["trial_id"])
        if trial is not None:
            self._write_log(trial, [str(x) for x in msg.body.get("lines") or []])

    def _on_error(self, msg: Inbound) -> None:
        self.server.reply(msg.conn, MsgType.OK, {})
        self.worker_errors.append(str(msg.body.get("message")))
        log.error("maggy worker %s: %s", msg.body.get("worker"), msg.body.get("message"))

    def _disconnected(self, conn: int) -> None:
        worker = self.workers.pop(conn, None)
        if worker is not None:
            for trial in self.sched.running_on(worker["partition"]):
                self.sched.lose(trial)

    # ---- trials ----------------------------------------------------------------------------

    def _hand_out(self, conn: int) -> None:
        """Reply TRIAL, WAIT or DONE to the worker on ``conn``."""
        worker = self.workers.get(conn)
        if worker is None:  # never registered: nothing to give it
            self.server.reply(conn, MsgType.DONE, {})
            return
        trial = self.sched.next_trial(worker["partition"], worker["host"])
        if trial == DONE or trial == WAIT:
            self.server.reply(conn, MsgType.DONE if trial == DONE else MsgType.WAIT,
                              {"retry_after": WAIT_RETRY})
            return
        self.server.reply(conn, MsgType.TRIAL, {
            "trial_id": trial.trial_id, "params": trial.params, "budget": trial.budget,
            "next_step": trial.history[-1][0] + 1 if trial.history else 0,
            "run_id": self.tracker.run_id(trial) if self.tracker is not None else None,
            "checkpoint_dir": self.storage.join(self.exp_dir, "trials", trial.trial_id)})

    def _write_log(self, trial: Trial, lines: list[str], error: dict | None = None) -> None:
        if error:
            lines = [*lines, f"{error['type']}: {error['message']}", error.get("traceback", "")]
        if lines:
            self.storage.append_lines(self.storage.join(self.exp_dir, "trials", f"{trial.trial_id}.log"), lines)

    # ---- reporting -------------------------------------------------------------------------

    def _counts(self) -> Counts:
        done = self.sched.ended()
        best = best_trial(done, self.config.direction)
        return Counts(done=len(done), total=self.total, running=len(self.sched.running),
                      early_stopped=sum(t.state is TrialState.EARLY_STOPPED for t in done),
                      failed=sum(t.state is TrialState.ERROR for t in done),
                      best=None if best is None else best.metric)

    def _result(self, started: float) -> Result:
        done = self.sched.ended()
        best = best_trial(done, self.config.direction)
        handoffs = sorted(t.handoff for t in done if t.handoff is not None)
        stats: dict[str, Any] = {
            "makespan": time.time() - started, "num_workers": self.num_workers,
            "total_trials": self.total,
            "states": dict(collections.Counter(t.state.value for t in done)),
            "bad_frames": dict(self.server.bad_frames) if self.server else {},
            "workers": [dict(w) for w in self.registered],
            "worker_errors": self.worker_errors,
            **self.backend.describe(),
        }
        if handoffs:
            stats["handoff_p50_ms"] = 1000 * statistics.median(handoffs)
            stats["handoff_p99_ms"] = 1000 * handoffs[min(len(handoffs) - 1, int(0.99 * len(handoffs)))]
        return Result(
            name=self.config.name, direction=self.config.direction,
            best_params=None if best is None else dict(best.params),
            best_metric=None if best is None else best.metric,
            best_trial_id=None if best is None else best.trial_id,
            trials=trials_frame(self.sched.trials.values(), self.config.searchspace.names),
            experiment_dir=self.exp_dir, stats=stats)
