"""HDFS through WebHDFS, from the driver and from every executor.

A path names its file system as ``hdfs://authority/...`` (resolved through the Hadoop
configuration, see :mod:`maggy.store.hadoop_conf`), ``webhdfs://`` or ``swebhdfs://`` (HTTPS).
Every NameNode of an HA nameservice is tried in turn, so a standby or a dead one is skipped and a
failover costs a retry, not the experiment. Who maggy is to HDFS is :mod:`maggy.store.hdfs_auth`'s
business: simple authentication, Kerberos (SPNEGO) on the driver, a delegation token on the
executors, whose grant also carries the NameNodes' addresses, so an executor needs no Hadoop
configuration.
"""

from __future__ import annotations

import http.client
import os
import posixpath
import re
import time
from typing import Any, Callable, Iterable
from urllib.parse import urlparse

import requests
import urllib3

from maggy.exceptions import BackendUnavailableError, InvalidParameterError
from maggy.store import hdfs_auth
from maggy.store.base import Storage
from maggy.store.hadoop_conf import NameNodes

#: How often a read that a DataNode cut short is made.
READ_TRIES = 4
#: Seconds a WebHDFS request may take.
TIMEOUT = 20.0
#: Rounds over an HA pair's NameNodes, and the seconds between two: long enough to ride out a
#: failover (no NameNode active while the standby takes over), as Hadoop's own client does.
HA_TRIES, HA_RETRY_DELAY = 8, 2.0


class RemoteError(OSError):
    """A NameNode refused a request: Hadoop's exception name and message."""

    def __init__(self, status: int, exception: str, message: str) -> None:
        super().__init__(f"{status} {exception}: {message}")
        self.status, self.exception, self.message = status, exception, message

    @classmethod
    def of(cls, response: requests.Response) -> "RemoteError":
        try:
            remote = response.json().get("RemoteException") or {}
        except ValueError:
            remote = {}
        return cls(response.status_code, str(remote.get("exception", response.reason)),
                   str(remote.get("message", response.text[:300])))


class CredentialsRefused(RemoteError):
    """HDFS refused who a request said it was: a worker's delegation token (cancelled, or past its
    maximum lifetime) or this process's Kerberos login."""


_TOKEN_OPS = re.compile(r"[?&]op=(RENEW|CANCEL)DELEGATIONTOKEN(&|$)", re.IGNORECASE)


def refusal_hook(authority: str) -> Callable[..., requests.Response]:
    """A requests response hook that raises :class:`CredentialsRefused`, naming the credentials
    and the fix, for a NameNode's or DataNode's refusal of them. Hadoop answers a bad token or
    login with a SecurityException (or InvalidToken) as 403, which pyhdfs would turn into an
    AssertionError (it expects 401 for SecurityException)."""
    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        if response.status_code not in (401, 403) or \
                response.status_code == 403 and _TOKEN_OPS.search(response.request.url or ""):
            return response  # a token operation's 403 is about its token argument (see TokenKeeper)
        error = RemoteError.of(response)
        if error.exception.rsplit("$", 1)[-1] not in ("SecurityException", "InvalidToken"):
            return response  # e.g. AccessControlException: a permission, said by its own error
        if hdfs_auth.grant_for(authority) is not None:
            fix = ("The token maggy's driver handed this worker was cancelled (the experiment that obtained it "
                   "ended) or passed its maximum lifetime (dfs.namenode.delegation.token.max-lifetime, 7 days by "
                   "default). Run the same lagom call again: it continues the experiment with a new token.")
        else:
            fix = (hdfs_auth.explain(error, authority) or "Run kinit again, or pass principal= and keytab= to lagom "
                   "so that maggy logs in by itself.")
        refused = CredentialsRefused(error.status, error.exception, error.message)
        refused.args = (f"HDFS {authority} refused this process's credentials ({error}). {fix}",)
        raise refused
    return hook


