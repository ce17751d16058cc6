"""The journal's events: one typed record per kind, and the one place their JSON form is read
and written.

A journal is a JSON-lines file; each line is one event with ``event`` (its kind) and ``time``.
Every ``experiment_start`` carries the format version ``v`` it was written in; version 1 is
what maggy wrote before there was one (no ``v``), and it reads the same way.

>>> start = ExperimentStarted(config={"name": "demo"}, total=4, num_workers=2)
>>> decode(encode(start)) == start
True
>>> decode({"event": "experiment_start", "v": 99, "config": {}, "total": 1, "num_workers": 1})
Traceback (most recent call last):
...
maggy.store.events.JournalFormatError: this journal was written in format 99 by a newer maggy; ...
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Union

from maggy.trial import FrozenTrial

#: The journal format this maggy writes (2: typed events, the format version and the checkpoint
#: layout in ``experiment_start``, the train_fn fingerprint).
FORMAT_VERSION = 2


class JournalFormatError(ValueError):
    """A journal this maggy cannot read."""


class EventKind(str, enum.Enum):
    START = "experiment_start"
    TRIAL = "trial"
    END = "experiment_end"


class Outcome(str, enum.Enum):
    """How a driver's run of an experiment ended."""

    FINISHED = "finished"
    STOPPED = "stopped"  # a stopping rule (timeout, target, patience) ended it
    INTERRUPTED = "interrupted"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ExperimentStarted:
    """A driver began (or continued) the experiment."""

    config: Mapping[str, Any]
    total: int
    num_workers: int
    resumes: int = 0
    tracking: Mapping[str, Any] | None = None
    fingerprint: str | None = None
    #: Whether each run of a trial keeps a checkpoint directory of its own (PBT).
    versioned_checkpoints: bool = False
    time: float = field(default_factory=time.time, compare=False)
    version: int = FORMAT_VERSION


@dataclass(frozen=True)
class TrialChanged:
    """A trial's facts after a change: the latest such event of a trial is what it is."""

    trial: FrozenTrial
    time: float = field(default_factory=time.time, compare=False)


@dataclass(frozen=True)
class ExperimentEnded:
    outcome: Outcome
    stats: Mapping[str, Any]
    time: float = field(default_factory=time.time, compare=False)


Event = Union[ExperimentStarted, TrialChanged, ExperimentEnded]


def encode(event: Event) -> dict[str, Any]:
    """The JSON object of ``event``, as a journal line holds it."""
    if isinstance(event, TrialChanged):
        return {"event": EventKind.TRIAL.value, "time": event.time, **event.trial.to_record()}
    if isinstance(event, ExperimentStarted):
        return {"event": EventKind.START.value, "time": event.time, "v": event.version, "config": dict(event.config),
                "total": event.total, "num_workers": event.num_workers, "resumes": event.resumes,
                "tracking": None if event.tracking is None else dict(event.tracking),
                "fingerprint": event.fingerprint, "versioned_checkpoints": event.versioned_checkpoints}
    return {"event": EventKind.END.value, "time": event.time, "outcome": event.outcome.value, "stats": dict(event.stats)}


def decode(record: Mapping[str, Any]) -> Event:
    """The event a journal line holds; raises JournalFormatError for a kind or version this maggy
    does not know."""
    try:
        kind = EventKind(record.get("event"))
    except ValueError:
        raise JournalFormatError(f"unknown journal event {record.get('event')!r}") from None
    stamp = float(record.get("time") or 0.0)
    if kind is EventKind.TRIAL:
        return TrialChanged(FrozenTrial.from_record(record), stamp)
    if kind is EventKind.END:
        return ExperimentEnded(Outcome(record["outcome"]), dict(record.get("stats") or {}), stamp)
    version = int(record.get("v", 1))
    if version > FORMAT_VERSION:
        raise JournalFormatError(f"this journal was written in format {version} by a newer maggy; this one reads up "
                                 f"to format {FORMAT_VERSION}: upgrade maggy to read it")
    config = dict(record["config"])
    versioned = record.get("versioned_checkpoints")
    if versioned is None:  # format 1 did not record it: PBT was the one optimizer that versions
        versioned = str(config.get("optimizer", "")).lower() == "pbt"
    return ExperimentStarted(config, int(record["total"]), int(record["num_workers"]), int(record.get("resumes", 0)),
                             record.get("tracking"), record.get("fingerprint"), bool(versioned), stamp, version)
