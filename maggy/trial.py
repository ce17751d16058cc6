"""A trial: its facts written once (:class:`FrozenTrial`), and the scheduler's handle on it
(:class:`Trial`), whose every change goes through :meth:`Trial.update` and every state change
through :meth:`Trial.transition`.

Everything else is derived from the one field list: the journal record (:meth:`FrozenTrial.to_record`
and :meth:`FrozenTrial.from_record`), the snapshots optimizers, policies and callbacks get (a
trial's current :class:`FrozenTrial` is its snapshot), the result's table.

>>> t = Trial.create({"x": 0.5})
>>> t.transition(TrialState.RUNNING)
>>> t.update(history=((0, 0.1), (1, 0.3)))
>>> view = t.view()
>>> view.state.value, view.steps, view.last_metric
('RUNNING', 2, 0.3)
>>> FrozenTrial.from_record(view.to_record()) == view
True
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import traceback as tb
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

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


def trial_id_for(params: Mapping[str, Any], budget: float | None = None, parent: str | None = None) -> str:
    """Stable id of a parameter point (and budget, and the trial whose checkpoint it starts from):
    the same point always gets the same id."""
    key: dict[str, Any] = {"params": dict(params)} if budget is None else {"params": dict(params), "budget": budget}
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


def run_name(experiment: str, number: int) -> str:
    """A trial as people read it (the console, MLflow's run, TensorBoard's run, the plots):
    ``<experiment>-<n>``, ``n`` its place in the experiment.

    >>> run_name("mnist", 3)
    'mnist-3'
    """
    return f"{experiment}-{number}"


def error_record(kind: str, message: str, traceback: str = "") -> dict[str, str]:
    """A failed trial's error as the journal, the results and the wire hold it."""
    return {"type": kind, "message": message, "traceback": traceback[-TRACEBACK_LIMIT:]}


def exception_record(exc: BaseException, message: str | None = None) -> dict[str, str]:
    """:func:`error_record` of an exception, with its traceback."""
    return error_record(type(exc).__name__, str(exc) if message is None else message,
                        "".join(tb.format_exception(exc)))


_EMPTY: Mapping[str, Any] = types.MappingProxyType({})


@dataclass(frozen=True)
class FrozenTrial:
    """What is known of a trial at one moment: what optimizers, stopping policies and callbacks
    get, and what the journal records. Read-only all the way down (tuples, read-only mappings).

    >>> view = FrozenTrial("a1", {"x": 0.5}, history=((0, 0.1), (1, 0.3)))
    >>> view.steps, view.last_metric
    (2, 0.3)
    """

    trial_id: str
    params: Mapping[str, Any]
    budget: float | None = None
    state: TrialState = TrialState.PENDING
    metric: float | None = None
    #: Each objective's value, in ``optimization_key``'s order, when there are several
    #: (``metric`` is the first; the rest are not in ``extra``).
    values: tuple[float, ...] | None = None
    #: What ``train_fn`` returned beside its metric.
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    #: Every (step, value) the trial reported, over all its runs.
    history: tuple[tuple[int, float], ...] = ()
    #: When its latest run started and ended (the worker's clock).
    start: float | None = None
    end: float | None = None
    #: The worker (partition), host and Spark executor of its latest run.
    worker: int | None = None
    host: str | None = None
    executor: str | None = None
    error: Mapping[str, str] | None = None
    #: How often its worker was lost and it was continued on another.
    attempts: int = 0
    #: (budget, metric) of each completed multi-fidelity run, lowest budget first.
    rungs: tuple[tuple[float, float], ...] = ()
    #: Its MLflow run, once its worker opened one.
    run_id: str | None = None
    #: Seconds from its worker's previous FINAL to this run's start.
    handoff: float | None = None
    #: Index in ``history`` where the current run's points begin.
    run_start: int = 0
    #: How often it was continued after its driver stopped (a resumed experiment).
    resumes: int = 0
    #: How many suggestions the optimizer made to produce it (rejected duplicates too), so that
    #: a resume replays the optimizer's random draws exactly.
    asks: int = 1
    #: The step of the latest complete checkpoint ``reporter.checkpoint()`` marked.
    checkpoint_step: int | None = None
    #: The trial whose checkpoint it started from, and that checkpoint's budget (PBT's exploit).
    parent: str | None = None
    parent_budget: float | None = None
    #: Points in ``history`` at the end of each completed multi-fidelity run (as ``rungs``).
    rung_steps: tuple[int, ...] = ()
    #: Its place in the experiment (1 for the first created): its MLflow run is ``<experiment>-<n>``.
    number: int = 0
    #: Each ended run: (start, end, worker, state), for the timeline and the utilisation.
    runs: tuple[tuple[float, float, int | None, str], ...] = ()
    #: Means of the system metrics its workers sampled (``cpu_util``, ``gpu_util``, ...) and
    #: ``samples``, how many samples they are the mean of.
    usage: Mapping[str, float] = field(default_factory=lambda: _EMPTY)

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
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> "FrozenTrial":
        """The snapshot :meth:`to_record` wrote (fields a record lacks keep their defaults, so
        that journals of older versions read)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: _read(k, v) for k, v in rec.items() if k in names})

    def __reduce__(self) -> tuple[Any, ...]:  # read-only mappings do not pickle: through the record
        return FrozenTrial.from_record, (self.to_record(),)


def _plain(value: Any) -> Any:
    """JSON-ready: mappings as dicts, tuples as lists, enums as their values."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def _mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return types.MappingProxyType(dict(value or {}))


