"""Reading the Hadoop configuration, and what a worker and the driver authenticate with."""

from __future__ import annotations

import re

import pytest
import requests

from maggy.exceptions import InvalidParameterError
from maggy.store import hdfs_auth
from maggy.store.hadoop_conf import hadoop_conf, namenodes
from maggy.store.storage import storage_for

CORE = """<configuration>
<property><name>fs.defaultFS</name><value>hdfs://ns1</value></property>
<property><name>hadoop.security.authentication</name><value>kerberos</value></property>
</configuration>"""
HDFS = """<configuration>
<property><name>dfs.nameservices</name><value>ns1</value></property>
<property><name>dfs.ha.namenodes.ns1</name><value>nn1,nn2</value></property>
<property><name>dfs.http.policy</name><value>HTTPS_ONLY</value></property>
<property><name>dfs.namenode.https-address.ns1.nn1</name><value>a.example:9871</value></property>
<property><name>dfs.namenode.https-address.ns1.nn2</name><value>b.example:9871</value></property>
</configuration>"""


@pytest.fixture
def ha_conf(tmp_path, monkeypatch):
    (tmp_path / "core-site.xml").write_text(CORE)
    (tmp_path / "hdfs-site.xml").write_text(HDFS)
    monkeypatch.setenv("HADOOP_CONF_DIR", str(tmp_path))
    monkeypatch.delenv("WEBHDFS_URL", raising=False)
    return tmp_path


def test_a_nameservice_is_every_namenode_over_https_with_kerberos(ha_conf):
    storage = storage_for("hdfs://ns1/user/me/exp")
    assert storage.nodes.hosts == ("a.example:9871", "b.example:9871") and storage.nodes.https
    assert storage.secure  # Kerberos: no user.name on the wire
    assert storage.normalize("hdfs://ns1/user/me/exp/") == "swebhdfs://ns1/user/me/exp"
    assert storage_for("swebhdfs://ns1/user/me/exp").nodes == storage.nodes  # maggy's own form resolves the same


def test_a_nameservice_without_addresses_or_configuration_is_named(ha_conf, monkeypatch):
    (ha_conf / "hdfs-site.xml").write_text(HDFS.replace("dfs.namenode.https-address.ns1.nn2", "unrelated"))
    with pytest.raises(InvalidParameterError, match=r"nameservice 'ns1'.*dfs.namenode.https-address.ns1.<id>"):
        storage_for("hdfs://ns1/x")
    monkeypatch.delenv("HADOOP_CONF_DIR")
    assert hadoop_conf() == {}
    with pytest.raises(InvalidParameterError, match=r"no port.*HADOOP_CONF_DIR is not set"):
        namenodes("webhdfs", "ns1")


def test_a_worker_uses_the_granted_token_and_namenodes_without_any_configuration(monkeypatch):
    monkeypatch.delenv("HADOOP_CONF_DIR", raising=False)
    grant = hdfs_auth.Grant("ns9", ("a:9871", "b:9871"), True, "TOKEN", "-----BEGIN CERTIFICATE-----\n")
    hdfs_auth.install([grant.to_wire()])
    try:
        storage = storage_for("swebhdfs://ns9/exp/trials/t1")
        assert storage.nodes.hosts == ("a:9871", "b:9871") and storage.secure
        assert open(storage.session.verify).read() == grant.ca
        to_namenode = storage.session.auth(requests.Request("GET", "https://a:9871/webhdfs/v1/x?op=OPEN").prepare())
        assert to_namenode.url.endswith("op=OPEN&delegation=TOKEN")
        datanode = "https://dn:9865/webhdfs/v1/x?op=OPEN&delegation=DN&namenoderpcaddress=ns9"
        assert storage.session.auth(requests.Request("GET", datanode).prepare()).url == datanode  # its own token
    finally:
        hdfs_auth._Process.grants.pop("ns9")


@pytest.mark.parametrize("bad", [{}, {"authority": "ns1", "hosts": [], "https": True, "token": "t"},
                                 {"authority": "ns1", "hosts": ["a:1"], "https": "yes", "token": "t"},
                                 {"authority": "ns1", "hosts": ["a:1"], "https": True, "token": ""}])
def test_a_malformed_grant_is_refused(bad):
    with pytest.raises(ValueError, match="malformed HDFS grant"):
        hdfs_auth.install([bad])


def test_principal_and_keytab_are_checked_before_anything(tmp_path):
    with pytest.raises(InvalidParameterError, match="principal and keytab go together"):
        hdfs_auth.configure(principal="me@REALM")
    with pytest.raises(InvalidParameterError, match="keytab '.*missing.keytab' cannot be read"):
        hdfs_auth.configure("me@REALM", str(tmp_path / "missing.keytab"))
    with pytest.raises(InvalidParameterError, match="hdfs_ca"):
        hdfs_auth.configure(ca=str(tmp_path / "missing.pem"))


@pytest.mark.parametrize("failure, advice", [
    ("Clock skew too great", "clock and the KDC's differ"),
    ("Ticket expired", "expired.*run kinit again"),
    ("No Kerberos credentials available (default cache: FILE:/tmp/x)", "no ticket: run kinit"),
])
def test_kerberos_failures_are_explained(failure, advice):
    assert re.search(advice, hdfs_auth.explain(RuntimeError(failure), "ns1"))
    assert hdfs_auth.explain(RuntimeError("connection refused"), "ns1") is None


