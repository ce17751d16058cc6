"""The figures of one driver's run of an experiment, as ``result.stats`` gives them: states,
workers, hand-off latency and the busy share of the workers' time.

Utilisation is trial runs' seconds over workers x the wall time from the first worker's
registration to the end of the last trial (this driver's run of the experiment only):

>>> s = RunStats(workers=2)
>>> s.registered(100.0); s.ran(8.0); s.ran(6.0); s.ended(110.0)
>>> s.utilization()
{'utilization': 0.7, 'busy_seconds': 14.0, 'worker_seconds': 20.0}
"""

from __future__ import annotations

import collections
import statistics
import time
from typing import Any, Iterable, Mapping

from maggy.engine.registry import WorkerRegistry
from maggy.trial import Trial


class RunStats:
    """Collects the figures as the experiment runs; times are wall-clock seconds."""

    def __init__(self, workers: int, resumes: int = 0) -> None:
        self.workers = workers
        #: How many times the experiment was continued before this run.
        self.resumes = resumes
        self.worker_errors: list[str] = []
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

    def utilization(self) -> dict[str, float]:
        """The busy share, or nothing if no worker ever registered."""
        if self._first is None:
            return {}
        capacity = self.workers * ((self._end or time.time()) - self._first)
        return {"utilization": min(1.0, self._busy / capacity) if capacity > 0 else 0.0,
                "busy_seconds": self._busy, "worker_seconds": capacity}

    def figures(self, done: Iterable[Trial], started: float, total: int, registry: WorkerRegistry,
                backend: Mapping[str, Any], bad_frames: Mapping[str, int], rpc: Mapping[str, str],
                stopped: str | None) -> dict[str, Any]:
        """``result.stats``: the ended trials ``done``, since ``started``, of ``total``, with the
        backend's own figures, the frames the RPC server dropped, where it listened, and the
        stopping rule that ended the experiment early, if one did."""
        done = list(done)
        stats: dict[str, Any] = {
            "makespan": time.time() - started, "num_workers": self.workers, "total_trials": total,
            "resumes": self.resumes, "states": dict(collections.Counter(t.state.value for t in done)),
            "bad_frames": dict(bad_frames), "workers": [w.describe() for w in registry.registered],
            "worker_errors": self.worker_errors, **backend}
        if rpc:  # where the driver listened, and where workers were told to reach it
            stats["rpc"] = dict(rpc)
        if stopped:
            stats["stopped"] = stopped
        stats.update(self.utilization())
        handoffs = sorted(t.handoff for t in done if t.handoff is not None)
        if handoffs:
            stats["handoff_p50_ms"] = 1000 * statistics.median(handoffs)
            stats["handoff_p99_ms"] = 1000 * handoffs[min(len(handoffs) - 1, int(0.99 * len(handoffs)))]
        return stats
