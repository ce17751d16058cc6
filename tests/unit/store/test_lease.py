"""Who may take over an experiment's lease, and when (the holder is written as another host's)."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from maggy.callbacks import ExperimentInfo
from maggy.store.lease import ExperimentLockedError, Lease
from maggy.store.storage import LocalStorage


def hold(tmp_path, **fields):
    record = {"token": "theirs", "host": "node-a", "pid": 4242, "renewed": time.time(), **fields}
    (tmp_path / "lease.json").write_text(json.dumps(record))
    return record


def mine(tmp_path):
    return json.loads((tmp_path / "lease.json").read_text())


@pytest.fixture
def listening():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield f"127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def refusing():
    """A port bound and not listening: connections to it are refused, and no one else can take it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{s.getsockname()[1]}"


def test_a_holder_elsewhere_whose_rpc_answers_keeps_the_experiment(tmp_path, listening):
    hold(tmp_path, rpc=listening)
    started = time.monotonic()
    with pytest.raises(ExperimentLockedError, match=rf"host node-a, pid 4242, RPC {listening}"):
        Lease(LocalStorage(), str(tmp_path)).acquire()
    assert time.monotonic() - started < 5 and mine(tmp_path)["token"] == "theirs"


def test_a_holder_elsewhere_whose_rpc_refuses_is_gone_and_taken_over_at_once(tmp_path, refusing):
    hold(tmp_path, rpc=refusing)
    lease = Lease(LocalStorage(), str(tmp_path))
    started = time.monotonic()
    lease.acquire()
    assert time.monotonic() - started < 1 and mine(tmp_path)["token"] == lease.token


def test_a_holder_that_does_not_answer_is_waited_for_until_its_lease_is_stale(tmp_path, caplog):
    hold(tmp_path)  # no RPC address yet: it cannot be asked
    lease = Lease(LocalStorage(), str(tmp_path), ttl=1.5)
    started = time.monotonic()
    lease.acquire()
    assert 1.0 < time.monotonic() - started < 5 and mine(tmp_path)["token"] == lease.token
    assert "held by the driver on host node-a, pid 4242, which does not answer; waiting up to 1 s" in caplog.text


def test_a_holder_that_renews_while_we_wait_keeps_it(tmp_path):
    record = hold(tmp_path)

    def renew():
        time.sleep(0.5)
        (tmp_path / "lease.json").write_text(json.dumps({**record, "renewed": time.time()}))
    threading.Thread(target=renew).start()
    with pytest.raises(ExperimentLockedError, match="it renewed its lease while this one waited"):
        Lease(LocalStorage(), str(tmp_path), ttl=3.0).acquire()


def test_a_later_yarn_attempt_takes_over_from_an_earlier_one_at_once(tmp_path, monkeypatch, listening):
    app = {"app": "application_1700000000000_0007", "attempt": 1}
    hold(tmp_path, rpc=listening, yarn=app)  # even one that still seems to answer: YARN ended it
    monkeypatch.setenv("CONTAINER_ID", "container_e02_1700000000000_0007_02_000001")
    lease = Lease(LocalStorage(), str(tmp_path))
    lease.acquire()
    assert mine(tmp_path)["yarn"] == {**app, "attempt": 2}
    other = {"app": "application_1700000000000_0008", "attempt": 1}
    hold(tmp_path, rpc=listening, yarn=other)  # another application's driver: alive, it keeps its lease
    with pytest.raises(ExperimentLockedError, match="application_1700000000000_0008 attempt 1"):
        Lease(LocalStorage(), str(tmp_path)).acquire()


def test_the_lease_says_where_the_driver_listens_once_it_does(tmp_path):
    lease = Lease(LocalStorage(), str(tmp_path))
    lease.acquire()
    assert mine(tmp_path)["rpc"] is None and mine(tmp_path)["host"] == socket.gethostname()
    lease.on_experiment_start(ExperimentInfo("e", str(tmp_path), {}, 1, 1, rpc_address="10.0.0.5:4711"))
    assert mine(tmp_path)["rpc"] == "10.0.0.5:4711"


def test_a_lease_not_renewed_for_its_ttl_is_stale_wherever_its_holder(tmp_path, listening):
    hold(tmp_path, rpc=listening, renewed=time.time() - 3600)
    lease = Lease(LocalStorage(), str(tmp_path))
    lease.acquire()
    assert mine(tmp_path)["token"] == lease.token
    lease.on_experiment_end(None, "finished")
    assert not (tmp_path / "lease.json").exists()


class FlakyStorage(LocalStorage):
    """A local directory whose writes fail while ``away`` (a NameNode failover, say)."""

    away = False

    def write_bytes(self, path, data):
        if self.away:
            raise OSError("no NameNode active")
        super().write_bytes(path, data)


def test_a_renewal_the_storage_refuses_is_tried_again_and_only_a_lease_past_its_ttl_stops_the_driver(tmp_path):
    storage = FlakyStorage()
    lease = Lease(storage, str(tmp_path), ttl=60.0)
    lease.acquire()
    storage.away = True
    lease._renewed = time.monotonic() - 20  # due (ttl / 4 passed), well within the ttl
    lease.on_step_end()  # refused: no error, tried again a second later
    assert lease._retry_at > time.monotonic()
    storage.away = False
    lease._retry_at = 0.0
    lease.on_step_end()
    assert time.monotonic() - lease._renewed < 5 and mine(tmp_path)["token"] == lease.token
    storage.away = True
    lease._renewed = time.monotonic() - 61  # past the ttl: another driver may take over now
    with pytest.raises(ExperimentLockedError, match="Could not renew this driver's lease .* for 60 s"):
        lease.on_step_end()
