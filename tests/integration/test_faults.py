"""Faults against a running experiment: forged or broken frames, and Ctrl-C in the driver."""

from __future__ import annotations

import _thread
import collections
import glob
import json
import os
import threading
import time

import pytest

from maggy import HyperparameterOptConfig, Searchspace, experiment
from maggy.backends import LocalBackend, SparkBackend
from maggy.rpc.protocol import MsgType
from tests.conftest import wait_for
from tests.helpers import journal_records
from tests.unit.rpc.peers import BAD_STREAMS, connect_for_replies, read_reply, send_and_expect_close


def test_bad_frames_are_dropped_and_workers_carry_on(backend, tmp_path):
    gate = tmp_path / "release"
    sp = Searchspace(x=("DOUBLE", [0.0, 1.0]))

    def train(x):
        import os
        import time
        deadline = time.monotonic() + 120
        while not os.path.exists(str(gate)) and time.monotonic() < deadline:
            time.sleep(0.01)
        return x

    cfg = HyperparameterOptConfig(searchspace=sp, num_trials=6, num_workers=2, es_policy="none",
                                  experiment_dir=str(tmp_path))
    driver = experiment.build_driver(train, cfg, backend=backend, verbose=False)
    out = {}
    runner = threading.Thread(target=lambda: out.setdefault("result", driver.run()))
    runner.start()
    try:
        wait_for(lambda: driver.server is not None and len(driver.sched.running) == 2, what="two running trials")
        sock, answer, send, replies = connect_for_replies(driver.server.address, driver.secret)
        with sock:  # a genuine peer is answered once (it never registered: DONE)
            sock.sendall(answer + send.encode(MsgType.GET, 0, {"worker": 9}))
            assert read_reply(sock, replies) == (MsgType.DONE, 0, {})
        for reason, stream in BAD_STREAMS.items():
            before = driver.server.bad_frames[reason]
            assert send_and_expect_close(driver.server.address, driver.secret, stream) == b"", reason
            wait_for(lambda r=reason, b=before: driver.server.bad_frames[r] == b + 1, what=f"{reason} counted")
    finally:
        gate.touch()
        runner.join(120)
    result = out["result"]
    assert result.stats["bad_frames"] == {r: 1 for r in BAD_STREAMS}
    assert len(result.trials) == 6 and set(result.trials["state"]) == {"FINALIZED"}


def test_ctrl_c_cancels_workers_and_keeps_finished_trials(backend, tmp_path):
    sp = Searchspace(k=("DISCRETE", list(range(8))))

    def train(k, reporter):
        import time
        if k < 2:
            return k
        for step in range(600):  # ten minutes unless cancelled
            time.sleep(1)
            reporter.broadcast(k, step)
        return k

    cfg = HyperparameterOptConfig(searchspace=sp, optimizer="gridsearch", num_workers=2,
                                  es_policy="none", experiment_dir=str(tmp_path), hb_interval=0.1)

    def interrupt_after_two_finished():
        def counts():
            return collections.Counter(e["state"] for e in journal_records(tmp_path))
        wait_for(lambda: counts()["FINALIZED"] >= 2 and counts()["RUNNING"] >= 4, what="two finished, two long running")
        _thread.interrupt_main()

    watcher = threading.Thread(target=interrupt_after_two_finished, daemon=True)
    watcher.start()
    with pytest.raises(KeyboardInterrupt):
        experiment.lagom(train, cfg, backend=backend, verbose=False)
    interrupted = time.monotonic()
    if isinstance(backend, SparkBackend):
        tracker = backend.spark.sparkContext.statusTracker()
        wait_for(lambda: not tracker.getActiveJobsIds(), timeout=10, what="no active Spark job")
    else:
        assert isinstance(backend, LocalBackend)
        wait_for(lambda: not backend.running(), timeout=10, what="worker processes ended")
    assert time.monotonic() - interrupted < 10
    assert sum(e["state"] == "FINALIZED" for e in journal_records(tmp_path)) == 2
    (result_json,) = glob.glob(os.path.join(str(tmp_path), "*", "*", "result.json"))
    saved = json.load(open(result_json))
    assert saved["outcome"] == "interrupted"
    assert sorted(t["params"]["k"] for t in saved["trials"] if t["state"] == "FINALIZED") == [0, 1]


def test_trial_of_a_dead_worker_is_requeued(tmp_path):
    marker = tmp_path / "died-once"
    sp = Searchspace(k=("DISCRETE", [0, 1, 2, 3, 4, 5]))

    def train(k):
        import os
        if k == 3 and not os.path.exists(str(marker)):
            open(str(marker), "w").close()
            os._exit(3)  # the worker process dies in the middle of the trial
        return k

    cfg = HyperparameterOptConfig(searchspace=sp, optimizer="gridsearch", num_workers=2,
                                  es_policy="none", experiment_dir=str(tmp_path / "exp"))
    result = experiment.lagom(train, cfg, backend=LocalBackend(), verbose=False)
    assert marker.exists()
    assert len(result.trials) == 6 and set(result.trials["state"]) == {"FINALIZED"}
    saved = json.load(open(os.path.join(result.experiment_dir, "result.json")))
    attempts = {t["params"]["k"]: t["attempts"] for t in saved["trials"]}
    assert attempts == {0: 0, 1: 0, 2: 0, 3: 1, 4: 0, 5: 0}
    assert any(e["state"] == "LOST" for e in journal_records(tmp_path / "exp"))


def test_a_dead_local_worker_is_relaunched(tmp_path):
    marker = tmp_path / "died-once"
    sp = Searchspace(k=("DISCRETE", [0, 1, 2, 3]))

    def train(k):
        import os
        if k == 1 and not os.path.exists(str(marker)):
            open(str(marker), "w").close()
            os._exit(3)
        return {"metric": k, "pid": os.getpid()}

    cfg = HyperparameterOptConfig(searchspace=sp, optimizer="gridsearch", num_workers=1,  # no other worker
                                  es_policy="none", experiment_dir=str(tmp_path / "exp"))
    result = experiment.lagom(train, cfg, backend=LocalBackend(), verbose=False)
    assert len(result.trials) == 4 and set(result.trials["state"]) == {"FINALIZED"}
    assert result.trials["pid"].nunique() == 2  # the relaunched process served the rest
    assert [w["partition"] for w in result.stats["workers"]] == [0, 0]
