"""A trial and its state machine: every state change goes through ``Trial.transition``."""

from __future__ import annotations

import enum
import hashlib
import json
import traceback as tb
import types
from dataclasses import dataclass, field
from typing import Any, Mapping

#: Characters of a traceback kept with a failed trial (its end).
TRACEBACK_LIMIT = 64 * 1024


class TrialState(str, enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    FINALIZED = "FINALIZED"
    EARLY_STOPPED = "EARLY_STOPPED"
    ERROR = "ERROR"
    LOST = "LOST"
    PAUSED = "PAUSED"

    @property
    def finished(self) -> bool:
        return self in (TrialState.FINALIZED, TrialState.EARLY_STOPPED, TrialState.ERROR)


_ALLOWED = {
    TrialState.PENDING: {TrialState.RUNNING},
    TrialState.RUNNING: {TrialState.FINALIZED, TrialState.EARLY_STOPPED, TrialState.ERROR,
                         TrialState.LOST, TrialState.PAUSED},
    TrialState.LOST: {TrialState.PENDING, TrialState.ERROR},
    # a multi-fidelity run ended below the top budget: it may be promoted, else it is finalized
    TrialState.PAUSED: {TrialState.PENDING, TrialState.FINALIZED},
    TrialState.FINALIZED: set(),
    TrialState.EARLY_STOPPED: set(),
    TrialState.ERROR: set(),
}


class IllegalTransition(RuntimeError):
    """A state change the trial state machine does not allow (a maggy bug, never user input)."""


def trial_id_for(params: dict[str, Any], budget: float | None = None, parent: str | None = None) -> str:
    """Stable id of a parameter point (and budget, and the trial whose checkpoint it starts from):
    the same point always gets the same id."""
    key: dict[str, Any] = {"params": params} if budget is None else {"params": params, "budget": budget}
    if parent is not None:
        key["parent"] = parent
    blob = json.dumps(key, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def checkpoint_name(trial_id: str, budget: float | None, versioned: bool) -> str:
    """The directory (under ``trials/``) of a trial's run at ``budget``: one per trial, or one
    per run when the optimizer versions checkpoints (PBT).

    >>> checkpoint_name("a1", 4, versioned=True), checkpoint_name("a1", 4, versioned=False)
    ('a1@4', 'a1')
    """
    return f"{trial_id}@{budget:g}" if versioned else trial_id


def error_record(kind: str, message: str, traceback: str = "") -> dict[str, str]:
    """A failed trial's error as the journal, the results and the wire hold it."""
    return {"type": kind, "message": message, "traceback": traceback[-TRACEBACK_LIMIT:]}


def exception_record(exc: BaseException, message: str | None = None) -> dict[str, str]:
    """:func:`error_record` of an exception, with its traceback."""
    return error_record(type(exc).__name__, str(exc) if message is None else message,
                        "".join(tb.format_exception(exc)))


class _Facts:
    """What trials and their frozen views derive from their fields."""

    trial_id: str
    params: Any
    budget: float | None
    state: TrialState
    metric: float | None
    extra: Any
    history: Any
    start: float | None
    end: float | None
    worker: int | None
    host: str | None
    error: Any
    handoff: float | None
    attempts: int
    rungs: Any
    run_id: str | None
    run_start: int
    resumes: int
    asks: int
    checkpoint_step: int | None
    executor: str | None
    parent: str | None
    parent_budget: float | None
    rung_steps: Any
    number: int
    runs: Any
    usage: Any

    @property
    def last_metric(self) -> float | None:
        return self.history[-1][1] if self.history else None

    @property
    def steps(self) -> int:
        return len(self.history)

    @property
    def duration(self) -> float | None:
        return None if self.start is None or self.end is None else self.end - self.start

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready snapshot, as written to the journal and result.json."""
        return {
            "trial_id": self.trial_id, "params": dict(self.params), "budget": self.budget,
            "state": self.state.value, "metric": self.metric, "extra": dict(self.extra),
            "history": [list(p) for p in self.history], "start": self.start, "end": self.end,
            "worker": self.worker, "host": self.host, "error": None if self.error is None else dict(self.error),
            "handoff": self.handoff, "attempts": self.attempts,
            "rungs": [list(r) for r in self.rungs], "run_id": self.run_id, "run_start": self.run_start,
            "resumes": self.resumes, "asks": self.asks, "checkpoint_step": self.checkpoint_step,
            "executor": self.executor, "parent": self.parent, "parent_budget": self.parent_budget,
            "rung_steps": list(self.rung_steps), "runs": [list(r) for r in self.runs], "usage": dict(self.usage),
        }


@dataclass(frozen=True)
class FrozenTrial(_Facts):
    """A read-only snapshot of a trial: what optimizers, stopping policies and callbacks get.

    >>> view = FrozenTrial("a1", {"x": 0.5}, history=((0, 0.1), (1, 0.3)))
    >>> view.steps, view.last_metric
    (2, 0.3)
    """

    trial_id: str
    params: Mapping[str, Any]
    budget: float | None = None
    state: TrialState = TrialState.PENDING
    metric: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    history: tuple[tuple[int, float], ...] = ()
    start: float | None = None
    end: float | None = None
    worker: int | None = None
    host: str | None = None
    error: Mapping[str, str] | None = None
    attempts: int = 0
    rungs: tuple[tuple[float, float], ...] = ()
    run_id: str | None = None
    handoff: float | None = None
    run_start: int = 0
    resumes: int = 0
    asks: int = 1
    checkpoint_step: int | None = None
    executor: str | None = None
    parent: str | None = None
    parent_budget: float | None = None
    rung_steps: tuple[int, ...] = ()
    number: int = 0
    runs: tuple[tuple[float, float, int | None, str], ...] = ()
    usage: Mapping[str, float] = field(default_factory=dict)


@dataclass
class Trial(_Facts):
    """One evaluation of ``train_fn`` at ``params``, owned by the scheduler; everyone else gets
    a :class:`FrozenTrial` from :meth:`view`."""

    trial_id: str
    params: dict[str, Any]
    budget: float | None = None
    state: TrialState = TrialState.PENDING
    metric: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    history: list[tuple[int, float]] = field(default_factory=list)
    start: float | None = None
    end: float | None = None
    worker: int | None = None
    host: str | None = None
    error: dict[str, str] | None = None
    stop_requested: bool = False
    handoff: float | None = None
    attempts: int = 0
    #: (budget, metric) of each completed multi-fidelity run, lowest budget first.
    rungs: list[tuple[float, float]] = field(default_factory=list)
    #: Index in ``history`` where the current run's points begin.
    run_start: int = 0
    #: The trial's MLflow run, once its worker opened one.
    run_id: str | None = None
    #: How often the trial was continued after its driver stopped (a resumed experiment).
    resumes: int = 0
    #: How many suggestions the optimizer made to produce this trial (rejected duplicates too),
    #: so that a resume replays the optimizer's random draws exactly.
    asks: int = 1
    #: The step of the latest complete checkpoint ``reporter.checkpoint()`` marked.
    checkpoint_step: int | None = None
    #: The Spark executor of the worker that ran the latest run.
    executor: str | None = None
    #: The trial whose checkpoint this one started from, and that checkpoint's budget (PBT's
    #: exploit); None for a trial that started from scratch.
    parent: str | None = None
    parent_budget: float | None = None
    #: Points in ``history`` at the end of each completed multi-fidelity run (as ``rungs``):
    #: what a child that copies the checkpoint of that run inherits.
    rung_steps: list[int] = field(default_factory=list)
    #: The trial's place in the experiment (1 for the first created): its MLflow run is
    #: ``<experiment>-<number>``. Derived from the order of creation, not journaled.
    number: int = 0
    #: Each ended run: (start, end, worker, state), for the timeline and the utilisation.
    runs: list[tuple[float, float, int | None, str]] = field(default_factory=list)
    #: Means of the system metrics its workers sampled (``cpu_util``, ``gpu_util``, ...) and
    #: ``samples``, how many samples they are the mean of.
    usage: dict[str, float] = field(default_factory=dict)

    @classmethod
    def create(cls, params: dict[str, Any], budget: float | None = None, parent: str | None = None) -> "Trial":
        return cls(trial_id_for(params, budget, parent), dict(params), budget, parent=parent)

    def transition(self, new: TrialState) -> None:
        """Move to ``new``; raises IllegalTransition when the state machine forbids it."""
        if new not in _ALLOWED[self.state]:
            raise IllegalTransition(f"trial {self.trial_id}: {self.state.value} -> {new.value}")
        self.state = new

    def view(self) -> FrozenTrial:
        """A read-only snapshot of this trial now."""
        return FrozenTrial(
            self.trial_id, types.MappingProxyType(dict(self.params)), self.budget, self.state, self.metric,
            types.MappingProxyType(dict(self.extra)), tuple(self.history), self.start, self.end, self.worker,
            self.host, None if self.error is None else types.MappingProxyType(dict(self.error)), self.attempts,
            tuple(self.rungs), self.run_id, self.handoff, self.run_start, self.resumes, self.asks,
            self.checkpoint_step, self.executor, self.parent, self.parent_budget, tuple(self.rung_steps), self.number,
            tuple(self.runs), types.MappingProxyType(dict(self.usage)))

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> "Trial":
        t = cls(rec["trial_id"], rec["params"], rec.get("budget"))
        t.state = TrialState(rec["state"])
        t.metric, t.extra, t.error = rec.get("metric"), rec.get("extra") or {}, rec.get("error")
        t.history = [(int(s), float(v)) for s, v in rec.get("history") or []]
        t.start, t.end = rec.get("start"), rec.get("end")
        t.worker, t.host = rec.get("worker"), rec.get("host")
        t.handoff, t.attempts = rec.get("handoff"), rec.get("attempts", 0)
        t.rungs = [(float(b), float(m)) for b, m in rec.get("rungs") or []]
        t.run_id = rec.get("run_id")
        t.run_start, t.resumes, t.asks = rec.get("run_start", 0), rec.get("resumes", 0), rec.get("asks", 1)
        t.checkpoint_step, t.executor = rec.get("checkpoint_step"), rec.get("executor")
        t.parent, t.parent_budget = rec.get("parent"), rec.get("parent_budget")
        t.rung_steps = list(rec.get("rung_steps") or [])
        t.runs = [(float(a), float(b), w, str(st)) for a, b, w, st in rec.get("runs") or []]
        t.usage = dict(rec.get("usage") or {})
        return t
