"""Who maggy is to HDFS, and how the executors get in without a Kerberos ticket.

As Hadoop's own clients, in three ways:

- **simple** authentication (``user.name=``: ``$HADOOP_USER_NAME`` or the login user), on a
  cluster without Kerberos;
- **Kerberos** on the driver: SPNEGO (requests-gssapi) with the user's ticket cache (``kinit``),
  or with a principal and keytab given to maggy (:func:`configure`, kept in a ticket cache in
  memory, never on disk);
- a **delegation token** on the executors. The driver obtains one for the experiment's file
  system (:class:`TokenKeeper`) and hands it, with the NameNodes' addresses and the CA that
  signed their certificates, to each worker inside the authenticated control channel; a worker
  :func:`install`\\s that :class:`Grant`, and every HDFS call in its process carries the token.
  No ticket and no keytab ever reaches an executor. The driver renews the token before it
  expires, replaces it before its max date (the workers get the new grant with a reply; see
  :mod:`maggy.engine.grants`), and cancels it at the end.

The login and the grants are per process, as Hadoop's own login user is.
"""

from __future__ import annotations

import base64
import logging
import math
import os
import struct
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from maggy.exceptions import BackendUnavailableError, InvalidParameterError
from maggy.store.hadoop_conf import NameNodes

log = logging.getLogger(__name__)

#: The environment variable naming a CA bundle (PEM) for HTTPS WebHDFS; ``hdfs_ca`` overrides it.
CA_ENV = "MAGGY_WEBHDFS_CA"
#: The shortest wait between two renewals of a token, in seconds.
MIN_RENEW_WAIT = 1.0
#: The longest wait before another try at replacing a token, in seconds (from MIN_RENEW_WAIT,
#: doubling; the current token is renewed meanwhile).
MAX_REPLACE_WAIT = 60.0


@dataclass(frozen=True)
class Grant:
    """What a worker needs to use one file system: its NameNodes, a delegation token, and the
    CA (PEM text) that signed their HTTPS certificates, if any."""

    authority: str
    hosts: tuple[str, ...]
    https: bool
    token: str
    ca: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {**asdict(self), "hosts": list(self.hosts)}

    @classmethod
    def from_wire(cls, body: dict[str, Any]) -> "Grant":
        """A grant from the driver's message; ValueError when it does not fit."""
        hosts = body.get("hosts")
        fields = (body.get("authority"), body.get("token"))
        if not all(isinstance(v, str) and v for v in fields) or not isinstance(hosts, list) or not hosts or \
                not all(isinstance(h, str) for h in hosts) or not isinstance(body.get("https"), bool) or \
                not isinstance(body.get("ca"), (str, type(None))):
            raise ValueError(f"a malformed HDFS grant: {sorted(body)}")
        return cls(body["authority"], tuple(hosts), body["https"], body["token"], body.get("ca"))


class _Process:
    """This process's login (principal, keytab), CA bundle, and grants (authority -> Grant)."""

    login: tuple[str, str] | None = None
    ca: str | None = None
    grants: dict[str, Grant] = {}
    ca_files: dict[str, str] = {}
    lock = threading.Lock()


def configure(principal: str | None = None, keytab: str | None = None, ca: str | None = None) -> None:
    """Use ``principal``'s keys from ``keytab`` for Kerberos in this process instead of the
    ticket cache (both None: the ticket cache), and verify HTTPS WebHDFS with the CA bundle
    ``ca`` (None: $MAGGY_WEBHDFS_CA, else the system's CAs). Checks them, contacts nobody."""
    check(principal, keytab, ca)
    _Process.login = None if principal is None or keytab is None else (principal, keytab)
    _Process.ca = ca


def check(principal: str | None, keytab: str | None, ca: str | None) -> None:
    """InvalidParameterError unless the settings of :func:`configure` can be used."""
    if (principal is None) != (keytab is None):
        raise InvalidParameterError(
            "principal and keytab go together: pass both (principal='me@REALM', keytab='/path/me.keytab'), "
            "or neither to use the ticket cache of kinit.")
    if keytab is not None and not os.access(keytab, os.R_OK):
        raise InvalidParameterError(f"keytab {keytab!r} cannot be read: give the path of a keytab file this user may read.")
    if ca is not None and not os.access(ca, os.R_OK):
        raise InvalidParameterError(f"hdfs_ca {ca!r} cannot be read: give the path of a PEM file of the CA certificates "
                                    "that signed the NameNodes' HTTPS certificates.")


def install(grants: list[dict[str, Any]]) -> None:
    """Take the driver's grants (a worker, once registered); ValueError when one does not fit."""
    parsed = [Grant.from_wire(g) for g in grants]
    with _Process.lock:
        _Process.grants.update({g.authority: g for g in parsed})


