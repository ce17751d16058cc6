"""The driver's decisions without a cluster.

Handlers are driven with typed messages and a stand-in for the RPC server; whole experiments run
on :class:`ThreadBackend`, the real worker loop in threads of this process over loopback.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import sys
import time

import pytest

from maggy import HyperparameterOptConfig, Searchspace, experiment, plot
from maggy.callbacks import Callback
from maggy.engine.driver import Driver
from maggy.engine.server import Inbound
from maggy.optimizers import RandomSearch
from maggy.rpc.messages import Assignment, Done, Final, Get, Metric, Ok, Register, Stop, Welcome
from maggy.runtime.trainfn import inspect_train_fn
from maggy.store.replay import ExperimentLog
from maggy.store.storage import LocalStorage
from maggy.trial import TrialState
from tests.helpers import ThreadBackend, fake_pynvml

SP = Searchspace(x=("DOUBLE", [0.0, 1.0]))


class Replies:
    """Stands in for the RPC server: keeps what the driver answered on each connection."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, object]] = []
        self.closed: list[int] = []

    def reply(self, conn, message) -> None:
        self.sent.append((conn, message))

    def close_connection(self, conn) -> None:
        self.closed.append(conn)

    def last(self, conn):
        return [m for c, m in self.sent if c == conn][-1]


class Running(ThreadBackend):
    """A backend whose workers are up (the handlers are driven by hand; no thread runs)."""

    def running(self) -> bool:
        return True


def make_driver(tmp_path, train=lambda x: x, callbacks=(), backend=None, **kw) -> Driver:
    kw.setdefault("num_trials", 3)
    cfg = HyperparameterOptConfig(searchspace=SP, experiment_dir=str(tmp_path), es_policy="none", seed=0, **kw)
    driver = Driver(cfg, train, inspect_train_fn(train, SP), backend or ThreadBackend(), LocalStorage(),
                    str(tmp_path), callbacks=callbacks)
    driver.server = Replies()
    (tmp_path / "trials").mkdir(exist_ok=True)  # as Driver.run makes it
    driver.sched.prepare()
    return driver


def final(trial_id, worker=0, state=TrialState.FINALIZED, metric=0.5, points=()):
    return Final(worker, trial_id, state, start=1.0, end=2.0, metric=metric, points=points)


def test_register_get_metric_final(tmp_path):
    driver = make_driver(tmp_path)
    replies = driver.server
    driver.handle(Inbound(1, Register(worker=0, host="h", pid=1)))
    assert replies.last(1) == Welcome()  # no grants: a local directory
    driver.handle(Inbound(1, Get(worker=0)))
    first = replies.last(1)
    assert isinstance(first, Assignment) and first.next_step == 0
    assert first.checkpoint_dir == os.path.join(str(tmp_path), "trials", first.trial_id)
    driver.handle(Inbound(1, Metric(worker=0, trial_id=first.trial_id, points=((0, 0.1), (1, 0.2)))))
    assert replies.last(1) == Ok()
    driver.sched.request_stop(driver.sched.trials[first.trial_id])
    driver.handle(Inbound(1, Metric(worker=0, trial_id=first.trial_id)))
    assert replies.last(1) == Stop()
    driver.handle(Inbound(1, final(first.trial_id, state=TrialState.EARLY_STOPPED, metric=0.2, points=((2, 0.2),))))
    nxt = replies.last(1)
    assert isinstance(nxt, Assignment) and nxt.trial_id != first.trial_id  # FINAL's reply is the next trial
    trial = driver.sched.trials[first.trial_id]
    assert trial.state is TrialState.EARLY_STOPPED and trial.history == ((0, 0.1), (1, 0.2), (2, 0.2))


