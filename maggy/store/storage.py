"""Where an experiment's files live; nothing else in maggy touches files directly.

Local paths, and HDFS through WebHDFS (:mod:`maggy.store.hdfs`): ``hdfs://namenode:rpc-port/path``
or ``hdfs://nameservice/path``, whose WebHDFS addresses come from ``$HADOOP_CONF_DIR`` (or
``WEBHDFS_URL`` for one NameNode), or directly ``webhdfs://namenode:http-port/path`` and
``swebhdfs://`` for HTTPS. HDFS paths are kept in the ``webhdfs://`` (``swebhdfs://``) form.
"""

from __future__ import annotations

import os
import re
import shutil
from typing import Iterable
from urllib.parse import urlparse

from maggy.exceptions import InvalidParameterError
from maggy.store import hdfs_auth
from maggy.store.base import Storage
from maggy.store.hadoop_conf import namenodes
from maggy.store.hdfs import HdfsStorage

__all__ = ["Storage", "LocalStorage", "HdfsStorage", "storage_for", "as_given"]


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
    if scheme in ("hdfs", "webhdfs", "swebhdfs"):
        netloc = urlparse(path).netloc
        if not netloc:
            raise InvalidParameterError(
                f"experiment_dir {path!r} names no NameNode; write {scheme}://namenode:port/path or "
                f"{scheme}://nameservice/path.")
        if hdfs_auth.grant_for(netloc) is not None:  # a worker: the driver said where and how
            return HdfsStorage(netloc)
        return HdfsStorage(namenodes(scheme, netloc))
    raise InvalidParameterError(
        f"experiment_dir {path!r} uses the scheme '{scheme}://', which maggy cannot write; "
        "use a local path, hdfs://, webhdfs:// or swebhdfs://.")
