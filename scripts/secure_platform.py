"""The secure local platform: HDFS, YARN and MLflow as in local_platform.py, in Kerberos mode.

    ./scripts/platform up --secure      # (re)start it on 127.0.0.1, print KEY=VALUE lines
    ./scripts/platform status --secure  # the same lines while everything answers; exit 1 otherwise
    ./scripts/platform failover         # make the standby NameNode active; the old one restarts as standby
    ./scripts/platform down --secure    # stop everything, leaving no process behind

A MIT KDC (Debian's krb5kdc, started by pid) of its own realm MAGGY.TEST on a free loopback port,
with a keytab for every daemon, for SPNEGO (HTTP/localhost and HTTP/127.0.0.1), for HDFS's
superuser (hdfs@MAGGY.TEST) and for a test user (maggy@MAGGY.TEST). HDFS: two NameNodes in the HA
nameservice ns1 (manual failover, edits shared through a local directory) and one DataNode, with
block access tokens, SASL on data transfer and WebHDFS over HTTPS only, behind SPNEGO (a self-signed
certificate made with keytool, also as PEM for Python clients). YARN: a ResourceManager and one
NodeManager with their own principals, their REST APIs behind SPNEGO; Spark applications take
delegation tokens for hdfs://ns1. MLflow keeps its artifacts on webhdfs://ns1 with a ticket of the
test user. The NameNodes' and the ResourceManager's addresses name the host "localhost", as their
service principals do (nn/localhost, rm/localhost, HTTP/localhost); everything binds 127.0.0.1,
on free ports. All state (KDC, keytabs, certificate, configuration, data, logs, pids, env) lives in
.platform/secure/, so that this profile and the open one run side by side and neither's up or down
touches the other's; only Hadoop's jars and Spark's archive in .platform/hadoop are shared.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
from pathlib import Path

from local_platform import (
    ROOT,
    STATE,
    alive,
    free_ports,
    get,
    hadoop,
    hadoop_jars,
    mlflow_server,
    pids,
    running,
    spark_jars_archive,
    spawn,
    wait,
    write_conf,
    write_spark_conf,
    yarn_nodes,
)
from local_platform import down as down_profile

SECURE = STATE / "secure"
KDC = SECURE / "kdc"  # krb5.conf, kdc.conf, the KDC's database and stash
KEYTABS = SECURE / "keytabs"
TLS = SECURE / "tls"  # keystore, truststore, ca.pem
TICKETS = SECURE / "tickets"  # the platform's own ticket caches (admin, test user, MLflow's)
CONF = SECURE / "conf"  # HADOOP_CONF_DIR of the daemons and of clients
DATA = SECURE / "data"
SPARK_CONF = SECURE / "spark-conf"
ENV = SECURE / "env"
TEMPLATES = ROOT / "spark-conf" / "secure"
KRB5_CONF = KDC / "krb5.conf"
CA = TLS / "ca.pem"

REALM = "MAGGY.TEST"
NAMESERVICE = "ns1"
NAMENODES = ("nn1", "nn2")
USER = f"maggy@{REALM}"  # the test user
ADMIN = f"hdfs@{REALM}"  # HDFS's superuser: the NameNodes' own user, see auth_to_local in core-site.xml
TOKEN_RENEW_S = 20  # HDFS delegation tokens must be renewed this often: a renewal shows within a test
TOKEN_MAX_LIFETIME_S = 60  # and no renewal keeps one longer: maggy replaces its token within a test
# Each keytab's principals; a principal is exported to one keytab only (exporting draws new keys).
KEYTAB_PRINCIPALS = {
    "nn": ("nn/localhost",), "dn": ("dn/localhost",), "rm": ("rm/localhost",), "nm": ("nm/localhost",),
    "http": ("HTTP/localhost", "HTTP/127.0.0.1"), "hdfs": ("hdfs",), "maggy": ("maggy",),
}
KRB_JVM = (f"-Djava.security.krb5.conf={KRB5_CONF}",)
NAMENODE = "org.apache.hadoop.hdfs.server.namenode.NameNode"
HAADMIN = "org.apache.hadoop.hdfs.tools.DFSHAAdmin"


def keytab(name: str) -> Path:
    return KEYTABS / f"{name}.keytab"


def kinit(principal: str, tab: Path, ccache: Path) -> bool:
    """A ticket of ``principal`` from its keytab in the ticket cache ``ccache``."""
    ccache.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "KRB5_CONFIG": str(KRB5_CONF), "KRB5CCNAME": f"FILE:{ccache}"}
    return subprocess.run(["kinit", "-kt", str(tab), principal], env=env, capture_output=True).returncode == 0


def start_kdc(port: int) -> None:
    """A fresh KDC database of REALM, every principal with a random key exported to its keytab, and
    krb5kdc on 127.0.0.1:``port`` (UDP and TCP) as a process of the platform's own; Debian's
    packaged KDC service is never used."""
    values = {"realm": REALM, "kdc_port": str(port), "kdc_dir": str(KDC)}
    for name in ("krb5.conf", "kdc.conf"):
        (KDC / name).write_text(string.Template((TEMPLATES / name).read_text()).substitute(values))
    env = {"KRB5_CONFIG": str(KRB5_CONF), "KRB5_KDC_PROFILE": str(KDC / "kdc.conf")}
    subprocess.run(["kdb5_util", "create", "-s", "-W", "-r", REALM, "-P", secrets.token_hex(16)],
                   env={**os.environ, **env}, check=True, capture_output=True)
    commands = [f"addprinc -randkey {p}" for names in KEYTAB_PRINCIPALS.values() for p in names]
    commands += [f"ktadd -k {keytab(tab)} {' '.join(names)}" for tab, names in KEYTAB_PRINCIPALS.items()]
    subprocess.run(["kadmin.local", "-r", REALM], input="\n".join(commands) + "\n", text=True,
                   env={**os.environ, **env}, check=True, capture_output=True)
    if missing := [tab for tab in KEYTAB_PRINCIPALS if not keytab(tab).exists()]:
        sys.exit(f"platform: kadmin.local made no keytab for {', '.join(missing)}")
    spawn("kdc", ["krb5kdc", "-n", "-r", REALM], env, state=SECURE)


def make_tls(password: str) -> None:
    """A self-signed certificate for localhost and 127.0.0.1 (the hosts of every HTTPS address and
    of the DataNode's redirects) in a PKCS#12 keystore, the same certificate in a truststore for
    Hadoop's clients and as PEM (ca.pem) for Python's."""
    store = ["-storetype", "PKCS12", "-storepass", password]
    keytool = ["keytool", "-noprompt", "-alias", "platform"]
    for args in (["-genkeypair", "-keyalg", "RSA", "-keysize", "2048", "-validity", "30", "-dname", "CN=localhost",
                  "-ext", "SAN=dns:localhost,ip:127.0.0.1", "-keystore", str(TLS / "keystore.p12"), *store],
                 ["-exportcert", "-rfc", "-file", str(CA), "-keystore", str(TLS / "keystore.p12"), *store],
                 ["-importcert", "-file", str(CA), "-keystore", str(TLS / "truststore.p12"), *store]):
        subprocess.run([*keytool, *args], check=True, capture_output=True)


def spnego(ccache: Path):
    """requests' SPNEGO authentication with the ticket in ``ccache`` (KRB5_CONFIG must be set)."""
    import gssapi
    from requests_gssapi import HTTPSPNEGOAuth
    return HTTPSPNEGOAuth(creds=gssapi.Credentials(usage="initiate", store={"ccache": f"FILE:{ccache}"}))


def request(method: str, url: str, ccache: Path | None, timeout: float = 10, **kwargs):
    """An HTTP(S) request, with SPNEGO unless ``ccache`` is None, trusting the platform's
    certificate; None if it could not be made."""
    import requests
    from gssapi.exceptions import GSSError
    try:
        return requests.request(method, url, auth=spnego(ccache) if ccache else None, verify=str(CA),
                                timeout=timeout, **kwargs)
    except (requests.RequestException, GSSError):  # refused, timed out, or no ticket
        return None


def webhdfs(nn: str, method: str, path: str, op: str, ccache: Path, **params):
    """A WebHDFS call to the NameNode at ``nn`` (https://host:port) as the ticket's principal."""
    return request(method, f"{nn}/webhdfs/v1{path}", ccache, params={"op": op, **params})


def spnego_create(ccache: Path):
    """``webhdfs_create`` for this profile: the NameNode, through SPNEGO, names a DataNode and a
    delegation token, and the DataNode takes the data with that token."""
    def create(nn: str, path: str, body, size: int) -> bool:
        r = webhdfs(nn, "PUT", path, "CREATE", ccache, overwrite="true", noredirect="true")
        try:
            location = r.json()["Location"]
        except (AttributeError, ValueError, KeyError):  # no answer, or a RemoteException
            return False
        r = request("PUT", location, None, timeout=300, data=body, headers={"Content-Length": str(size)})
        return r is not None and r.status_code == 201
    return create


def spnego_get(ccache: Path):
    """``get`` (the body, or None) with SPNEGO."""
    def fetch(url: str) -> bytes | None:
        r = request("GET", url, ccache)
        return r.content if r is not None and r.ok else None
    return fetch


def namenode_jmx(nn: str, bean: str, key: str):
    """An attribute of one of the NameNode's JMX beans (HTTPS, SPNEGO with the superuser's ticket);
    None if it does not answer."""
    r = request("GET", f"{nn}/jmx", TICKETS / "admin", params={"qry": f"Hadoop:service=NameNode,name={bean}"})
    try:
        return r.json()["beans"][0][key]
    except (AttributeError, ValueError, LookupError):
        return None


def namenode_state(nn: str) -> str | None:
    """"active" or "standby"; None if the NameNode does not answer."""
    return namenode_jmx(nn, "NameNodeStatus", "State")


def until(check, timeout: float) -> bool:
    """Whether ``check()`` came true within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def listening(port: str) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", int(port))) == 0


def haadmin(*args: str) -> subprocess.CompletedProcess:
    """``hdfs haadmin`` with the HDFS superuser's ticket."""
    env = {**os.environ, "KRB5CCNAME": f"FILE:{TICKETS / 'admin'}"}
    return subprocess.run(hadoop("haadmin", HAADMIN, *args, conf=CONF, jvm=KRB_JVM), env=env, capture_output=True,
                          text=True, timeout=120)


def start_namenode(nn: str) -> None:
    """NameNode ``nn`` (nn1 or nn2): it starts as a standby, and reads what it missed from the
    shared edits."""
    spawn(nn, hadoop(nn, NAMENODE, f"-Ddfs.ha.namenode.id={nn}", conf=CONF, jvm=KRB_JVM), state=SECURE)


def setup_hdfs(nn: str) -> None:
    """As HDFS's superuser: /tmp (1777), the test user's home and the directories that it writes
    (Spark's archive, MLflow's artifacts)."""
    admin = TICKETS / "admin"
    for path, permission, owner in (("/tmp", "1777", None), ("/user/maggy", "755", "maggy"),
                                    ("/apps/spark", "755", "maggy"), ("/mlflow-artifacts", "755", "maggy")):
        r = webhdfs(nn, "PUT", path, "MKDIRS", admin, permission=permission)
        if owner and r is not None and r.ok:
            r = webhdfs(nn, "PUT", path, "SETOWNER", admin, owner=owner)
        if r is None or not r.ok:
            down()
            sys.exit(f"platform: could not make {path} on HDFS: {r.text if r is not None else 'no answer'}")


def env_lines() -> dict[str, str]:
    return dict(line.split("=", 1) for line in ENV.read_text().split()) if ENV.exists() else {}


def write_env(values: dict[str, str]) -> None:
    ENV.write_text("".join(f"{k}={v}\n" for k, v in values.items()))


def up() -> None:
    """Start the secure profile afresh (a new realm, keys, certificate and file system) and print
    its KEY=VALUE lines; on any failure or interrupt half-way, leave nothing running."""
    started = time.monotonic()
    down()
    try:
        start()
    except BaseException:
        down()
        raise
    print(f"platform: the secure profile came up in {time.monotonic() - started:.0f}s", file=sys.stderr)


def start() -> None:
    hadoop_jars()
    names = ("kdc_port", "nn1_rpc_port", "nn1_http_port", "nn1_https_port", "nn2_rpc_port", "nn2_http_port",
             "nn2_https_port", "dn_port", "dn_http_port", "dn_https_port", "dn_ipc_port", "rm_port", "rm_scheduler_port",
             "rm_tracker_port", "rm_admin_port", "rm_web_port", "nm_port", "nm_localizer_port", "nm_web_port",
             "mlflow_port")
    ports = dict(zip(names, map(str, free_ports(len(names)))))
    for state in (KDC, KEYTABS, TLS, TICKETS, CONF, DATA, SPARK_CONF):  # logs stay, as the open profile's do
        shutil.rmtree(state, ignore_errors=True)
        state.mkdir(parents=True)
    os.environ["KRB5_CONFIG"] = str(KRB5_CONF)  # for this process's GSSAPI, and every process it starts
    password = secrets.token_hex(12)
    make_tls(password)
    start_kdc(int(ports["kdc_port"]))
    templates = tuple(f"secure/{name}" for name in ("core-site.xml", "hdfs-site.xml", "yarn-site.xml", "ssl-server.xml",
                                                     "ssl-client.xml")) + ("capacity-scheduler.xml",)
    write_conf({**ports, "realm": REALM, "realm_re": re.escape(REALM), "nameservice": NAMESERVICE,
                "data_dir": str(DATA), "keytab_dir": str(KEYTABS), "tls_dir": str(TLS), "tls_password": password,
                "token_renew_ms": str(TOKEN_RENEW_S * 1000), "token_max_lifetime_ms": str(TOKEN_MAX_LIFETIME_S * 1000)},
               CONF, templates)
    (DATA / "http-signature-secret").write_text(secrets.token_hex(32))  # signs the web UIs' auth cookies
    wait("the KDC", lambda: kinit(ADMIN, keytab("hdfs"), TICKETS / "admin"), ("kdc",), 30, SECURE)
    for ccache in ("maggy", "mlflow"):
        kinit(USER, keytab("maggy"), TICKETS / ccache)

    # nn1 is formatted (its name directory and the shared edits); nn2 starts from a copy of nn1's
    # name directory, as Hadoop's MiniDFSCluster does for HA: what -bootstrapStandby would fetch
    # from a running nn1, without a third JVM and a wait for nn1
    fmt = subprocess.run(hadoop("format", NAMENODE, "-Ddfs.ha.namenode.id=nn1", "-format", "-force", "-nonInteractive",
                                conf=CONF, jvm=KRB_JVM), capture_output=True, text=True)
    if fmt.returncode != 0:
        down()
        sys.exit(f"platform: formatting nn1 failed:\n{fmt.stdout[-3000:]}{fmt.stderr[-3000:]}")
    shutil.copytree(DATA / "nn1" / "name", DATA / "nn2" / "name")
    for nn in NAMENODES:
        start_namenode(nn)
    spawn("datanode", hadoop("datanode", "org.apache.hadoop.hdfs.server.datanode.DataNode", conf=CONF, jvm=KRB_JVM),
          state=SECURE)
    spawn("resourcemanager", hadoop("resourcemanager", "org.apache.hadoop.yarn.server.resourcemanager.ResourceManager",
                                    conf=CONF, jvm=KRB_JVM), state=SECURE)
    # As on a real node, containers inherit HADOOP_CONF_DIR (YARN's env whitelist passes it on).
    spawn("nodemanager", hadoop("nodemanager", "org.apache.hadoop.yarn.server.nodemanager.NodeManager", conf=CONF,
                                jvm=KRB_JVM), {"HADOOP_CONF_DIR": str(CONF)}, state=SECURE)
    # MLflow's artifacts on the nameservice through maggy's WebHDFS plugin, which finds ns1's
    # NameNodes in HADOOP_CONF_DIR and speaks SPNEGO with the test user's ticket over HTTPS
    mlflow = f"http://127.0.0.1:{ports['mlflow_port']}"
    spawn("mlflow", mlflow_server(int(ports["mlflow_port"]), DATA / "mlflow", f"webhdfs://{NAMESERVICE}/mlflow-artifacts"),
          {"HADOOP_CONF_DIR": str(CONF), "KRB5CCNAME": f"FILE:{TICKETS / 'mlflow'}", "MAGGY_WEBHDFS_CA": str(CA)},
          state=SECURE)

    webhdfs_urls = {nn: f"https://localhost:{ports[f'{nn}_https_port']}" for nn in NAMENODES}
    nn1 = webhdfs_urls["nn1"]
    wait("the NameNodes", lambda: all(listening(ports[f"{nn}_rpc_port"]) for nn in NAMENODES), NAMENODES, state=SECURE)
    active = haadmin("-transitionToActive", "nn1")
    if active.returncode != 0:
        down()
        sys.exit(f"platform: haadmin -transitionToActive nn1 failed:\n{active.stdout}{active.stderr}")
    wait("the active NameNode", lambda: namenode_state(nn1) == "active", ("nn1",), state=SECURE)
    setup_hdfs(nn1)
    probe = spnego_create(TICKETS / "maggy")
    wait("HDFS", lambda: probe(nn1, "/tmp/.platform-probe", b"ok", 2), ("nn1", "datanode"), state=SECURE)
    archive = spark_jars_archive(nn1, create=probe, state=SECURE)
    yarn = f"http://localhost:{ports['rm_web_port']}"
    wait("YARN", lambda: yarn_nodes(yarn, fetch=spnego_get(TICKETS / "maggy")) >= 1, ("resourcemanager", "nodemanager"),
         state=SECURE)
    wait("MLflow", lambda: get(f"{mlflow}/health") is not None, ("mlflow",), state=SECURE)
    # Spark obtains delegation tokens for the nameservice (renewed by the ResourceManager, their
    # renewer) and, in client mode, new ones from the user's ticket cache before the old ones'
    # max date (TOKEN_MAX_LIFETIME_S: within a test); its JVMs find the realm's KDC in the
    # platform's krb5.conf
    krb = " ".join(KRB_JVM)
    write_spark_conf(f"hdfs://{NAMESERVICE}", archive, SPARK_CONF,
                     f"spark.kerberos.access.hadoopFileSystems hdfs://{NAMESERVICE}\n"
                     "spark.kerberos.renewal.credentials ccache\n"
                     f"spark.driver.extraJavaOptions {krb}\n"
                     f"spark.yarn.am.extraJavaOptions {krb}\n"
                     f"spark.executor.extraJavaOptions {krb}\n")
    values = {"HDFS_URI": f"hdfs://{NAMESERVICE}", "HADOOP_CONF_DIR": str(CONF), "KRB5_CONFIG": str(KRB5_CONF),
              "REALM": REALM, "KDC_PORT": ports["kdc_port"], "MAGGY_PRINCIPAL": USER, "MAGGY_KEYTAB": str(keytab("maggy")),
              "HDFS_ADMIN_PRINCIPAL": ADMIN, "HDFS_ADMIN_KEYTAB": str(keytab("hdfs")),
              "WEBHDFS_NN1": webhdfs_urls["nn1"], "WEBHDFS_NN2": webhdfs_urls["nn2"], "ACTIVE_NAMENODE": "nn1",
              "MAGGY_WEBHDFS_CA": str(CA), "TOKEN_RENEW_INTERVAL_S": str(TOKEN_RENEW_S),
              "TOKEN_MAX_LIFETIME_S": str(TOKEN_MAX_LIFETIME_S),
              "MLFLOW_TRACKING_URI": mlflow, "YARN_RM": yarn,
              "SPARK_YARN_PROPERTIES": str(SPARK_CONF / "spark-defaults.conf"), "PYSPARK_PYTHON": sys.executable}
    write_env(values)
    print("".join(f"{k}={v}\n" for k, v in values.items()), end="")


def status() -> None:
    """The env lines while the KDC gives tickets, the active NameNode lists the test user's home
    through SPNEGO, YARN has a node and MLflow answers; exit 1 otherwise."""
    env = env_lines()
    if not alive(SECURE) or not env:
        sys.exit("platform: the secure profile is down")
    os.environ["KRB5_CONFIG"] = env["KRB5_CONFIG"]
    ccache = TICKETS / "status"
    nn = env[f"WEBHDFS_{env['ACTIVE_NAMENODE'].upper()}"]
    listing = kinit(USER, keytab("maggy"), ccache) and webhdfs(nn, "GET", "/user/maggy", "LISTSTATUS", ccache)
    if not listing or not listing.ok or not yarn_nodes(env["YARN_RM"], fetch=spnego_get(ccache)) or \
            get(f"{env['MLFLOW_TRACKING_URI']}/health") is None:
        sys.exit("platform: the secure profile's processes run but do not answer")
    print(ENV.read_text(), end="")


def stop(name: str) -> None:
    """Stop one of the platform's process groups (TERM, then KILL after 20 s) and forget it."""
    pid = pids(SECURE).get(name)
    if pid is not None:
        for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 0.0)):
            try:
                os.killpg(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
            deadline = time.monotonic() + grace
            while running(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
    (SECURE / "pids" / name).unlink(missing_ok=True)


def failover() -> None:
    """A manual failover: haadmin hands the active state from the active NameNode to the standby,
    the old active's process is stopped (as a fence would stop it) and started again as the new
    standby, so that failover can be repeated; prints ACTIVE_NAMENODE and STANDBY_NAMENODE."""
    env = env_lines()
    if not env:
        sys.exit("platform: the secure profile is down (./scripts/platform up --secure)")
    os.environ["KRB5_CONFIG"] = env["KRB5_CONFIG"]
    if not kinit(ADMIN, keytab("hdfs"), TICKETS / "admin"):
        sys.exit("platform: no ticket for HDFS's superuser: is the KDC down?")
    urls = {nn: env[f"WEBHDFS_{nn.upper()}"] for nn in NAMENODES}
    states = {nn: namenode_state(urls[nn]) for nn in NAMENODES}
    active = next((nn for nn in NAMENODES if states[nn] == "active"), None)
    standby = next((nn for nn in NAMENODES if states[nn] == "standby"), None)
    if standby is None:
        sys.exit(f"platform: no standby NameNode to fail over to (ACTIVE_NAMENODE={active})")
    # haadmin takes only a standby out of safe mode (one restarted by an earlier failover waits
    # for the DataNode's block report)
    if not until(lambda: namenode_jmx(urls[standby], "NameNodeInfo", "Safemode") == "", 60):
        sys.exit(f"platform: {standby} stays in safe mode")
    moved = haadmin("-failover", active, standby) if active else haadmin("-transitionToActive", standby)
    if moved.returncode != 0 or not until(lambda: namenode_state(urls[standby]) == "active", 60):
        sys.exit(f"platform: failover to {standby} failed:\n{moved.stdout}{moved.stderr}")
    write_env({**env, "ACTIVE_NAMENODE": standby})
    print(f"ACTIVE_NAMENODE={standby}", flush=True)
    if active:
        stop(active)
        start_namenode(active)
        if not until(lambda: namenode_state(urls[active]) == "standby", 120):
            sys.exit(f"platform: {active} did not come back as the standby; see {SECURE / 'logs' / active}.log")
        print(f"STANDBY_NAMENODE={active}")


def down() -> None:
    """Stop every process of the secure profile, each by its process group; the NodeManager first,
    while the ResourceManager still takes its goodbye (without it, it retries until killed)."""
    stop("nodemanager")
    down_profile(SECURE)
