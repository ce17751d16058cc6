"""Where a client reaches HDFS over WebHDFS, read from the Hadoop configuration ($HADOOP_CONF_DIR).

A path names its file system by an *authority*: ``namenode:port`` on a cluster with one
NameNode, or a logical *nameservice* (``hdfs://ns1/path``) on an HA cluster, whose NameNodes
(``dfs.ha.namenodes.ns1``) each have a WebHDFS address of their own. The cluster's
``dfs.http.policy`` says whether WebHDFS speaks HTTPS, and ``hadoop.security.authentication``
whether it wants Kerberos (SPNEGO).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import urlparse

from maggy.exceptions import InvalidParameterError

#: The configuration files a client reads, as Hadoop's own clients do.
FILES = ("core-site.xml", "hdfs-site.xml")


@dataclass(frozen=True)
class NameNodes:
    """The WebHDFS addresses (``host:port``) behind one authority, and how to speak to them."""

    authority: str
    hosts: tuple[str, ...]
    https: bool = False
    kerberos: bool = False

    @property
    def scheme(self) -> str:
        """The scheme of maggy's paths on this file system (``swebhdfs`` when it speaks HTTPS)."""
        return "swebhdfs" if self.https else "webhdfs"


def hadoop_conf(conf_dir: str | None = None) -> dict[str, str]:
    """The properties of core-site.xml and hdfs-site.xml in ``conf_dir`` (default
    $HADOOP_CONF_DIR); empty without one."""
    conf_dir = conf_dir if conf_dir is not None else os.environ.get("HADOOP_CONF_DIR", "")
    props: dict[str, str] = {}
    for name in FILES:
        path = os.path.join(conf_dir, name)
        if conf_dir and os.path.exists(path):
            for prop in ET.parse(path).getroot().iter("property"):
                props[(prop.findtext("name") or "").strip()] = (prop.findtext("value") or "").strip()
    return props


def namenodes(scheme: str, authority: str, conf: dict[str, str] | None = None) -> NameNodes:
    """The NameNodes of ``scheme://authority`` (``hdfs``, ``webhdfs`` or ``swebhdfs``). The
    authority they return is what maggy's paths name: the nameservice, else the one NameNode's
    WebHDFS address (``hdfs://namenode:8020`` is ``webhdfs://namenode:9870`` to maggy).

    >>> ha = {"dfs.nameservices": "ns1", "dfs.ha.namenodes.ns1": "nn1, nn2",
    ...       "dfs.namenode.http-address.ns1.nn1": "a:9870", "dfs.namenode.http-address.ns1.nn2": "b:9870"}
    >>> namenodes("hdfs", "ns1", ha)
    NameNodes(authority='ns1', hosts=('a:9870', 'b:9870'), https=False, kerberos=False)
    >>> namenodes("hdfs", "nn:8020", {"dfs.namenode.http-address": "nn:9870"}).authority
    'nn:9870'
    """
    conf = hadoop_conf() if conf is None else conf
    kerberos = conf.get("hadoop.security.authentication", "simple").lower() == "kerberos"
    https_only = conf.get("dfs.http.policy", "").upper() == "HTTPS_ONLY"
    https = scheme == "swebhdfs" or (scheme == "hdfs" and https_only)
    if authority in _names(conf.get("dfs.nameservices", "")):
        https = https or https_only  # webhdfs://nameservice too: the cluster serves HTTPS only
        kind = "https-address" if https else "http-address"
        hosts = tuple(conf.get(f"dfs.namenode.{kind}.{authority}.{nn}", "") for nn in _names(
            conf.get(f"dfs.ha.namenodes.{authority}", "")))
        if not hosts or not all(hosts):
            raise InvalidParameterError(
                f"The Hadoop configuration names the nameservice {authority!r} but not the {kind} of each of its "
                f"NameNodes (dfs.ha.namenodes.{authority}, dfs.namenode.{kind}.{authority}.<id>): fix "
                "$HADOOP_CONF_DIR/hdfs-site.xml.")
        return NameNodes(authority, hosts, https, kerberos)
    if scheme != "hdfs":
        if ":" not in authority:
            raise InvalidParameterError(
                f"{scheme}://{authority} names no port, and {authority!r} is no nameservice of the Hadoop configuration "
                f"({'$HADOOP_CONF_DIR is not set' if not conf else 'dfs.nameservices'}): write "
                f"{scheme}://namenode:http-port/path, or set HADOOP_CONF_DIR to the cluster's configuration.")
        return NameNodes(authority, (authority,), https, kerberos)
    kind = "https-address" if https else "http-address"
    if os.environ.get("WEBHDFS_URL"):  # one NameNode, named outright
        url = urlparse(os.environ["WEBHDFS_URL"])
        return NameNodes(url.netloc, (url.netloc,), url.scheme == "https", kerberos)
    if conf.get(f"dfs.namenode.{kind}"):
        return NameNodes(conf[f"dfs.namenode.{kind}"], (conf[f"dfs.namenode.{kind}"],), https, kerberos)
    raise InvalidParameterError(
        f"Cannot tell the WebHDFS address of the NameNode {authority!r}: set WEBHDFS_URL "
        "(e.g. http://namenode:9870) or HADOOP_CONF_DIR (the cluster's configuration), or write the path as "
        "webhdfs://namenode:9870/path.")


def _names(value: str) -> list[str]:
    return [n.strip() for n in value.split(",") if n.strip()]
