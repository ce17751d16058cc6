"""TLS on the control channel: the experiment's certificate, the workers' pin, and what a TLS
server does with peers that do not finish (or do not speak) TLS. Everything binds 127.0.0.1."""

from __future__ import annotations

import datetime
import queue
import socket
import ssl
import threading
import time

import pytest

from maggy.engine.server import RpcServer
from maggy.rpc import RpcClient
from maggy.rpc.messages import Get, Ok, Register
from maggy.rpc.protocol import VERSION, MsgType
from maggy.rpc.tls import FINGERPRINT_SIZE, VALIDITY, client_context, fingerprint_of, server_identity
from tests.conftest import wait_for
from tests.unit.rpc.peers import StandInServers, connect

SECRET = b"q" * 32
#: The servers' auth timeout in these tests, and what a closing may take beyond it on a loaded machine.
AUTH_TIMEOUT = 0.5
SLACK = 5.0
#: How the driver's challenge starts, in clear.
HELLO = b"MGC" + bytes([VERSION])


@pytest.fixture(scope="module")
def identity():
    return server_identity()


@pytest.fixture
def make_server():
    """TLS servers whose stand-in driver answers OK and keeps the messages it received."""
    servers = StandInServers(SECRET, lambda m: Ok())
    yield lambda ident, **options: servers.start(
        tls=ident.context, **{"auth_timeout": AUTH_TIMEOUT, "frame_timeout": AUTH_TIMEOUT, **options})
    servers.close()


def _closed_within(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """Everything ``sock`` receives until the peer closes it, and how long that took; fails the
    test if the peer has not closed within ``timeout`` seconds."""
    sock.settimeout(timeout)
    start, got = time.monotonic(), b""
    try:
        while chunk := sock.recv(4096):
            got += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the server did not close the connection within {timeout}s")
    return got, time.monotonic() - start


def test_the_certificate_is_the_experiments_own(identity):
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    other = server_identity()
    assert len(identity.fingerprint) == FINGERPRINT_SIZE and other.fingerprint != identity.fingerprint
    with socket.create_server(("127.0.0.1", 0)) as listener:
        def serve():
            conn, _ = listener.accept()
            with identity.context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)

        threading.Thread(target=serve, daemon=True).start()
        with client_context().wrap_socket(socket.create_connection(listener.getsockname(), timeout=10)) as sock:
            der = sock.getpeercert(binary_form=True)
            assert sock.version() == "TLSv1.3"
    assert fingerprint_of(der) == identity.fingerprint
    cert = x509.load_der_x509_certificate(der)
    assert cert.issuer == cert.subject  # self-signed, no CA
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey) and cert.public_key().curve.name == "secp256r1"
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= VALIDITY + datetime.timedelta(minutes=5)


def test_a_pinned_worker_is_served(make_server, identity):
    server = make_server(identity)
    client = RpcClient(*server.address, SECRET, tls_fingerprint=identity.fingerprint, timeout=10)
    try:
        assert client.request(Get(worker=3)) == Ok()
        assert isinstance(client._sock, ssl.SSLSocket) and client._sock.version() == "TLSv1.3"
    finally:
        client.close()
    assert server.received[0] == Get(worker=3) and server.bad_frame_count == 0


def test_a_worker_refuses_a_driver_with_another_certificate_before_sending_anything(identity):
    """An impostor holding even the experiment's secret (a relay, or another process on the
    driver's port) hears nothing from a worker that pins another certificate: not the proof of
    the secret, so no frame of the worker's reaches it."""
    other = server_identity()
    inbox: queue.Queue = queue.Queue()  # nobody takes from it: what reaches it stays there
    impostor = RpcServer(SECRET, inbox, tls=other.context, auth_timeout=30).start()
    try:
        with pytest.raises(ConnectionError, match="presented a certificate with SHA-256 .* not this experiment's"):
            RpcClient(*impostor.address, SECRET, tls_fingerprint=identity.fingerprint, timeout=10)
        # the worker hung up after the TLS handshake, long before the auth timeout: no handshake
        # answer (which the shared secret would have authenticated), no frame
        wait_for(lambda: impostor.connections == 0, timeout=SLACK, what="the worker's connection closed")
        assert inbox.empty() and impostor.bad_frame_count == 0
        # pinned to the impostor's certificate, the same first request would have reached it
        sock, answer, send = connect(impostor.address, SECRET, fingerprint=other.fingerprint)
        with sock:
            sock.sendall(answer + send.encode(MsgType.REGISTER, 0, Register(worker=0, host="h", pid=1).to_body()))
            assert inbox.get(timeout=SLACK).message == Register(worker=0, host="h", pid=1)
    finally:
        impostor.stop()


