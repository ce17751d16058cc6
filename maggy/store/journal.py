"""The experiment journal: an append-only JSON-lines log of typed events (:mod:`maggy.store.events`).

Every trial change is one event; replaying the events (:mod:`maggy.store.replay`) rebuilds the
trial table, which is how an experiment resumes and how a finished one is read back. As a
callback, the journal hands the changes of each driver step to the experiment's
:class:`~maggy.store.writer.StorageWriter`, which appends them off the driver's loop, in order,
batched; it writes ``result.json`` and ``trials.parquet`` when the experiment ends, once every
event before is written.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from maggy.callbacks import Callback, ExperimentInfo
from maggy.store.events import Event, ExperimentEnded, ExperimentStarted, Outcome, TrialChanged, decode, encode
from maggy.store.storage import Storage
from maggy.store.writer import StorageWriter
from maggy.trial import FrozenTrial

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from maggy.result import Result


class Journal(Callback):
    """Appends events to ``journal.jsonl`` in ``exp_dir``: through ``writer`` when given (an
    append is then durable once the writer has flushed), else durable when it returns."""

    def __init__(self, storage: Storage, exp_dir: str, writer: StorageWriter | None = None) -> None:
        self.storage = storage
        self.exp_dir = exp_dir
        self.writer = writer
        self.path = storage.join(exp_dir, "journal.jsonl")
        self._changes: list[Event] = []
        self._latest: dict[str, FrozenTrial] = {}

    def append(self, *events: Event) -> None:
        """Record ``events`` in one append."""
        lines = [json.dumps(encode(e), default=str) for e in events]
        if self.writer is not None:
            self.writer.append(self.path, lines)
        else:
            self.storage.append_lines(self.path, lines)

    def records(self) -> list[dict[str, Any]]:
        """Every line as its JSON object; a torn last line (the driver died while appending) is
        left out."""
        if not self.storage.exists(self.path):
            return []
        lines = [line for line in self.storage.read_text(self.path).splitlines() if line.strip()]
        records = []
        for i, line in enumerate(lines):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if i < len(lines) - 1:
                    raise ValueError(f"{self.path}: line {i + 1} of {len(lines)} is not JSON; the journal is "
                                     "damaged in the middle, not torn at its end") from None
        return records

    def read(self) -> list[Event]:
        """Every event, typed."""
        return [decode(r) for r in self.records()]

    def repair(self) -> None:
        """Drop a torn last line (rewriting the journal atomically), so that appends stay whole lines."""
        if not self.storage.exists(self.path):
            return
        text = self.storage.read_text(self.path)
        if text and not text.endswith("\n"):
            self.storage.write_text(self.path, "".join(json.dumps(r, default=str) + "\n" for r in self.records()))

    # ---- as a callback ---------------------------------------------------------------------

    def on_experiment_start(self, info: ExperimentInfo) -> None:
        self._latest = {t.trial_id: t for t in info.trials}
        self.append(ExperimentStarted(dict(info.config), info.total_trials, info.num_workers, info.resumes,
                                      None if info.tracking is None else dict(info.tracking), info.fingerprint,
                                      info.versioned_checkpoints))

    def on_trial_change(self, trial: FrozenTrial) -> None:
        self._changes.append(TrialChanged(trial))
        self._latest[trial.trial_id] = trial

    def _failed(self) -> bool:
        """Whether the writer gave up (the driver's loop raised its error): nothing more is written."""
        return self.writer is not None and self.writer.error is not None

    def on_step_end(self) -> None:
        if self._changes and not self._failed():
            changes, self._changes = self._changes, []
            self.append(*changes)

    def on_experiment_end(self, result: "Result", outcome: str) -> None:
        if self._failed():
            log.warning("maggy: %s holds what was written before its storage failed; result.json not written",
                        self.path)
            return
        self.on_step_end()
        if self.writer is not None:  # the files below then follow every event in the journal
            self.writer.flush()
        self.storage.write_text(self.storage.join(self.exp_dir, "result.json"),
                                json.dumps({**result.to_dict(), "outcome": outcome,
                                            "trials": [t.to_record() for t in self._latest.values()]},
                                           indent=1, default=str))
        try:
            table = result.to_parquet()
        except (ValueError, TypeError) as exc:  # pyarrow's ArrowInvalid/ArrowTypeError: extras it cannot type
            log.warning("maggy: trials.parquet not written (%s: %s); result.json holds every trial",
                        type(exc).__name__, exc)
        else:
            self.storage.write_bytes(self.storage.join(self.exp_dir, "trials.parquet"), table)
        self.append(ExperimentEnded(Outcome(outcome), result.stats))