def grant_for(authority: str) -> Grant | None:
    return _Process.grants.get(authority)


def ca_bundle() -> str | bool:
    """What ``requests`` verifies HTTPS with: the configured CA bundle, else $MAGGY_WEBHDFS_CA,
    else the system's CAs."""
    return _Process.ca or os.environ.get(CA_ENV) or True


def session_for(nodes: NameNodes) -> tuple[requests.Session, bool]:
    """A requests session that authenticates to ``nodes`` as this process may, and whether
    ``user.name`` must be left out of requests (it must, with Kerberos or a token: the NameNode
    refuses a name that differs from the authenticated one)."""
    session = requests.Session()
    grant = grant_for(nodes.authority)
    if grant is not None:
        session.auth = _TokenAuth(nodes.authority)
        if grant.ca:
            session.verify = _ca_file(grant.ca)
        return session, True
    session.verify = ca_bundle()
    if nodes.kerberos or _Process.login is not None:
        session.auth = _SpnegoAuth(nodes.authority)
        return session, True
    return session, False


def credentials(authority: str) -> Any:
    """This process's Kerberos credentials (gssapi), checked: a clear error when there are none
    or they expired."""
    try:
        import gssapi
    except ImportError:
        raise BackendUnavailableError(
            f"HDFS {authority} wants Kerberos, and maggy's Kerberos support is not installed: "
            "pip install 'maggy[kerberos]' (it needs the system's Kerberos, e.g. Debian's libkrb5-dev).") from None
    try:
        if _Process.login is not None:
            principal, keytab = _Process.login
            name = gssapi.Name(principal, gssapi.NameType.kerberos_principal)
            store: dict[bytes | str, bytes | str] = {"client_keytab": keytab, "ccache": f"MEMORY:maggy-{os.getpid()}"}
            creds = gssapi.Credentials(name=name, usage="initiate", store=store)
        else:
            creds = gssapi.Credentials(usage="initiate")
        _ = creds.lifetime  # an expired ticket raises here
        return creds
    except gssapi.exceptions.GSSError as exc:
        raise BackendUnavailableError(explain(exc, authority) or f"Kerberos failed for HDFS {authority}: {exc}") from None


def diagnose(authority: str, host: str) -> str | None:
    """Why SPNEGO to ``host`` fails, from Kerberos itself (requests-gssapi only sees the 401
    that follows): None when a service ticket for ``HTTP/host`` can be had."""
    import gssapi

    try:
        target = gssapi.Name(f"HTTP@{host.rsplit(':', 1)[0]}", gssapi.NameType.hostbased_service)
        gssapi.SecurityContext(name=target, creds=credentials(authority), usage="initiate").step()
    except gssapi.exceptions.GSSError as exc:
        return explain(exc, authority) or f"Kerberos could not get a ticket for HTTP/{host} (HDFS {authority}): {exc}"
    return None


def explain(exc: BaseException, authority: str) -> str | None:
    """What a Kerberos failure means for the user, or None if ``exc`` is none."""
    text = str(exc)
    who = f"principal {_Process.login[0]!r} from its keytab" if _Process.login else "your Kerberos ticket"
    if "Clock skew too great" in text:
        return (f"Kerberos refused {who} for HDFS {authority}: this machine's clock and the KDC's differ by more "
                "than the allowed skew (5 minutes by default). Synchronise the clock (NTP or chrony) and try again.")
    if "expired" in text.lower():
        return (f"{who[0].upper()}{who[1:]} expired, so HDFS {authority} cannot be reached: run kinit again, or "
                "pass principal= and keytab= to lagom so that maggy logs in by itself.")
    if "No Kerberos credentials" in text or "No credentials cache" in text or ("not found" in text and "cache" in text):
        return (f"HDFS {authority} wants Kerberos and there is no ticket: run kinit (as the user the experiment "
                "runs as), or pass principal= and keytab= to lagom.")
    if "Key table" in text or "keytab" in text.lower():
        return f"Kerberos could not use the keytab for HDFS {authority} ({text}): check principal= and keytab=."
    return None


def user() -> str:
    """The HDFS user this process acts as: its principal's first component (the login's, else the
    ticket cache's), else the simple user."""
    principal = _Process.login[0] if _Process.login is not None else None
    if principal is None:
        try:
            import gssapi

            principal = str(gssapi.Credentials(usage="initiate").name)
        except Exception:  # noqa: BLE001 - no Kerberos here (not installed, no ticket): the simple user
            principal = None
    if principal:
        return principal.split("@")[0].split("/")[0]
    import getpass

    return os.environ.get("HADOOP_USER_NAME") or getpass.getuser()


