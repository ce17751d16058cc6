"""A worker's place in a gang: the ``torch.distributed`` process group of one attempt of a trial.

When a trial runs on k workers (``workers_per_trial``), each of them holds one rank of a process
group for one *attempt* (a new attempt each time the trial gets a gang). Rank 0 opens the store
on port 0 of its own address (no port is chosen, closed and bound again; the socket is bound
before torch's store serves on it, so it listens on that address only) and tells the driver where
it is; the others learn it with their assignment. Then every rank sets the environment
``torchrun`` would give it and initialises the default process group, so that
``DistributedDataParallel(model)`` works inside ``train_fn`` as it would under ``torchrun``; after
the run the group is destroyed and the environment restored, so that the same long-lived worker
can hold a rank of the next trial (a fresh store per attempt: re-initialising a group on an old
store has hung in PyTorch's history).

Everything that waits on a peer (the store, joining the group, the collective that shares a stop)
waits at most ``timeout`` seconds; what a peer's failure makes a survivor raise is told apart from
an error of ``train_fn`` by :func:`peer_failure`.
"""

from __future__ import annotations

import datetime
import os
import socket
import sys
from dataclasses import dataclass
from typing import Any

#: What torchrun sets for each rank; set for the run, restored after it.
ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Rank:
    """Where one worker stands in its gang for one attempt."""

    rank: int
    world_size: int
    local_rank: int = 0
    local_world_size: int = 1
    attempt: int = 0


class ProcessGroup:
    """The default process group of one attempt, from its store to its destruction.

    Rank 0 calls :meth:`open_store` (and reports the port), the others :meth:`join_store`; then
    every rank :meth:`init`, runs, and :meth:`close` (always, also after a failure).
    """

    def __init__(self, rank: Rank, backend: str = "auto", timeout: float = 300.0) -> None:
        try:
            import torch.distributed as dist
        except ImportError:  # lagom checks this on the driver; an executor without torch fails its trial
            raise RuntimeError("workers_per_trial > 1 needs PyTorch on every worker; install torch there") from None
        if not dist.is_available():
            raise RuntimeError("this PyTorch build has no torch.distributed; workers_per_trial > 1 needs it")
        self._dist = dist
        self.rank = rank
        self.backend = backend
        self.timeout = datetime.timedelta(seconds=timeout)
        self._store: Any = None
        self._env: dict[str, str | None] = {}
        self.address: tuple[str, int] | None = None
        self.device: Any = None

    def open_store(self, host: str) -> int:
        """Rank 0: open the attempt's store on ``host`` (the address the driver reaches this
        worker at, not every interface: torch's own store would listen on all of them), on a port
        the kernel picks; returns the port."""
        listener = socket.create_server((host, 0))
        port = listener.getsockname()[1]
        fd = listener.detach()  # the store owns the socket from here on, and closes it
        try:
            self._store = self._dist.TCPStore(host, port, self.rank.world_size, is_master=True, wait_for_workers=False,
                                              timeout=self.timeout, master_listen_fd=fd)
        except BaseException:
            os.close(fd)
            raise
        self.address = (host, port)
        return port

    def join_store(self, host: str, port: int) -> None:
        """Every other rank: connect to rank 0's store (waits up to the timeout for it)."""
        self._store = self._dist.TCPStore(host, port, self.rank.world_size, is_master=False, timeout=self.timeout)
        self.address = (host, port)

    def init(self) -> None:
        """Set torchrun's environment and initialise the default process group (waits up to the
        timeout for every rank to join)."""
        import torch

        assert self._store is not None and self.address is not None, "open or join the store first"
        backend = self.backend
        if backend == "auto":
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        values = {"RANK": self.rank.rank, "WORLD_SIZE": self.rank.world_size, "LOCAL_RANK": self.rank.local_rank,
                  "LOCAL_WORLD_SIZE": self.rank.local_world_size, "MASTER_ADDR": self.address[0],
                  "MASTER_PORT": self.address[1]}
        self._env = {k: os.environ.get(k) for k in ENV}
        os.environ.update({k: str(v) for k, v in values.items()})
        if backend == "nccl":  # each rank its own GPU: the one of its executor, else its local rank's
            self.device = torch.device("cuda", self.rank.local_rank % torch.cuda.device_count())
            torch.cuda.set_device(self.device)
        else:
            self.device = torch.device("cpu")
        self._dist.init_process_group(backend, store=self._store, rank=self.rank.rank,
                                      world_size=self.rank.world_size, timeout=self.timeout)

    def agree(self, flag: bool) -> bool:
        """Whether any rank says ``flag``: a collective that every rank calls at the same point
        (``reporter.broadcast``), so that all of them stop at the same step."""
        import torch

        vote = torch.tensor([int(flag)], device=self.device)
        self._dist.all_reduce(vote, op=self._dist.ReduceOp.MAX)
        return bool(vote.item())

    def close(self) -> None:
        """Destroy the group (if it was made) and restore the environment."""
        try:
            if self._dist.is_initialized():
                self._dist.destroy_process_group()
        finally:
            self._store = None
            for key, value in self._env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            self._env = {}


class GangAborted(RuntimeError):
    """The driver ended this attempt before its gang formed (a rank was lost meanwhile)."""


#: Words in the errors PyTorch's process groups raise when a peer is gone or silent.
_PEER_MARKERS = ("gloo", "NCCL", "c10d", "Connection closed by peer", "Connection reset by peer", "Broken pipe")


def peer_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is what a rank sees because a peer failed (its connection closed, a
    collective or the store timed out), rather than an error of its own ``train_fn``.

    >>> peer_failure(RuntimeError("[gloo/transport/tcp/pair.cc:561] Connection closed by peer"))
    True
    >>> peer_failure(ValueError("lr must be positive"))
    False
    """
    if isinstance(exc, GangAborted):
        return True
    dist = sys.modules.get("torch.distributed")
    dist_error = getattr(dist, "DistError", None)
    if dist_error is not None and isinstance(exc, dist_error):
        return True
    return isinstance(exc, (RuntimeError, ConnectionError, TimeoutError)) and \
        any(marker in str(exc) for marker in _PEER_MARKERS)
