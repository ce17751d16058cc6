"""An experiment outlives its driver: SIGKILL, Ctrl-C, a torn journal, a second driver, a changed call."""

from __future__ import annotations

import collections
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys

import pytest

from maggy import HyperparameterOptConfig, InvalidParameterError, Searchspace, experiment
from maggy.backends import LocalBackend
from maggy.callbacks import Callback
from maggy.store.journal import Journal
from maggy.store.replay import ExperimentLog
from maggy.store.storage import LocalStorage
from tests.conftest import wait_for
from tests.helpers import job_result, trial_states

HERE = pathlib.Path(__file__).resolve().parent


def job(backend, optimizer, root, calls, *extra):
    return [sys.executable, str(HERE / "resume_job.py"), backend, optimizer, str(root), str(calls), *map(str, extra)]


def finish(cmd, env=None):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env={**os.environ, **(env or {})})
    return job_result(out.stdout, out.stderr, out.returncode)


@pytest.mark.parametrize("backend, optimizer, per_trial", [
    ("local", "randomsearch", 1), ("spark", "randomsearch", 1), ("local", "asha", 1), ("local", "pbt", 1),
    ("local", "randomsearch", 2)])  # the last: gangs of two workers, continued from rank 0's checkpoints
def test_a_killed_driver_is_resumed_and_no_finished_work_runs_again(tmp_path, backend, optimizer, per_trial):
    calls = tmp_path / "calls.txt"
    root = tmp_path / "exp"
    gang = {"MAGGY_TEST_WORKERS_PER_TRIAL": str(per_trial)}
    driver = subprocess.Popen(job(backend, optimizer, root, calls), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True, env={**os.environ, **gang})
    try:
        wait_for(lambda: (root / "resumable").exists() and sum(
            e["state"] in ("FINALIZED", "PAUSED") for e in trial_states(root).values()) >= 3,
            timeout=120, interval=0.05, what="three trials to end")
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the workers it started
        driver.wait(30)
    before = trial_states(root)
    ended = {tid: e for tid, e in before.items() if e["state"] in ("FINALIZED", "PAUSED", "EARLY_STOPPED", "ERROR")}
    in_flight = {tid for tid, e in before.items() if e["state"] in ("RUNNING", "PENDING")}
    epochs_before = collections.Counter(tuple(line.split()) for line in calls.read_text().splitlines())

    result = finish(job(backend, optimizer, root, calls), gang)

    epochs = collections.Counter(tuple(line.split()) for line in calls.read_text().splitlines())
    for tid, e in ended.items():  # finished work never runs again
        done = {str(s) for s, _ in e["history"]}
        assert {ep: n for (t, ep), n in epochs.items() if t == tid and ep in done} == \
            {ep: 1 for ep in done}, f"trial {tid} repeated a finished epoch"
    twice = {k: n for k, n in epochs.items() if n > 1}
    assert all(t in in_flight and n == 2 for (t, _), n in twice.items()), twice
    assert len(twice) <= len(in_flight)  # at most the epoch each in-flight trial was computing
    assert set(epochs_before) <= set(epochs)
    assert result["stats"]["resumes"] == 1
    trials = result["trials"]
    assert {t["state"] for t in trials} == {"FINALIZED"}
    resumed = {t["trial_id"] for t in trials if t.get("resumes")}
    assert resumed and resumed <= in_flight
    if optimizer == "randomsearch":
        assert len(trials) == 8
        # with a seed, the same points as an uninterrupted run
        again = finish(job(backend, optimizer, tmp_path / "clean", tmp_path / "clean.txt"), gang)
        assert sorted(t["q"] for t in again["trials"]) == pytest.approx(sorted(t["q"] for t in trials))
    elif optimizer == "asha":  # promotions continued from checkpoints, the rungs as the rule says
        budgets = collections.Counter(t["budget"] for t in trials)
        # a free worker promotes what its own result made promotable (ASHA's get_job): with 8 trials
        # and η = 2, 2 or 3 reach the top, most stop below it
        assert sum(budgets.values()) == 8 and 1 <= budgets[4] < budgets[1] + budgets[2]
        for t in trials:  # every epoch of a trial's final budget ran, none beyond
            ran = {int(ep) for (tid, ep) in epochs if tid == t["trial_id"]}
            assert ran == set(range(int(t["budget"])))
    else:  # PBT: the population of 8 went on to the end, children from their parents' checkpoints
        assert sum(t["budget"] == 4 for t in trials) == 8 and any(t.get("parent") for t in trials)
        for t in trials:  # every epoch from where the trial started to its final budget ran, none other
            ran = {int(ep) for (tid, ep) in epochs if tid == t["trial_id"]}
            assert ran == set(range(int(t.get("parent_budget") or 0), int(t["budget"]))), t