def _ca_file(pem: str) -> str:
    """A file holding ``pem`` (requests verifies against a path), one per distinct CA."""
    with _Process.lock:
        if pem not in _Process.ca_files:
            with tempfile.NamedTemporaryFile("w", prefix="maggy-ca-", suffix=".pem", delete=False) as f:
                f.write(pem)
            _Process.ca_files[pem] = f.name
        return _Process.ca_files[pem]


class _SpnegoAuth(requests.auth.AuthBase):
    """SPNEGO (requests-gssapi) with this process's credentials, taken at the first request: a
    storage can be made, and its path checked, before anyone logs in."""

    def __init__(self, authority: str) -> None:
        self.authority = authority
        self._auth: requests.auth.AuthBase | None = None

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self._auth is None:
            from requests_gssapi import HTTPSPNEGOAuth  # the kerberos extra

            self._auth = HTTPSPNEGOAuth(creds=credentials(self.authority))
        return self._auth(request)


class _TokenAuth(requests.auth.AuthBase):
    """Adds ``delegation=<token>`` to requests to a NameNode (a DataNode's address, which the
    NameNode hands out, carries a token of its own): the token of the latest grant for
    ``authority``, so that one the driver replaced serves every session from then on."""

    def __init__(self, authority: str) -> None:
        self.authority = authority

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        parts = urlsplit(request.url or "")
        query = parse_qsl(parts.query, keep_blank_values=True)
        grant = grant_for(self.authority)
        if grant is not None and not any(k == "delegation" for k, _ in query):
            request.url = urlunsplit(parts._replace(query=urlencode([*query, ("delegation", grant.token)])))
        return request


def token_dates(token: str) -> tuple[float, float] | None:
    """When a delegation token (its URL string, as WebHDFS hands it out) was issued and the
    latest it can be renewed to (its max date, after which no renewal keeps it), in seconds since
    the epoch; None for a token that is not HDFS's. Read from the token's identifier, in
    Hadoop's Writable encoding: nothing is asked of the NameNode.

    >>> token_dates("HgAFbWFnZ3kFbWFnZ3kAigGLz-VoAIoBi_Px7AAHAhQAAQIDBAUGBwgJCgsMDQ4PEBESExVIREZTX0RFTEVHQVRJT05fVE9L"
    ...             "RU4LaGEtaGRmczpuczE")
    (1700000000.0, 1700604800.0)
    >>> token_dates("not a token") is None
    True
    """
    try:
        data = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        at = [0]

        def vlong() -> int:  # Hadoop's WritableUtils.readVLong
            first = struct.unpack_from("b", data, at[0])[0]
            at[0] += 1
            if first >= -112:
                return first
            size = (-119 - first) if first < -120 else (-111 - first)
            value = int.from_bytes(data[at[0]:at[0] + size - 1], "big")
            at[0] += size - 1
            return ~value if first < -120 else value

        def text() -> None:  # a Text: its length, then its bytes (skipped)
            length = vlong()
            at[0] += length

        vlong()  # the identifier's length
        if data[at[0]] != 0:  # the identifier's version
            return None
        at[0] += 1
        for _ in range(3):  # owner, renewer, real user
            text()
        issued, max_date = vlong(), vlong()
    except (ValueError, IndexError, struct.error):
        return None
    return (issued / 1000.0, max_date / 1000.0) if 0 < issued < max_date else None


