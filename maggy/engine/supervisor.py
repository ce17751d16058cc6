"""Keeping an experiment's workers going, and knowing which are alive: silent workers lose their
trials, overlong trials are stopped, the backend's failed workers are relaunched, workers that
all ended while a lost trial came back are started again, and an experiment left without any
worker for too long fails (its finished trials kept, for a resume)."""

from __future__ import annotations

from dataclasses import dataclass, field

from maggy.engine.backends.base import Backend
from maggy.engine.registry import WorkerRegistry

#: Seconds between two resubmissions of all the workers.
RESUBMIT_PAUSE = 2.0
#: Seconds a free worker waits unanswered for enough others to form a gang, before it hears WAIT
#: and asks again (well within the worker's request timeout).
GANG_WAIT = 2.0


@dataclass
class Liveness:
    """What one look at the workers found, for the driver to act on."""

    #: Workers that waited GANG_WAIT for a gang: they hear WAIT and ask again.
    ask_again: list[int] = field(default_factory=list)
    #: Runs whose workers went silent past the heartbeat timeout (trial id, silence): lost.
    silent: list[tuple[str, float]] = field(default_factory=list)
    #: Runs that just passed ``trial_timeout``: they are stopped.
    overdue: list[str] = field(default_factory=list)


class Supervisor:
    """Watches ``backend`` for the driver's loop; :meth:`check` says why the experiment must fail."""

    def __init__(self, backend: Backend, worker_timeout: float) -> None:
        self.backend = backend
        self.worker_timeout = worker_timeout
        self._no_worker_since: float | None = None
        self._resubmitted = float("-inf")
        #: The driver's address as the workers were given it, and whether any worker reached it.
        self.advertised = ""
        self._reached = False

    def look(self, now: float, registry: WorkerRegistry, *, hb_timeout: float, trial_timeout: float | None) -> Liveness:
        """One look at the workers of ``registry`` at ``now`` (monotonic): see :class:`Liveness`;
        then, once the driver acted on it, :meth:`check` the backend."""
        return Liveness(registry.pool.waited(now, GANG_WAIT), registry.stale(now, hb_timeout),
                        registry.overdue(now, trial_timeout))

    def check(self, now: float, *, finished: bool, quiet: bool, workers: int) -> str | None:
        """One look at the backend, with ``now`` (monotonic), whether the experiment is
        ``finished``, whether no message waits (``quiet``) and how many ``workers`` can run a
        trial. Returns None, or why the experiment cannot go on."""
        self.backend.relaunch_failed()
        # the last FINAL may have just finished the experiment and its worker ended on DONE
        idle = not finished and not self.backend.running() and quiet and now - self._resubmitted > RESUBMIT_PAUSE
        if idle and self.backend.failure() is None and self.backend.resubmit():
            self._resubmitted = now  # idle workers ended (no new trial could come), then a lost trial came back
        elif idle:
            return "All workers ended before the experiment finished"
        if workers:
            self._reached, self._no_worker_since = True, None
        elif self._no_worker_since is None:
            self._no_worker_since = now
        elif now - self._no_worker_since > self.worker_timeout:
            return (f"No worker could run for {self.worker_timeout:g}s (worker_timeout): no executor was granted, "
                    "or every worker task failed")
        return None

    def unreached(self) -> str:
        """For a failed experiment, the address the workers were given and how to change it,
        where no worker ever reached the driver (the last sentence of the error: its cause may
        be another one, said before it)."""
        if self._reached:
            return ""
        return (f" No worker ever reached the driver at {self.advertised}, the address the workers were given: if the "
                "executors cannot reach it, set driver_address='host:port' to an address of this machine that they "
                "can reach (and driver_bind= where the driver should listen, if that differs).")
