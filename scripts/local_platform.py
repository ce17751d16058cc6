"""The local data platform for tests, demos and development: HDFS, YARN, MLflow and Spark standalone.

    ./scripts/platform up       # (re)start everything on 127.0.0.1, print KEY=VALUE lines
    ./scripts/platform status   # the same lines while everything answers; exit 1 otherwise
    ./scripts/platform down     # stop everything, leaving no process behind
    ./scripts/platform connect up|down   # a Spark Connect server on the standalone master (it holds
                                         # the worker's cores while it runs): prints SPARK_REMOTE

HDFS is Apache Hadoop's own NameNode and DataNode, their jars resolved from Maven Central with
scripts/hadoop-pom.xml and cached in .platform/hadoop/lib; its configuration comes from the
templates in spark-conf/. YARN is Hadoop's own ResourceManager and two NodeManagers, two nodes
on 127.0.0.1 with their own ports and directories (6 GiB, 4 vcores each: an application master and
two executors fit on one; a test can lose a whole node), whose containers take Spark's jars from
an archive on HDFS (``spark.yarn.archive``, in the properties file it prints as
SPARK_YARN_PROPERTIES, for ``spark-submit --properties-file`` or a session's config) and Python
from the repo's .venv, the node's own interpreter. Spark standalone is a master and one 2-core worker from the installed
PySpark. The MLflow tracking server keeps runs and the model registry in SQLite. State (data,
logs, pids, the printed endpoints) lives in .platform/.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".platform"
LIB = STATE / "hadoop" / "lib"
CONF = STATE / "hadoop" / "conf"
CONF2 = STATE / "hadoop" / "conf-node2"  # the second NodeManager's
DATA = STATE / "data"
LOGS = STATE / "logs"
ENV = STATE / "env"
SPARK_CONF = STATE / "spark-conf"
JAVA_OPENS = [f"--add-opens=java.base/{p}=ALL-UNNAMED"
              for p in ("java.lang", "java.util", "java.nio", "sun.nio.ch", "java.net", "java.io")]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports on 127.0.0.1. Every probe socket stays bound until all are
    chosen, so no two can be the same (probing one port at a time, bind then close, can be handed
    the same port twice: two daemons then fight over it)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


def hadoop_jars() -> None:
    pom = ROOT / "scripts" / "hadoop-pom.xml"
    stamp = LIB / f".resolved-{int(pom.stat().st_mtime)}"
    if stamp.exists():
        return
    if not shutil.which("mvn"):
        sys.exit("platform: Maven ('mvn') is needed to fetch Hadoop's jars: apt-get install maven")
    shutil.rmtree(LIB, ignore_errors=True)
    LIB.mkdir(parents=True)
    print("platform: resolving Hadoop's jars from Maven Central", file=sys.stderr)
    subprocess.run(["mvn", "-q", "-B", "-Dstyle.color=never", "-f", str(pom), "dependency:copy-dependencies",
                    f"-DoutputDirectory={LIB}", "-DincludeScope=runtime"], check=True, stdout=sys.stderr)
    stamp.touch()


TEMPLATES = ("core-site.xml", "hdfs-site.xml", "yarn-site.xml", "capacity-scheduler.xml", "resource-types.xml")


def write_conf(values: dict[str, str], conf: Path = CONF, templates: tuple[str, ...] = TEMPLATES) -> None:
    """The Hadoop configuration directory ``conf``: each template (a path under spark-conf/) under
    its own name, its placeholders filled in from ``values``, and the daemons' logging."""
    shutil.rmtree(conf, ignore_errors=True)
    for webapp in ("hdfs", "datanode", "static"):  # Hadoop's HTTP server wants these to exist
        (conf / "webapps" / webapp).mkdir(parents=True)
    for name in templates:
        text = string.Template((ROOT / "spark-conf" / name).read_text()).substitute(values)
        (conf / Path(name).name).write_text(text)
    shutil.copy(ROOT / "spark-conf" / "log4j.properties", conf / "log4j.properties")


