"""Where a worker starts: the body of a Spark task, and of a local worker process.

The driver's backends point their tasks and processes here, so that an executor imports only
the worker side (this package and :mod:`maggy.rpc`), never the driver's.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, Iterable, Iterator

import cloudpickle

from maggy.runtime.worker import WorkerSpec, worker_main


def run_partition(spec: WorkerSpec, batches: Iterable[Any]) -> Iterator[Any]:
    """Body of each Spark task (a ``mapInArrow`` function): pin the task's GPUs, then serve
    trials until DONE. It yields no rows."""
    from pyspark import TaskContext

    for _ in batches:  # read to its end, so that Spark can reuse this Python worker for the next job
        pass

    ctx = TaskContext.get()
    resources = ctx.resources() if ctx is not None else {}
    gpus = list(resources["gpu"].addresses) if "gpu" in resources else []
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
    worker_main(spec, ctx.partitionId() if ctx is not None else 0, gpus)
    yield from ()


def _exit_with_parent(interval: float) -> None:
    """End this worker within ``interval`` seconds of its driver's death, even mid-trial, so that
    it does not hold its GPU for a driver that is gone (a trial's run cannot outlive its driver)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(3)  # nothing to report to and nothing to clean that the OS does not

    threading.Thread(target=watch, name="maggy-parent-watch", daemon=True).start()


def serve() -> None:
    """A worker process's body: the spec from stdin, the partition from the command line."""
    spec = cloudpickle.loads(sys.stdin.buffer.read())
    _exit_with_parent(spec.hb_interval)
    worker_main(spec, int(sys.argv[1]))
