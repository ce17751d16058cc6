"""The RPC server with a real client over loopback."""

from __future__ import annotations

import queue
import socket
import threading

import pytest

from maggy.rpc import MsgType, RpcClient, RpcServer
from maggy.rpc.protocol import Codec

from tests.conftest import wait_for

SECRET = b"s" * 32


@pytest.fixture
def server():
    inbox = queue.Queue()
    srv = RpcServer(SECRET, inbox, frame_timeout=0.5).start()
    stop = threading.Event()

    def echo():  # a stand-in driver: answers every request with OK carrying the body
        while not stop.is_set():
            try:
                msg = inbox.get(timeout=0.05)
            except queue.Empty:
                continue
            if msg.mtype is not None:
                srv.reply(msg.conn, MsgType.OK, {"echo": msg.body})

    t = threading.Thread(target=echo, daemon=True)
    t.start()
    yield srv
    stop.set()
    srv.stop()


def test_binds_loopback_and_answers_many_clients(server):
    assert server.address[0] == "127.0.0.1"
    clients = [RpcClient(*server.address, SECRET) for _ in range(8)]
    for i, c in enumerate(clients):
        assert c.request(MsgType.GET, {"i": i}) == (MsgType.OK, {"echo": {"i": i}})
    big = {"lines": ["y" * 1000] * 2000}  # ~2 MB, several socket writes each way
    assert clients[0].request(MsgType.LOG, big)[1]["echo"] == big
    for c in clients:
        c.close()


def test_slow_partial_frame_is_dropped_after_timeout(server):
    frame = Codec(SECRET).encode(MsgType.GET, {})
    with socket.create_connection(server.address) as s:
        s.sendall(frame[:10])  # and then nothing
        s.settimeout(10)
        assert s.recv(10) == b""  # closed by the server
    assert server.bad_frames["truncated"] == 1
    ok = RpcClient(*server.address, SECRET)
    assert ok.request(MsgType.GET, {})[0] is MsgType.OK


def test_wrong_secret_gets_no_reply(server):
    impostor = RpcClient(*server.address, b"t" * 32)
    with pytest.raises(ConnectionError):
        impostor.request(MsgType.GET, {})
    wait_for(lambda: server.bad_frames["bad_mac"] == 1, timeout=5)


def test_fuzzed_streams_never_stop_the_server(server):
    import random
    rng = random.Random(1)
    good = Codec(SECRET).encode(MsgType.GET, {"x": 1})
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
    assert RpcClient(*server.address, SECRET).request(MsgType.GET, {})[0] is MsgType.OK


def _frame(session, seq, body=None):
    from maggy.rpc.protocol import SEQ, SESSION
    return Codec(SECRET).encode(MsgType.GET, {**(body or {}), SESSION: session, SEQ: seq})


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
    assert _exchange(server.address, Codec(SECRET).encode(MsgType.GET, {})) == b""  # none at all
    assert server.bad_frames["replay"] == 5
    assert RpcClient(*server.address, SECRET).request(MsgType.GET, {})[0] is MsgType.OK