def test_an_unregistered_worker_gets_done_and_a_lost_trial_is_requeued(tmp_path):
    driver = make_driver(tmp_path)
    replies = driver.server
    driver.handle(Inbound(5, Get(worker=0)))
    assert replies.last(5) == Done()
    driver.handle(Inbound(1, Register(worker=0, host="h", pid=1)))
    driver.handle(Inbound(1, Get(worker=0)))
    lost = replies.last(1).trial_id
    driver.handle(Inbound(1, None))  # the connection dropped
    assert driver.sched.trials[lost].state is TrialState.PENDING
    driver.handle(Inbound(2, Register(worker=1, host="h", pid=2)))
    driver.handle(Inbound(2, Get(worker=1)))
    assert replies.last(2).trial_id == lost  # re-queued first
    # the first worker's late FINAL changes nothing and gets a trial of its own or DONE
    driver.handle(Inbound(1, final(lost)))
    assert replies.last(1) == Done() and driver.sched.trials[lost].state is TrialState.RUNNING


def test_a_worker_that_ends_loses_only_its_own_trial_not_another_of_its_partition(tmp_path):
    """An aborted Spark job's worker still runs a trial of partition 1; the replacement job's
    worker for partition 1 registers, gets DONE and ends: the old worker's trial goes on."""
    driver = make_driver(tmp_path, num_trials=1)
    replies = driver.server
    driver.handle(Inbound(1, Register(worker=1, host="h", pid=1)))
    driver.handle(Inbound(1, Get(worker=1)))
    running = replies.last(1).trial_id
    driver.handle(Inbound(2, Register(worker=1, host="h", pid=2)))  # the replacement's task for partition 1
    driver.handle(Inbound(2, Get(worker=1)))
    assert replies.last(2) == Done()
    driver.handle(Inbound(2, None))  # it ends
    assert driver.sched.trials[running].state is TrialState.RUNNING
    driver.handle(Inbound(1, Metric(worker=1, trial_id=running, points=((0, 0.5),))))
    assert replies.last(1) == Ok()  # still its trial
    driver.handle(Inbound(1, None))  # the old worker's connection drops: now its trial is lost
    assert driver.sched.trials[running].state is TrialState.PENDING


class Boom(RandomSearch):
    def tell(self, trial):
        raise ValueError("boom in tell")


def test_an_optimizer_bug_fails_the_experiment_with_its_traceback_and_a_journal_that_replays(tmp_path):
    cfg = HyperparameterOptConfig(searchspace=SP, optimizer=Boom(), num_trials=4, num_workers=1, es_policy="none",
                                  experiment_dir=str(tmp_path), name="boom", hb_interval=0.05)
    with pytest.raises(ValueError, match="boom in tell") as info:
        experiment.lagom(lambda x: x, cfg, backend=ThreadBackend(1), verbose=False)
    assert info.traceback[-1].name == "tell"  # its own traceback, not a 'malformed message'
    (exp_dir,) = glob.glob(str(tmp_path / "boom" / "*"))
    replayed = ExperimentLog.read(LocalStorage(), exp_dir).trials
    assert [t.state for t in replayed.values()].count(TrialState.FINALIZED) == 1
    saved = json.loads(open(os.path.join(exp_dir, "result.json")).read())
    assert saved["outcome"] == "failed"
    # the first trial only: the optimizer hears of a run's end before it is asked for the next trial
    assert [(t["number"], t["state"]) for t in saved["trials"]] == [(1, "FINALIZED")]


class Watcher(Callback):
    def __init__(self):
        self.events = []

    def on_experiment_start(self, info):
        self.events.append(("start", info.total_trials))

    def on_trial_start(self, trial):
        self.events.append(("trial_start", trial.trial_id))

    def on_trial_result(self, trial, points):
        self.events.append(("result", trial.trial_id, tuple(points)))

    def on_trial_end(self, trial):
        self.events.append(("end", trial.trial_id, trial.state.value))

    def on_experiment_end(self, result, outcome):
        self.events.append(("stop", outcome, len(result.trials)))