class InterruptAfter(Callback):
    """Raises KeyboardInterrupt in the driver's loop after ``n`` trial ends, as Ctrl-C would."""

    def __init__(self, n):
        self.n = n

    def on_trial_end(self, trial):
        self.n -= 1
        if self.n == 0:
            raise KeyboardInterrupt


def counting_train(x, reporter):
    import os
    with open(os.environ["MAGGY_TEST_CALLS"], "a") as f:
        f.write(f"{reporter.trial_id}\n")
    return x


def cfg(tmp_path, **kw):
    kw.setdefault("num_trials", 6)
    return HyperparameterOptConfig(searchspace=Searchspace(x=("DOUBLE", [0.0, 1.0])), num_workers=2, es_policy="none",
                                   seed=0, hb_interval=0.05, name="again", experiment_dir=str(tmp_path / "exp"), **kw)


def test_ctrl_c_then_the_same_call_again_in_the_same_process(tmp_path, monkeypatch):
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("MAGGY_TEST_CALLS", str(calls))
    with pytest.raises(KeyboardInterrupt):
        experiment.lagom(counting_train, cfg(tmp_path), backend=LocalBackend(), verbose=False,
                         callbacks=[InterruptAfter(3)])
    (exp_dir,) = (tmp_path / "exp" / "again").iterdir()
    finished = {t.trial_id for t in ExperimentLog.read(LocalStorage(), str(exp_dir)).trials.values() if t.state.finished}
    assert len(finished) >= 3
    with open(exp_dir / "journal.jsonl", "a") as f:
        f.write('{"event": "trial", "trial_id": "torn')  # as if the driver died mid-append
    result = experiment.lagom(counting_train, cfg(tmp_path), backend=LocalBackend(), verbose=False)
    assert result.experiment_dir == str(exp_dir) and result.stats["resumes"] == 1
    assert len(result.trials) == 6 and set(result.trials["state"]) == {"FINALIZED"}
    ran = collections.Counter(calls.read_text().split())
    assert all(ran[tid] == 1 for tid in finished)
    assert len(Journal(LocalStorage(), str(exp_dir)).read()) > 0  # the torn line is gone, nothing damaged

    # finished: the same call returns the stored result without running anything
    class NoBackend(LocalBackend):
        def prepare(self):
            raise AssertionError("a finished experiment started its backend")
    stored = experiment.lagom(counting_train, cfg(tmp_path), backend=NoBackend(), verbose=False)
    assert stored.best_trial_id == result.best_trial_id and len(stored.trials) == 6
    # more trials: only the difference runs
    more = experiment.lagom(counting_train, cfg(tmp_path, num_trials=9), backend=LocalBackend(), verbose=False)
    assert len(more.trials) == 9 and more.stats["resumes"] == 2
    assert sum(collections.Counter(calls.read_text().split()).values()) <= 9 + 2  # two in flight at Ctrl-C at most


