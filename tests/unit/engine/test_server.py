"""The RPC server with real clients and raw peers over loopback, in clear and over TLS: each test
of a ``server`` runs against both (a TLS server's ``fingerprint`` is what its peers pin)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading

import pytest

from maggy.rpc import MsgType, RpcClient
from maggy.rpc.messages import Get, Log, Metric, Ok, Wait
from maggy.rpc.protocol import CHALLENGE, HEADER, MAGIC, RESPONSE, VERSION, accept, challenge
from maggy.rpc.tls import server_identity
from tests.conftest import wait_for
from tests.unit.rpc.peers import (
    BAD_STREAMS,
    StandInServers,
    connect,
    connect_for_replies,
    open_socket,
    read_reply,
    recv_exact,
    send_and_expect_close,
    signed,
)

SECRET = b"s" * 32


@pytest.fixture(scope="module")
def identity():
    return server_identity()


@pytest.fixture(params=["plain", "tls"])
def make_server(request, identity):
    """Servers with a stand-in driver: WAIT carrying a GET's worker number, OK to the rest."""
    tls = request.param == "tls"
    servers = StandInServers(SECRET, lambda m: Wait(retry_after=m.worker) if isinstance(m, Get) else Ok())

    def make(**options):
        srv = servers.start(**{"frame_timeout": 0.5, "auth_timeout": 0.5, **options},
                            tls=identity.context if tls else None)
        srv.fingerprint = identity.fingerprint if tls else None
        return srv

    yield make
    servers.close()


@pytest.fixture
def server(make_server):
    return make_server()


def client(server, secret=SECRET, **options) -> RpcClient:
    """A worker's client of ``server``, pinning its certificate where it speaks TLS."""
    return RpcClient(*server.address, secret, tls_fingerprint=server.fingerprint, **options)


def _served(server, worker=0) -> bool:
    worker_client = client(server)
    try:
        return worker_client.request(Get(worker=worker)) == Wait(retry_after=worker)
    finally:
        worker_client.close()


def test_binds_loopback_and_answers_many_clients(server):
    assert server.address[0] == "127.0.0.1"
    clients = [client(server) for _ in range(8)]
    for i, c in enumerate(clients):
        assert c.request(Get(worker=i)) == Wait(retry_after=i)
    big = Log(worker=0, trial_id="t", lines=("y" * 16_000,) * 20)  # 320 kB, several socket writes
    assert clients[0].request(big) == Ok()
    assert server.received[-1] == big
    for c in clients:
        c.close()


@pytest.mark.parametrize("reason", sorted(BAD_STREAMS))
def test_each_bad_stream_is_dropped_and_counted_by_its_reason(server, reason):
    assert send_and_expect_close(server.address, SECRET, BAD_STREAMS[reason], server.fingerprint) == b""
    wait_for(lambda: server.bad_frames[reason] == 1, timeout=5, what=f"{reason} counted")
    assert sum(server.bad_frames.values()) == 1 and server.received == []
    assert _served(server)


def test_a_body_that_does_not_fit_its_message_is_a_bad_frame(server):
    for body, mtype in [(b'{"worker":0,"trial_id":7,"points":[]}', MsgType.METRIC),  # wrong type
                        (b'{"worker":0,"trial_id":"t","points":[[0,"x"]]}', MsgType.METRIC),  # wrong item type
                        (b'{"worker":-1}', MsgType.GET),  # out of range
                        (b'{"worker":0,"trial_id":"t","typo":1}', MsgType.METRIC),  # unknown field
                        (b'{"worker":0,"trial_id":"' + b"t" * 100 + b'"}', MsgType.METRIC),  # too long
                        (b'{"worker":0,"trial_id":"t","points":[[0,1e400]]}', MsgType.METRIC),  # overflow
                        (b'{"worker":' + b"[" * 50_000 + b"]" * 50_000 + b"}", MsgType.GET)]:  # deep
        sent = send_and_expect_close(server.address, SECRET,
                                     lambda a, s, m=mtype, b=body: a + signed(s, VERSION, int(m), b), server.fingerprint)
        assert sent == b""
    wait_for(lambda: server.bad_frames["bad_body"] == 7, timeout=5)
    assert server.received == []  # none reached the driver
    assert client(server).request(Metric(worker=0, trial_id="t", points=((0, 1.5),))) == Ok()


def test_slow_partial_frame_is_dropped_after_timeout(server):
    sock, answer, send = connect(server.address, SECRET, fingerprint=server.fingerprint)
    with sock:
        sock.sendall(answer + send.encode(MsgType.GET, 0, {"worker": 0})[:10])  # and then nothing
        assert sock.recv(10) == b""  # closed by the server
    assert server.bad_frames["truncated"] == 1
    assert _served(server)


