"""The workers the driver knows: who is connected, which trial each runs, when each last spoke,
which wait for a trial, and which ranks of a gang wait for their rank 0 (the gang's one home).

Pure bookkeeping with no I/O and no clock of its own (the caller passes ``now``), so that every
rule about lost, stale and overdue workers is tested with plain calls. A trial is held by a
*group* of connections (one, or a gang: connection ``i`` holds rank ``i``), and the group is
what goes stale or drops: losing any member that has not ended loses the trial's run. A gang's
run ends when all its ranks have ended.

>>> reg = WorkerRegistry()
>>> reg.register(1, WorkerInfo(partition=0, host="h", pid=7), now=0.0)
[]
>>> reg.assign("t1", (1,), now=0.0)
>>> reg.holds(1, "t1"), reg.trial_of(1)
(True, 't1')
>>> reg.touch(1, now=5.0); reg.stale(now=12.0, timeout=10.0)
[]
>>> reg.stale(now=16.0, timeout=10.0)
[('t1', 11.0)]
>>> reg.assign("t2", (1, 2), now=20.0, attempt=3)
>>> reg.end_rank("t2", 2, "rank 1 ended") is None, reg.holds(2, "t2"), reg.holds(1, "t2")
(True, False, True)
>>> reg.end_rank("t2", 1, "rank 0 ended").ended
{1: 'rank 1 ended', 0: 'rank 0 ended'}
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from maggy.engine.gangs import IdlePool


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker said of itself when it registered."""

    partition: int
    host: str
    pid: int
    gpus: tuple[str, ...] = ()
    executor: str | None = None

    def describe(self) -> dict[str, object]:
        """As ``result.stats["workers"]`` lists it."""
        return {"partition": self.partition, "host": self.host, "pid": self.pid, "gpus": list(self.gpus),
                "executor": self.executor}


@dataclass
class Run:
    """One trial's current run: the connections that hold it, since when, and whether it ran
    past ``trial_timeout`` (then it is stopped and ends as ERROR)."""

    trial_id: str
    conns: tuple[int, ...]
    began: float
    timed_out: bool = False
    #: The gang's attempt: a new one each time the trial gets workers.
    attempt: int = 0
    #: What each rank that ended said (by rank), until all have.
    ended: dict[int, Any] = field(default_factory=dict)

    def rank(self, conn: int) -> int:
        return self.conns.index(conn)

    def live(self) -> tuple[int, ...]:
        """The connections whose rank has not ended."""
        return tuple(c for i, c in enumerate(self.conns) if i not in self.ended)