class HdfsStorage(Storage):
    """HDFS over WebHDFS (pyhdfs); ``address`` is one NameNode's ``host:port`` or every
    NameNode of a file system (:class:`NameNodes`)."""

    def __init__(self, address: str | NameNodes) -> None:
        import pyhdfs

        nodes = address if isinstance(address, NameNodes) else NameNodes(address, (address,))
        grant = hdfs_auth.grant_for(nodes.authority)
        if grant is not None:  # a worker: the NameNodes as the driver saw them
            nodes = NameNodes(nodes.authority, grant.hosts, grant.https, True)
        self.nodes, self.address = nodes, nodes.authority
        self.session, anonymous = hdfs_auth.session_for(nodes)
        self.session.hooks["response"].append(refusal_hook(nodes.authority))
        # verify goes with each request: requests lets $REQUESTS_CA_BUNDLE override a session's own
        ha = len(nodes.hosts) > 1
        self.client = pyhdfs.HdfsClient(hosts=list(nodes.hosts), randomize_hosts=False, timeout=TIMEOUT,
                                        max_tries=HA_TRIES if ha else 2, retry_delay=HA_RETRY_DELAY if ha else 5.0,
                                        scheme="https" if nodes.https else "http", requests_session=self.session,
                                        requests_kwargs={"verify": self.session.verify})
        if anonymous:  # Kerberos or a token says who we are; requests leaves a None parameter out
            self.client.user_name = None  # type: ignore[assignment]

    @property
    def secure(self) -> bool:
        """Whether this file system wants Kerberos (and the driver hands its executors a token)."""
        return self.client.user_name is None

    def normalize(self, path: str) -> str:
        return f"{self.nodes.scheme}://{self.address}{posixpath.normpath(urlparse(path).path or '/')}"

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
        """Reach the file system, as the user maggy acts as, and check that the user may write
        under ``path``: each failure named, before anything is written."""
        urls = ", ".join(f"{'https' if self.nodes.https else 'http'}://{host}" for host in self.nodes.hosts)
        where = urls if self.nodes.hosts == (self.address,) else f"{self.nodes.scheme}://{self.address} ({urls})"
        if self.secure and hdfs_auth.grant_for(self.address) is None:
            hdfs_auth.credentials(self.address)  # no ticket, an expired one: said here
        try:
            self.client.get_file_status("/")
        except Exception as exc:
            kerberos = self.secure and hdfs_auth.grant_for(self.address) is None
            raise BackendUnavailableError(hdfs_auth.explain(exc, self.address) or (
                kerberos and hdfs_auth.diagnose(self.address, self.nodes.hosts[0])) or (
                f"Cannot reach HDFS through WebHDFS at {where} (for {path}): {type(exc).__name__}: {exc}. Is a "
                "NameNode running with dfs.webhdfs.enabled, and active?")) from None
        self._check_writable(path)

    def _check_writable(self, path: str) -> None:
        """The deepest directory of ``path`` that exists must let the user write and enter it."""
        import pyhdfs

        existing = self._path(path)
        try:
            while existing != "/" and not self.client.exists(existing):
                existing = posixpath.dirname(existing)
            self.call("GET", "CHECKACCESS", existing, fsaction="-wx")
        except (RemoteError, pyhdfs.HdfsAccessControlException) as exc:  # ours, or pyhdfs's for a parent
            if getattr(exc, "exception", "") != "AccessControlException":
                raise
            who = hdfs_auth.user()
            why = (getattr(exc, "message", "") or str(exc)).splitlines()[0]
            raise InvalidParameterError(
                f"HDFS user {who!r} may not write to {existing} (for {path}): {why}. Choose an experiment_dir that "
                f"{who!r} may write (e.g. /user/{who}/maggy), or ask the cluster's administrator for access.") from None

    def call(self, method: str, op: str, path: str = "/", **params: Any) -> dict:
        """A WebHDFS request on the active NameNode (a standby is skipped, and an HA pair's
        failover ridden out, as pyhdfs does); its JSON answer. For the operations pyhdfs lacks:
        CHECKACCESS and the delegation tokens'."""
        last: BaseException | None = None
        rounds = HA_TRIES if len(self.nodes.hosts) > 1 else 1
        for round_ in range(rounds):
            if round_:
                time.sleep(HA_RETRY_DELAY)
            for host in self.nodes.hosts:
                url = f"{'https' if self.nodes.https else 'http'}://{host}/webhdfs/v1{path}"
                try:
                    response = self.session.request(method, url, params={"op": op, **params}, timeout=TIMEOUT,
                                                    verify=self.session.verify)
                except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                    last = exc
                    continue
                if response.ok:
                    return response.json() if response.content else {}
                error = RemoteError.of(response)
                if error.exception in ("StandbyException", "RetriableException"):
                    last = error
                    continue
                raise error
        raise BackendUnavailableError(f"No NameNode of {self.address} ({', '.join(self.nodes.hosts)}) answered {op}: "
                                      f"{type(last).__name__}: {last}")

    def delegation(self) -> hdfs_auth.TokenKeeper | None:
        if not self.secure or hdfs_auth.grant_for(self.address) is not None:
            return None
        return hdfs_auth.TokenKeeper(self.nodes, lambda method, op, **params: self.call(method, op, **params))

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
