"""The worker loop that runs inside one long-lived task (a Spark task or a local process).

It registers with the driver, asks for a trial, runs ``train_fn`` in its main thread while a
heartbeat thread reports metrics and hears STOP, and sends FINAL, whose reply is the next
trial. It ends when the driver says DONE or goes away.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from maggy.exceptions import EarlyStopped
from maggy.rpc.client import RpcClient
from maggy.rpc.messages import (
    MAX_LINES,
    MAX_POINTS,
    Assignment,
    Done,
    Final,
    Get,
    Log,
    Message,
    Metric,
    Register,
    Rendezvous,
    Stop,
    Wait,
    WorkerError,
)
from maggy.runtime.capture import captured
from maggy.runtime.checkpoint import TrialCheckpoint
from maggy.runtime.gang import GangAborted, ProcessGroup, Rank, peer_failure
from maggy.runtime.reporter import Reporter, truncate
from maggy.runtime.tracking import TrialTracking, trial_runs
from maggy.runtime.trainfn import Signature, parse_return
from maggy.runtime.usage import UsageSampler
from maggy.store import hdfs_auth
from maggy.trial import TrialState, error_record, exception_record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs; it travels to executors inside Spark's task closure."""

    host: str
    port: int
    secret: bytes
    train_fn: Callable
    signature: Signature
    optimization_key: str | list[str]
    hb_interval: float
    #: The trackers' worker halves, entered around every run of ``train_fn``.
    trackers: tuple[TrialTracking, ...] = ()
    #: Sample system metrics (see maggy.runtime.usage): True, False, or None for "where a GPU is visible".
    system_metrics: bool | None = None
    #: The process group of a gang (see maggy.runtime.gang): its backend, and how long a rank waits for a peer.
    dist_backend: str = "auto"
    dist_timeout: float = 300.0
    #: The SHA-256 of the driver's certificate, which the worker pins; None: the channel is plain TCP.
    tls_fingerprint: bytes | None = None
    #: Whether the experiment maximises or minimises what a trial reports ("max" or "min").
    direction: str = "max"


class _Heartbeat(threading.Thread):
    """Sends the current trial's new metrics and logs every ``hb_interval`` and hears STOP."""

    def __init__(self, worker: "_Worker") -> None:
        super().__init__(name="maggy-heartbeat", daemon=True)
        self.worker = worker
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.worker.spec.hb_interval):
            try:
                self.worker.beat()
            except (OSError, ConnectionError):
                return  # the driver is gone
            except Exception:  # noqa: BLE001 - the heartbeat must outlive any one bad report
                log.exception("maggy: a heartbeat failed; its reports are kept for the next one")