@dataclass
class WorkerRegistry:
    """Workers by connection, and the run each group of connections holds."""

    workers: dict[int, WorkerInfo] = field(default_factory=dict)
    #: Every worker that ever registered, in order (for the result's stats).
    registered: list[WorkerInfo] = field(default_factory=list)
    last_seen: dict[int, float] = field(default_factory=dict)
    runs: dict[str, Run] = field(default_factory=dict)
    #: Free workers waiting for a trial.
    pool: IdlePool = field(default_factory=IdlePool)
    #: The other ranks of each gang whose rank 0 has not yet said where its store is, each with
    #: its assignment (handed out when it has).
    held: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        #: The partition each connection served, also after it dropped.
        self._partition: dict[int, int] = {}
        self._attempts = itertools.count(1)

    def next_attempt(self) -> int:
        """A new id for a run of a gang: a stale attempt's messages are told apart by it."""
        return next(self._attempts)

    def park(self, conn: int, now: float) -> None:
        """The registered worker on ``conn`` waits for a trial."""
        self.pool.park(conn, self.workers[conn].host, now)

    def rendezvous(self, conn: int, trial_id: str, attempt: int) -> list[tuple[int, Any]] | None:
        """Rank 0 of the current attempt of ``trial_id`` opened its store: the held ranks and
        their assignments, now handed out; None for a message of an attempt that is over."""
        run = self.runs.get(trial_id)
        if run is None or run.attempt != attempt or run.conns[0] != conn or trial_id not in self.held:
            return None
        return self.held.pop(trial_id)

    def register(self, conn: int, info: WorkerInfo, now: float) -> list[str]:
        """A worker introduced itself on ``conn``. Returns the trials whose run a connection of the
        same partition held and that is gone (its task was relaunched before the old connection was
        seen to drop): those runs are lost. A live connection of an aborted job keeps its run."""
        lost = [r.trial_id for r in self.runs.values()
                if any(c not in self.workers and self._partition.get(c) == info.partition for c in r.live())]
        for trial_id in lost:
            del self.runs[trial_id]
        self.workers[conn] = info
        self._partition[conn] = info.partition
        self.registered.append(info)
        self.last_seen[conn] = now
        return lost

    def touch(self, conn: int, now: float) -> None:
        """``conn`` spoke."""
        self.last_seen[conn] = now

    def assign(self, trial_id: str, conns: tuple[int, ...], now: float, attempt: int = 0) -> None:
        """``conns`` (rank 0 first) run ``trial_id`` from now on (a new run: not timed out; its
        workers' silence counts from now, however long they waited for it)."""
        self.runs[trial_id] = Run(trial_id, tuple(conns), now, attempt=attempt)
        for conn in conns:
            self.last_seen[conn] = now

    def holds(self, conn: int, trial_id: str) -> bool:
        """Whether ``conn`` runs ``trial_id`` now; reports from anyone else are late or stray."""
        run = self.runs.get(trial_id)
        return run is not None and conn in run.live()

    def trial_of(self, conn: int) -> str | None:
        return next((r.trial_id for r in self.runs.values() if conn in r.live()), None)

    def end_rank(self, trial_id: str, conn: int, outcome: Any) -> Run | None:
        """``conn``'s rank of the run of ``trial_id`` ended with ``outcome``; its connection is
        free. Returns the run, released, once all its ranks have ended."""
        run = self.runs[trial_id]
        run.ended[run.rank(conn)] = outcome
        if len(run.ended) < len(run.conns):
            return None
        return self.runs.pop(trial_id)

    def release(self, trial_id: str, now: float) -> Run | None:
        """The run of ``trial_id`` was lost: its connections are free, and ranks still held for
        its gang wait for a trial again."""
        for member, _ in self.held.pop(trial_id, []):
            if member in self.workers:
                self.park(member, now)
        return self.runs.pop(trial_id, None)

    def dropped(self, conn: int) -> str | None:
        """``conn``'s connection closed: the worker is gone; returns the trial whose run it held,
        which is lost (only that one: see :meth:`register`)."""
        self.pool.remove(conn)
        self.workers.pop(conn, None)
        self.last_seen.pop(conn, None)
        trial_id = self.trial_of(conn)
        if trial_id is not None:
            del self.runs[trial_id]
        return trial_id

    def stale(self, now: float, timeout: float) -> list[tuple[str, float]]:
        """Runs with a connection silent for more than ``timeout`` seconds, with that silence;
        they are released."""
        out = []
        for run in list(self.runs.values()):
            silence = max(now - self.last_seen.get(c, now) for c in run.live())
            if silence > timeout:
                del self.runs[run.trial_id]
                out.append((run.trial_id, silence))
        return out

    def overdue(self, now: float, limit: float | None) -> list[str]:
        """Runs that have just passed ``limit`` seconds (each is reported once); they are marked
        timed out until they end."""
        if limit is None:
            return []
        out = [r for r in self.runs.values() if not r.timed_out and now - r.began > limit]
        for run in out:
            run.timed_out = True
        return [r.trial_id for r in out]

    def timed_out(self, trial_id: str) -> bool:
        run = self.runs.get(trial_id)
        return run is not None and run.timed_out
