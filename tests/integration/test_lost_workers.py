"""Lost, killed and stale workers: a trial continues from its checkpoint, the experiment finishes."""

from __future__ import annotations

import collections
import json
import os
import signal
import threading

import pytest

from maggy import HyperparameterOptConfig, Searchspace, experiment
from maggy.backends import LocalBackend, SparkBackend
from tests.conftest import wait_for

EPOCHS = 6


def checkpointing_train(log_path):
    """Six epochs; saves and marks a checkpoint after every second one; logs `trial epoch pid`.

    The log's path travels in the closure: Spark's Python daemon may predate the test's environment.
    """
    log_path = str(log_path)

    def train(k, reporter):
        import json
        import os
        import time

        path = os.path.join(reporter.checkpoint_dir, "state.json")
        start = json.load(open(path))["epoch"] if os.path.exists(path) else 0
        for epoch in range(start, 6):
            time.sleep(0.25)
            with open(log_path, "a") as f:
                f.write(f"{k} {epoch} {os.getpid()}\n")
            reporter.broadcast(k + epoch / 10, step=epoch)
            if epoch % 2 == 1:
                with open(path, "w") as f:
                    json.dump({"epoch": epoch + 1}, f)
                reporter.checkpoint()
        return {"metric": k, "pid": os.getpid()}
    return train


def calls(path):
    if not path.exists():
        return []
    return [tuple(int(x) for x in line.split()) for line in path.read_text().splitlines() if line.count(" ") == 2]


def cfg(tmp_path, **kw):
    kw.setdefault("num_workers", 2)
    return HyperparameterOptConfig(searchspace=Searchspace(k=("DISCRETE", [0, 1, 2, 3])), optimizer="gridsearch",
                                   es_policy="none", hb_interval=0.05, experiment_dir=str(tmp_path / "exp"), **kw)


def in_background(fn):
    box = {}

    def run():
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            box["error"] = exc
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def check_continued_from_checkpoint(log, result, victim, killed_pid):
    """The victim's epochs before its checkpoint ran once, it finished on another process."""
    epochs = collections.Counter(e for k, e, _ in log if k == victim)
    assert all(epochs[e] == 1 for e in range(4)), epochs  # checkpoint after epoch 3: nothing before re-ran
    assert sorted(epochs) == list(range(EPOCHS))
    row = result.trials.set_index("k").loc[victim]
    assert row["state"] == "FINALIZED" and row["restarts"] == 1 and row["pid"] != killed_pid
    saved = json.load(open(os.path.join(result.experiment_dir, "result.json")))
    history = next(t["history"] for t in saved["trials"] if t["trial_id"] == row["trial_id"])
    assert [s for s, _ in history] == list(range(EPOCHS))  # cut back to the checkpoint, carried on: no duplicates
    assert len(result.trials) == 4 and set(result.trials["state"]) == {"FINALIZED"}


@pytest.mark.parametrize("kind", ["local", "spark"])
def test_a_killed_worker_process_costs_at_most_one_checkpoint(kind, tmp_path, request):
    log_path = tmp_path / "calls.txt"
    backend = LocalBackend() if kind == "local" else SparkBackend(request.getfixturevalue("spark"))
    thread, box = in_background(lambda: experiment.lagom(checkpointing_train(log_path), cfg(tmp_path),
                                                         backend=backend, verbose=False))
    # kill the process running trial k=0 once it is past its checkpoint at epoch 3
    hit = wait_for(lambda: next(((k, p) for k, e, p in calls(log_path) if k == 0 and e == 4), None),
                   timeout=120, what="trial 0 past its checkpoint")
    victim, pid = hit
    os.kill(pid, signal.SIGKILL)
    thread.join(180)
    assert not thread.is_alive() and "error" not in box, box.get("error")
    check_continued_from_checkpoint(calls(log_path), box["result"], victim, pid)
    if kind == "spark":  # local mode gives up on the job at once: a replacement job carried on
        sc = backend.spark.sparkContext
        assert len(sc.statusTracker().getJobIdsForGroup(backend.job_group)) >= 2


