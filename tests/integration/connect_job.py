"""A Spark Connect client in a process of its own, as a notebook attached through Connect is:
``SparkSession.builder.remote(MASTER)`` (a local Connect server, or ``sc://...``), then lagom.

    python tests/integration/connect_job.py OUT_JSON WORK_DIR REMOTE SCENARIO...

Scenarios: ``trials`` (where the trials ran), ``early`` (the median rule), ``killed`` (a Python
worker killed past its checkpoint), ``gang`` (DDP gangs, tracked in MLflow), ``resume`` (the same
call again), ``interrupt`` (Ctrl-C).
Each one's facts go into OUT_JSON, for the test to judge; a scenario's own error is recorded, not
raised, so the others still run.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

from maggy import HyperparameterOptConfig, Searchspace, experiment  # noqa: E402
from tests.conftest import wait_for  # noqa: E402
from tests.integration.test_lost_workers import calls, checkpointing_train, in_background  # noqa: E402


def where_it_ran(x, reporter):
    import os

    from pyspark import TaskContext

    ctx = TaskContext.get()
    for step in range(3):
        reporter.broadcast(x + step, step=step)
    return {"metric": x, "pid": os.getpid(), "stage": ctx.stageId() if ctx else -1,
            "partition": ctx.partitionId() if ctx else -1, "cwd": os.getcwd()}


def scenario_trials(work):
    cfg = HyperparameterOptConfig(searchspace=Searchspace(x=("DOUBLE", [0.0, 1.0])), num_trials=6, es_policy="none",
                                  hb_interval=0.1, experiment_dir=os.path.join(work, "trials"), name="where")
    result = experiment.lagom(where_it_ran, cfg, verbose=False)
    return {"trials": json.loads(result.trials.to_json(orient="records")), "stats": result.stats,
            "client_pid": os.getpid()}


def scenario_resume(work):
    """The same lagom call again with more trials: the experiment continues, nothing that ended runs again."""
    def cfg(n):
        return HyperparameterOptConfig(searchspace=Searchspace(x=("DOUBLE", [0.0, 1.0])), num_trials=n, seed=3,
                                       es_policy="none", hb_interval=0.1, experiment_dir=os.path.join(work, "resume"),
                                       name="again")
    first = experiment.lagom(where_it_ran, cfg(2), verbose=False)
    again = experiment.lagom(where_it_ran, cfg(4), verbose=False)
    return {"first": sorted(first.trials["trial_id"]), "again": json.loads(again.trials.to_json(orient="records")),
            "resumes": again.stats["resumes"], "same_dir": first.experiment_dir == again.experiment_dir}


def rising(q, reporter):
    import time

    for step in range(20):
        time.sleep(0.05)
        reporter.broadcast(q * step, step=step)
    return q * 20


def scenario_early(work):
    cfg = HyperparameterOptConfig(searchspace=Searchspace(q=("DISCRETE", [6, 5, 4, 3, 2, 1])), optimizer="gridsearch",
                                  es_policy="median", es_min=2, es_interval=0.1, hb_interval=0.05,
                                  experiment_dir=os.path.join(work, "early"), name="early")
    result = experiment.lagom(rising, cfg, verbose=False)
    return {"trials": json.loads(result.trials.to_json(orient="records"))}


def scenario_killed(work):
    log = os.path.join(work, "killed-calls.txt")
    cfg = HyperparameterOptConfig(searchspace=Searchspace(k=("DISCRETE", [0, 1, 2, 3])), optimizer="gridsearch",
                                  es_policy="none", hb_interval=0.05, experiment_dir=os.path.join(work, "killed"),
                                  name="killed")
    thread, box = in_background(lambda: experiment.lagom(checkpointing_train(log), cfg, verbose=False))
    victim, pid = wait_for(lambda: next(((k, p) for k, e, p in calls(Path(log)) if k == 0 and e == 4), None), 120,
                        what="trial 0 past its checkpoint")
    os.kill(pid, signal.SIGKILL)
    thread.join(180)
    if "error" in box or thread.is_alive():
        raise RuntimeError(f"lagom did not end well: {box.get('error')!r}")
    result = box["result"]
    return {"victim": victim, "killed_pid": pid, "calls": calls(Path(log)), "experiment_dir": result.experiment_dir,
            "trials": json.loads(result.trials.to_json(orient="records"))}


def scenario_gang(work):
    """Trials as gangs of two ranks (DDP on gloo), tracked in MLflow."""
    import mlflow

    from tests.integration.test_gangs import config, ddp_train, ranks
    from tests.integration.test_tracking import runs_of

    log, uri = os.path.join(work, "ranks.jsonl"), f"sqlite:///{work}/mlflow.db"
    result = experiment.lagom(ddp_train(log), config(Path(work) / "gang", num_trials=2, tracking_uri=uri),
                              verbose=False)
    parents, children = runs_of(mlflow.tracking.MlflowClient(uri), result)
    return {"trials": json.loads(result.trials.to_json(orient="records")), "ranks": ranks(log),
            "history": json.loads(result.history.to_json(orient="records")),
            "runs": {"parents": len(parents), "trials": sorted(r.data.tags["maggy.trial_id"] for r in children)}}


def long_running(pid_dir):
    """Trials that run for minutes, each leaving its process id in ``pid_dir``."""
    def train(x, reporter):
        import os
        import time

        with open(os.path.join(pid_dir, f"{os.getpid()}.pid"), "w") as f:
            f.write(str(os.getpid()))
        for step in range(6000):
            time.sleep(0.05)
            reporter.broadcast(x, step=step)
        return x
    return train


def scenario_interrupt(work, remote):
    pid_dir = os.path.join(work, "pids")
    os.makedirs(pid_dir)
    cfg = HyperparameterOptConfig(searchspace=Searchspace(x=("DOUBLE", [0.0, 1.0])), num_trials=4, es_policy="none",
                                  hb_interval=0.1, experiment_dir=os.path.join(work, "interrupt"), name="interrupt")

    pressed = []

    def press_ctrl_c():  # as a terminal's Ctrl-C (and Jupyter's interrupt): SIGINT, KeyboardInterrupt in main
        wait_for(lambda: len(os.listdir(pid_dir)) >= 2, 120, what="two trials running")
        pressed.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    import threading

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    interrupted = False
    try:
        experiment.lagom(long_running(pid_dir), cfg, verbose=False)
    except KeyboardInterrupt:
        interrupted = True
    pids = [int(p.split(".")[0]) for p in os.listdir(pid_dir)]

    def alive(pid):
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False

    gone = wait_for(lambda: not any(alive(p) for p in pids) and time.monotonic(), 60, what="the trial processes to end")
    facts = {"interrupted": interrupted, "pids": pids, "ended_after": gone - pressed[0]}
    facts["stages_ended_after"] = wait_for(lambda: not active_stages(remote) and time.monotonic(), 60,
                                        what="no active stage") - pressed[0]
    return facts


def active_stages(remote):
    """The server's active stages: from its SparkContext, which lives in this process for a local
    Connect server, else from its UI's REST API (``SPARK_CONNECT_UI``)."""
    if remote.startswith("local"):
        from pyspark import SparkContext

        stages = list(SparkContext._active_spark_context.statusTracker().getActiveStageIds())
    else:
        import urllib.request

        api = os.environ["SPARK_CONNECT_UI"] + "/api/v1/applications"
        (app,) = json.load(urllib.request.urlopen(api, timeout=10))
        stages = json.load(urllib.request.urlopen(f"{api}/{app['id']}/stages?status=active", timeout=10))
    return stages


def main() -> None:
    out, work, remote, *scenarios = sys.argv[1:]
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.remote(remote)
    if remote.startswith("local"):
        builder = builder.config("spark.ui.enabled", "false")
    builder.getOrCreate()
    facts = {}
    for name in scenarios:
        t0 = time.monotonic()
        try:
            args = (work, remote) if name == "interrupt" else (work,)
            facts[name] = globals()[f"scenario_{name}"](*args)
        except BaseException:  # noqa: BLE001 - recorded for the test, the other scenarios still run
            facts[name] = {"error": traceback.format_exc()}
        facts[name]["seconds"] = time.monotonic() - t0
        with open(out, "w") as f:
            json.dump(facts, f)


if __name__ == "__main__":
    main()