class TokenKeeper:
    """The experiment's delegation token, on the driver: obtained at :meth:`start`, renewed by a
    thread of its own at half its remaining life, replaced by a new one before its max date
    (``dfs.namenode.delegation.token.max-lifetime``, after which no renewal keeps a token; the
    driver hands the new :attr:`grants` to the workers, see :attr:`version`), and cancelled at
    :meth:`stop`. ``call(method, op, **params)`` is a WebHDFS request to the active NameNode,
    authenticated with Kerberos."""

    def __init__(self, nodes: NameNodes, call: Callable[..., dict]) -> None:
        self.nodes, self._call = nodes, call
        self.token: str | None = None
        self.expires: float | None = None  # seconds since the epoch
        self.dates: tuple[float, float] | None = None  # the token's issue and max dates
        #: The workers' grants for the current token, and how often it was replaced.
        self.grants: tuple[dict[str, Any], ...] = ()
        self.version = 0
        self.renewals = 0
        self.failures = self.replace_failures = 0
        self._retired: list[tuple[str, float]] = []  # replaced tokens and their last expiry (no longer renewed)
        self._replace_at: float | None = None
        self.max_dates: list[float | None] = []  # each token's, the first one's first
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep_until_stopped, name="maggy-hdfs-token", daemon=True)

    def start(self) -> None:
        """Obtain and renew the token once (which tells its expiry), and keep it from now on."""
        self._obtain()
        self._thread.start()

    def _obtain(self) -> bool:
        """A new token, renewed once, as the current one (the one it replaces is retired); False
        when the keeper was stopped meanwhile (the new token is cancelled, not handed out)."""
        body = self._call("GET", "GETDELEGATIONTOKEN", renewer=user())
        token = (body.get("Token") or {}).get("urlString")
        if not token:
            raise BackendUnavailableError(
                f"HDFS {self.nodes.authority} gave no delegation token (is security on? {body!r:.200}): the executors "
                "could not write the experiment's checkpoints.")
        try:
            expires = self._renew(token)
            ca = None
            if self.nodes.https and isinstance(bundle := ca_bundle(), str):
                with open(bundle, encoding="utf-8") as f:
                    ca = f.read()
        except BaseException:
            self._cancel(token)  # not handed to anyone
            raise
        if self._stop.is_set():
            self._cancel(token)
            return False
        if self.token is not None:
            self._retired.append((self.token, self.expires or 0.0))
        self.token, self.expires, self.dates = token, expires, token_dates(token)
        self.max_dates.append(self.dates[1] if self.dates else None)
        self._replace_at = None if self.dates is None else self.dates[1] - 0.25 * (self.dates[1] - self.dates[0])
        if self.dates is None:
            log.warning("maggy: the HDFS delegation token's max date cannot be read from it: it is renewed but not "
                        "replaced, so the experiment's workers lose HDFS at dfs.namenode.delegation.token.max-lifetime")
        self.grants = (Grant(self.nodes.authority, self.nodes.hosts, self.nodes.https, token, ca).to_wire(),)
        return True

    def _renew(self, token: str) -> float:
        body = self._call("PUT", "RENEWDELEGATIONTOKEN", token=token)
        return int(body["long"]) / 1000.0

    def _renew_at(self, now: float) -> float:
        """When to renew: at half the token's remaining life; never once renewals reach its max
        date (they cannot extend it: it is replaced instead)."""
        if self.dates is not None and self.expires is not None and self.expires >= self.dates[1] - 1e-3:
            return math.inf
        return now + 0.5 * ((self.expires or 0.0) - now)

    def _keep_until_stopped(self) -> None:
        """Renew the token at half its remaining life; replace it a quarter of its whole life
        before its max date (so that every worker has the new one long before the old one ends),
        or at once when HDFS no longer takes it; where a replacement fails, try again later while
        renewing the current one."""
        wait = MIN_RENEW_WAIT  # before another try at a replacement that failed
        while True:
            now = time.time()
            renew_at = self._renew_at(now)
            due = min(renew_at, math.inf if self._replace_at is None else self._replace_at)
            if self._stop.wait(max(MIN_RENEW_WAIT, due - now)):
                return
            if self._replace_at is not None and time.time() >= self._replace_at:
                try:
                    if self._obtain():
                        self.version += 1  # after the grants: the driver hands them out from now on
                        log.info("maggy: replaced the HDFS delegation token before its max date")
                    wait = MIN_RENEW_WAIT
                    continue
                except Exception as exc:  # noqa: BLE001 - the current token still serves; tried again
                    self.replace_failures += 1
                    log.warning("maggy: replacing the HDFS delegation token failed (%s: %s); trying again in %.0fs",
                                type(exc).__name__, exc, wait)
                    self._replace_at, wait = time.time() + wait, min(2 * wait, MAX_REPLACE_WAIT)
            if time.time() >= renew_at:
                try:
                    self.expires = self._renew(self.token or "")
                    self.renewals += 1
                except Exception as exc:  # noqa: BLE001 - tried again; the workers keep the token meanwhile
                    self.failures += 1
                    dead = str(getattr(exc, "exception", "")).endswith("InvalidToken") or \
                        (self.expires or 0.0) <= time.time()
                    if dead:  # cancelled by someone, or lapsed: a new one now
                        self._replace_at = time.time()
                    log.warning("maggy: renewing the HDFS delegation token failed (%s: %s); %s", type(exc).__name__,
                                exc, "obtaining a new one" if dead else "trying again")
                    self._stop.wait(MIN_RENEW_WAIT)

    def _cancel(self, token: str) -> None:
        try:
            self._call("PUT", "CANCELDELEGATIONTOKEN", token=token)
        except Exception as exc:  # noqa: BLE001 - it expires by itself
            log.warning("maggy: cancelling an HDFS delegation token failed (%s); it expires by itself", exc)

    def stop(self) -> None:
        """Stop renewing and cancel the tokens still alive (the workers are done with them)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        now = time.time()
        for token in [t for t, expires in self._retired if expires > now] + ([self.token] if self.token else []):
            self._cancel(token)
        self.token = None

    def stats(self) -> dict[str, Any]:
        return {"renewals": self.renewals, "renew_failures": self.failures, "expires": self.expires,
                "replacements": self.version, "replace_failures": self.replace_failures,
                "max_dates": list(self.max_dates)}