class _Worker:
    def __init__(self, spec: WorkerSpec, partition: int, gpus: list[str] | None) -> None:
        self.spec = spec
        self.partition = partition
        self.gpus = gpus or []
        self.client = RpcClient(spec.host, spec.port, spec.secret, tls_fingerprint=spec.tls_fingerprint)
        self.send_lock = threading.Lock()
        self.current: Reporter | None = None
        self.checkpoint: TrialCheckpoint | None = None
        self.run_id: str | None = None
        self.usage = UsageSampler.create(spec.system_metrics)

    def request(self, message: Message) -> Message:
        """The driver's reply to ``message``; grants it carries (WELCOME's, and a replaced secure
        HDFS token on an OK, STOP or TRIAL) are installed, for checkpoints and artifacts."""
        reply = self.client.request(message)
        grants = getattr(reply, "grants", ())
        if grants:
            hdfs_auth.install(list(grants))
        return reply

    def beat(self) -> None:
        """Send what the trial reported since the last beat; what could not be sent is put back."""
        with self.send_lock:
            rep = self.current
            if rep is None:
                return
            *_, stop = self._send_reports(rep, keep=0)
        if stop:
            rep.request_stop()

    def _send_reports(self, rep: Reporter, keep: int) -> tuple[list[list], list[str], bool]:
        """Send the trial's new log lines and metric points in bounded messages until ``keep``
        batches of each are left (with ``keep=0``, at least one METRIC: the heartbeat); return
        those and whether the driver said STOP. What could not be sent goes back to ``rep``."""
        points, logs = rep.take()
        stop = False
        try:
            while len(logs) > keep * MAX_LINES:
                self.request(Log(self.partition, rep.trial_id, tuple(logs[:MAX_LINES])))
                logs = logs[MAX_LINES:]
            beats = 0
            while len(points) > keep * MAX_POINTS or (not keep and not beats):
                complete = self.checkpoint.complete if self.checkpoint is not None else None
                system = self._system() if not keep and not beats else ()
                reply = self.request(Metric(self.partition, rep.trial_id, _points(points[:MAX_POINTS]),
                                            self.run_id, complete, system))
                points, stop, beats = points[MAX_POINTS:], stop or isinstance(reply, Stop), beats + 1
        except BaseException:
            rep.untake(points, logs)
            raise
        return points, logs, stop

    def _system(self) -> tuple[tuple[str, float], ...]:
        """A sample of the system metrics, when they are on."""
        return () if self.usage is None else tuple(self.usage.sample().items())

    def run(self) -> None:
        self.request(Register(self.partition, socket.gethostname(), os.getpid(), tuple(self.gpus), executor_id()))
        heartbeat = _Heartbeat(self)
        heartbeat.start()
        try:
            reply: Message = self.request(Get(self.partition))
            handoff_from: float | None = None
            while not isinstance(reply, Done):
                if isinstance(reply, Wait):
                    time.sleep(reply.retry_after)
                    reply = self.request(Get(self.partition))
                    handoff_from = None
                    continue
                if not isinstance(reply, Assignment):
                    raise RuntimeError(f"unexpected reply {reply.TYPE.name} from the maggy driver")
                handoff = None if handoff_from is None else time.perf_counter() - handoff_from
                final = self.run_trial(reply, handoff)
                with self.send_lock:
                    handoff_from = time.perf_counter()
                    reply = self.request(final)
        finally:
            heartbeat.done.set()
            if self.usage is not None:
                self.usage.close()

    def run_trial(self, trial: Assignment, handoff: float | None) -> Final:
        start = time.time()
        metric: float | None = None
        extra: dict[str, Any] = {}
        error: dict[str, str] | None = None
        peer = False
        self.run_id = None
        gang: ProcessGroup | None = None
        rep = Reporter(trial.trial_id, trial.params, trial.budget, None, trial.next_step, rank=trial.rank,
                       world_size=trial.world_size, direction=self.spec.direction)
        if self.usage is not None:
            self.usage.begin()
        self.current = rep  # heartbeats from now on, while a gang forms and a checkpoint downloads too
        checkpoint = None
        stage = "checkpoint"
        try:  # storage and gang trouble fail this trial, never the worker
            checkpoint = self.checkpoint = TrialCheckpoint(trial.checkpoint_dir, trial.restore_from,
                                                           writer=trial.rank == 0)
            rep.checkpoint_dir = checkpoint.open  # made when train_fn first asks for it
            rep.on_checkpoint = checkpoint.mark
            try:
                if trial.world_size > 1:
                    stage = "gang"
                    gang = ProcessGroup(Rank(trial.rank, trial.world_size, trial.local_rank, trial.local_world_size,
                                             trial.attempt), self.spec.dist_backend, self.spec.dist_timeout)
                    rep.agree = gang.agree
                    self._join(trial, gang)
                state, metric, extra, error, peer = self._call(trial, rep)
            finally:
                if gang is not None:
                    gang.close()
            stage = "checkpoint"
            checkpoint.finish()
        except Exception as exc:
            if error is None:
                peer = peer_failure(exc)
                error = exception_record(exc, f"checkpoint {trial.checkpoint_dir}: {exc}" if stage == "checkpoint"
                                         else None)
            state = TrialState.ERROR
        end = time.time()
        if error is not None:
            error = {**error, "type": error["type"][:255], "message": truncate(error["message"])}
        too_big = _oversized(extra)
        if too_big is not None:
            state, metric, extra, error = TrialState.ERROR, None, {}, error_record("OutputTooLarge", too_big)
        with self.send_lock:
            points, logs, _ = self._send_reports(rep, keep=1)  # the FINAL carries the last batch
            self.current, self.checkpoint = None, None
        return Final(self.partition, rep.trial_id, state, start, end, metric=metric, extra=extra, error=error,
                     points=_points(points), logs=tuple(logs), handoff=handoff, run_id=self.run_id,
                     checkpoint=None if checkpoint is None else checkpoint.complete, system=self._system(),
                     peer_failure=peer)

    def _join(self, trial: Assignment, gang: ProcessGroup) -> None:
        """Take this worker's rank in the trial's process group: rank 0 opens the attempt's store
        and tells the driver where; the others were told with their assignment."""
        if trial.rank == 0:
            host = self.client.local_host
            port = gang.open_store(host)
            if isinstance(self.request(Rendezvous(self.partition, trial.trial_id, trial.attempt, host, port)),
                          Stop):
                raise GangAborted(f"attempt {trial.attempt} of trial {trial.trial_id} ended before its gang formed")
        else:
            assert trial.master_addr is not None and trial.master_port is not None, "the driver sends rank 0's store"
            gang.join_store(trial.master_addr, trial.master_port)
        gang.init()

    def _call(self, trial: Assignment, rep: Reporter) -> tuple[TrialState, float | None, dict, dict | None, bool]:
        """Run ``train_fn`` inside the trackers' worker halves (MLflow's run), its output captured (see
        :mod:`maggy.runtime.capture`); its exceptions fail the trial. Returns the
        state, metric, extra values, error, and whether the error came from a failed peer. In a
        gang only rank 0 has a tracked run and a returned value that counts."""
        kwargs = dict(trial.params)
        if self.spec.signature.wants_reporter:
            kwargs["reporter"] = rep
        if self.spec.signature.wants_budget:
            kwargs["budget"] = trial.budget
        chief = trial.rank == 0
        # what train_fn prints and logs goes to the trial's log, with the reporter's lines
        with captured(rep.log), trial_runs(self.spec.trackers, rep.trial_id, trial.run_id, trial.run_name,
                                           trial.world_size, chief, trial.first_run) as run_id:
            self.run_id = run_id
            self.current = rep
            try:
                value = self.spec.train_fn(**kwargs)
                metric, extra = parse_return(value, self.spec.optimization_key) if chief else (None, {})
                state = TrialState.EARLY_STOPPED if rep.stop_requested else TrialState.FINALIZED
                return state, metric, extra, None, False
            except EarlyStopped:
                return TrialState.EARLY_STOPPED, (rep.last[1] if rep.last and chief else None), {}, None, False
            except Exception as exc:  # a failing trial fails that trial only
                return TrialState.ERROR, None, {}, exception_record(exc), peer_failure(exc)


