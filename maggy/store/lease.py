"""Who drives an experiment: a lease file in its directory, so that two drivers never write to it.

The driver takes the lease before it starts, renews it while it runs (as a callback, every
``ttl / 4`` seconds) and gives it back at the end. The lease says who holds it and how to reach
them: host, pid, the driver's RPC address once it listens, and under YARN the application and
attempt. A new driver takes over at once when the holder is provably gone: a later attempt of
the same YARN application (YARN ends an attempt before it starts the next), a dead process on
this host, our own leftover (a notebook cell run again after an interrupt), or an RPC address
that refuses connections. A holder provably alive (its process on this host, or its RPC address
accepting connections) keeps the experiment: the new driver fails at once, naming it. Otherwise
(a holder on a host that does not answer, or one still starting) the new driver waits until the
lease is ``ttl`` seconds old, saying whom it waits for, and takes over unless the holder renewed
it meanwhile. Creation is atomic on local disks and on HDFS (a CREATE without overwrite), so of
two drivers starting at once exactly one wins.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
import uuid
from typing import TYPE_CHECKING, Any, Callable

from maggy.callbacks import Callback, ExperimentInfo
from maggy.exceptions import MaggyError
from maggy.store.storage import Storage

if TYPE_CHECKING:
    from maggy.result import Result

#: Seconds without renewal after which a lease of another host is stale.
DEFAULT_TTL = 60.0
#: Seconds between two tries to renew a lease that the storage refused.
RENEW_RETRY = 1.0
#: Seconds a probe of the holder's RPC address waits for an answer.
PROBE_TIMEOUT = 2.0
#: A YARN container id: ``container_[e<epoch>_]<cluster timestamp>_<app>_<attempt>_<container>``.
_CONTAINER = re.compile(r"^container_(?:e\d+_)?(\d+)_(\d+)_(\d+)_\d+$")

log = logging.getLogger(__name__)


class ExperimentLockedError(MaggyError):
    """Another driver holds the experiment's lease."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def yarn_attempt(env: Callable[[str], str | None] = os.environ.get) -> dict[str, Any] | None:
    """The YARN application and attempt this process runs in (an application master's
    container), from ``CONTAINER_ID``; None outside YARN.

    >>> yarn_attempt({"CONTAINER_ID": "container_e02_1700000000000_0007_02_000001"}.get)
    {'app': 'application_1700000000000_0007', 'attempt': 2}
    """
    match = _CONTAINER.match(env("CONTAINER_ID") or "")
    if match is None:
        return None
    stamp, app, attempt = match.groups()
    return {"app": f"application_{stamp}_{app}", "attempt": int(attempt)}


def probe(address: str | None, timeout: float = PROBE_TIMEOUT) -> bool | None:
    """Whether a driver listens at ``host:port``: True when it accepts a connection, False when
    the connection is refused (nothing listens there: the driver is gone), None when nothing
    answers in ``timeout`` seconds or there is no address (we cannot tell)."""
    if not address:
        return None
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except ConnectionRefusedError:
        return False
    except (OSError, ValueError):
        return None