def spawn(name: str, cmd: list[str], env: dict[str, str] | None = None, state: Path = STATE) -> None:
    """Start ``cmd`` as a process group of its own, its output in ``state``/logs/<name>.log and its
    pid in ``state``/pids/<name> (``state``: a profile's directory, .platform or .platform/secure)."""
    (state / "logs").mkdir(parents=True, exist_ok=True)
    (state / "pids").mkdir(parents=True, exist_ok=True)
    with open(state / "logs" / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**os.environ, **(env or {})}, cwd=state)
    (state / "pids" / name).write_text(str(proc.pid))


def hadoop(name: str, main: str, *args: str, conf: Path = CONF, jvm: tuple[str, ...] = ()) -> list[str]:
    """The command of a Hadoop daemon or tool ``main`` with the configuration in ``conf`` and the
    extra JVM options ``jvm``."""
    return ["java", "-Xmx384m", *JAVA_OPENS, *jvm, f"-Dproc_{name}", "-cp", f"{conf}:{LIB}/*", main, *args]


def spark_class() -> str:
    import pyspark
    return str(Path(pyspark.__file__).parent / "bin" / "spark-class")


def mlflow_server(port: int, data: Path, artifact_root: str | None = None) -> list[str]:
    """The command of an MLflow tracking server (SQLite store, model registry) keeping its data in
    ``data`` and its artifacts under ``artifact_root`` (default: ``data/artifacts``)."""
    data.mkdir(parents=True, exist_ok=True)
    return [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--backend-store-uri", f"sqlite:///{data / 'mlflow.db'}",
            "--default-artifact-root", artifact_root or str(data / "artifacts")]


def get(url: str, timeout: float = 2.0) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read()
    except OSError:
        return None


def wait(what: str, check, daemons: tuple[str, ...], timeout: float = 120.0, state: Path = STATE) -> None:
    """Until ``check()``; else (after ``timeout``, or at once when one of its ``daemons`` ended) stop
    everything and exit naming ``what``, with its daemons' log tails."""
    deadline = time.monotonic() + timeout
    ended: list[str] = []
    while time.monotonic() < deadline and not ended:
        if check():
            return
        found = pids(state)
        ended = [name for name in daemons if name in found and not running(found[name])]
        time.sleep(0.5)
    down(state)
    logs = state / "logs"
    tails = "".join(f"\n--- {logs / name}.log (last lines) ---\n" +
                    "\n".join((logs / f"{name}.log").read_text(errors="replace").splitlines()[-15:])
                    for name in daemons if (logs / f"{name}.log").exists())
    why = f"{', '.join(ended)} ended" if ended else f"within {timeout:.0f}s"
    sys.exit(f"platform: {what} did not come up ({why}){tails}")


def webhdfs_create(webhdfs: str, path: str, body, size: int) -> bool:
    """Write ``body`` (bytes or a binary file of ``size`` bytes) to ``path`` over WebHDFS: the
    NameNode names a DataNode, which takes the data."""
    url = f"{webhdfs}/webhdfs/v1{path}?op=CREATE&overwrite=true&noredirect=true&user.name=maggy"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="PUT"), timeout=5) as r:
            location = json.loads(r.read())["Location"]
        request = urllib.request.Request(location, method="PUT", data=body, headers={"Content-Length": str(size)})
        with urllib.request.urlopen(request, timeout=300) as r:
            return r.status == 201
    except (OSError, ValueError, KeyError):
        return False


def hdfs_writable(webhdfs: str) -> bool:
    """A DataNode has registered: a file can be created."""
    return webhdfs_create(webhdfs, "/tmp/.platform-probe", b"ok", 2)


def spark_jars_archive(webhdfs: str, create=webhdfs_create, state: Path = STATE) -> str:
    """Spark's jars as one uncompressed zip on HDFS, for ``spark.yarn.archive``: a NodeManager
    fetches and unpacks it once and keeps it for every later application (it is world-readable,
    so YARN caches it publicly), where ``spark-submit`` would otherwise zip and upload ~460 MB
    for each application. ``create`` writes it (``webhdfs_create``'s signature); on failure the
    profile in ``state`` is stopped."""
    import zipfile

    import pyspark
    local = LIB.parent / f"spark-jars-{pyspark.__version__}.zip"
    if not local.exists():  # built once per PySpark version, like the Hadoop jars
        partial = local.with_suffix(f".{os.getpid()}.partial")  # both profiles may build it at once
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as z:
            for jar in sorted((Path(pyspark.__file__).parent / "jars").glob("*.jar")):
                z.write(jar, jar.name)
        partial.rename(local)
    path = f"/apps/spark/{local.name}"
    with open(local, "rb") as body:
        if not create(webhdfs, path, body, local.stat().st_size):
            down(state)
            sys.exit(f"platform: could not upload Spark's jars to HDFS {path}; logs in {state / 'logs'}")
    return path

