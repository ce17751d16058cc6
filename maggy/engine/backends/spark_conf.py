"""What a Spark session tells maggy without a SparkContext: whether it is a Spark Connect
client, how many task slots its settings give, and which local address faces its server.

Under Spark Connect (Spark 4's ``spark.api.mode=connect``, ``pyspark-client``) the client has no
SparkContext, so ``defaultParallelism`` and the driver's host are out of reach; the session's
settings and the route to its server stand in for them.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from typing import Any, Callable

from maggy.exceptions import BackendUnavailableError

_LOCAL = re.compile(r"^local(?:\[(\*|\d+)(?:,\s*\d+)?\])?$")
_LOCAL_CLUSTER = re.compile(r"^local-cluster\[\s*(\d+)\s*,\s*(\d+)\s*,\s*\d+\s*\]$")


def is_connect(spark: Any) -> bool:
    """Whether ``spark`` is a Spark Connect session (no SparkContext, no RDDs)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def server_host(spark: Any) -> str | None:
    """The host of the Spark Connect server ``spark`` talks to (``localhost`` for
    ``SparkSession.builder.remote("local[2]")``), where the client says."""
    try:
        return str(spark.client._builder.host)  # no public accessor in pyspark 4
    except AttributeError:
        return None


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` names this machine's loopback.

    >>> is_loopback("localhost"), is_loopback("127.0.0.1"), is_loopback("10.0.0.5"), is_loopback(None)
    (True, True, False, False)
    """
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def address_facing(host: str) -> str:
    """This machine's address on the route to ``host``: where a cluster that ``host`` belongs to
    can reach us (no packet is sent; the kernel picks the interface)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((host.strip("[]"), 9))
            return str(probe.getsockname()[0])
    except OSError as exc:
        raise BackendUnavailableError(
            f"Cannot tell which address of this machine the cluster behind the Spark Connect server {host} reaches "
            f"({exc}): set driver_address='host:port' to an address of this machine that the executors can reach.") from exc


def slots_from_conf(get: Callable[[str], str | None], local_cpus: int | None = None) -> int | None:
    """How many tasks the application's settings let run at once (executors x cores per
    executor / ``spark.task.cpus``, bounded by GPUs per executor / per task), or None where they
    do not say. ``local_cpus``: the cores behind ``local[*]``, where the server is this machine.

    >>> conf = {"spark.master": "spark://m:7077", "spark.executor.instances": "3", "spark.executor.cores": "4",
    ...         "spark.task.cpus": "2"}
    >>> slots_from_conf(conf.get)
    6
    >>> slots_from_conf({"spark.master": "local[*]"}.get, local_cpus=8), slots_from_conf({"spark.master": "local[3]"}.get)
    (8, 3)
    >>> gpus = {"spark.master": "yarn", "spark.executor.instances": "2", "spark.executor.cores": "8",
    ...         "spark.executor.resource.gpu.amount": "2", "spark.task.resource.gpu.amount": "1"}
    >>> slots_from_conf(gpus.get)
    4
    >>> slots_from_conf({"spark.master": "spark://m:7077", "spark.cores.max": "2", "spark.executor.cores": "1"}.get)
    2
    >>> slots_from_conf({"spark.master": "spark://m:7077", "spark.cores.max": "4"}.get)
    4
    >>> slots_from_conf({"spark.master": "yarn"}.get) is None   # no executor count: unknown
    True
    """
    master = (get("spark.master") or "").strip()
    task_cpus = max(1, int(get("spark.task.cpus") or 1))
    if m := _LOCAL.match(master):
        local = local_cpus if m.group(1) == "*" else int(m.group(1) or 1)
        return None if local is None else max(1, local // task_cpus)
    if m := _LOCAL_CLUSTER.match(master):
        return max(1, int(m.group(1)) * (int(m.group(2)) // task_cpus))
    dynamic = (get("spark.dynamicAllocation.enabled") or "false").strip().lower() == "true"
    executors = get("spark.dynamicAllocation.maxExecutors" if dynamic else "spark.executor.instances")
    cores = int(get("spark.executor.cores") or 0)
    if master.startswith("spark://") and (total := get("spark.cores.max")):
        cores = cores or int(total)  # standalone: cores.max caps the application's executors
        executors = str(int(total) // cores)
    if executors is None or not executors.isdigit():
        return None
    per_executor = (cores or 1) // task_cpus
    task_gpus, executor_gpus = get("spark.task.resource.gpu.amount"), get("spark.executor.resource.gpu.amount")
    if task_gpus and executor_gpus and float(task_gpus) > 0:
        per_executor = min(per_executor, int(float(executor_gpus) / float(task_gpus)))
    return max(1, int(executors) * per_executor)


def local_cpus(spark: Any) -> int | None:
    """The cores behind ``local[*]``: this machine's, when the Connect server runs here."""
    return os.cpu_count() if is_loopback(server_host(spark)) else None