def test_a_silent_worker_is_stale_and_its_late_final_changes_nothing(tmp_path):
    log_path = tmp_path / "calls.txt"
    thread, box = in_background(lambda: experiment.lagom(
        # a frozen worker (SIGSTOP below) is stale after 3 s; a healthy one on a loaded machine is not
        checkpointing_train(log_path), cfg(tmp_path, hb_timeout=3.0), backend=LocalBackend(), verbose=False))
    victim, pid = wait_for(lambda: next(((k, p) for k, e, p in calls(log_path) if k == 0 and e == 4), None),
                           timeout=120, what="trial 0 past its checkpoint")
    os.kill(pid, signal.SIGSTOP)  # hung with its connection open
    try:
        wait_for(lambda: any(k == victim and p != pid for k, _, p in calls(log_path)), timeout=60,
                 what="the trial to continue on the other worker")
    finally:
        os.kill(pid, signal.SIGCONT)  # it wakes up and reports a trial that is not its own any more
    thread.join(180)
    assert not thread.is_alive() and "error" not in box, box.get("error")
    result = box["result"]
    row = result.trials.set_index("k").loc[victim]
    assert row["pid"] != pid and row["restarts"] == 1 and row["steps"] == EPOCHS
    assert len(result.trials) == 4 and set(result.trials["state"]) == {"FINALIZED"}


def test_a_trial_that_keeps_killing_its_worker_ends_as_error_after_the_retries(tmp_path):
    def train(k):
        import os
        if k == 2:
            os._exit(9)
        return k

    result = experiment.lagom(train, cfg(tmp_path, max_trial_retries=1), backend=LocalBackend(), verbose=False)
    row = result.trials.set_index("k").loc[2]
    assert row["state"] == "ERROR" and row["restarts"] == 2
    # its process exits, so its connection drops at once (never a silence)
    assert row["error"] == "TrialLost: its worker was lost 2 times, more than max_trial_retries=1"
    assert set(result.trials.set_index("k").drop(index=2)["state"]) == {"FINALIZED"}


def test_a_failing_train_fn_is_never_retried(tmp_path):
    log_path = str(tmp_path / "calls.txt")

    def train(k):
        import os
        with open(log_path, "a") as f:
            f.write(f"{k} 0 {os.getpid()}\n")
        if k == 1:
            raise ValueError("a bug in train_fn")
        return k

    result = experiment.lagom(train, cfg(tmp_path), backend=LocalBackend(), verbose=False)
    assert collections.Counter(k for k, _, _ in calls(tmp_path / "calls.txt")) == {0: 1, 1: 1, 2: 1, 3: 1}
    row = result.trials.set_index("k").loc[1]
    assert row["state"] == "ERROR" and row["restarts"] == 0 and "a bug in train_fn" in row["error"]


def test_trial_timeout_stops_a_trial_and_marks_it_error(tmp_path):
    def train(k, reporter):
        import time
        for step in range(200 if k == 3 else 2):
            time.sleep(0.05)
            reporter.broadcast(float(k), step=step)
        return k

    # the others take 0.1 s: 30 times below the timeout, also on a loaded machine
    result = experiment.lagom(train, cfg(tmp_path, trial_timeout=3.0), backend=LocalBackend(), verbose=False)
    rows = result.trials.set_index("k")
    assert rows.loc[3, "state"] == "ERROR"
    assert rows.loc[3, "error"] == "TrialTimeout: the trial ran longer than trial_timeout=3s"
    assert rows.loc[3, "steps"] < 100  # stopped, not run to the end
    assert set(rows.drop(index=3)["state"]) == {"FINALIZED"}


DRIVER_SCRIPT = """
import sys, time
from maggy import HyperparameterOptConfig, Searchspace, experiment
from maggy.backends import LocalBackend
pids = sys.argv[1]

def train(k):
    import os, time
    open(os.path.join(pids, str(os.getpid())), "w").close()
    time.sleep(300)
    return k

cfg = HyperparameterOptConfig(searchspace=Searchspace(k=("DISCRETE", [0, 1])), optimizer="gridsearch", num_workers=2,
                              es_policy="none", hb_interval=0.2, experiment_dir=sys.argv[2])
experiment.lagom(train, cfg, backend=LocalBackend(), verbose=False)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_local_workers_end_when_their_driver_is_killed(tmp_path):
    import subprocess
    import sys
    pids = tmp_path / "pids"
    pids.mkdir()
    driver = subprocess.Popen([sys.executable, "-c", DRIVER_SCRIPT, str(pids), str(tmp_path / "exp")],
                              env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        wait_for(lambda: len(os.listdir(pids)) == 2, timeout=60, what="two workers in their trials")
        workers = [int(p) for p in os.listdir(pids)]
        assert all(_alive(p) for p in workers)
        driver.send_signal(signal.SIGKILL)  # no clean-up of any kind
        driver.wait(10)
        wait_for(lambda: not any(_alive(p) for p in workers), timeout=10, what="workers gone")
    finally:
        driver.kill()
        driver.wait()
        for p in os.listdir(pids):
            if _alive(int(p)):
                os.kill(int(p), signal.SIGKILL)
