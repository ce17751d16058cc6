"""The interface through which the driver starts workers; backends never schedule trials."""

from __future__ import annotations

import abc

from maggy.runtime.worker import WorkerSpec


class Backend(abc.ABC):
    """Starts ``num_workers`` long-lived workers that run :func:`maggy.runtime.worker.worker_main`."""

    name: str = "backend"

    @abc.abstractmethod
    def prepare(self) -> None:
        """Check that the backend can run (Java, Spark, ...); raise BackendUnavailableError if not.

        Called before any trial is created, so a missing dependency fails fast.
        """

    @abc.abstractmethod
    def num_slots(self) -> int:
        """How many workers can run at the same time."""

    @abc.abstractmethod
    def addresses(self) -> tuple[str, str]:
        """(host to bind the driver's RPC server to, host that workers connect to)."""

    @abc.abstractmethod
    def start(self, spec: WorkerSpec, num_workers: int, job_name: str) -> None:
        """Launch the workers and return at once."""

    def relaunch_failed(self) -> None:
        """Restart workers that died, as Spark relaunches a failed task; called by the driver
        while the experiment is not done. Backends whose scheduler does this itself do nothing."""

    def resubmit(self) -> bool:
        """Start the workers again: they all ended (told that no new trial would come) and then
        a trial was lost and re-queued. False if this backend cannot."""
        return False

    @abc.abstractmethod
    def running(self) -> bool:
        """Whether any worker may still be alive."""

    @abc.abstractmethod
    def failure(self) -> str | None:
        """Why the workers ended abnormally, if they did."""

    @abc.abstractmethod
    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the workers to end; True when they have."""

    @abc.abstractmethod
    def cancel(self) -> None:
        """Stop every worker now."""

    def network_encrypted(self) -> bool:
        """Whether the cluster encrypts its own traffic: the default of ``tls`` follows it."""
        return False

    def kerberos_login(self) -> tuple[str, str] | None:
        """The principal and keytab the cluster manager was given for this application, where the
        keytab is at hand; maggy logs in with them when the user passed none. Starts nothing."""
        return None

    def describe(self) -> dict:
        """Facts about the run for the result's stats."""
        return {"backend": self.name}
