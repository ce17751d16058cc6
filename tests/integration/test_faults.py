"""Faults against a running experiment: forged or broken frames, and Ctrl-C in the driver."""

from __future__ import annotations

import _thread
import glob
import hashlib
import hmac
import json
import os
import socket
import threading
import time

import pytest

from maggy import HyperparameterOptConfig, Searchspace, experiment
from maggy.backends import LocalBackend, SparkBackend
from maggy.rpc.protocol import HEADER, MAGIC, MAX_BODY, SEQ, SESSION, VERSION, Codec, MsgType

from tests.conftest import wait_for


def _signed(secret: bytes, version: int, code: int, body: bytes) -> bytes:
    header = HEADER.pack(MAGIC, version, code, len(body))
    return header + hmac.new(secret, header + body, hashlib.sha256).digest() + body


def _bad_frames(secret: bytes) -> dict[str, bytes]:
    """One frame per kind of fault, keyed by the reason the server should count."""
    good = Codec(secret).encode(MsgType.GET, {"worker": 0})
    forged = Codec(b"x" * 32).encode(MsgType.GET, {"worker": 0})
    return {
        "garbage": b"GET / HTTP/1.1\r\nHost: maggy\r\n\r\n",
        "bad_mac": forged,
        "oversized": HEADER.pack(MAGIC, VERSION, int(MsgType.GET), MAX_BODY + 1) + b"\0" * 64,
        "truncated": good[:-3],
        "unknown_type": _signed(secret, VERSION, 99, b"{}"),
        "bad_version": _signed(secret, VERSION + 1, int(MsgType.GET), b"{}"),
        "bad_body": _signed(secret, VERSION, int(MsgType.GET), b"\xff not json"),
    }


def _send_and_expect_close(address, frame: bytes) -> bytes:
    with socket.create_connection(address, timeout=15) as sock:
        sock.sendall(frame)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return received
            received += chunk


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
        genuine = Codec(driver.secret).encode(MsgType.GET, {"worker": 9, SESSION: "f" * 32, SEQ: 0})
        with socket.create_connection(driver.server.address, timeout=15) as sock:
            sock.sendall(genuine)
            assert sock.recv(4096)  # answered once
        for reason, frame in {**_bad_frames(driver.secret), "replay": genuine}.items():
            before = driver.server.bad_frames[reason]
            assert _send_and_expect_close(driver.server.address, frame) == b"", reason
            wait_for(lambda: driver.server.bad_frames[reason] == before + 1, what=f"{reason} counted")
    finally:
        gate.touch()
        runner.join(120)
    result = out["result"]
    assert result.stats["bad_frames"] == {r: 1 for r in [*_bad_frames(b"s" * 32), "replay"]}
    assert len(result.trials) == 6 and set(result.trials["state"]) == {"FINALIZED"}


def _journal_states(root) -> list[str]:
    states = []
    for path in glob.glob(os.path.join(str(root), "*", "*", "journal.jsonl")):
        with open(path) as f:
            complete = [line for line in f if line.endswith("\n")]  # the driver may be mid-append
            states += [e["state"] for e in map(json.loads, complete) if e["event"] == "trial"]
    return states


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
        wait_for(lambda: _journal_states(tmp_path).count("FINALIZED") >= 2 and
                 _journal_states(tmp_path).count("RUNNING") >= 4, what="two finished, two long running")
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
    assert _journal_states(tmp_path).count("FINALIZED") == 2
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
    assert "LOST" in _journal_states(tmp_path / "exp")


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
