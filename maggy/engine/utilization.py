"""The busy share of the workers' time, as ``result.stats["utilization"]`` gives it.

Trial runs' seconds over workers x the wall time from the first worker's registration to the end
of the last trial (this driver's run of the experiment only):

>>> u = Utilization(workers=2)
>>> u.registered(100.0); u.ran(8.0); u.ran(6.0); u.ended(110.0)
>>> u.stats()
{'utilization': 0.7, 'busy_seconds': 14.0, 'worker_seconds': 20.0}
"""

from __future__ import annotations

import time


class Utilization:
    """Collects the figures as the experiment runs; times are wall-clock seconds."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._first: float | None = None
        self._end: float | None = None
        self._busy = 0.0

    def registered(self, now: float) -> None:
        """A worker registered (the first one starts the clock)."""
        if self._first is None:
            self._first = now

    def ran(self, seconds: float) -> None:
        """A trial's run took ``seconds`` on its worker."""
        self._busy += max(0.0, seconds)

    def ended(self, now: float) -> None:
        """The last trial ended."""
        self._end = now

    def stats(self) -> dict[str, float]:
        """The figures, or nothing if no worker ever registered."""
        if self._first is None:
            return {}
        capacity = self.workers * ((self._end or time.time()) - self._first)
        return {"utilization": min(1.0, self._busy / capacity) if capacity > 0 else 0.0,
                "busy_seconds": self._busy, "worker_seconds": capacity}
