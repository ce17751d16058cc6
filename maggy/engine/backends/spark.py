"""Workers as the tasks of one Spark job: one partition per worker, all resident at once, in a
classic Spark session or a Spark Connect client's."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
from typing import Any, Iterator

from maggy.engine.backends.base import Backend
from maggy.engine.backends.spark_conf import address_facing, is_connect, is_loopback, local_cpus, server_host, slots_from_conf
from maggy.exceptions import BackendUnavailableError
from maggy.runtime.entry import run_partition
from maggy.runtime.worker import WorkerSpec

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _stderr_to(path: str | None) -> Iterator[None]:
    """Point this process's stderr at ``path`` (when given) while Spark's JVM starts. The JVM
    keeps that descriptor, so its start-up notices and its log go to the file, not into a
    notebook cell (there is no Spark setting for the notices the JVM itself prints)."""
    if path is None:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.dup2(target, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(target)


def _tail(path: str | None, chars: int = 2000) -> str:
    """The end of Spark's log, for an error message."""
    if path is None or not os.path.exists(path):
        return ""
    with open(path, errors="replace") as f:
        text = f.read()[-chars:].strip()
    return f" Spark's log ({path}) ends with:\n{text}" if text else ""


def get_or_create(builder: Any) -> Any:
    """``builder.getOrCreate()``, once more when Spark 4's UI lost a race at start-up: on YARN in
    client mode the application master's web filter can arrive while the UI attaches its handlers,
    and the SparkContext's constructor fails with Jetty's ConcurrentModificationException (seen
    under load; nothing else is retried)."""
    try:
        return builder.getOrCreate()
    except Exception as exc:
        if "ConcurrentModificationException" not in str(exc):
            raise
        log.warning("maggy: Spark's UI lost a race at start-up (ConcurrentModificationException); starting the "
                    "session once more")
        return builder.getOrCreate()


def _check_java() -> None:
    """Fail fast, naming the fix, when the ``java`` that Spark would start is missing: Spark
    itself ends in an opaque JAVA_GATEWAY_EXITED."""
    home = os.environ.get("JAVA_HOME")
    if home:
        java = os.path.join(home, "bin", "java")
        if not (os.path.isfile(java) and os.access(java, os.X_OK)):
            raise BackendUnavailableError(
                f"JAVA_HOME={home!r} has no bin/java, so Spark cannot start: point JAVA_HOME at a JDK 17 or newer "
                "(the directory that holds bin/java), or unset it to use the java on PATH.")
    elif not shutil.which("java"):
        raise BackendUnavailableError(
            "Spark needs Java 17 or newer and none was found on PATH or in JAVA_HOME: "
            "install a JDK (e.g. apt-get install openjdk-17-jre-headless) or use backend='local'.")


def _check_master(master: str) -> None:
    """Fail fast, naming the address, when a standalone master does not answer."""
    if not master.startswith("spark://"):
        return
    for hostport in master[len("spark://"):].split(","):
        host, _, port = hostport.rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
            return
        except (OSError, ValueError):
            continue
    raise BackendUnavailableError(
        f"Cannot reach the Spark master at {master}: nothing answers there. Start it, or check "
        "the host and port (the master's log prints 'Starting Spark master at spark://...').")