class Lease(Callback):
    """The lease on ``exp_dir``; see the module docstring."""

    def __init__(self, storage: Storage, exp_dir: str, ttl: float = DEFAULT_TTL) -> None:
        self.storage = storage
        self.path = storage.join(exp_dir, "lease.json")
        self.ttl = ttl
        self.token = uuid.uuid4().hex
        self._renewed = 0.0
        self._retry_at = 0.0
        self.rpc: str | None = None
        self.yarn = yarn_attempt()

    def _record(self) -> str:
        return json.dumps({"token": self.token, "host": socket.gethostname(), "pid": os.getpid(),
                           "renewed": time.time(), "rpc": self.rpc, "yarn": self.yarn})

    def acquire(self) -> None:
        """Take the lease: at once if it is free or its holder is provably gone, after waiting
        for it to go stale if its holder cannot be reached; ExperimentLockedError naming the
        holder when the holder is alive."""
        for _ in range(3):
            if self.storage.create_exclusive(self.path, self._record()):
                self._renewed = time.monotonic()
                return
            holder = self._holder()
            if holder:
                self._wait_out(holder)
            self.storage.delete(self.path)
        raise ExperimentLockedError(f"Other drivers took the lease {self.path} at the same moments; try again.")

    def _holder(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.storage.read_text(self.path)))
        except (OSError, ValueError, TypeError):  # gone meanwhile, or torn by a crash: stale
            return {}

    def _wait_out(self, holder: dict[str, Any]) -> None:
        """Return once ``holder`` is gone or its lease stale; raise ExperimentLockedError while
        it is provably alive, or when it renews its lease while we wait."""
        left = float(holder.get("renewed", 0)) + self.ttl - time.time()
        if left <= 0:
            return  # stale, whoever held it (its RPC port may be another process's by now)
        gone = self._gone(holder)
        if gone is False:
            raise ExperimentLockedError(
                f"Another driver runs this experiment ({_who(holder)}, lease renewed "
                f"{time.time() - float(holder.get('renewed', 0)):.0f}s ago, in {self.path}). Wait for it to end, stop "
                "it, or start a separate experiment with resume=False or another name.")
        if gone:
            return
        log.warning("maggy: the lease of this experiment is held by %s, which does not answer; waiting up to "
                    "%.0f s for its lease to go stale before taking over (%s).", _who(holder), left, self.path)
        deadline = time.monotonic() + left
        while time.monotonic() < deadline:
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            now = self._holder()
            if not now or now.get("token") != holder.get("token"):
                return  # released, or taken by another driver: try to create it again
            gone = self._gone(now)  # one probe a round: it may wait PROBE_TIMEOUT for an answer
            if float(now.get("renewed", 0)) > float(holder.get("renewed", 0)) or gone is False:
                raise ExperimentLockedError(
                    f"Another driver runs this experiment ({_who(now)}): it renewed its lease while this one waited "
                    f"({self.path}). Wait for it to end, stop it, or start a separate experiment with resume=False.")
            if gone:
                return

    def _gone(self, holder: dict[str, Any]) -> bool | None:
        """Whether the holder is provably gone (True), provably alive (False), or unknown (None)."""
        theirs, mine = holder.get("yarn"), self.yarn
        if theirs and mine and theirs.get("app") == mine["app"] and int(theirs.get("attempt", 0)) < mine["attempt"]:
            return True  # YARN ended that attempt before it started ours
        if holder.get("host") == socket.gethostname():
            pid = int(holder.get("pid", 0))
            return pid == os.getpid() or not _alive(pid)  # our own leftover, or its process is gone
        answer = probe(holder.get("rpc"))
        return None if answer is None else not answer

    def on_experiment_start(self, info: ExperimentInfo) -> None:
        """The driver listens now: the lease says where, so that a driver elsewhere can tell."""
        self.rpc = info.rpc_address
        self._renew()

    def on_step_end(self) -> None:
        now = time.monotonic()
        if now - self._renewed <= self.ttl / 4 or now < self._retry_at:
            return
        try:
            self._renew()
        except Exception as exc:  # noqa: BLE001 - the storage is away (a NameNode failover): try again soon
            if now - self._renewed > self.ttl:  # from now on another driver may take the experiment over
                raise ExperimentLockedError(
                    f"Could not renew this driver's lease ({self.path}) for {self.ttl:.0f} s ({type(exc).__name__}: "
                    f"{exc}): another driver may take the experiment over, so this one stops. Finished trials are "
                    "kept; the same call continues the experiment.") from exc
            log.warning("maggy: renewing the lease %s failed (%s: %s); trying again", self.path, type(exc).__name__, exc)
            self._retry_at = now + RENEW_RETRY

    def _renew(self) -> None:
        self.storage.write_text(self.path, self._record())
        self._renewed = time.monotonic()

    def release(self) -> None:
        """Give the lease back."""
        self.storage.delete(self.path)

    def on_experiment_end(self, result: "Result", outcome: str) -> None:
        self.release()


def _who(holder: dict[str, Any]) -> str:
    """The holder as a message names it: host, pid, RPC address, YARN attempt."""
    parts = [f"host {holder.get('host')}", f"pid {holder.get('pid')}"]
    if holder.get("rpc"):
        parts.append(f"RPC {holder['rpc']}")
    if holder.get("yarn"):
        parts.append(f"{holder['yarn'].get('app')} attempt {holder['yarn'].get('attempt')}")
    return "the driver on " + ", ".join(parts)
