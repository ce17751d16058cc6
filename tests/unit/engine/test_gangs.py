"""Gangs on the driver: atomic assignment, rendezvous, one voice, failures; no processes.

The handlers are driven with typed messages, as in test_driver.py; whole gangs of real
processes run in tests/integration/test_gangs.py.
"""

from __future__ import annotations

import dataclasses
import sys
import time

import pytest

from maggy import experiment
from maggy.engine import supervisor as supervisor_module
from maggy.engine.gangs import IdlePool
from maggy.engine.server import Inbound
from maggy.exceptions import InvalidParameterError, MaggyWarning
from maggy.experiment import build_driver
from maggy.rpc.messages import Assignment, Done, Get, Metric, Ok, Register, Rendezvous, Stop, Wait, Welcome
from maggy.trial import TrialState, error_record
from tests.helpers import ThreadBackend
from tests.unit.engine.test_driver import SP, Running, final, make_driver


def gang_driver(tmp_path, workers=3, hosts=None, **kw):
    kw.setdefault("num_trials", 2)
    driver = make_driver(tmp_path, backend=Running(slots=workers), workers_per_trial=2, **kw)
    for conn in range(workers):
        host = hosts[conn] if hosts else "h"
        driver.handle(Inbound(conn, Register(worker=conn, host=host, pid=100 + conn)))
    return driver


def replies_to(driver, conn):
    return [m for c, m in driver.server.sent if c == conn and m not in (Ok(), Welcome())]


def test_a_gang_is_assigned_whole_or_not_at_all(tmp_path):
    driver = gang_driver(tmp_path)
    driver.handle(Inbound(0, Get(worker=0)))
    assert replies_to(driver, 0) == []  # alone: it waits, holding nothing
    assert driver.registry.runs == {}
    driver.handle(Inbound(1, Get(worker=1)))
    (first,) = replies_to(driver, 0)
    assert isinstance(first, Assignment)
    assert (first.rank, first.world_size, first.master_addr) == (0, 2, None)
    assert replies_to(driver, 1) == []  # rank 1 hears once rank 0's store is open
    assert driver.registry.runs[first.trial_id].conns == (0, 1)
    driver.handle(Inbound(0, Rendezvous(0, first.trial_id, first.attempt, "10.0.0.7", 4711)))
    (second,) = replies_to(driver, 1)
    assert (second.trial_id, second.rank, second.world_size, second.attempt) == (first.trial_id, 1, 2, first.attempt)
    assert (second.master_addr, second.master_port) == ("10.0.0.7", 4711)
    assert second.local_rank == 1 and second.local_world_size == 2  # both on host h


def test_a_leftover_worker_hears_wait_after_the_gang_wait_and_done_when_no_trial_can_come(tmp_path, monkeypatch):
    monkeypatch.setattr(supervisor_module, "GANG_WAIT", 0.0)
    driver = gang_driver(tmp_path, num_trials=2)
    for conn in (0, 1, 2):
        driver.handle(Inbound(conn, Get(worker=conn)))
    assert replies_to(driver, 2) == []  # the second trial is ready, but no second worker for it
    driver.check_workers(time.monotonic() + 0.01)
    assert replies_to(driver, 2) == [Wait(retry_after=0.0)] and 2 not in driver.registry.pool
    (tmp_path / "one").mkdir()
    one = gang_driver(tmp_path / "one", num_trials=1)
    for conn in (0, 1, 2):
        one.handle(Inbound(conn, Get(worker=conn)))
    assert replies_to(one, 2) == [Done()]  # the only trial runs: nothing more can come


def test_ranks_are_packed_on_one_host_where_the_workers_allow():
    pool = IdlePool()
    for conn, host in enumerate(["a", "b", "a", "b", "b"]):
        pool.park(conn, host, now=0.0)
    gang = pool.take(2)
    assert [(m.conn, m.host, m.rank, m.local_rank, m.local_world_size) for m in gang] == \
        [(0, "a", 0, 0, 2), (2, "a", 1, 1, 2)]  # host a holds a whole gang and wastes least
    gang = pool.take(3)
    assert [(m.host, m.local_rank) for m in gang] == [("b", 0), ("b", 1), ("b", 2)]
    pool.park(7, "c", now=0.0)
    pool.park(8, "d", now=0.0)
    pool.park(9, "d", now=0.0)
    assert [(m.host, m.rank, m.local_rank, m.local_world_size) for m in pool.take(3)] == \
        [("d", 0, 0, 2), ("d", 1, 1, 2), ("c", 2, 0, 1)]  # across hosts: rank 0 where most of it is


def test_a_stale_attempts_rendezvous_is_refused(tmp_path):
    driver = gang_driver(tmp_path)
    driver.handle(Inbound(0, Get(worker=0)))
    driver.handle(Inbound(1, Get(worker=1)))
    (first,) = replies_to(driver, 0)
    driver.handle(Inbound(0, Rendezvous(0, first.trial_id, first.attempt + 1, "h", 1)))
    assert driver.server.last(0) == Stop()
    driver.handle(Inbound(1, Rendezvous(1, first.trial_id, first.attempt, "h", 1)))  # not rank 0
    assert driver.server.last(1) == Stop()
    assert replies_to(driver, 1) == [Stop()]  # and rank 1 got no assignment from either