class SparkBackend(Backend):
    """Runs the workers in the active SparkSession (classic or Spark Connect), or a session
    created for the user on ``master`` (default ``local[*]``; with ``SPARK_REMOTE`` set, a Connect
    session to that server).

    The workers are the tasks of one DataFrame job (``mapInArrow`` over one partition per worker),
    the one launch path that both kinds of session have. The job carries a tag (and, in a classic
    session, a job group), so that cancelling it (Ctrl-C in Jupyter) stops every worker at once.
    """

    name = "spark"
    #: Seconds within which a failed job counts as a quick failure, and how many in a row end
    #: the relaunches.
    QUICK = 30.0
    MAX_QUICK_FAILURES = 3

    def __init__(self, spark: Any = None, master: str | None = None) -> None:
        self._spark = spark
        self.master = master
        self._thread: threading.Thread | None = None
        self._error: str | None = None
        self._cancelled = False
        #: The job's tag and, in a classic session, its job group.
        self.job_group = ""
        #: Where the output of a JVM that maggy started goes (None: the JVM was there already).
        self.jvm_log: str | None = None

    @property
    def spark(self) -> Any:
        return self._spark

    def prepare(self) -> None:
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise BackendUnavailableError(
                "backend='spark' needs PySpark: pip install 'pyspark>=3.5', or use backend='local'.") from None
        if self._spark is None and self.master is None:
            self._spark = SparkSession.getActiveSession()
            if self._spark is None and "SPARK_REMOTE" in os.environ:
                self._spark = self._connect(SparkSession)
        if self._spark is None:
            _check_java()
            from pyspark import SparkConf, SparkContext

            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            # Join the JVM that spark-submit started (or start one as a plain `python` would),
            # so that SparkConf holds the --master, --conf and spark-defaults.conf Spark itself
            # uses. A SparkConf made before that sees none of them.
            # spark-submit started the JVM already (and owns its output); otherwise it starts now
            launching = SparkContext._gateway is None and "PYSPARK_GATEWAY_PORT" not in os.environ
            self.jvm_log = os.path.join(tempfile.gettempdir(), f"maggy-spark-{os.getpid()}.log") if launching else None
            try:
                with _stderr_to(self.jvm_log):
                    SparkContext._ensure_initialized()
            except Exception as exc:
                raise BackendUnavailableError(
                    f"Could not start Spark's JVM ({type(exc).__name__}: {exc}); check JAVA_HOME "
                    f"(Java 17 or newer) or use backend='local'.{_tail(self.jvm_log)}") from exc
            conf = SparkConf()
            if self.master:
                conf.setMaster(self.master)
            elif not conf.contains("spark.master"):
                conf.setMaster("local[*]")
            master = str(conf.get("spark.master"))
            _check_master(master)
            conf.setIfMissing("spark.app.name", "maggy")
            conf.setIfMissing("spark.ui.showConsoleProgress", "false")
            conf.setIfMissing("spark.executor.cores", "1")
            # a session maggy makes is quiet from its start: Spark's INFO lines say nothing about
            # the experiment (spark.log.level acts as setLogLevel at start-up, Spark >= 3.5)
            conf.setIfMissing("spark.log.level", "WARN")
            try:
                self._spark = get_or_create(SparkSession.builder.config(conf=conf))
            except Exception as exc:
                raise BackendUnavailableError(f"Could not start a Spark session on {master}: {exc}") from exc

    @staticmethod
    def _connect(session_class: Any) -> Any:
        """The Spark Connect session that ``SPARK_REMOTE`` names."""
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # for a local server's Python workers
        try:
            return session_class.builder.getOrCreate()
        except Exception as exc:
            raise BackendUnavailableError(
                f"Could not open a Spark Connect session to SPARK_REMOTE={os.environ['SPARK_REMOTE']!r} "
                f"({type(exc).__name__}: {str(exc)[:500]}): check that the Connect server runs there, and that "
                "pyspark[connect]'s dependencies are installed.") from exc

    @property
    def connect(self) -> bool:
        """Whether the session is a Spark Connect client's: no SparkContext, only DataFrames."""
        return is_connect(self._spark)

    @property
    def _sc(self) -> Any:
        return self._spark.sparkContext

    def _conf(self, key: str, spark: Any = None) -> str | None:
        """One of the application's settings (the server's, under Connect), of ``spark`` or this
        backend's session."""
        spark = spark or self._spark
        value = spark.conf.get(key, None) if is_connect(spark) else spark.sparkContext.getConf().get(key, None)
        return None if value is None else str(value)

    def num_slots(self) -> int:
        if not self.connect:
            return max(1, self._sc.defaultParallelism // int(self._conf("spark.task.cpus") or 1))
        slots = slots_from_conf(self._conf, local_cpus(self._spark))
        if slots is None:
            raise BackendUnavailableError(
                f"The Spark Connect session's settings do not say how many tasks its cluster runs at once "
                f"(spark.master={self._conf('spark.master')!r}, no spark.executor.instances or spark.cores.max, or "
                "dynamic allocation without spark.dynamicAllocation.maxExecutors): pass num_workers=N.")
        return slots

    def addresses(self) -> tuple[str, str]:
        """Loopback in local mode; else where Spark's own driver binds and is reached. A Connect
        client away from its server offers its own address on the route to the server."""
        master = self._conf("spark.master") or ""
        server = server_host(self._spark) if self.connect else None
        if self.connect and not is_loopback(server) and server:
            here = address_facing(server)
            return here, here
        if master.startswith("local"):
            return "127.0.0.1", "127.0.0.1"
        advertised = self._conf("spark.driver.host") or "127.0.0.1"
        return self._conf("spark.driver.bindAddress") or advertised, advertised

    def network_encrypted(self) -> bool:
        """Whether Spark encrypts its RPC (``spark.network.crypto.enabled``, as Spark reads a boolean)."""
        return (self._conf("spark.network.crypto.enabled") or "false").strip().lower() == "true"

    def kerberos_login(self) -> tuple[str, str] | None:
        """``spark-submit --principal --keytab``'s, from the running session. In cluster mode on
        YARN the keytab is a copy in the application master's directory, under the name that
        ``spark.kerberos.keytab`` holds there (Spark renews its own tokens with it)."""
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            return None
        spark = self._spark or SparkSession.getActiveSession()
        if spark is None:
            return None
        principal, keytab = self._conf("spark.kerberos.principal", spark), self._conf("spark.kerberos.keytab", spark)
        return (principal, keytab) if principal and keytab and os.path.isfile(keytab) else None

    def start(self, spec: WorkerSpec, num_workers: int, job_name: str) -> None:
        self.job_group = f"maggy-{job_name}-{uuid.uuid4().hex[:8]}"  # a name has no ',' (a tag may not)
        self._run = functools.partial(run_partition, spec)
        self._num_workers, self._job_name = num_workers, job_name
        self._quick_failures, self._cancelled = 0, False  # a backend serves one lagom call after another
        self._submit()

    def _submit(self) -> None:
        self._error, self._job_started = None, time.monotonic()

        def submit() -> None:
            spark, n = self._spark, self._num_workers
            try:
                if not self.connect:  # a job group, as Spark 3.5's classic sessions have no tags
                    self._sc.setJobGroup(self.job_group, f"maggy experiment {self._job_name}", interruptOnCancel=True)
                else:
                    spark.addTag(self.job_group)  # this thread's operations in this session
                if self._cancelled:  # cancelled before the job existed: nothing to interrupt later
                    return
                spark.range(0, n, 1, n).mapInArrow(self._run, "ended int").collect()
            except Exception as exc:  # the driver decides what a failed job means
                self._error = f"{type(exc).__name__}: {str(exc)[:2000]}"

        self._thread = threading.Thread(target=submit, name="maggy-spark-job", daemon=True)
        self._thread.start()

    def relaunch_failed(self) -> None:
        """A job Spark gave up on (a task failed more than ``spark.task.maxFailures`` times, once
        in local mode) is submitted again, in the same job group, while the experiment goes on;
        after ``MAX_QUICK_FAILURES`` jobs in a row that failed within ``QUICK`` seconds, the
        failure stands (a broken environment on the executors, not a lost one)."""
        if self._thread is None or self._thread.is_alive() or self._error is None or self._cancelled:
            return
        quick = time.monotonic() - self._job_started < self.QUICK
        self._quick_failures = self._quick_failures + 1 if quick else 0
        if self._quick_failures >= self.MAX_QUICK_FAILURES:
            return
        log.warning("maggy: the Spark job of the workers failed (%s); submitting a replacement", self._error[:300])
        self._submit()

    def resubmit(self) -> bool:
        if self._cancelled:
            return False
        self._submit()
        return True

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def failure(self) -> str | None:
        return self._error

    def wait(self, timeout: float) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running()

    def cancel(self) -> None:
        self._cancelled = True
        if not self.running():
            return
        if self.connect:
            self._spark.interruptTag(self.job_group)
        else:
            self._sc.cancelJobGroup(self.job_group)

    def describe(self) -> dict:
        info = {"backend": self.name, "spark_master": self._conf("spark.master"),
                "spark_deploy_mode": self._conf("spark.submit.deployMode") or "client",
                "spark_app_id": self._conf("spark.app.id"), "spark_job_group": self.job_group}
        if self.connect:
            info["spark_connect"] = server_host(self._spark)
        if os.environ.get("CONTAINER_ID"):  # YARN cluster mode: the driver is the application master
            info["driver_container"] = os.environ["CONTAINER_ID"]
        if self.jvm_log:
            info["spark_log"] = self.jvm_log
        return info
