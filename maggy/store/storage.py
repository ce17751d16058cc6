"""Where an experiment's files live; nothing else in maggy touches files directly.

Local paths, and HDFS through WebHDFS (``hdfs://namenode:rpc-port/path``, whose HTTP address
comes from ``WEBHDFS_URL`` or ``dfs.namenode.http-address`` in ``$HADOOP_CONF_DIR``, or directly
``webhdfs://namenode:http-port/path``). HDFS paths are kept in the ``webhdfs://`` form, which
the executors can use without any Hadoop configuration.
"""

from __future__ import annotations

import abc
import getpass
import http.client
import os
import posixpath
import re
import shutil
import time
import xml.etree.ElementTree as ET
from typing import Iterable
from urllib.parse import urlparse

import requests
import urllib3

from maggy.exceptions import BackendUnavailableError, InvalidParameterError


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

    @property
    def is_local(self) -> bool:
        return False


class LocalStorage(Storage):
    @property
    def is_local(self) -> bool:
        return True

    def normalize(self, path: str) -> str:
        return os.path.abspath(path[len("file://"):] if path.startswith("file://") else path)

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

    def write_bytes(self, path: str, data: bytes) -> None:
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def read_text(self, path: str) -> str:
        with open(path, encoding="utf-8") as f:
            return f.read()

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def listdir(self, path: str) -> list[str]:
        return sorted(os.listdir(path))

    def create_exclusive(self, path: str, text: str) -> bool:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        return True

    def delete(self, path: str) -> None:
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.remove(path)
            except FileNotFoundError:
                pass

    def rename(self, src: str, dst: str) -> None:
        os.rename(src, dst)


def _webhdfs_address(namenode_host: str) -> str:
    """host:port of WebHDFS for an ``hdfs://`` URL: $WEBHDFS_URL, else the Hadoop configuration."""
    if os.environ.get("WEBHDFS_URL"):
        return urlparse(os.environ["WEBHDFS_URL"]).netloc
    conf = os.path.join(os.environ.get("HADOOP_CONF_DIR", ""), "hdfs-site.xml")
    if os.environ.get("HADOOP_CONF_DIR") and os.path.exists(conf):
        for prop in ET.parse(conf).getroot().iter("property"):
            if prop.findtext("name") == "dfs.namenode.http-address":
                return (prop.findtext("value") or "").strip()
    raise InvalidParameterError(
        f"Cannot tell the WebHDFS address of the NameNode {namenode_host!r}: set WEBHDFS_URL "
        "(e.g. http://namenode:9870) or HADOOP_CONF_DIR, or write the path as webhdfs://namenode:9870/path.")


READ_TRIES = 4


