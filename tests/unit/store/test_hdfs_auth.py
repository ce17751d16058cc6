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
