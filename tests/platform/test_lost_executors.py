"""Executors die, or a whole YARN node is lost, under a running experiment; the work survives."""

from __future__ import annotations

import collections
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import wait_for
from tests.helpers import job_result
from tests.platform.yarn import rm_get, yarn_env, yarn_site

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "scripts"))
from local_platform import container_of, executor_jvm, lose_node  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
JOB = HERE / "lost_executor_job.py"


def calls(path):
    if not path.exists():
        return []
    return [tuple(int(x) for x in line.split()) for line in path.read_text().splitlines() if line.count(" ") == 2]


def run_job(platform, root, calls_file, trials, workers, env=None, master=None):
    cmd = [sys.executable, str(JOB), master or platform["SPARK_MASTER"], root, str(calls_file), str(trials), str(workers)]
    env = {**os.environ, "WEBHDFS_URL": platform["WEBHDFS_URL"], "PYSPARK_PYTHON": sys.executable, **(env or {})}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result_of(proc):
    out, err = proc.communicate(timeout=400)
    return job_result(out, err, proc.returncode)


@pytest.mark.parametrize("cluster", ["standalone", "yarn"])
def test_a_lost_executor_costs_one_checkpoint_interval(platform, hdfs, tmp_path, cluster):
    """On the standalone cluster the executor's JVM is SIGKILLed. On YARN its whole node is lost:
    the NodeManager and every container on it (the common case of preemption and spot loss), then
    YARN's liveness monitor declares the node lost; the AM asks the other node for a container. If
    the AM itself was on the lost node, YARN's second attempt (``spark.yarn.maxAppAttempts=2``)
    brings new executors, and every running trial continues from its checkpoint."""
    calls_file = tmp_path / "calls.txt"
    root = platform["HDFS_URI"] + f"/lost-{tmp_path.name}"
    yarn = yarn_env(platform, "spark.executor.instances=2", "spark.yarn.maxAppAttempts=2")
    proc = run_job(platform, root, calls_file, 4, 2, **({"env": yarn, "master": "yarn"} if cluster == "yarn" else {}))
    journal = None
    records: list[dict] = []

    def checkpoint_recorded():  # trial k=0 computed epoch 4 and its checkpoint at epoch 3 is safe on HDFS
        nonlocal journal
        if not any(k == 0 and e == 4 for k, e, _ in calls(calls_file)):
            return False
        base = hdfs.join(hdfs.normalize(root), "lost-executors")
        journal = hdfs.join(base, hdfs.listdir(base)[0], "journal.jsonl")
        records[:] = [json.loads(line) for line in hdfs.read_text(journal).splitlines(keepends=True)
                      if line.endswith("\n")]
        mine = [r for r in records if r.get("params") == {"k": 0}]
        assert not any(r["state"] == "FINALIZED" for r in mine), "trial 0 ended before its executor was killed"
        return any(r.get("checkpoint_step") == 3 for r in mine)

    try:
        wait_for(checkpoint_recorded, timeout=180, interval=0.1, what="trial 0's checkpoint on HDFS")
        pid = next(p for k, e, p in calls(calls_file) if k == 0 and e == 4)
        ended = {r["params"]["k"] for r in records if r.get("state") == "FINALIZED"}  # before the fault
        jvm = executor_jvm(pid)
        assert jvm is not None, f"no executor JVM above trial 0's worker {pid}"
        if cluster == "yarn":
            where = {k: container_of(p) for k, _, p in calls(calls_file)}  # each trial's latest container
            node, lost = lose_node(jvm)
        else:
            os.kill(jvm, signal.SIGKILL)
        res = result_of(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    trials = {t["k"]: t for t in res["trials"]}
    assert len(trials) == 4 and {t["state"] for t in trials.values()} == {"FINALIZED"}
    victim = trials[0]
    assert victim["restarts"] == 1 and victim["pid"] != pid
    assert res["histories"][victim["trial_id"]] == list(range(6))
    epochs = collections.Counter(e for k, e, _ in calls(calls_file) if k == 0)
    assert all(epochs[e] == 1 for e in range(4)), epochs  # nothing before the checkpoint ran again
    restarted = {k for k, t in trials.items() if t["restarts"]}
    if cluster == "yarn":  # the trials in the lost node's containers, or any that ran if the AM was there
        am_lost = any(c.endswith("_000001") for c in lost)
        assert restarted <= (set(trials) if am_lost else {k for k, c in where.items() if c in lost}), (where, lost)
    else:
        assert restarted == {0}
    assert not restarted & ended
    for k in ended:  # a trial that had ended before the fault never ran again
        assert sorted(e for j, e, _ in calls(calls_file) if j == k) == list(range(6))
    # the victim's run went on in another executor (the survivor, or a replacement if it came first)
    killed = next(w["executor"] for w in res["workers"] if w["pid"] == pid)
    assert victim["executor"] not in (None, killed)
    assert all(w["executor"] not in (None, "driver") for w in res["workers"])
    assert res["active_jobs"] == []
    assert res["master"] == ("yarn" if cluster == "yarn" else platform["SPARK_MASTER"])
    if cluster == "yarn":  # the victim went on in a container of the other node; YARN saw the node go
        assert victim["container"] and victim["container"] not in lost
        port = yarn_site(platform, "yarn.nodemanager.address", node).rsplit(":", 1)[1]

        def states():  # each node's state by its NodeManager's port
            every = "NEW,RUNNING,UNHEALTHY,DECOMMISSIONING,DECOMMISSIONED,LOST,REBOOTED,SHUTDOWN"
            nodes = (rm_get(platform, f"nodes?states={every}")["nodes"] or {}).get("node", [])
            return {n["id"].rsplit(":", 1)[1]: n["state"] for n in nodes}
        wait_for(lambda: states().get(port) == "LOST", timeout=60, what=f"node :{port} to be LOST (nodes then: {states()})")


def test_the_experiment_grows_when_an_executor_joins_and_leaves_nothing_running(platform, tmp_path):
    from local_platform import free_port, free_ports, spark_class, spark_workers

    master_port, ui = free_ports(2)
    master = f"spark://127.0.0.1:{master_port}"
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOG_DIR": str(tmp_path), "PYSPARK_PYTHON": sys.executable}

    def start(*args):
        with open(tmp_path / f"daemon-{len(daemons)}.out", "w") as out:
            return subprocess.Popen([spark_class(), *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)

    def worker():
        return start("org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", "1", "--memory",
                     "1g", "--webui-port", str(free_port()), "--work-dir", str(tmp_path / f"work-{time.time()}"),
                     master)

    daemons: list = []
    daemons.append(start("org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(master_port),
                         "--webui-port", str(ui)))
    calls_file = tmp_path / "calls.txt"
    try:
        daemons.append(worker())
        wait_for(lambda: spark_workers(f"http://127.0.0.1:{ui}") == 1, timeout=120, interval=0.2,
                 what="the first standalone worker to register")
        gate = tmp_path / "gate"
        proc = run_job(platform, str(tmp_path / "exp"), calls_file, 12, 2, master=master,
                       env={"MAGGY_TEST_EPOCH": "0.3", "MAGGY_TEST_GATE": str(gate)})
        def first_trial():
            assert proc.poll() is None, proc.communicate()[1][-4000:]
            return len({k for k, _, _ in calls(calls_file)}) >= 1
        try:
            wait_for(first_trial, timeout=180, what="the first trial")
        except BaseException as exc:
            proc.kill()
            raise AssertionError(proc.communicate()[1][-6000:] + "\nmaster log: " + "".join(
                p.read_text()[-3000:] for p in tmp_path.glob("daemon-*.out"))) from exc
        assert len({p for _, _, p in calls(calls_file)}) == 1  # one core: one worker runs, the other waits
        daemons.append(worker())  # an executor joins; trials after the first wait at the gate until it runs one
        wait_for(lambda: len({p for _, _, p in calls(calls_file)}) == 2, timeout=180, interval=0.2,
                 what="a trial on the executor that joined")
        gate.touch()
        res = result_of(proc)
    finally:
        for d in daemons:
            os.killpg(d.pid, signal.SIGKILL)
            d.wait(30)
    executors = {t["executor"] for t in res["trials"]}
    assert len(executors) == 2  # the joining executor took trials
    assert len(res["trials"]) == 12 and {t["state"] for t in res["trials"]} == {"FINALIZED"}
    assert res["active_jobs"] == [] and res["jobs"] == 1
