"""The driver–worker contract: one frozen dataclass per message, validated where it is decoded.

A worker sends a request and the driver answers with one reply:

========================  ===========================================================
request (worker → driver)  reply (driver → worker)
========================  ===========================================================
:class:`Register`          :class:`Welcome` (the driver's grants)
:class:`Get`               :class:`Assignment` (a trial), :class:`Wait` or :class:`Done`
:class:`Metric`            :class:`Ok`, or :class:`Stop` when the trial should end early
:class:`Log`               :class:`Ok`
:class:`Final`             like :class:`Get`: the next trial travels in the reply
:class:`WorkerError`       :class:`Ok`
:class:`Rendezvous`        :class:`Ok`, or :class:`Stop` when the gang's attempt is over
========================  ===========================================================

An :class:`Ok`, :class:`Stop` or :class:`Assignment` carries the driver's grants once more where
they changed since the worker heard them (a secure HDFS's token, replaced before its max date).

``to_body()`` gives the JSON object that travels in a frame; ``from_body()`` checks every field's
type (and range, where one applies) and raises :class:`BodyError` for anything that does not fit,
which the RPC thread counts as a ``bad_body`` frame: a malformed message never reaches the driver.

>>> msg = Metric(worker=0, trial_id="a1", points=((0, 0.5),))
>>> decode(msg.TYPE, msg.to_body()) == msg
True
>>> decode(MsgType.METRIC, {"worker": 0, "trial_id": 7, "points": []})
Traceback (most recent call last):
...
maggy.rpc.messages.BodyError: METRIC.trial_id: expected str, got 7
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Union

from maggy.rpc.protocol import MsgType
from maggy.trial import TRACEBACK_LIMIT, TrialState

#: Characters of one log line or error message: the worker cuts longer ones (see
#: ``maggy.runtime.reporter.truncate``) before they are sent.
MAX_TEXT = 16 * 1024
#: Log lines in one LOG or FINAL, and metric points in one METRIC or FINAL: workers send more
#: in several messages.
MAX_LINES = 20
MAX_POINTS = 10_000
_TEXT = MAX_TEXT + 64  # a cut line or message with its marker
#: The longest value of each field that holds text or items, as (length, length of each item).
LIMITS: dict[str, tuple[int, int | None]] = {
    "trial_id": (64, None), "run_id": (64, None), "host": (255, None), "executor": (255, None),
    "gpus": (64, 64), "points": (MAX_POINTS, None), "lines": (MAX_LINES, _TEXT), "logs": (MAX_LINES, _TEXT),
    "message": (2 * _TEXT, None), "traceback": (TRACEBACK_LIMIT, None), "system": (16, None),
    "master_addr": (255, None), "grants": (8, None),
}
#: The longest name of a system metric (``cpu_util``, ``gpu_mem``, ...).
MAX_SYSTEM_NAME = 32


class BodyError(ValueError):
    """An authentic frame whose body does not fit its message type."""


def _conform(value: Any, tp: Any, where: str) -> Any:
    """``value`` checked against the annotation ``tp`` (the few shapes messages use)."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return None
        for alt in typing.get_args(tp):
            if alt is not type(None):
                try:
                    return _conform(value, alt, where)
                except BodyError:
                    continue
        raise BodyError(f"{where}: expected {tp}, got {value!r:.80}")
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise BodyError(f"{where}: expected a list, got {value!r:.80}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_conform(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise BodyError(f"{where}: expected {len(args)} items, got {len(value)}")
        return tuple(_conform(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise BodyError(f"{where}: expected a finite number, got {value!r:.80}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise BodyError(f"{where}: expected int, got {value!r:.80}")
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise BodyError(f"{where}: expected {tp.__name__}, got {value!r:.80}")
        return value
    if tp is dict:
        if not isinstance(value, dict):
            raise BodyError(f"{where}: expected a JSON object, got {value!r:.80}")
        return value
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise BodyError(f"{where}: {value!r:.80} is not a {tp.__name__}") from None
    raise TypeError(f"message field {where} has an annotation messages cannot check: {tp}")  # a maggy bug


@dataclass(frozen=True)
class Message:
    """Base of every message: the wire type and the conversions to and from a JSON body."""

    TYPE: ClassVar[MsgType]

    def to_body(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> "Message":
        hints = _hints(cls)
        name = cls.TYPE.name
        unknown = set(body) - set(hints)
        if unknown:
            raise BodyError(f"{name}: unexpected fields {sorted(unknown)}")
        values = {}
        for f in dataclasses.fields(cls):
            if f.name in body:
                values[f.name] = _conform(body[f.name], hints[f.name], f"{name}.{f.name}")
                _check_size(values[f.name], LIMITS.get(f.name), f"{name}.{f.name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise BodyError(f"{name}: missing field {f.name!r}")
        return cls(**values)

    def __post_init__(self) -> None:
        for key in ("worker", "pid", "next_step", "rank", "local_rank", "attempt"):
            if getattr(self, key, 0) < 0:
                raise BodyError(f"{self.TYPE.name}.{key} must be >= 0")
        if any(len(name) > MAX_SYSTEM_NAME for name, _ in getattr(self, "system", ())):
            raise BodyError(f"{self.TYPE.name}.system: a name longer than {MAX_SYSTEM_NAME}")


def _check_size(value: Any, limit: tuple[int, int | None] | None, where: str) -> None:
    if limit is None or value is None:
        return
    most, each = limit
    if len(value) > most:
        raise BodyError(f"{where}: {len(value)} long, limit {most}")
    if each is not None and any(len(v) > each for v in value):
        raise BodyError(f"{where}: an item longer than {each}")


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = {k: v for k, v in typing.get_type_hints(cls).items() if k != "TYPE"}
    return _HINTS[cls]


Points = tuple[tuple[int, float], ...]
#: A sample of system metrics (see maggy.runtime.usage): (name, value) pairs.
System = tuple[tuple[str, float], ...]

# ---- requests ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Register(Message):
    """A worker introduces itself once, before its first GET."""

    TYPE = MsgType.REGISTER
    worker: int
    host: str
    pid: int
    gpus: tuple[str, ...] = ()
    executor: str | None = None


@dataclass(frozen=True)
class Get(Message):
    """A free worker asks for a trial."""

    TYPE = MsgType.GET
    worker: int


@dataclass(frozen=True)
class Metric(Message):
    """The heartbeat: the running trial's new (step, value) points, possibly none, the step
    of its latest complete checkpoint, and a sample of its system metrics when they are on."""

    TYPE = MsgType.METRIC
    worker: int
    trial_id: str
    points: Points = ()
    run_id: str | None = None
    checkpoint: int | None = None
    system: System = ()


@dataclass(frozen=True)
class Log(Message):
    """Lines for the trial's log."""

    TYPE = MsgType.LOG
    worker: int
    trial_id: str
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Final(Message):
    """A trial's run ended; what is left of its points and logs travels with it."""

    TYPE = MsgType.FINAL
    worker: int
    trial_id: str
    state: TrialState
    start: float
    end: float
    metric: float | None = None
    extra: dict = dataclasses.field(default_factory=dict)
    error: dict | None = None
    points: Points = ()
    logs: tuple[str, ...] = ()
    handoff: float | None = None
    run_id: str | None = None
    checkpoint: int | None = None
    system: System = ()
    #: The error is one a rank of a gang sees because a peer failed (a connection reset, a
    #: collective's timeout), not an exception of ``train_fn`` itself.
    peer_failure: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.state.finished:
            raise BodyError(f"FINAL.state must be FINALIZED, EARLY_STOPPED or ERROR, not {self.state.value}")
        if self.error is not None:
            if set(self.error) != {"type", "message", "traceback"} or not all(map(isinstance, self.error.values(),
                                                                                  [str] * 3)):
                raise BodyError("FINAL.error must hold the strings type, message and traceback")
            for key in ("message", "traceback"):
                _check_size(self.error[key], LIMITS[key], f"FINAL.error.{key}")
            _check_size(self.error["type"], (255, None), "FINAL.error.type")


@dataclass(frozen=True)
class WorkerError(Message):
    """A failure outside ``train_fn`` that ends the worker."""

    TYPE = MsgType.ERROR
    worker: int
    message: str
    traceback: str = ""


@dataclass(frozen=True)
class Rendezvous(Message):
    """Rank 0 of a gang opened the store of its attempt at ``host:port``: the driver tells the
    other ranks where it is."""

    TYPE = MsgType.RENDEZVOUS
    worker: int
    trial_id: str
    attempt: int
    host: str
    port: int

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.port < 65536:
            raise BodyError(f"RENDEZVOUS.port must be within [1, 65535], not {self.port}")


# ---- replies -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assignment(Message):
    """The trial a worker runs next; ``next_step`` continues the numbering of earlier runs, and
    ``restore_from`` names the checkpoint a new ``checkpoint_dir`` starts as a copy of."""

    TYPE = MsgType.TRIAL
    trial_id: str
    params: dict
    checkpoint_dir: str
    budget: int | float | None = None
    next_step: int = 0
    run_id: str | None = None
    restore_from: str | None = None
    run_name: str | None = None
    #: The trial never ran, in this experiment's life (so no tracker can hold a record of it yet).
    first_run: bool = False
    #: The gang (``workers_per_trial > 1``): this worker's rank among ``world_size``, its place
    #: among the ranks on its host, the attempt (a new one each time the trial gets a gang), and
    #: the store rank 0 opened (None for rank 0, which opens it and answers RENDEZVOUS).
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    attempt: int = 0
    master_addr: str | None = None
    master_port: int | None = None
    #: The driver's grants (as WELCOME's) where they changed since the worker last heard them.
    grants: tuple[dict, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.rank < self.world_size or not 0 <= self.local_rank < self.local_world_size <= self.world_size:
            raise BodyError(f"TRIAL: rank {self.rank} of {self.world_size}, local rank {self.local_rank} of "
                            f"{self.local_world_size} do not fit")


@dataclass(frozen=True)
class Ok(Message):
    """Heard; with the driver's grants (as WELCOME's) where they changed since the worker last
    heard them (a secure HDFS's token, replaced before its max date)."""

    TYPE = MsgType.OK
    grants: tuple[dict, ...] = ()


@dataclass(frozen=True)
class Welcome(Message):
    """The answer to REGISTER: what the worker may use besides the channel, granted by the
    driver (see :mod:`maggy.store.hdfs_auth`: a secure HDFS's NameNodes and delegation token)."""

    TYPE = MsgType.WELCOME
    grants: tuple[dict, ...] = ()


@dataclass(frozen=True)
class Stop(Message):
    """Stop the trial reported on: ``reporter.broadcast`` raises EarlyStopped. Grants as OK's
    (the stopped trial still saves its checkpoint)."""

    TYPE = MsgType.STOP
    grants: tuple[dict, ...] = ()


@dataclass(frozen=True)
class Wait(Message):
    """Nothing to run yet: ask again after ``retry_after`` seconds."""

    TYPE = MsgType.WAIT
    retry_after: float = 0.1

    def __post_init__(self) -> None:
        if not 0 <= self.retry_after <= 60:
            raise BodyError(f"WAIT.retry_after must be within [0, 60], not {self.retry_after}")


@dataclass(frozen=True)
class Done(Message):
    """The experiment is over: the worker ends."""

    TYPE = MsgType.DONE


REQUESTS: dict[MsgType, type[Message]] = {m.TYPE: m for m in (Register, Get, Metric, Log, Final, WorkerError,
                                                                 Rendezvous)}
REPLIES: dict[MsgType, type[Message]] = {m.TYPE: m for m in (Assignment, Ok, Welcome, Stop, Wait, Done)}


def decode(mtype: MsgType, body: dict[str, Any], *, replies: bool = False) -> Message:
    """The message of type ``mtype`` (a request, or a reply if ``replies``) that ``body`` holds.

    Raises BodyError when the type is not one of that direction or the body does not fit it.
    """
    cls = (REPLIES if replies else REQUESTS).get(mtype)
    if cls is None:
        raise BodyError(f"{mtype.name} is not a {'reply' if replies else 'request'}")
    return cls.from_body(body)
