"""The RPC server with a real client over loopback."""

from __future__ import annotations

import queue
import socket
import threading

import pytest

from maggy.rpc import MsgType, RpcClient, RpcServer
from maggy.rpc.messages import Get, Log, Metric, Ok, Wait
from maggy.rpc.protocol import SEQ, SESSION, Codec

from tests.conftest import wait_for

SECRET = b"s" * 32


@pytest.fixture
def server():
    inbox = queue.Queue()
    srv = RpcServer(SECRET, inbox, frame_timeout=0.5).start()
    stop = threading.Event()

    def answer():  # a stand-in driver: WAIT carrying a GET's worker number, OK to the rest
        while not stop.is_set():
            try:
                msg = inbox.get(timeout=0.05)
            except queue.Empty:
                continue
            if msg.message is not None:
                srv.received.append(msg.message)
                srv.reply(msg.conn, Wait(retry_after=msg.message.worker) if isinstance(msg.message, Get) else Ok())

    srv.received = []
    t = threading.Thread(target=answer, daemon=True)
    t.start()
    yield srv
    stop.set()
    srv.stop()


def test_binds_loopback_and_answers_many_clients(server):
    assert server.address[0] == "127.0.0.1"
    clients = [RpcClient(*server.address, SECRET) for _ in range(8)]
    for i, c in enumerate(clients):
        assert c.request(Get(worker=i)) == Wait(retry_after=i)
    big = Log(worker=0, trial_id="t", lines=("y" * 1000,) * 2000)  # ~2 MB, several socket writes
    assert clients[0].request(big) == Ok()
    assert server.received[-1] == big
    for c in clients:
        c.close()


def test_a_body_that_does_not_fit_its_message_is_a_bad_frame(server):
    codec = Codec(SECRET)
    for i, body in enumerate([{"worker": 0, "trial_id": 7, "points": []},  # wrong type
                              {"worker": 0, "trial_id": "t", "points": [[0, "x"]]},  # wrong item type
                              {"worker": -1},  # out of range
                              {"worker": 0, "trial_id": "t", "typo": 1}]):  # unknown field
        mtype = MsgType.GET if "trial_id" not in body else MsgType.METRIC
        frame = codec.encode(mtype, {**body, SESSION: f"{i:032d}", SEQ: 0})
        assert _exchange(server.address, frame) == b""
    wait_for(lambda: server.bad_frames["bad_body"] == 4, timeout=5)
    assert server.received == []  # none reached the driver
    assert RpcClient(*server.address, SECRET).request(Metric(worker=0, trial_id="t", points=((0, 1.5),))) == Ok()


def test_slow_partial_frame_is_dropped_after_timeout(server):
    frame = Codec(SECRET).encode(MsgType.GET, {"worker": 0})
    with socket.create_connection(server.address) as s:
        s.sendall(frame[:10])  # and then nothing
        s.settimeout(10)
        assert s.recv(10) == b""  # closed by the server
    assert server.bad_frames["truncated"] == 1
    ok = RpcClient(*server.address, SECRET)
    assert isinstance(ok.request(Get(worker=0)), Wait)


def test_wrong_secret_gets_no_reply(server):
    impostor = RpcClient(*server.address, b"t" * 32)
    with pytest.raises(ConnectionError):
        impostor.request(Get(worker=0))
    wait_for(lambda: server.bad_frames["bad_mac"] == 1, timeout=5)


def test_fuzzed_streams_never_stop_the_server(server):
    import random
    rng = random.Random(1)
    good = Codec(SECRET).encode(MsgType.GET, {"worker": 1})
    for _ in range(200):
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if data == good:
            continue
        with socket.create_connection(server.address, timeout=5) as s:
            s.sendall(bytes(data))
            s.shutdown(socket.SHUT_WR)
            reply = s.recv(65536)
        assert reply == b""
    assert server.bad_frame_count >= 150
    assert isinstance(RpcClient(*server.address, SECRET).request(Get(worker=0)), Wait)


def _frame(session, seq):
    return Codec(SECRET).encode(MsgType.GET, {"worker": 0, SESSION: session, SEQ: seq})


def _exchange(address, data):
    with socket.create_connection(address, timeout=5) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := s.recv(65536):
            got += chunk
        return got


def test_recorded_frames_cannot_be_replayed(server):
    first = _frame("a" * 32, 0)
    with socket.create_connection(server.address, timeout=5) as s:  # the genuine exchange
        s.sendall(first)
        assert s.recv(65536)  # answered
    assert _exchange(server.address, first) == b""  # the same bytes on a new connection
    assert _exchange(server.address, _frame("b" * 32, 1)) == b""  # a session must start at 0
    _exchange(server.address, _frame("c" * 32, 0) + _frame("c" * 32, 0))  # no repeats (the first may be answered)
    _exchange(server.address, _frame("d" * 32, 0) + _frame("e" * 32, 1))  # one session per connection
    assert _exchange(server.address, Codec(SECRET).encode(MsgType.GET, {"worker": 0})) == b""  # none at all
    assert server.bad_frames["replay"] == 5
    assert isinstance(RpcClient(*server.address, SECRET).request(Get(worker=0)), Wait)