def test_a_user_callback_sees_every_trial_end_exactly_once(tmp_path):
    def train(x, reporter):
        reporter.broadcast(x, step=0)
        if x > 0.5:
            raise RuntimeError("fails on purpose")
        return x

    cfg = HyperparameterOptConfig(searchspace=SP, num_trials=8, num_workers=2, es_policy="none", seed=4,
                                  experiment_dir=str(tmp_path), hb_interval=0.05, fail_fast=0)
    watcher = Watcher()
    result = experiment.lagom(train, cfg, backend=ThreadBackend(), verbose=False, callbacks=[watcher])
    ends = [e for e in watcher.events if e[0] == "end"]
    assert sorted(e[1] for e in ends) == sorted(result.trials["trial_id"])  # each once
    assert {e[2] for e in ends} == {"FINALIZED", "ERROR"}
    assert watcher.events[0] == ("start", 8) and watcher.events[-1] == ("stop", "finished", 8)
    assert sum(e[0] == "trial_start" for e in watcher.events) == 8
    results = {e[1]: e[2] for e in watcher.events if e[0] == "result"}
    assert set(results) == set(result.trials["trial_id"]) and all(len(p) == 1 for p in results.values())


def test_callbacks_must_be_callbacks(tmp_path):
    from maggy import InvalidParameterError
    with pytest.raises(InvalidParameterError, match="Subclass Callback"):
        experiment.lagom(lambda x: x, SP, backend=ThreadBackend(), callbacks=[print])


def test_load_result_rebuilds_the_result_from_the_journal(tmp_path):
    from maggy import load_result

    cfg = HyperparameterOptConfig(searchspace=SP, num_trials=5, num_workers=2, es_policy="none", seed=1,
                                  experiment_dir=str(tmp_path), name="again", hb_interval=0.05)
    result = experiment.lagom(lambda x: {"metric": x, "double": 2 * x}, cfg, backend=ThreadBackend(), verbose=False)
    for path in (result.experiment_dir, os.path.join(result.experiment_dir, "journal.jsonl"), str(tmp_path / "again")):
        loaded = load_result(path)
        assert loaded.experiment_dir == result.experiment_dir
        assert (loaded.best_trial_id, loaded.best_metric) == (result.best_trial_id, result.best_metric)
        assert sorted(loaded.trials["trial_id"]) == sorted(result.trials["trial_id"])
        assert list(loaded.trials["double"]) == list(result.trials["double"])
        assert loaded.stats["outcome"] == "finished" and loaded.stats["states"] == {"FINALIZED": 5}
    with pytest.raises(FileNotFoundError, match="No maggy journal"):
        load_result(str(tmp_path / "nowhere"))


def test_utilization_is_the_busy_share_of_worker_time_and_the_timeline_has_a_bar_per_run(tmp_path):
    def train(x):
        time.sleep(0.1)
        return x
    cfg = HyperparameterOptConfig(searchspace=SP, num_trials=5, experiment_dir=str(tmp_path), es_policy="none",
                                  hb_interval=0.05, seed=0)
    result = experiment.lagom(train, cfg, backend=ThreadBackend(2), verbose=False)
    stats = result.stats
    assert stats["busy_seconds"] == pytest.approx(result.trials["duration"].sum())
    assert stats["utilization"] == pytest.approx(stats["busy_seconds"] / stats["worker_seconds"])
    assert 0 < stats["utilization"] <= 1 and "% busy" in result.summary()
    fig = plot.timeline(result)
    bars = {(y, round(x)) for trace in fig.data for y, x in zip(trace.y, trace.x)}
    table = {(f"worker {w}", round(1000 * d)) for w, d in zip(result.trials["worker"], result.trials["duration"])}
    assert bars == table and sum(len(trace.y) for trace in fig.data) == 5
    assert [trace.name for trace in fig.data] == ["finalized"]
    assert "timeline" in plot.figures(result)