def test_a_plain_worker_is_closed_within_the_auth_timeout(make_server, identity):
    """A worker without TLS waits for a challenge that a TLS server never sends in clear."""
    server = make_server(identity)
    with socket.create_connection(server.address, timeout=10) as sock:
        got, took = _closed_within(sock, AUTH_TIMEOUT + SLACK)
    assert got == b"" and took >= AUTH_TIMEOUT * 0.9
    wait_for(lambda: server.bad_frames == {"auth_timeout": 1}, timeout=SLACK, what="auth_timeout counted")
    with pytest.raises(ConnectionError, match="no challenge"):  # RpcClient says so after its attempts
        RpcClient(*server.address, SECRET, handshake_timeout=AUTH_TIMEOUT / 2, attempts=1)


@pytest.mark.parametrize("plain", [b"MGR\x02" + b"\0" * 48, b"GET / HTTP/1.1\r\nHost: maggy\r\n\r\n"],
                         ids=["handshake-answer", "http"])
def test_a_plain_peer_that_talks_is_closed_and_counted_as_bad_tls(make_server, identity, plain):
    server = make_server(identity, auth_timeout=30)
    with socket.create_connection(server.address, timeout=10) as sock:
        sock.sendall(plain)
        got, _ = _closed_within(sock, SLACK)  # at once, not after the (long) auth timeout
    assert HELLO not in got  # no challenge in clear: at most a TLS alert
    wait_for(lambda: server.bad_frames["bad_tls"] == 1, timeout=SLACK, what="bad_tls counted")
    assert server.bad_frame_count == 1 and server.received == []


def _client_hello() -> bytes:
    """The first flight of a TLS 1.3 client, made without a network."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_context().wrap_bio(incoming, outgoing)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


@pytest.mark.parametrize("part", ["half a ClientHello", "a ClientHello"])
def test_a_tls_peer_that_never_finishes_its_handshake_is_closed_within_the_auth_timeout(make_server, identity, part):
    server = make_server(identity)
    hello = _client_hello()
    with socket.create_connection(server.address, timeout=10) as sock:
        sock.sendall(hello[:len(hello) // 2] if part.startswith("half") else hello)
        got, took = _closed_within(sock, AUTH_TIMEOUT + SLACK)
    assert took >= AUTH_TIMEOUT * 0.5 and HELLO not in got  # a ServerHello at most
    wait_for(lambda: server.bad_frames == {"auth_timeout": 1}, timeout=SLACK, what="auth_timeout counted")
    assert server.connections == 0


def test_stalled_tls_handshakes_take_handshake_slots(make_server, identity):
    server = make_server(identity, max_pending=2, pending_grace=0.0, auth_timeout=30)
    hello = _client_hello()
    stalled = [socket.create_connection(server.address, timeout=10) for _ in range(3)]
    try:
        for sock in stalled:
            sock.sendall(hello)
        wait_for(lambda: server.bad_frames["evicted"] == 1, timeout=SLACK, what="the oldest stalled peer evicted")
        _closed_within(stalled[0], SLACK)
        assert server.connections == 2
    finally:
        for sock in stalled:
            sock.close()


def test_frames_that_share_a_tls_record_are_all_read(make_server, identity):
    """Bytes TLS decrypted beyond what one read takes are read without waiting for the socket."""
    server = make_server(identity, frame_timeout=30)
    sock, answer, send = connect(server.address, SECRET, fingerprint=identity.fingerprint)
    with sock:
        frames = b"".join(send.encode(MsgType.GET, i, {"worker": i}) for i in range(3))
        sock.sendall(answer + frames)  # one write: one TLS record
        wait_for(lambda: len(server.received) == 3, timeout=SLACK, what="the three requests")
    assert server.received == [Get(worker=0), Get(worker=1), Get(worker=2)] and server.bad_frame_count == 0

