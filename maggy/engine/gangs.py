"""Which idle workers run the next trial together: the pool of workers waiting for a trial, and
the choice of a gang from it.

A worker that asks for a trial (GET, or the FINAL of its last one) waits here, unanswered, until
the driver has a trial for it and enough other idle workers for that trial's gang: then the
whole gang gets its assignments in one step. No worker is ever held for a gang that is not
complete: a worker either waits here, free, or runs a rank of a complete gang. Pure bookkeeping
without I/O or a clock of its own, so that every rule is tested with plain calls.

>>> pool = IdlePool()
>>> for conn, host in [(1, "a"), (2, "b"), (3, "b")]:
...     pool.park(conn, host, now=0.0)
>>> [(m.conn, m.rank, m.local_rank, m.local_world_size) for m in pool.take(2)]  # packed on host b
[(2, 0, 0, 2), (3, 1, 1, 2)]
>>> pool.take(2) is None, len(pool)
(True, 1)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from maggy.rpc.messages import Final
from maggy.trial import TrialState, error_record


@dataclass(frozen=True)
class Member:
    """One worker's place in a gang."""

    conn: int
    host: str
    rank: int
    local_rank: int
    local_world_size: int


class IdlePool:
    """Workers waiting for a trial, in the order they asked."""

    def __init__(self) -> None:
        self._since: dict[int, float] = {}
        self._host: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._since)

    def __contains__(self, conn: object) -> bool:
        return conn in self._since

    def park(self, conn: int, host: str, now: float) -> None:
        """``conn`` asks for a trial (a worker already waiting keeps its place)."""
        self._since.setdefault(conn, now)
        self._host[conn] = host

    def remove(self, conn: int) -> bool:
        """``conn`` stops waiting (it was answered, or it dropped); whether it was waiting."""
        self._host.pop(conn, None)
        return self._since.pop(conn, None) is not None

    def drain(self) -> list[int]:
        """Every waiting worker, now answered otherwise (WAIT or DONE)."""
        conns = list(self._since)
        self._since.clear()
        self._host.clear()
        return conns

    def waited(self, now: float, limit: float) -> list[int]:
        """Workers that have waited longer than ``limit`` seconds (they are removed): answered
        WAIT, they ask again, so that no request waits long enough to time out."""
        out = [c for c, since in self._since.items() if now - since > limit]
        for conn in out:
            self.remove(conn)
        return out

    def take(self, k: int) -> list[Member] | None:
        """``k`` waiting workers as one gang (removed from the pool), or None while fewer wait.

        Ranks are packed on as few hosts as the pool allows (hosts with the most waiting workers
        first), so that a gang's collectives stay on one host where they can; rank 0 is on the
        host that has most of the gang. Within a host, workers keep the order they asked in.
        """
        if len(self._since) < k:
            return None
        by_host: dict[str, list[int]] = {}
        for conn in self._since:
            by_host.setdefault(self._host[conn], []).append(conn)
        # a host that holds the whole gang alone, the smallest such (least fragmentation); else the largest first
        whole = sorted((h for h, cs in by_host.items() if len(cs) >= k), key=lambda h: len(by_host[h]))
        order = whole[:1] or sorted(by_host, key=lambda h: -len(by_host[h]))
        chosen: list[tuple[str, list[int]]] = []
        left = k
        for host in order:
            conns = by_host[host][:left]
            chosen.append((host, conns))
            left -= len(conns)
            if not left:
                break
        members: list[Member] = []
        for host, conns in chosen:
            for local, conn in enumerate(conns):
                members.append(Member(conn, host, len(members), local, len(conns)))
                self.remove(conn)
        return members


def gang_outcome(finals: Sequence[Final]) -> tuple[TrialState, float | None, dict[str, Any], dict | None]:
    """The state, metric, extra values and error of a run from the FINAL of each rank (rank 0
    first): rank 0 speaks for the gang, unless a rank failed. An error of ``train_fn`` on any
    rank fails the run with that error, before the errors that the other ranks saw only because
    of it (a peer's connection closed); with only those, the first stands.

    >>> ok = Final(0, "t", TrialState.FINALIZED, 0.0, 1.0, metric=0.9)
    >>> gang_outcome([ok, Final(1, "t", TrialState.FINALIZED, 0.0, 1.0)])[:2]
    (<TrialState.FINALIZED: 'FINALIZED'>, 0.9)
    >>> from maggy.trial import error_record
    >>> reset = Final(0, "t", TrialState.ERROR, 0, 1, error=error_record("RuntimeError", "reset"), peer_failure=True)
    >>> bug = Final(1, "t", TrialState.ERROR, 0, 1, error=error_record("ValueError", "bad lr"))
    >>> gang_outcome([reset, bug])[3]["type"]
    'ValueError'
    """
    chief = finals[0]
    errors = [f for f in finals if f.state is TrialState.ERROR]
    if not errors:
        return chief.state, chief.metric, dict(chief.extra), None
    blamed = next((f for f in errors if not f.peer_failure), errors[0])
    return TrialState.ERROR, None, {}, blamed.error


def run_outcome(finals: Sequence[Final], trial_limit: float | None = None) -> tuple[TrialState, float | None,
                                                                                 dict[str, Any], dict | None]:
    """:func:`gang_outcome`, and an ERROR for a run that passed ``trial_limit`` seconds
    (``trial_timeout``; pass it only for such a run) and did not fail otherwise."""
    state, metric, extra, error = gang_outcome(finals)
    if trial_limit is not None and state is not TrialState.ERROR:
        state, error = TrialState.ERROR, error_record(
            "TrialTimeout", f"the trial ran longer than trial_timeout={trial_limit:g}s")
    return state, metric, extra, error