def executor_id() -> str | None:
    """The Spark executor this process serves: ``driver`` in local mode, the ``--executor-id`` of
    the executor JVM above this Python worker on a cluster, None elsewhere (Linux's /proc)."""
    pid = os.getppid()
    for _ in range(3):  # Python worker -> pyspark daemon -> executor JVM
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().decode(errors="replace").split("\0")
            with open(f"/proc/{pid}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return None
        if "--executor-id" in args:
            return args[args.index("--executor-id") + 1]
        if any(a.endswith("SparkSubmit") for a in args):
            return "driver"
        pid = parent
    return None


#: The JSON size of one value train_fn returns beside its metric, and of all of them.
MAX_EXTRA_VALUE = 64 * 1024
MAX_EXTRA = 1024 * 1024


def _oversized(extra: dict[str, Any]) -> str | None:
    """Why the extra values train_fn returned cannot travel, or None."""
    advice = "save large outputs to reporter.checkpoint_dir or MLflow instead"
    total = 0
    for key, value in extra.items():
        size = len(json.dumps(value, default=str))
        if size > MAX_EXTRA_VALUE:
            return (f"train_fn returned {key!r} of {size} bytes beside its metric; values are limited to "
                    f"{MAX_EXTRA_VALUE} bytes: {advice}")
        total += size + len(json.dumps(key))
    if total > MAX_EXTRA:
        return (f"train_fn returned {len(extra)} values of {total} bytes beside its metric; together they are "
                f"limited to {MAX_EXTRA} bytes: {advice}")
    return None


def _points(points: list[list]) -> tuple[tuple[int, float], ...]:
    return tuple((int(s), float(v)) for s, v in points)


def worker_main(spec: WorkerSpec, partition: int, gpus: list[str] | None = None) -> None:
    """Serve trials from the driver at ``spec.host:spec.port`` until it says DONE.

    A failure outside ``train_fn`` is reported to the driver as ERROR, then raised, so that
    the backend sees the worker fail.
    """
    worker = _Worker(spec, partition, gpus)
    try:
        worker.run()
    except Exception as exc:
        record = exception_record(exc)
        try:
            worker.client.request(WorkerError(partition, f"{record['type']}: {record['message']}", record["traceback"]))
        except (OSError, ConnectionError, ValueError):
            pass
        raise
    finally:
        worker.client.close()