def _pairs(kind: Callable[[Any], Any]) -> Callable[[Any], tuple]:
    return lambda items: tuple((kind(a), float(b)) for a, b in items or ())


#: How each field that is not a plain value is read, from a record or an update: read-only
#: mappings and tuples, so that a snapshot can be handed to anyone.
_READ: dict[str, Callable[[Any], Any]] = {
    "state": TrialState, "params": _mapping, "extra": _mapping, "usage": _mapping,
    "error": lambda e: None if e is None else _mapping(e),
    "values": lambda v: None if v is None else tuple(float(x) for x in v),
    "history": _pairs(int), "rungs": _pairs(float), "rung_steps": lambda steps: tuple(int(s) for s in steps or ()),
    "runs": lambda runs: tuple((float(a), float(b), w, str(s)) for a, b, w, s in runs or ()),
}
_FIELDS = frozenset(f.name for f in dataclasses.fields(FrozenTrial))


def _read(name: str, value: Any) -> Any:
    return _READ[name](value) if name in _READ else value


class Trial:
    """The scheduler's handle on one trial: reading an attribute reads its current
    :class:`FrozenTrial`; :meth:`update` and :meth:`transition` replace it, so a snapshot taken
    earlier never changes. Only the scheduler calls them."""

    __slots__ = ("_facts",)

    def __init__(self, trial_id: str, params: Mapping[str, Any], budget: float | None = None, **facts: Any) -> None:
        object.__setattr__(self, "_facts", FrozenTrial(trial_id, _mapping(params), budget,
                                                       **{k: _read(k, v) for k, v in facts.items()}))

    @classmethod
    def create(cls, params: Mapping[str, Any], budget: float | None = None, parent: str | None = None) -> "Trial":
        return cls(trial_id_for(params, budget, parent), params, budget, parent=parent)

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> "Trial":
        return cls.of(FrozenTrial.from_record(rec))

    @classmethod
    def of(cls, facts: FrozenTrial) -> "Trial":
        """A handle that starts from ``facts``."""
        trial = cls.__new__(cls)
        object.__setattr__(trial, "_facts", facts)
        return trial

    def __getattr__(self, name: str) -> Any:
        if name == "_facts":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self._facts, name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"trial.{name} is read-only: the scheduler changes trials with update()")

    def __repr__(self) -> str:
        return f"Trial({self._facts!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return Trial.of, (self._facts,)

    def update(self, **changes: Any) -> None:
        """Replace facts (not the state: :meth:`transition` does that)."""
        unknown = set(changes) - _FIELDS
        if unknown or "state" in changes:
            raise TypeError(f"Trial.update cannot set {sorted(unknown | {'state'} & set(changes))}")
        object.__setattr__(self, "_facts", dataclasses.replace(
            self._facts, **{k: _read(k, v) for k, v in changes.items()}))

    def extend_history(self, points: Sequence[tuple[int, float]]) -> None:
        """Append reported (step, value) points; only the new points are read (a trial's history
        grows at every heartbeat, and reading it all again each time costs what it holds)."""
        new = _READ["history"](points)
        object.__setattr__(self, "_facts", dataclasses.replace(self._facts, history=self._facts.history + new))

    def transition(self, new: TrialState) -> None:
        """Move to ``new``; raises IllegalTransition when the state machine forbids it."""
        if new not in _ALLOWED[self._facts.state]:
            raise IllegalTransition(f"trial {self._facts.trial_id}: {self._facts.state.value} -> {new.value}")
        object.__setattr__(self, "_facts", dataclasses.replace(self._facts, state=new))

    def view(self) -> FrozenTrial:
        """A read-only snapshot of this trial now."""
        return self._facts