def test_system_metrics_reach_the_trial_table_and_the_callbacks(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(count=1, util=(70,), used_mib=(2048,)))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")

    class Samples(Callback):
        def __init__(self):
            self.got = []

        def on_system_metrics(self, trial, sample):
            self.got.append((trial.trial_id, dict(sample), trial.usage["samples"]))

    def train(x):
        time.sleep(0.3)  # a few heartbeats
        return x
    seen = Samples()
    cfg = HyperparameterOptConfig(searchspace=SP, num_trials=2, experiment_dir=str(tmp_path), es_policy="none",
                                  hb_interval=0.05, seed=0)  # system_metrics left at None: on, as a GPU is visible
    result = experiment.lagom(train, cfg, backend=ThreadBackend(2), verbose=False, callbacks=[seen])
    assert set(result.trials["gpu_util"]) == {70.0} and set(result.trials["gpu_mem"]) == {2048.0}
    assert (result.trials["mem"] > 10).all() and result.trials["cpu_util"].notna().all()
    for tid in result.trials["trial_id"]:
        mine = [n for t, _, n in seen.got if t == tid]
        assert len(mine) >= 3 and mine == list(range(1, len(mine) + 1))  # every sample, in order
    monkeypatch.setitem(sys.modules, "pynvml", None)
    quiet = experiment.lagom(train, dataclasses.replace(cfg, name="nogpu"), backend=ThreadBackend(2), verbose=False)
    assert "cpu_util" not in quiet.trials and "gpu_util" not in quiet.trials  # no GPU: off by default



def test_a_trial_that_timed_out_and_then_lost_its_worker_runs_again_as_a_new_run(tmp_path):
    """The timeout belongs to a run: the re-run of a trial whose timed-out run was lost is not
    forced to ERROR (the driver used to keep timed-out trial ids forever)."""
    driver = make_driver(tmp_path, backend=Running(), trial_timeout=5.0)
    replies = driver.server
    driver.handle(Inbound(1, Register(worker=0, host="h", pid=1)))
    driver.handle(Inbound(1, Get(worker=0)))
    first = replies.last(1)
    driver.check_workers(time.monotonic() + 6)  # past trial_timeout: STOP at its next heartbeat
    driver.handle(Inbound(1, Metric(worker=0, trial_id=first.trial_id)))
    assert replies.last(1) == Stop()
    driver.handle(Inbound(1, None))  # its worker is lost before it could end the run
    driver.handle(Inbound(2, Register(worker=0, host="h", pid=2)))
    driver.handle(Inbound(2, Get(worker=0)))
    assert replies.last(2).trial_id == first.trial_id  # the lost trial comes first
    driver.handle(Inbound(2, Metric(worker=0, trial_id=first.trial_id)))
    assert replies.last(2) == Ok()  # the new run is not stopped ...
    driver.handle(Inbound(2, final(first.trial_id)))
    trial = driver.sched.trials[first.trial_id]
    assert trial.state is TrialState.FINALIZED and trial.error is None and trial.attempts == 1  # ... nor failed


def test_a_run_past_trial_timeout_ends_as_error(tmp_path):
    driver = make_driver(tmp_path, backend=Running(), trial_timeout=5.0)
    driver.handle(Inbound(1, Register(worker=0, host="h", pid=1)))
    driver.handle(Inbound(1, Get(worker=0)))
    first = driver.server.last(1)
    driver.check_workers(time.monotonic() + 6)
    driver.handle(Inbound(1, final(first.trial_id, state=TrialState.EARLY_STOPPED)))
    trial = driver.sched.trials[first.trial_id]
    assert trial.state is TrialState.ERROR and trial.error["type"] == "TrialTimeout"