class HdfsStorage(Storage):
    """HDFS over WebHDFS (pyhdfs): usable from the driver and from every executor."""

    def __init__(self, address: str) -> None:
        import pyhdfs

        self.address = address
        user = os.environ.get("HADOOP_USER_NAME") or getpass.getuser()
        self.client = pyhdfs.HdfsClient(hosts=address, user_name=user, timeout=20, max_tries=2)

    def normalize(self, path: str) -> str:
        return f"webhdfs://{self.address}{posixpath.normpath(urlparse(path).path or '/')}"

    def _path(self, path: str) -> str:
        return urlparse(path).path or "/"

    def join(self, *parts: str) -> str:
        return parts[0].rstrip("/") + "/" + "/".join(p.strip("/") for p in parts[1:])

    def makedirs(self, path: str) -> None:
        self.client.mkdirs(self._path(path))

    def append_lines(self, path: str, lines: Iterable[str]) -> None:
        data = "".join(line.rstrip("\n") + "\n" for line in lines).encode()
        if self.client.exists(self._path(path)):
            self.client.append(self._path(path), data)
        else:
            self.client.create(self._path(path), data)

    def write_bytes(self, path: str, data: bytes) -> None:
        tmp = f"{self._path(path)}.tmp-{os.getpid()}"
        self.client.create(tmp, data, overwrite=True)
        if self.client.exists(self._path(path)):
            self.client.delete(self._path(path))
        self.client.rename(tmp, self._path(path))

    def read_text(self, path: str) -> str:
        # A DataNode may cut a read of a file that is being appended to (its last block under
        # construction, or held by a driver that died): read it again, a few times.
        for attempt in range(READ_TRIES - 1):
            try:
                return self._read_text(path)
            except (urllib3.exceptions.ProtocolError, requests.exceptions.ChunkedEncodingError, http.client.IncompleteRead):
                time.sleep(0.2 * (attempt + 1))
        return self._read_text(path)

    def _read_text(self, path: str) -> str:
        with self.client.open(self._path(path)) as f:
            return f.read().decode()

    def exists(self, path: str) -> bool:
        return self.client.exists(self._path(path))

    def listdir(self, path: str) -> list[str]:
        return sorted(self.client.listdir(self._path(path)))

    def create_exclusive(self, path: str, text: str) -> bool:
        import pyhdfs

        try:  # the NameNode refuses a CREATE without overwrite on an existing path
            self.client.create(self._path(path), text.encode(), overwrite=False)
        except pyhdfs.HdfsFileAlreadyExistsException:
            return False
        return True

    def delete(self, path: str) -> None:
        self.client.delete(self._path(path), recursive=True)

    def rename(self, src: str, dst: str) -> None:
        if not self.client.rename(self._path(src), self._path(dst)):
            raise OSError(f"HDFS refused to rename {src} to {dst}")

    def check(self, path: str) -> None:
        try:
            self.client.get_file_status("/")
        except Exception as exc:
            raise BackendUnavailableError(
                f"Cannot reach HDFS through WebHDFS at http://{self.address} (for {path}): "
                f"{type(exc).__name__}: {exc}. Is the NameNode running with dfs.webhdfs.enabled?") from None

    def upload_dir(self, local: str, path: str) -> None:
        for name in os.listdir(local):
            full = os.path.join(local, name)
            if os.path.isfile(full):
                with open(full, "rb") as f:
                    self.client.create(self._path(self.join(path, name)), f, overwrite=True)

    def download_dir(self, path: str, local: str) -> None:
        if not self.client.exists(self._path(path)):
            return
        for name in self.client.listdir(self._path(path)):
            with self.client.open(self._path(self.join(path, name))) as src, \
                    open(os.path.join(local, name), "wb") as dst:
                dst.write(src.read())


_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


def as_given(path: str, given: str | None) -> str:
    """``path``, under the directory the user gave (``given``), in the user's own form: an
    ``hdfs://`` directory stays ``hdfs://`` in what the user reads (internally, and in
    ``webhdfs://`` directories, paths are ``webhdfs://``); other paths are returned as they are.

    >>> as_given("/data/exp/mnist/run-1", "/data/exp")
    '/data/exp/mnist/run-1'
    """
    if not given or not given.lower().startswith("hdfs://"):
        return path
    root = storage_for(given).normalize(given)
    return given.rstrip("/") + path[len(root.rstrip("/")):] if path.startswith(root) else path


def storage_for(path: str) -> Storage:
    """The storage that serves ``path``; raises InvalidParameterError for unsupported schemes."""
    match = _URL.match(path)
    scheme = match.group(1).lower() if match else ""
    if scheme in ("", "file"):
        return LocalStorage()
    if scheme in ("hdfs", "webhdfs"):
        netloc = urlparse(path).netloc
        if not netloc:
            raise InvalidParameterError(
                f"experiment_dir {path!r} names no NameNode; write {scheme}://namenode:port/path.")
        return HdfsStorage(netloc if scheme == "webhdfs" else _webhdfs_address(netloc))
    raise InvalidParameterError(
        f"experiment_dir {path!r} uses the scheme '{scheme}://', which maggy cannot write; "
        "use a local path, hdfs:// or webhdfs://.")
