"""Keeping an experiment's workers going: the backend's failed workers are relaunched, workers
that all ended while a lost trial came back are started again, and an experiment left without
any worker for too long fails (its finished trials kept, for a resume)."""

from __future__ import annotations

from maggy.engine.backends.base import Backend

#: Seconds between two resubmissions of all the workers.
RESUBMIT_PAUSE = 2.0


class Supervisor:
    """Watches ``backend`` for the driver's loop; :meth:`check` says why the experiment must fail."""

    def __init__(self, backend: Backend, worker_timeout: float) -> None:
        self.backend = backend
        self.worker_timeout = worker_timeout
        self._no_worker_since: float | None = None
        self._resubmitted = float("-inf")

    def check(self, now: float, *, finished: bool, quiet: bool, workers: int) -> str | None:
        """One look, with ``now`` (monotonic), whether the experiment is ``finished``, whether no
        message waits (``quiet``) and how many ``workers`` are registered. Returns None, or why
        the experiment cannot go on."""
        self.backend.relaunch_failed()
        # the last FINAL may have just finished the experiment and its worker ended on DONE
        idle = not finished and not self.backend.running() and quiet and now - self._resubmitted > RESUBMIT_PAUSE
        if idle and self.backend.failure() is None and self.backend.resubmit():
            self._resubmitted = now  # idle workers ended (no new trial could come), then a lost trial came back
        elif idle:
            return "All workers ended before the experiment finished"
        if workers:
            self._no_worker_since = None
        elif self._no_worker_since is None:
            self._no_worker_since = now
        elif now - self._no_worker_since > self.worker_timeout:
            return (f"No worker could run for {self.worker_timeout:g}s (worker_timeout): no executor was granted, "
                    "or every worker task failed")
        return None
