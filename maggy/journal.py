"""The experiment journal: an append-only JSON-lines log of experiment and trial events.

Every trial state change is one event; replaying the events rebuilds the trial table, which is
what resuming an experiment will use.
"""

from __future__ import annotations

import json
import time
from typing import Any

from maggy.storage import Storage
from maggy.trial import Trial


class Journal:
    """Appends events to ``path`` on ``storage``; each append is durable when it returns."""

    def __init__(self, storage: Storage, path: str) -> None:
        self.storage = storage
        self.path = path

    def append(self, event: str, **fields: Any) -> None:
        record = {"event": event, "time": time.time(), **fields}
        self.storage.append_lines(self.path, [json.dumps(record, default=str)])

    def append_trials(self, records: list[dict[str, Any]]) -> None:
        """Record trial snapshots (``Trial.to_record()``), in one durable append."""
        now = time.time()
        self.storage.append_lines(self.path, [json.dumps({"event": "trial", "time": now, **r}, default=str)
                                              for r in records])

    def read(self) -> list[dict[str, Any]]:
        if not self.storage.exists(self.path):
            return []
        return [json.loads(line) for line in self.storage.read_text(self.path).splitlines() if line.strip()]

    def replay(self) -> dict[str, Trial]:
        """The trials as the journal last recorded them, by id."""
        return {e["trial_id"]: Trial.from_record(e) for e in self.read() if e["event"] == "trial"}