def test_a_rank_lost_before_the_rendezvous_frees_the_others_and_requeues_the_trial(tmp_path):
    driver = gang_driver(tmp_path)
    driver.handle(Inbound(0, Get(worker=0)))
    driver.handle(Inbound(1, Get(worker=1)))
    (first,) = replies_to(driver, 0)
    driver.handle(Inbound(0, None))  # rank 0's worker dropped
    trial = driver.sched.trials[first.trial_id]
    assert trial.state is TrialState.PENDING and trial.attempts == 1
    assert 1 in driver.registry.pool and replies_to(driver, 1) == []
    driver.handle(Inbound(2, Get(worker=2)))  # a new gang forms from the freed worker and another
    again = [m for m in replies_to(driver, 1) + replies_to(driver, 2) if isinstance(m, Assignment)]
    assert [(a.trial_id, a.rank) for a in again] == [(first.trial_id, 0)]
    assert again[0].attempt > first.attempt
    driver.handle(Inbound(0, Rendezvous(0, first.trial_id, first.attempt, "h", 1)))  # the old attempt's
    assert driver.server.last(0) == Stop()


def start_gang(driver):
    driver.handle(Inbound(0, Get(worker=0)))
    driver.handle(Inbound(1, Get(worker=1)))
    (first,) = replies_to(driver, 0)
    driver.handle(Inbound(0, Rendezvous(0, first.trial_id, first.attempt, "h", 1)))
    return first.trial_id


def test_only_rank_zero_speaks_and_the_trial_ends_when_every_rank_has(tmp_path):
    driver = gang_driver(tmp_path, workers=2)
    trial_id = start_gang(driver)
    driver.handle(Inbound(1, Metric(1, trial_id, points=((0, 9.0),))))  # rank 1's points do not count
    driver.handle(Inbound(0, Metric(0, trial_id, points=((0, 0.1),))))
    assert driver.sched.trials[trial_id].history == ((0, 0.1),)
    driver.handle(Inbound(0, final(trial_id, 0, metric=0.7, points=((1, 0.7),))))
    trial = driver.sched.trials[trial_id]
    assert trial.state is TrialState.RUNNING  # rank 1 still runs
    assert 0 in driver.registry.pool  # rank 0's worker is free: it waits for the next gang
    driver.handle(Inbound(1, final(trial_id, 1, metric=None)))
    assert trial.state is TrialState.FINALIZED and trial.metric == 0.7
    assert trial.history == ((0, 0.1), (1, 0.7))


def test_an_error_of_train_fn_on_any_rank_fails_the_trial_and_stops_the_others(tmp_path):
    driver = gang_driver(tmp_path, workers=2)
    trial_id = start_gang(driver)
    bug = dataclasses.replace(final(trial_id, 1, state=TrialState.ERROR, metric=None),
                              error=error_record("ValueError", "bad shard"))
    driver.handle(Inbound(1, bug))
    driver.handle(Inbound(0, Metric(0, trial_id)))
    assert driver.server.last(0) == Stop()  # rank 0 is told to stop
    reset = dataclasses.replace(bug, worker=0, peer_failure=True,
                                error=error_record("RuntimeError", "gloo: Connection closed by peer"))
    driver.handle(Inbound(0, reset))
    trial = driver.sched.trials[trial_id]
    assert trial.state is TrialState.ERROR and trial.error["type"] == "ValueError"


def test_a_rank_that_goes_silent_loses_the_run_and_the_survivor_hears_stop(tmp_path):
    driver = gang_driver(tmp_path, workers=2, hb_timeout=5.0, hb_interval=0.5)
    trial_id = start_gang(driver)
    now = time.monotonic()
    driver.registry.touch(0, now + 6)  # rank 0 speaks, rank 1 does not
    driver.check_workers(now + 6)
    trial = driver.sched.trials[trial_id]
    assert trial.state is TrialState.PENDING and trial.attempts == 1
    driver.handle(Inbound(0, Metric(0, trial_id)))
    assert driver.server.last(0) == Stop()


def test_fewer_workers_than_a_gang_no_torch_and_leftover_workers_are_told_before_anything_starts(tmp_path,
                                                                                                 monkeypatch):
    with pytest.raises(InvalidParameterError, match=r"workers_per_trial=2 needs at least 2 workers, but there are "
                                                    r"only 1 \(the threads backend's task slots\)"):
        experiment.lagom(lambda x: x, SP, workers_per_trial=2, backend=ThreadBackend(slots=1),
                         experiment_dir=str(tmp_path / "exp"), verbose=False)
    with pytest.raises(InvalidParameterError, match=r"workers_per_trial=3 needs at least 3 workers, but there are "
                                                    r"only 2 \(num_workers=2\)"):
        experiment.lagom(lambda x: x, SP, workers_per_trial=3, num_workers=2, backend=ThreadBackend(),
                         experiment_dir=str(tmp_path / "exp"), verbose=False)
    with pytest.warns(MaggyWarning, match=r"3 workers \(num_workers=3\) run 1 gangs of workers_per_trial=2; 1 of them "
                                          r"can only stand in for a lost rank"):
        build_driver(lambda x: x, SP, workers_per_trial=2, num_workers=3, backend=ThreadBackend(slots=3),
                     experiment_dir=str(tmp_path / "warned"), verbose=False)
    monkeypatch.setitem(sys.modules, "torch", None)  # as Python marks a module that cannot be imported
    with pytest.raises(InvalidParameterError, match="workers_per_trial=2 trains each trial as a torch.distributed "
                                                    "process group, which needs PyTorch"):
        experiment.lagom(lambda x: x, SP, workers_per_trial=2, backend=ThreadBackend(),
                         experiment_dir=str(tmp_path / "exp"), verbose=False)
    assert not (tmp_path / "exp").exists()
