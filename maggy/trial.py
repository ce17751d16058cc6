"""A trial and its state machine: every state change goes through ``Trial.transition``."""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


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


def trial_id_for(params: dict[str, Any], budget: float | None = None) -> str:
    """Stable id of a parameter point (and budget): the same point always gets the same id."""
    key = {"params": params} if budget is None else {"params": params, "budget": budget}
    blob = json.dumps(key, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class Trial:
    """One evaluation of ``train_fn`` at ``params``; what the driver, optimizers and policies share."""

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

    @classmethod
    def create(cls, params: dict[str, Any], budget: float | None = None) -> "Trial":
        return cls(trial_id_for(params, budget), dict(params), budget)

    def transition(self, new: TrialState) -> None:
        """Move to ``new``; raises IllegalTransition when the state machine forbids it."""
        if new not in _ALLOWED[self.state]:
            raise IllegalTransition(f"trial {self.trial_id}: {self.state.value} -> {new.value}")
        self.state = new

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
            "trial_id": self.trial_id, "params": self.params, "budget": self.budget,
            "state": self.state.value, "metric": self.metric, "extra": self.extra,
            "history": [list(p) for p in self.history], "start": self.start, "end": self.end,
            "worker": self.worker, "host": self.host, "error": self.error,
            "handoff": self.handoff, "attempts": self.attempts,
            "rungs": [list(r) for r in self.rungs],
        }

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
        return t