def test_a_changed_call_is_refused_by_resume_true_before_any_work_and_resume_false_starts_afresh(tmp_path,
                                                                                                monkeypatch):
    monkeypatch.setenv("MAGGY_TEST_CALLS", str(tmp_path / "calls.txt"))
    with pytest.raises(KeyboardInterrupt):
        experiment.lagom(counting_train, cfg(tmp_path), backend=LocalBackend(), verbose=False,
                         callbacks=[InterruptAfter(1)])

    class NoBackend(LocalBackend):
        def prepare(self):
            raise AssertionError("the backend was touched")
    changed = cfg(tmp_path, resume=True)
    changed.searchspace = Searchspace(x=("DOUBLE", [0.0, 2.0]))
    with pytest.raises(InvalidParameterError, match=r"different searchspace \(x: .*1\.0.* then, .*2\.0.* now\)"):
        experiment.lagom(counting_train, changed, backend=NoBackend(), verbose=False)
    with pytest.raises(InvalidParameterError, match="direction \\('max' then, 'min' now\\)"):
        experiment.lagom(counting_train, cfg(tmp_path, direction="min", resume=True), backend=NoBackend(),
                         verbose=False)
    fresh = experiment.lagom(counting_train, cfg(tmp_path, resume=False, num_trials=2), backend=LocalBackend(),
                             verbose=False)
    assert len(list((tmp_path / "exp" / "again").iterdir())) == 2 and fresh.stats["resumes"] == 0
    with pytest.raises(InvalidParameterError, match="holds no experiment 'other'"):
        c = cfg(tmp_path, resume=True)
        c.name = "other"
        experiment.lagom(counting_train, c, backend=NoBackend(), verbose=False)


def test_two_drivers_at_once_one_wins_the_other_is_told(tmp_path):
    calls = tmp_path / "calls.txt"
    root = tmp_path / "exp"
    first = finish(job("local", "randomsearch", root, calls, 2))  # an experiment to continue with more trials
    assert len(first["trials"]) == 2
    # the winner's trials wait at a gate that opens only once the other driver has ended: the
    # winner holds the lease however far apart the two start
    gate = tmp_path / "gate"
    env = {**os.environ, "MAGGY_TEST_GATE": str(gate)}
    procs = [subprocess.Popen(job("local", "randomsearch", root, calls, 4), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    try:
        wait_for(lambda: any(p.poll() is not None for p in procs), timeout=180, what="one driver to give up")
    finally:
        gate.touch()
    outs = [p.communicate(timeout=240) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes[0] == 0 and codes[1] != 0, outs
    loser = next(err for p, (_, err) in zip(procs, outs) if p.returncode != 0)
    assert "ExperimentLockedError: Another driver runs this experiment" in loser


def test_a_driver_killed_on_another_host_is_taken_over_at_once(tmp_path):
    """The first driver runs on host 'node-a' (a UTS namespace of its own); once it is SIGKILLed,
    a driver here finds its RPC address refusing connections and takes over without waiting for
    the lease to go stale."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-u", "true"], capture_output=True).returncode:
        pytest.skip("another host is played by a UTS namespace: needs unshare -u (util-linux, as root)")
    calls, root = tmp_path / "calls.txt", tmp_path / "exp"
    elsewhere = ["unshare", "-u", "sh", "-c", 'hostname node-a && exec "$@"', "sh", *job("local", "randomsearch", root, calls)]
    driver = subprocess.Popen(elsewhere, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def lease():
        found = list((root / "resumable").glob("*/lease.json")) if (root / "resumable").exists() else []
        try:
            return json.loads(found[0].read_text()) if found else {}
        except ValueError:  # caught mid-write
            return {}
    try:
        wait_for(lambda: lease().get("rpc") and sum(e["state"] == "FINALIZED" for e in trial_states(root).values()) >= 2,
                 timeout=120, interval=0.05, what="the driver on node-a to listen and two trials to end")
        held = lease()
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(30)
    assert held["host"] == "node-a" != socket.gethostname()
    out = subprocess.run(job("local", "randomsearch", root, calls), capture_output=True, text=True, timeout=240)
    result = job_result(out.stdout, out.stderr, out.returncode)
    assert result["stats"]["resumes"] == 1 and {t["state"] for t in result["trials"]} == {"FINALIZED"}
    assert "does not answer; waiting" not in out.stderr  # it knew at once that the holder was gone
