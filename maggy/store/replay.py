"""Reading an experiment back from its journal: the one place journal events are replayed, for
a resume (:func:`find_previous`), for :func:`load_result` and for the scheduler's rebuild
(:attr:`ExperimentLog.changes`).

An experiment is ``<experiment_dir>/<name>/<run id>/``; the latest run id of a name is the one a
call with that name and directory continues. Everything here only reads.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Mapping

from maggy.result import Result
from maggy.search.objectives import Objectives
from maggy.store.events import Event, ExperimentEnded, ExperimentStarted, Outcome, TrialChanged
from maggy.store.journal import Journal
from maggy.store.storage import Storage, storage_for
from maggy.trial import FrozenTrial, TrialState


@dataclass
class ExperimentLog:
    """An experiment as its journal tells it."""

    exp_dir: str
    events: list[Event]

    @classmethod
    def read(cls, storage: Storage, exp_dir: str) -> "ExperimentLog":
        return cls(exp_dir, Journal(storage, exp_dir).read())

    @cached_property
    def starts(self) -> list[ExperimentStarted]:
        return [e for e in self.events if isinstance(e, ExperimentStarted)]

    @property
    def started(self) -> bool:
        return bool(self.starts)

    @property
    def config(self) -> Mapping[str, Any]:
        return self.starts[0].config

    @property
    def total(self) -> int:
        return self.starts[-1].total

    @property
    def tracking(self) -> Mapping[str, Mapping[str, Any]]:
        """Each tracker's state (by its name) as the last driver left it, for a resume. Journals
        written before trackers were plug-ins hold MLflow's alone, unnamed."""
        state = self.starts[-1].tracking or {}
        return {"mlflow": state} if "parent_run_id" in state else state

    @property
    def fingerprint(self) -> str | None:
        """The fingerprint of the ``train_fn`` that last ran it (None in journals older than it)."""
        return self.starts[-1].fingerprint

    @property
    def versioned_checkpoints(self) -> bool:
        return self.starts[-1].versioned_checkpoints

    @property
    def end(self) -> ExperimentEnded | None:
        """How the last driver's run ended; None if it did not end (its driver died)."""
        last = next((e for e in reversed(self.events) if isinstance(e, (ExperimentStarted, ExperimentEnded))), None)
        return last if isinstance(last, ExperimentEnded) else None

    @property
    def finished(self) -> bool:
        return self.end is not None and self.end.outcome is Outcome.FINISHED

    @property
    def failure(self) -> str | None:
        """The error of the last driver's run when its trials failed it (fail-fast, or none
        succeeded), as it was raised; None otherwise."""
        end = self.end
        return end.stats.get("failure") if end is not None and end.outcome is Outcome.FAILED else None

    @property
    def changes(self) -> list[FrozenTrial]:
        """Every trial change in the order it happened: what the scheduler replays. A failed
        run that ran again (``retry_failed``) is left out: the trial's later changes tell it."""
        records = [e.trial for e in self.events if isinstance(e, TrialChanged)]
        last = {t.trial_id: i for i, t in enumerate(records)}
        return [t for i, t in enumerate(records) if t.state is not TrialState.ERROR or last[t.trial_id] == i]

    def retrying_failed(self) -> tuple["ExperimentLog", int]:
        """This log with the ends of its failed trials left out, so that a resume runs them again
        as trials that were in flight; and how many there are."""
        failed = {t for t, rec in self.trials.items() if rec.state is TrialState.ERROR}
        kept = [e for e in self.events
                if not (isinstance(e, TrialChanged) and e.trial.state is TrialState.ERROR and e.trial.trial_id in failed)]
        return ExperimentLog(self.exp_dir, kept), len(failed)

    @cached_property
    def trials(self) -> dict[str, FrozenTrial]:
        """Each trial as it was last recorded."""
        return {t.trial_id: t for t in self.changes}

    @property
    def ended(self) -> int:
        """How many of its trials have an outcome."""
        return sum(t.state.finished or t.state is TrialState.PAUSED for t in self.trials.values())

    def result(self) -> Result:
        """The :class:`Result` the journal tells: that of the last end, or the trials that ended
        so far when its driver died."""
        end = next((e for e in reversed(self.events) if isinstance(e, ExperimentEnded)), None)
        stats = dict(end.stats) if end is not None else {}
        stats.update(outcome=self.end.outcome.value if self.end is not None else "unfinished",
                     total_trials=self.total,
                     states=dict(collections.Counter(t.state.value for t in self.trials.values())))
        config = self.config
        tracking = stats.get("tracking") or {}
        objectives = Objectives.of(config.get("optimization_key", "metric"), config["direction"])
        return Result.of(config["name"], objectives, self.trials.values(), list(config["searchspace"]),
                         self.exp_dir, stats, versioned_checkpoints=self.versioned_checkpoints,
                         best_run_id=tracking.get("best_run_id"), model_uri=tracking.get("model_uri"),
                         log_scale=[n for n, hp in config["searchspace"].items() if hp.get("log")])


def find_previous(storage: Storage, root: str, name: str) -> ExperimentLog | None:
    """The latest run of experiment ``name`` under ``root`` that has a journal, if any."""
    base = storage.join(root, name)
    if not storage.exists(base):
        return None
    for run in reversed(storage.listdir(base)):
        log = ExperimentLog.read(storage, storage.join(base, run))
        if log.started:
            return log
    return None


def load_result(path: str) -> Result:
    """The :class:`Result` of an experiment, rebuilt from its journal without running anything.

    ``path`` is an experiment's directory (``<experiment_dir>/<name>/<run id>``, local or on
    HDFS), its ``journal.jsonl``, or ``<experiment_dir>/<name>`` for the latest run of that name.
    An unfinished experiment (its driver died or was interrupted) gives the trials that ended.
    """
    storage = storage_for(path)
    exp_dir = storage.normalize(path)
    if exp_dir.rstrip("/").endswith("/journal.jsonl"):
        exp_dir = exp_dir.rstrip("/")[:-len("/journal.jsonl")]
    elif not storage.exists(storage.join(exp_dir, "journal.jsonl")) and storage.exists(exp_dir):
        runs = [r for r in storage.listdir(exp_dir) if storage.exists(storage.join(exp_dir, r, "journal.jsonl"))]
        if runs:
            exp_dir = storage.join(exp_dir, runs[-1])
    log = ExperimentLog.read(storage, exp_dir)
    if not log.started:
        raise FileNotFoundError(f"No maggy journal at {path}: give an experiment's directory "
                                "(<experiment_dir>/<name>/<run id>), its journal.jsonl, or <experiment_dir>/<name>.")
    return log.result()


def experiments_under(root: str) -> list[ExperimentLog]:
    """Every experiment under an ``experiment_dir`` (each run of each name that has a journal),
    by name, then oldest run first."""
    storage = storage_for(root)
    root = storage.normalize(root)
    logs = []
    for name in sorted(storage.listdir(root)) if storage.exists(root) else []:
        base = storage.join(root, name)
        try:
            runs = sorted(storage.listdir(base))
        except OSError:  # a file beside the experiments
            continue
        for run in runs:
            if storage.exists(storage.join(base, run, "journal.jsonl")):
                log = ExperimentLog.read(storage, storage.join(base, run))
                if log.started:
                    logs.append(log)
    return logs
