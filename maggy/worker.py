"""The worker loop that runs inside one long-lived task (a Spark task or a local process).

It registers with the driver, asks for a trial, runs ``train_fn`` in its main thread while a
heartbeat thread reports metrics and hears STOP, and sends FINAL, whose reply is the next
trial. It ends when the driver says DONE or goes away.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from maggy.exceptions import EarlyStopped
from maggy.reporter import Reporter
from maggy.rpc.client import RpcClient
from maggy.rpc.protocol import MsgType
from maggy.storage import storage_for
from maggy.tracking import TrackingSpec, trial_run
from maggy.trainfn import Signature, parse_return
from maggy.trial import TrialState

_TRACEBACK_LIMIT = 64 * 1024


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs; it travels to executors inside Spark's task closure."""

    host: str
    port: int
    secret: bytes
    train_fn: Callable
    signature: Signature
    optimization_key: str
    hb_interval: float
    tracking: TrackingSpec | None = None


class _Checkpoint:
    """A trial's checkpoint directory as a local path for ``train_fn``.

    On local storage that is the directory itself; on HDFS, a temporary copy that is filled
    before the run and copied back after it.
    """

    def __init__(self, location: str) -> None:
        self.location = location
        self.storage = storage_for(location)
        if self.storage.is_local:
            self.local = location
            os.makedirs(location, exist_ok=True)
        else:
            self.local = tempfile.mkdtemp(prefix="maggy-checkpoint-")
            self.storage.download_dir(location, self.local)

    def save(self) -> None:
        if not self.storage.is_local:
            self.storage.makedirs(self.location)
            self.storage.upload_dir(self.local, self.location)
            shutil.rmtree(self.local, ignore_errors=True)


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
                return


class _Worker:
    def __init__(self, spec: WorkerSpec, partition: int, gpus: list[str] | None) -> None:
        self.spec = spec
        self.partition = partition
        self.gpus = gpus or []
        self.client = RpcClient(spec.host, spec.port, spec.secret)
        self.send_lock = threading.Lock()
        self.current: Reporter | None = None
        self.run_id: str | None = None

    def request(self, mtype: MsgType, **body: Any) -> tuple[MsgType, dict[str, Any]]:
        return self.client.request(mtype, {"worker": self.partition, **body})

    def beat(self) -> None:
        with self.send_lock:
            rep = self.current
            if rep is None:
                return
            points, logs = rep.take()
            if logs:
                self.request(MsgType.LOG, trial_id=rep.trial_id, lines=logs)
            reply, _ = self.request(MsgType.METRIC, trial_id=rep.trial_id, points=points, run_id=self.run_id)
        if reply is MsgType.STOP:
            rep.request_stop()

    def run(self) -> None:
        self.request(MsgType.REGISTER, host=socket.gethostname(), pid=os.getpid(), gpus=self.gpus)
        heartbeat = _Heartbeat(self)
        heartbeat.start()
        try:
            reply, body = self.request(MsgType.GET)
            handoff_from: float | None = None
            while reply is not MsgType.DONE:
                if reply is MsgType.WAIT:
                    time.sleep(float(body.get("retry_after", 0.1)))
                    reply, body = self.request(MsgType.GET)
                    handoff_from = None
                    continue
                if reply is not MsgType.TRIAL:
                    raise RuntimeError(f"unexpected reply {reply.name} from the maggy driver")
                handoff = None if handoff_from is None else time.perf_counter() - handoff_from
                final = self.run_trial(body, handoff)
                with self.send_lock:
                    handoff_from = time.perf_counter()
                    reply, body = self.request(MsgType.FINAL, **final)
        finally:
            heartbeat.done.set()

    def run_trial(self, trial: dict[str, Any], handoff: float | None) -> dict[str, Any]:
        start = time.time()
        metric, extra, error = None, {}, None
        self.run_id = None
        rep = Reporter(trial["trial_id"], trial["params"], trial.get("budget"), None, int(trial.get("next_step") or 0))
        try:  # storage trouble fails this trial, never the worker
            checkpoint = _Checkpoint(trial["checkpoint_dir"])
            rep.checkpoint_dir = checkpoint.local
            state, metric, extra, error = self._call(trial, rep)
            checkpoint.save()
        except Exception as exc:
            if error is None:
                where = trial["checkpoint_dir"]
                error = {"type": type(exc).__name__, "message": f"checkpoint {where}: {exc}",
                         "traceback": traceback.format_exc()[-_TRACEBACK_LIMIT:]}
            state = TrialState.ERROR
        end = time.time()
        with self.send_lock:
            self.current = None
            points, logs = rep.take()
        return {"trial_id": rep.trial_id, "state": state.value, "metric": metric, "extra": extra,
                "error": error, "points": points, "logs": logs, "start": start, "end": end,
                "handoff": handoff, "run_id": self.run_id}

    def _call(self, trial: dict[str, Any], rep: Reporter) -> tuple[TrialState, float | None, dict, dict | None]:
        """Run ``train_fn`` in the trial's MLflow run; its exceptions fail the trial."""
        kwargs = dict(trial["params"])
        if self.spec.signature.wants_reporter:
            kwargs["reporter"] = rep
        if self.spec.signature.wants_budget:
            kwargs["budget"] = trial.get("budget")
        with trial_run(self.spec.tracking, rep.trial_id, trial.get("run_id")) as run_id:
            self.run_id = run_id
            self.current = rep
            try:
                metric, extra = parse_return(self.spec.train_fn(**kwargs), self.spec.optimization_key)
                return (TrialState.EARLY_STOPPED if rep.stop_requested else TrialState.FINALIZED), metric, extra, None
            except EarlyStopped:
                return TrialState.EARLY_STOPPED, (rep.last[1] if rep.last else None), {}, None
            except Exception as exc:  # a failing trial fails that trial only
                return TrialState.ERROR, None, {}, {"type": type(exc).__name__, "message": str(exc),
                                                    "traceback": traceback.format_exc()[-_TRACEBACK_LIMIT:]}


def worker_main(spec: WorkerSpec, partition: int, gpus: list[str] | None = None) -> None:
    """Serve trials from the driver at ``spec.host:spec.port`` until it says DONE.

    A failure outside ``train_fn`` is reported to the driver as ERROR, then raised, so that
    the backend sees the worker fail.
    """
    worker = _Worker(spec, partition, gpus)
    try:
        worker.run()
    except Exception as exc:
        try:
            worker.request(MsgType.ERROR, message=f"{type(exc).__name__}: {exc}",
                           traceback=traceback.format_exc()[-_TRACEBACK_LIMIT:])
        except (OSError, ConnectionError, ValueError):
            pass
        raise
    finally:
        worker.client.close()
