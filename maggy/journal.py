"""The experiment journal: an append-only JSON-lines log of experiment and trial events.

Every trial state change is one event; replaying the events rebuilds the trial table, which is
what resuming an experiment will use. As a callback, the journal buffers the state changes of
one driver step and appends them in one durable write after the step's reply has gone out, and
writes ``result.json`` when the experiment ends.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from maggy.callbacks import Callback, ExperimentInfo
from maggy.storage import Storage
from maggy.trial import FrozenTrial, Trial

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from maggy.result import Result


class Journal(Callback):
    """Appends events to ``journal.jsonl`` in ``exp_dir``; each append is durable when it returns."""

    def __init__(self, storage: Storage, exp_dir: str) -> None:
        self.storage = storage
        self.exp_dir = exp_dir
        self.path = storage.join(exp_dir, "journal.jsonl")
        self._changes: list[dict[str, Any]] = []
        self._latest: dict[str, dict[str, Any]] = {}

    def append(self, event: str, **fields: Any) -> None:
        record = {"event": event, "time": time.time(), **fields}
        self.storage.append_lines(self.path, [json.dumps(record, default=str)])

    def append_trials(self, records: list[dict[str, Any]]) -> None:
        """Record trial snapshots (``Trial.to_record()``), in one durable append."""
        now = time.time()
        self.storage.append_lines(self.path, [json.dumps({"event": "trial", "time": now, **r}, default=str)
                                              for r in records])

    def read(self) -> list[dict[str, Any]]:
        """Every event; a torn last line (the driver died while appending) is left out."""
        if not self.storage.exists(self.path):
            return []
        lines = [line for line in self.storage.read_text(self.path).splitlines() if line.strip()]
        events = []
        for i, line in enumerate(lines):
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                if i < len(lines) - 1:
                    raise ValueError(f"{self.path}: line {i + 1} of {len(lines)} is not JSON; the journal is "
                                     "damaged in the middle, not torn at its end") from None
        return events

    def repair(self) -> None:
        """Drop a torn last line (rewriting the journal atomically), so that appends stay whole lines."""
        if not self.storage.exists(self.path):
            return
        text = self.storage.read_text(self.path)
        if text and not text.endswith("\n"):
            self.storage.write_text(self.path, "".join(json.dumps(e, default=str) + "\n" for e in self.read()))

    def replay(self) -> dict[str, Trial]:
        """The trials as the journal last recorded them, by id."""
        return {e["trial_id"]: Trial.from_record(e) for e in self.read() if e["event"] == "trial"}

    # ---- as a callback ---------------------------------------------------------------------

    def on_experiment_start(self, info: ExperimentInfo) -> None:
        self._latest = {t.trial_id: t.to_record() for t in info.trials}
        self.append("experiment_start", config=dict(info.config), total=info.total_trials,
                    num_workers=info.num_workers, resumes=info.resumes,
                    tracking=None if info.tracking is None else dict(info.tracking), fingerprint=info.fingerprint)

    def on_trial_change(self, trial: FrozenTrial) -> None:
        record = trial.to_record()
        self._changes.append(record)
        self._latest[trial.trial_id] = record

    def on_step_end(self) -> None:
        if self._changes:
            changes, self._changes = self._changes, []
            self.append_trials(changes)

    def on_experiment_end(self, result: "Result", outcome: str) -> None:
        self.on_step_end()
        self.storage.write_text(self.storage.join(self.exp_dir, "result.json"),
                                json.dumps({**result.to_dict(), "outcome": outcome,
                                            "trials": list(self._latest.values())}, indent=1, default=str))
        try:
            table = result.to_parquet()
        except (ValueError, TypeError) as exc:  # pyarrow's ArrowInvalid/ArrowTypeError: extras it cannot type
            log.warning("maggy: trials.parquet not written (%s: %s); result.json holds every trial",
                        type(exc).__name__, exc)
        else:
            self.storage.write_bytes(self.storage.join(self.exp_dir, "trials.parquet"), table)
        self.append("experiment_end", outcome=outcome, stats=result.stats)