def test_a_silent_peer_is_closed_within_the_auth_timeout(server):
    with open_socket(server.address, server.fingerprint, timeout=10) as s:
        assert len(recv_exact(s, CHALLENGE.size)) == CHALLENGE.size
        assert s.recv(10) == b""
    assert server.bad_frames == {"auth_timeout": 1} and server.connections == 0


def test_wrong_secret_gets_no_reply(server):
    impostor = client(server, b"t" * 32)
    with pytest.raises(ConnectionError):
        impostor.request(Get(worker=0))
    wait_for(lambda: server.bad_frames["bad_auth"] == 1, timeout=5)


def test_fuzzed_streams_never_stop_the_server(server):
    import random
    rng = random.Random(1)
    for _ in range(200):
        def mutated(answer, send):
            data = bytearray(answer + send.encode(MsgType.GET, 0, {"worker": 1}))
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
            return bytes(data)
        assert send_and_expect_close(server.address, SECRET, mutated, server.fingerprint) == b""
    assert server.bad_frame_count == 200 and server.received == []
    assert _served(server)


def test_recorded_frames_cannot_be_replayed(server):
    sock, answer, send, replies = connect_for_replies(server.address, SECRET, fingerprint=server.fingerprint)
    first = send.encode(MsgType.GET, 0, {"worker": 0})
    with sock:  # the genuine exchange
        sock.sendall(answer + first)
        assert read_reply(sock, replies) == (MsgType.WAIT, 0, {"retry_after": 0.0})
        sock.sendall(first)  # the same request again on its own connection
        wait_for(lambda: server.bad_frames["replay"] == 1, timeout=5)
    assert send_and_expect_close(server.address, SECRET, lambda a, s: answer + first, server.fingerprint) == b""  # elsewhere
    assert send_and_expect_close(server.address, SECRET, lambda a, s: a + first, server.fingerprint) == b""
    assert server.bad_frames == {"replay": 1, "bad_auth": 1, "bad_mac": 1}
    assert len(server.received) == 1


def test_client_takes_only_the_reply_to_its_own_request():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        def fake_driver():  # answers the first request, then replays that reply for the second
            conn, _ = listener.accept()
            with conn:
                nonce, hello = challenge()
                conn.sendall(hello)
                reply_codec, _ = accept(SECRET, nonce, recv_exact(conn, RESPONSE.size))
                header = recv_exact(conn, HEADER.size)
                recv_exact(conn, 32 + HEADER.unpack(header)[-1])
                reply = reply_codec.encode(MsgType.OK, 0, {})
                conn.sendall(reply)
                header = recv_exact(conn, HEADER.size)
                recv_exact(conn, 32 + HEADER.unpack(header)[-1])
                conn.sendall(reply)
                conn.recv(1)

        threading.Thread(target=fake_driver, daemon=True).start()
        client = RpcClient(*listener.getsockname(), SECRET, timeout=10)
        assert client.request(Get(worker=0)) == Ok()
        with pytest.raises(ConnectionError, match="reply to request 0 arrived for request 1"):
            client.request(Get(worker=0))
        client.close()


def test_client_connects_again_when_no_challenge_comes():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        seen = []

        def fake_driver():  # the first connection is dropped silently, as from a full listen queue
            silent, _ = listener.accept()
            seen.append(silent)
            conn, _ = listener.accept()
            nonce, hello = challenge()
            conn.sendall(hello)
            accept(SECRET, nonce, recv_exact(conn, RESPONSE.size))
            seen.append(conn)

        t = threading.Thread(target=fake_driver, daemon=True)
        t.start()
        RpcClient(*listener.getsockname(), SECRET, handshake_timeout=0.3).close()
        t.join(5)
        assert len(seen) == 2
        with pytest.raises(ConnectionError, match="no challenge in 2 attempts"):
            RpcClient(*listener.getsockname(), SECRET, handshake_timeout=0.1, attempts=2)
        for s in seen:
            s.close()


def test_unauthenticated_peers_cannot_make_the_server_buffer(server):
    """Peers that announce 4 MiB frames without the secret are read no further than the handshake."""
    announce = HEADER.pack(MAGIC, VERSION, int(MsgType.LOG), 0, 4 * 1024 * 1024)
    socks = [open_socket(server.address, server.fingerprint, timeout=10) for _ in range(40)]
    try:
        for s in socks:
            recv_exact(s, CHALLENGE.size)
            try:
                s.sendall(announce * 4 + b"x" * 200_000)
            except OSError:
                pass  # the server closed it already
        wait_for(lambda: server.connections == 0, timeout=10, what="every peer closed")
    finally:
        for s in socks:
            s.close()
    assert server.bad_frames == {"garbage": 40} and server.buffered == 0
    assert _served(server)


