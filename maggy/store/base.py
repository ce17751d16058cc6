"""The interface of where an experiment's files live (see :mod:`maggy.store.storage`)."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from maggy.store.hdfs_auth import TokenKeeper


class Storage(abc.ABC):
    """The few file operations an experiment needs."""

    @abc.abstractmethod
    def normalize(self, path: str) -> str:
        """The canonical form of ``path`` (absolute, one scheme)."""

    @abc.abstractmethod
    def join(self, *parts: str) -> str: ...

    @abc.abstractmethod
    def makedirs(self, path: str) -> None: ...

    @abc.abstractmethod
    def append_lines(self, path: str, lines: Iterable[str]) -> None:
        """Append lines and make them durable before returning."""

    @abc.abstractmethod
    def write_bytes(self, path: str, data: bytes) -> None:
        """Replace the file, as :meth:`write_text` does."""

    def write_text(self, path: str, text: str) -> None:
        """Replace the file; readers see the old or the new content, never a mix."""
        self.write_bytes(path, text.encode())

    @abc.abstractmethod
    def read_text(self, path: str) -> str: ...

    @abc.abstractmethod
    def exists(self, path: str) -> bool: ...

    @abc.abstractmethod
    def listdir(self, path: str) -> list[str]:
        """The names in directory ``path``, sorted."""

    @abc.abstractmethod
    def create_exclusive(self, path: str, text: str) -> bool:
        """Create ``path`` holding ``text`` unless it exists (atomically); whether it was created."""

    @abc.abstractmethod
    def delete(self, path: str) -> None:
        """Remove the file or directory ``path`` (with what it holds) if it exists."""

    @abc.abstractmethod
    def rename(self, src: str, dst: str) -> None:
        """Move ``src`` to ``dst``, which must not exist (atomic on local disks and HDFS)."""

    def check(self, path: str) -> None:
        """Raise BackendUnavailableError, naming the address, when ``path`` cannot be reached."""

    def upload_dir(self, local: str, path: str) -> None:
        """Copy the files of local directory ``local`` to ``path`` (for remote storages)."""

    def download_dir(self, path: str, local: str) -> None:
        """Copy the files under ``path`` into local directory ``local`` (for remote storages)."""

    def delegation(self) -> TokenKeeper | None:
        """What the driver renews for its workers while they run (a secure HDFS's delegation
        token); None where they need nothing."""
        return None

    @property
    def is_local(self) -> bool:
        return False
