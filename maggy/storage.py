"""Where an experiment's files live; nothing else in maggy touches files directly.

Only local paths are supported for now; ``hdfs://`` arrives with the platform integration and
plugs in behind the same small interface.
"""

from __future__ import annotations

import abc
import os
from typing import Iterable

from maggy.exceptions import InvalidParameterError


class Storage(abc.ABC):
    """The few file operations an experiment needs."""

    @abc.abstractmethod
    def join(self, *parts: str) -> str: ...

    @abc.abstractmethod
    def makedirs(self, path: str) -> None: ...

    @abc.abstractmethod
    def append_lines(self, path: str, lines: Iterable[str]) -> None:
        """Append lines and make them durable before returning."""

    @abc.abstractmethod
    def write_text(self, path: str, text: str) -> None:
        """Replace the file atomically: readers see the old or the new content, never a mix."""

    @abc.abstractmethod
    def read_text(self, path: str) -> str: ...

    @abc.abstractmethod
    def exists(self, path: str) -> bool: ...


class LocalStorage(Storage):
    def join(self, *parts: str) -> str:
        return os.path.join(*parts)

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def append_lines(self, path: str, lines: Iterable[str]) -> None:
        data = "".join(line.rstrip("\n") + "\n" for line in lines)
        with open(path, "a", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def write_text(self, path: str, text: str) -> None:
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def read_text(self, path: str) -> str:
        with open(path, encoding="utf-8") as f:
            return f.read()

    def exists(self, path: str) -> bool:
        return os.path.exists(path)


def storage_for(path: str) -> Storage:
    """The storage that serves ``path``; raises InvalidParameterError for unsupported schemes."""
    scheme = path.split("://", 1)[0].lower() if "://" in path else ""
    if scheme in ("", "file"):
        return LocalStorage()
    raise InvalidParameterError(
        f"experiment_dir {path!r} uses the scheme '{scheme}://', which this version of maggy "
        "cannot write yet; use a local path.")


def local_path(path: str) -> str:
    """``path`` without a ``file://`` prefix, made absolute."""
    return os.path.abspath(path[len("file://"):] if path.startswith("file://") else path)
