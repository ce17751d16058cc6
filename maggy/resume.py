"""Finding the experiment a ``lagom`` call continues, and checking that it is the same one.

An experiment is ``<experiment_dir>/<name>/<run id>/``; the latest run id of a name is the one a
call with that name and directory continues. Everything here only reads, so it runs in the
preflight, before any side effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from maggy.config import HyperparameterOptConfig
from maggy.exceptions import InvalidParameterError
from maggy.journal import Journal
from maggy.storage import Storage

#: The config fields that make two calls the same experiment.
IDENTITY = ("searchspace", "optimizer", "direction", "optimization_key")


@dataclass
class Previous:
    """An earlier run of this experiment, as its journal tells it."""

    exp_dir: str
    events: list[dict[str, Any]]

    @property
    def starts(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == "experiment_start"]

    @property
    def config(self) -> dict[str, Any]:
        return self.starts[0]["config"]

    @property
    def total(self) -> int:
        return int(self.starts[-1]["total"])

    @property
    def finished(self) -> bool:
        ends = [e for e in self.events if e["event"] in ("experiment_start", "experiment_end")]
        return bool(ends) and ends[-1]["event"] == "experiment_end" and ends[-1]["outcome"] == "finished"

    @property
    def tracking(self) -> dict[str, Any] | None:
        return self.starts[-1].get("tracking")

    @property
    def fingerprint(self) -> str | None:
        """The fingerprint of the ``train_fn`` that last ran it (None in journals older than it)."""
        return self.starts[-1].get("fingerprint")

    @property
    def ended(self) -> int:
        """How many of its trials have an outcome."""
        states: dict[str, str] = {e["trial_id"]: e["state"] for e in self.events if e["event"] == "trial"}
        return sum(s in ("FINALIZED", "EARLY_STOPPED", "ERROR", "PAUSED") for s in states.values())


def find_previous(storage: Storage, root: str, name: str) -> Previous | None:
    """The latest run of experiment ``name`` under ``root`` that has a journal, if any."""
    base = storage.join(root, name)
    if not storage.exists(base):
        return None
    for run in reversed(storage.listdir(base)):
        events = Journal(storage, storage.join(base, run)).read()
        if any(e["event"] == "experiment_start" for e in events):
            return Previous(storage.join(base, run), events)
    return None


def differences(previous: Previous, config: HyperparameterOptConfig) -> list[str]:
    """Every difference in the fields that make an experiment (:data:`IDENTITY`) between
    ``config`` and the journal's, in words; empty when they are the same experiment."""
    now, then = config.to_dict(), previous.config
    diffs = []
    for key in IDENTITY:
        if now[key] != then.get(key):
            if key == "searchspace":
                a, b = then.get(key) or {}, now[key]
                detail = "; ".join(f"{n}: {a.get(n)} then, {b.get(n)} now" for n in sorted(set(a) | set(b))
                                   if a.get(n) != b.get(n))
                diffs.append(f"searchspace ({detail})")
            else:
                diffs.append(f"{key} ({then.get(key)!r} then, {now[key]!r} now)")
    return diffs


def check_same(previous: Previous, config: HyperparameterOptConfig) -> None:
    """Raise InvalidParameterError naming every difference between ``config`` and the journal's
    (``resume=True`` cannot continue an experiment that was another one)."""
    diffs = differences(previous, config)
    if diffs:
        raise InvalidParameterError(
            f"The experiment '{config.name}' in {previous.exp_dir} ran with a different " + ", ".join(diffs) +
            ", so resume=True cannot continue it. Pass resume='auto' or resume=False to start a new experiment "
            "beside it, or choose another name.")