def spark_workers(ui: str) -> int:
    raw = get(f"{ui}/json/")
    return 0 if raw is None else sum(w.get("state") == "ALIVE" for w in json.loads(raw).get("workers", []))


def yarn_nodes(rm: str, fetch=get) -> int:
    """The NodeManagers that run, from the ResourceManager's REST API (read with ``fetch``)."""
    raw = fetch(f"{rm}/ws/v1/cluster/nodes")
    nodes = (json.loads(raw).get("nodes") or {}).get("node", []) if raw else []
    return sum(n.get("state") == "RUNNING" for n in nodes)


def write_spark_conf(hdfs: str, archive: str, spark_conf: Path = SPARK_CONF, extra: str = "") -> None:
    """Spark settings for this platform's YARN: jars from the archive on HDFS, the node's Python,
    and loopback for every address a driver or executor binds, in client and cluster mode; then
    the lines ``extra``."""
    spark_conf.mkdir(parents=True, exist_ok=True)
    (spark_conf / "spark-defaults.conf").write_text(
        f"spark.yarn.archive {hdfs}{archive}\n"
        f"spark.pyspark.python {sys.executable}\n"
        "spark.executor.memory 768m\n"
        "spark.driver.memory 768m\n"
        "spark.yarn.am.memory 512m\n"
        "spark.driver.host 127.0.0.1\n"
        "spark.yarn.appMasterEnv.SPARK_LOCAL_IP 127.0.0.1\n"
        "spark.executorEnv.SPARK_LOCAL_IP 127.0.0.1\n"
        "spark.ui.showConsoleProgress false\n" + extra)