def test_frames_in_progress_are_capped_together(make_server):
    server = make_server(max_buffered=5 * 1024 * 1024, frame_timeout=5)
    peers = [connect(server.address, SECRET, fingerprint=server.fingerprint) for _ in range(3)]
    try:
        for sock, answer, send in peers:  # each starts a 2 MiB frame and stalls half-way
            frame = send.encode(MsgType.LOG, 0, {"worker": 0, "trial_id": "t", "lines": ["z" * 1000] * 2000})
            try:
                sock.sendall(answer + frame[:len(frame) // 2])
            except OSError:  # the one that overloads the server may be closed before it sent it all
                pass
        # counted, then closed by the server's thread: wait for both, not for the count alone
        wait_for(lambda: server.bad_frames["overloaded"] == 1 and server.connections == 2, timeout=5,
                 what="the third frame refused and its connection closed")
        assert server.buffered <= 5 * 1024 * 1024 and server.bad_frames["overloaded"] == 1
    finally:
        for sock, _, _ in peers:
            sock.close()
    wait_for(lambda: server.buffered == 0 and server.connections == 0, timeout=5, what="memory given back")


def test_connection_caps(make_server):
    server = make_server(max_connections=6, max_pending=3, pending_grace=0.0, auth_timeout=30)
    idle = [open_socket(server.address, server.fingerprint, timeout=10) for _ in range(5)]
    try:
        for s in idle:
            recv_exact(s, CHALLENGE.size)
        wait_for(lambda: server.bad_frames["evicted"] == 2, timeout=5, what="the oldest waiting peers evicted")
        assert idle[0].recv(1) == b"" and idle[1].recv(1) == b"" and server.connections == 3
    finally:
        for s in idle:
            s.close()
    wait_for(lambda: server.connections == 0, timeout=5, what="idle peers gone")
    clients = [client(server) for _ in range(6)]
    assert all(c.request(Get(worker=0)) == Wait(retry_after=0) for c in clients)
    with pytest.raises(ConnectionError):
        client(server, timeout=5)
    assert server.bad_frames["refused"] == 1
    for c in clients:
        c.close()


def test_a_burst_of_workers_connecting_at_once_is_served_not_evicted(make_server):
    server = make_server(max_pending=4)
    clients = [None] * 40
    threads = [threading.Thread(target=lambda i=i: clients.__setitem__(i, client(server)))
               for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(c.request(Get(worker=1)) == Wait(retry_after=1) for c in clients)
    assert server.bad_frames["evicted"] == 0
    for c in clients:
        c.close()


def test_bad_frames_are_logged_at_a_bounded_rate(server, caplog):
    with caplog.at_level(logging.WARNING, logger="maggy.engine.server"):
        for _ in range(30):
            send_and_expect_close(server.address, SECRET, BAD_STREAMS["garbage"], server.fingerprint)
    wait_for(lambda: server.bad_frames["garbage"] == 30, timeout=5)
    assert len([r for r in caplog.records if "dropped" in r.getMessage()]) == 1


EMFILE_SERVER = """
import os, queue, resource, sys, threading
from maggy.engine.server import RpcServer
from maggy.rpc.messages import Ok
inbox = queue.Queue()
server = RpcServer(b"s" * 32, inbox, auth_timeout=60, max_pending=1000, pending_grace=0).start()
resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 20, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
def answer():
    while True:
        msg = inbox.get()
        if msg.message is not None:
            server.reply(msg.conn, Ok())
threading.Thread(target=answer, daemon=True).start()
print(server.address[1], flush=True)
sys.stdin.readline()
print(dict(server.bad_frames), flush=True)
"""


def test_running_out_of_file_descriptors_is_survived():
    """A driver whose descriptors run out keeps serving: accept errors are counted, the oldest
    unauthenticated peers make room, and workers still connect."""
    proc = subprocess.Popen([sys.executable, "-c", EMFILE_SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    flood = []
    try:
        port = int(proc.stdout.readline())
        for _ in range(60):  # three times what the server's descriptors allow
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            flood.append(s)
        client = RpcClient("127.0.0.1", port, SECRET, timeout=10)
        assert client.request(Get(worker=0)) == Ok()
        client.close()
        proc.stdin.write("\n")
        proc.stdin.flush()
        counts = eval(proc.stdout.readline())  # a dict literal printed by the server
        assert counts["accept_error"] >= 1 and counts["evicted"] >= 1
        assert proc.poll() is None or proc.wait(10) == 0
    finally:
        for s in flood:
            s.close()
        proc.kill()
        proc.wait()