def hadoop_token(issued: float, max_date: float, number: int) -> str:
    """A delegation token's URL string in Hadoop's encoding (Writable, base64url), as a NameNode
    hands it out: the identifier (owner, renewer, real user, issue and max dates in ms, sequence
    number, key id), a password, the kind and the service."""
    import base64
    import struct

    def vlong(i: int) -> bytes:  # WritableUtils.writeVLong
        if -112 <= i <= 127:
            return struct.pack("b", i)
        size, neg = (-120, True) if i < 0 else (-112, False)
        i = ~i if neg else i
        raw = i.to_bytes((i.bit_length() + 7) // 8, "big")
        return struct.pack("b", size - len(raw)) + raw

    def text(s: str) -> bytes:
        return vlong(len(s.encode())) + s.encode()

    ident = b"\x00" + text("maggy") + text("maggy") + text("") + vlong(int(issued * 1000)) + \
        vlong(int(max_date * 1000)) + vlong(number) + vlong(1)
    body = vlong(len(ident)) + ident + vlong(20) + bytes(20) + text("HDFS_DELEGATION_TOKEN") + text("ns9")
    return base64.urlsafe_b64encode(body).decode().rstrip("=")


class TokenOps:
    """A NameNode's delegation-token operations as TokenKeeper calls them: tokens that live
    ``lifetime`` seconds at most, renewable for ``renew`` at a time; the first renewal of the
    next ``failing_firsts`` new tokens fails."""

    def __init__(self, lifetime: float, renew: float) -> None:
        self.lifetime, self.renew, self.failing_firsts = lifetime, renew, 0
        self.issued: dict[str, float] = {}
        self.renewed: set[str] = set()
        self.cancelled: list[str] = []

    def __call__(self, method: str, op: str, **params):
        import time

        from maggy.store.hdfs import RemoteError

        now = time.time()
        if op == "GETDELEGATIONTOKEN":
            token = hadoop_token(now, now + self.lifetime, len(self.issued) + 1)
            self.issued[token] = now
            return {"Token": {"urlString": token}}
        token = params["token"]
        if op == "CANCELDELEGATIONTOKEN":
            self.cancelled.append(token)
            return {}
        if token not in self.renewed and self.failing_firsts:
            self.failing_firsts -= 1
            raise RemoteError(403, "RetriableException", "the NameNode is busy")
        if token in self.cancelled or now > self.issued[token] + self.lifetime:
            raise RemoteError(403, "InvalidToken", "token is expired or cancelled")
        self.renewed.add(token)
        return {"long": int(min(now + self.renew, self.issued[token] + self.lifetime) * 1000)}


@pytest.fixture
def keeper(monkeypatch):
    """A TokenKeeper on a NameNode's token operations (a minute's tokens, renewable for 2 s),
    with waits of 0.1 s at the least: stopped at the end."""
    from maggy.store.hadoop_conf import NameNodes

    monkeypatch.setattr(hdfs_auth, "MIN_RENEW_WAIT", 0.1)
    namenode = TokenOps(lifetime=60.0, renew=2.0)
    kept = hdfs_auth.TokenKeeper(NameNodes("ns9", ("a:9871",)), namenode)
    kept.namenode = namenode
    yield kept
    kept.stop()


def test_the_token_is_replaced_a_quarter_of_its_life_before_its_max_date(keeper):
    """A new token whose set-up fails is cancelled, not handed out, and tried again at once."""
    from tests.conftest import wait_for

    namenode = keeper.namenode
    namenode.lifetime = 4.0
    keeper.start()
    first = keeper.grants[0]["token"]
    assert hdfs_auth.token_dates(first)[1] == pytest.approx(namenode.issued[first] + 4.0, abs=1e-3)
    assert keeper.version == 0
    namenode.failing_firsts = 1  # the replacement's first renewal fails
    wait_for(lambda: keeper.version >= 1, timeout=10, what="the token's replacement")
    second = keeper.grants[0]["token"]
    assert second != first and keeper.replace_failures == 1 and keeper.renewals >= 1
    assert namenode.issued[first] + 3.0 <= namenode.issued[second] < namenode.issued[first] + 4.0  # 3 s in, give or take
    (dropped,) = [t for t in namenode.cancelled if t not in (first, second)]  # the failed one: never handed out
    assert dropped not in {g["token"] for g in keeper.grants}
    keeper.stop()
    assert second in namenode.cancelled


def test_a_token_hdfs_no_longer_takes_is_replaced_at_once(keeper):
    from tests.conftest import wait_for

    keeper.start()
    first = keeper.grants[0]["token"]
    keeper.namenode.cancelled.append(first)  # cancelled by someone else: its next renewal fails
    wait_for(lambda: keeper.version >= 1, timeout=10, what="a new token")
    assert keeper.grants[0]["token"] != first and keeper.failures == 1
    assert keeper.namenode.issued[keeper.grants[0]["token"]] < keeper.namenode.issued[first] + 5  # not 45 s later