def up() -> None:
    down()  # a fresh platform every time: no state survives from an earlier run
    hadoop_jars()
    names = ("rpc_port", "http_port", "dn_port", "dn_http_port", "dn_ipc_port", "spark_port", "spark_ui", "worker_ui",
             "mlflow_port", "rm_port", "rm_scheduler_port", "rm_tracker_port", "rm_admin_port", "rm_web_port", "nm_port",
             "nm_localizer_port", "nm_web_port", "nm2_port", "nm2_localizer_port", "nm2_web_port")
    ports = dict(zip(names, map(str, free_ports(len(names)))))
    shutil.rmtree(DATA, ignore_errors=True)
    DATA.mkdir(parents=True)
    write_conf({**ports, "data_dir": str(DATA), "nm_name": "yarn"})
    # the second node: the same cluster, its own NodeManager ports and directories
    write_conf({**ports, "data_dir": str(DATA), "nm_name": "yarn2", "nm_port": ports["nm2_port"],
                "nm_localizer_port": ports["nm2_localizer_port"], "nm_web_port": ports["nm2_web_port"]}, CONF2)
    subprocess.run(hadoop("format", "org.apache.hadoop.hdfs.server.namenode.NameNode", "-format", "-force",
                          "-nonInteractive"), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    spawn("namenode", hadoop("namenode", "org.apache.hadoop.hdfs.server.namenode.NameNode"))
    spawn("datanode", hadoop("datanode", "org.apache.hadoop.hdfs.server.datanode.DataNode"))
    spawn("resourcemanager", hadoop("resourcemanager", "org.apache.hadoop.yarn.server.resourcemanager.ResourceManager"))
    # As on a real node, containers inherit HADOOP_CONF_DIR (YARN's env whitelist passes it on).
    for name, conf in (("nodemanager", CONF), ("nodemanager2", CONF2)):
        spawn(name, hadoop(name, "org.apache.hadoop.yarn.server.nodemanager.NodeManager", conf=conf),
              {"HADOOP_CONF_DIR": str(conf)})
    spark_env = {"SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOG_DIR": str(LOGS), "PYSPARK_PYTHON": sys.executable}
    # Spark's GPU scheduling runs for real: the worker offers two GPU addresses found by the
    # discovery script (simulated here; on a GPU host nvidia-smi supplies them).
    gpu_env = {"MAGGY_GPU_ADDRESSES": os.environ.get("MAGGY_GPU_ADDRESSES", "0,1"),
               "SPARK_WORKER_OPTS": "-Dspark.worker.resource.gpu.amount=2 "
                                    f"-Dspark.worker.resource.gpu.discoveryScript={ROOT / 'spark-conf' / 'gpu-discovery.sh'}"}
    master = f"spark://127.0.0.1:{ports['spark_port']}"
    spawn("spark-master", [spark_class(), "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                           "--port", ports["spark_port"], "--webui-port", ports["spark_ui"]], spark_env)
    spawn("spark-worker", [spark_class(), "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                           "--cores", "2", "--memory", "3g", "--webui-port", ports["worker_ui"],
                           "--work-dir", str(DATA / "spark-work"), master], {**spark_env, **gpu_env})
    mlflow = f"http://127.0.0.1:{ports['mlflow_port']}"
    artifacts = f"webhdfs://127.0.0.1:{ports['http_port']}/mlflow-artifacts"  # maggy's WebHDFS plugin
    spawn("mlflow", mlflow_server(int(ports["mlflow_port"]), DATA / "mlflow", artifacts))
    webhdfs = f"http://127.0.0.1:{ports['http_port']}"
    ui = f"http://127.0.0.1:{ports['spark_ui']}"
    wait("HDFS", lambda: hdfs_writable(webhdfs), ("namenode", "datanode"))
    wait("Spark standalone", lambda: spark_workers(ui) >= 1, ("spark-master", "spark-worker"))
    wait("MLflow", lambda: get(f"{mlflow}/health") is not None, ("mlflow",))
    yarn = f"http://127.0.0.1:{ports['rm_web_port']}"
    wait("YARN", lambda: yarn_nodes(yarn) >= 2, ("resourcemanager", "nodemanager", "nodemanager2"))
    hdfs = f"hdfs://127.0.0.1:{ports['rpc_port']}"
    write_spark_conf(hdfs, spark_jars_archive(webhdfs))
    lines = [f"HDFS_URI={hdfs}", f"WEBHDFS_URL={webhdfs}",
             f"MLFLOW_TRACKING_URI={mlflow}", f"SPARK_MASTER={master}", f"SPARK_MASTER_UI={ui}",
             f"HADOOP_CONF_DIR={CONF}", f"YARN_NODE2_CONF_DIR={CONF2}", f"PYSPARK_PYTHON={sys.executable}",
             f"YARN_RM={yarn}",
             f"SPARK_YARN_PROPERTIES={SPARK_CONF / 'spark-defaults.conf'}"]
    ENV.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def pids(state: Path = STATE) -> dict[str, int]:
    """The platform's processes by name (of the profile in ``state``)."""
    found = state / "pids"
    return {p.name: int(p.read_text()) for p in found.glob("*")} if found.exists() else {}


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def alive(state: Path = STATE) -> bool:
    found = pids(state)
    return bool(found) and all(running(pid) for pid in found.values())


def parent_of(pid: int) -> int:
    """A process's parent, from /proc (OSError if it ended)."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])  # after the command name, which may hold spaces


def parents() -> dict[int, int]:
    """Every process's parent, from /proc."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                found[int(entry)] = parent_of(int(entry))
            except OSError:  # ended meanwhile
                pass
    return found


def executor_jvm(pid: int) -> int | None:
    """The Spark executor JVM above a Python worker process (worker, daemon, JVM); None if it ended
    or runs in no executor."""
    for _ in range(3):
        try:
            pid = parent_of(pid)
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"CoarseGrainedExecutorBackend" in f.read():
                    return pid
        except OSError:  # ended meanwhile
            return None
    return None


def container_of(pid: int) -> str | None:
    """The YARN container a process runs in (its ``CONTAINER_ID``), None if it ended."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read().split(b"\0")
    except OSError:
        return None
    return next((v.split(b"=", 1)[1].decode() for v in env if v.startswith(b"CONTAINER_ID=")), None)


def lose_node(executor: int) -> tuple[int, set[str]]:
    """SIGKILL the platform's NodeManager that runs ``executor`` and every process under it (each
    container is a session of its own, so not one process group): a whole node lost, as in a
    preemption. Returns the node (1 or 2) and the containers that ran on it. For the tests and
    bench/chaos.py; the platform stays one node short until the next ``up``."""
    nodes = {pid: n for n, name in ((1, "nodemanager"), (2, "nodemanager2")) if (pid := pids().get(name))}
    parent_of = parents()
    nm = executor
    while nm not in nodes:
        nm = parent_of[nm]  # no NodeManager above it: a KeyError at pid 1
    under, grew = {nm}, True
    while grew:
        more = {pid for pid, parent in parent_of.items() if parent in under} - under
        under |= more
        grew = bool(more)
    containers = {c for c in map(container_of, under) if c}
    for pid in [nm, *(under - {nm})]:  # the NodeManager first: it must not clean up or report anything
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return nodes[nm], containers


def status() -> None:
    if not alive() or not ENV.exists():
        sys.exit("platform: down")
    env = dict(line.split("=", 1) for line in ENV.read_text().split())
    if not hdfs_writable(env["WEBHDFS_URL"]) or not spark_workers(env["SPARK_MASTER_UI"]) or \
            get(f"{env['MLFLOW_TRACKING_URI']}/health") is None or not yarn_nodes(env["YARN_RM"]):
        sys.exit("platform: processes run but do not answer")
    print(ENV.read_text(), end="")


def connect(action: str) -> None:
    """Start (``up``) or stop (``down``) a Spark Connect server, an application of the standalone
    master with two one-core executors, its gRPC endpoint and UI on loopback; ``up`` prints
    ``SPARK_REMOTE=sc://...`` and ``SPARK_CONNECT_UI=http://...``. Stopping it frees the worker's cores."""
    found = {name: pid for name, pid in pids().items() if name == "spark-connect"}
    terminate(found.values())
    (STATE / "pids" / "spark-connect").unlink(missing_ok=True)
    if action == "down":
        return
    if not alive() or not ENV.exists():
        sys.exit("platform: down; start it first with ./scripts/platform up")
    env = dict(line.split("=", 1) for line in ENV.read_text().split())
    port, ui = free_ports(2)
    settings = {"spark.connect.grpc.binding.address": "127.0.0.1", "spark.connect.grpc.binding.port": port,
                "spark.ui.port": ui, "spark.driver.host": "127.0.0.1", "spark.executor.cores": 1, "spark.cores.max": 2,
                "spark.pyspark.python": sys.executable, "spark.log.level": "WARN"}
    confs = [arg for key, value in settings.items() for arg in ("--conf", f"{key}={value}")]
    spawn("spark-connect", [spark_class(), "org.apache.spark.deploy.SparkSubmit", "--master", env["SPARK_MASTER"],
                            "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
                            "--name", "maggy-connect", *confs, "spark-internal"],
          {"SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable})
    wait("Spark Connect", lambda: answers(port) and get(f"http://127.0.0.1:{ui}/api/v1/applications") is not None,
         ("spark-connect",))
    print(f"SPARK_REMOTE=sc://127.0.0.1:{port}\nSPARK_CONNECT_UI=http://127.0.0.1:{ui}")


def answers(port: int) -> bool:
    """Whether something accepts connections on loopback's ``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


def terminate(group_leaders) -> None:
    """TERM the process groups of ``group_leaders``, then KILL what still runs after 20 s."""
    found = list(group_leaders)
    for pid in found:
        try:
            os.killpg(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + 20
    while any(running(p) for p in found) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in found:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def down(state: Path = STATE) -> None:
    """Stop every process group of the profile in ``state`` (TERM, then KILL after 20 s)."""
    terminate(pids(state).values())
    shutil.rmtree(state / "pids", ignore_errors=True)
    (state / "env").unlink(missing_ok=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    if args in (["up", "--secure"], ["status", "--secure"], ["down", "--secure"], ["failover"]):
        import secure_platform  # the Kerberized profile, in .platform/secure (scripts/ is on sys.path)
        getattr(secure_platform, args[0])()
        sys.exit()
    if args in (["connect", "up"], ["connect", "down"]):
        connect(args[1])
        sys.exit()
    commands = {"up": up, "status": status, "down": down}
    if len(args) != 1 or args[0] not in commands:
        sys.exit("usage: ./scripts/platform up|status|down [--secure] | failover | connect up|down")
    commands[args[0]]()