class Stall(Callback):
    """Holds the driver's loop up once, when the first trial starts, as a journal write waiting on
    a paused DataNode does."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.stalled = False

    def on_trial_start(self, trial):
        if not self.stalled:
            self.stalled = True
            time.sleep(self.seconds)


def test_heartbeats_that_queued_while_the_driver_was_held_up_are_heard_before_silence_is_judged(tmp_path):
    def train(x, reporter):
        for step in range(8):  # runs on well past the stall, heartbeating all along
            reporter.broadcast(x, step=step)
            time.sleep(0.5)
        return x

    cfg = HyperparameterOptConfig(searchspace=SP, num_trials=2, num_workers=2, es_policy="none", seed=0,
                                  experiment_dir=str(tmp_path), hb_interval=0.05, hb_timeout=1.0)
    result = experiment.lagom(train, cfg, backend=ThreadBackend(), verbose=False, callbacks=[Stall(2.5)])
    assert list(result.trials["restarts"]) == [0, 0] and set(result.trials["state"]) == {"FINALIZED"}


def test_storage_away_past_its_outage_fails_the_experiment_naming_it_and_keeps_what_was_written(tmp_path, monkeypatch):
    """The loop never waits on storage, but storage that refuses writes for longer than the
    writer's outage ends the experiment with an error that names the directory and the way back."""
    from maggy.store import writer as writer_module
    from maggy.store.writer import StorageUnavailableError

    monkeypatch.setattr(writer_module, "OUTAGE", 0.5)
    append = LocalStorage.append_lines
    broken = []

    def flaky(self, path, lines):
        if broken:
            raise OSError("No space left on device")
        append(self, path, lines)

    monkeypatch.setattr(LocalStorage, "append_lines", flaky)

    class BreakAfterThree(Callback):
        def __init__(self):
            self.ended = 0

        def on_trial_end(self, trial):
            self.ended += 1
            if self.ended == 3:
                broken.append(True)

    def train(x):
        time.sleep(0.05)
        return x

    cfg = HyperparameterOptConfig(searchspace=SP, num_trials=200, es_policy="none", experiment_dir=str(tmp_path),
                                  name="outage")
    started = time.monotonic()
    with pytest.raises(StorageUnavailableError, match="run the same lagom call again") as err:
        experiment.lagom(train, cfg, backend=ThreadBackend(2), verbose=False, callbacks=[BreakAfterThree()])
    assert str(tmp_path) in str(err.value) and "No space left on device" in str(err.value)
    assert time.monotonic() - started < 60  # the outage, not the 200 trials, decided when it ended
    monkeypatch.setattr(LocalStorage, "append_lines", append)
    (exp_dir,) = glob.glob(str(tmp_path / "outage" / "*"))
    ended = [t for t in ExperimentLog.read(LocalStorage(), exp_dir).trials.values() if t.state.finished]
    assert 1 <= len(ended) < 200  # what was written before the outage is kept, whole


class EncryptingCluster(ThreadBackend):
    """A cluster that encrypts its own traffic, as Spark with ``spark.network.crypto.enabled=true``."""

    def network_encrypted(self) -> bool:
        return True


@pytest.mark.parametrize("tls, cluster_encrypts, used", [(None, False, "off"), (None, True, "on"),
                                                         (True, False, "on"), (False, True, "off")])
def test_tls_follows_the_clusters_encryption_unless_it_is_set(tmp_path, tls, cluster_encrypts, used):
    backend = EncryptingCluster() if cluster_encrypts else ThreadBackend()
    cfg = HyperparameterOptConfig(searchspace=SP, num_trials=3, es_policy="none", experiment_dir=str(tmp_path), tls=tls)
    result = experiment.lagom(lambda x: x, cfg, backend=backend, verbose=False)
    assert result.stats["rpc"]["tls"] == used and list(result.trials["state"]) == ["FINALIZED"] * 3


def test_spark_says_whether_it_encrypts_its_network():
    import types

    from maggy.backends import SparkBackend

    def backend(conf: dict) -> SparkBackend:  # a session whose SparkConf holds ``conf``
        return SparkBackend(types.SimpleNamespace(sparkContext=types.SimpleNamespace(getConf=lambda: conf)))

    assert backend({"spark.network.crypto.enabled": "True "}).network_encrypted()
    assert not backend({"spark.network.crypto.enabled": "false"}).network_encrypted()
    assert not backend({}).network_encrypted()
