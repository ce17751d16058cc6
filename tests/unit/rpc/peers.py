"""Raw peers of the RPC server for tests: a real handshake, then whatever bytes a test wants.

Each takes ``fingerprint``: the pin of a TLS server (the connection is TLS, as a worker's is), or
None for a plain one.
"""

from __future__ import annotations

import hashlib
import hmac
import queue
import socket
import threading
from typing import Callable

from maggy.engine.server import RpcServer
from maggy.rpc import tls
from maggy.rpc.messages import Message
from maggy.rpc.protocol import CHALLENGE, HEADER, MAC_SIZE, MAGIC, MAX_BODY, VERSION, Codec, MsgType, respond


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def open_socket(address, fingerprint: bytes | None = None, timeout: float = 15) -> socket.socket:
    """A connection to the server, through the TLS handshake when ``fingerprint`` is given."""
    sock = socket.create_connection(address, timeout=timeout)
    return sock if fingerprint is None else tls.connect(sock, fingerprint, "test")


def connect(address, secret: bytes, timeout: float = 15,
            fingerprint: bytes | None = None) -> tuple[socket.socket, bytes, Codec]:
    """An open socket that has read its challenge, the handshake answer to send, and the request codec."""
    sock, answer, send, _ = connect_for_replies(address, secret, timeout, fingerprint)
    return sock, answer, send


def connect_for_replies(address, secret: bytes, timeout: float = 15,
                        fingerprint: bytes | None = None) -> tuple[socket.socket, bytes, Codec, Codec]:
    """:func:`connect`, and the codec that verifies and decodes the server's replies."""
    sock = open_socket(address, fingerprint, timeout)
    answer, send, replies = respond(secret, recv_exact(sock, CHALLENGE.size))
    return sock, answer, send, replies


def read_reply(sock: socket.socket, replies: Codec) -> tuple[MsgType, int, dict]:
    """The next reply on ``sock``, verified and decoded: (type, sequence number, body)."""
    header = recv_exact(sock, HEADER.size)
    mac = recv_exact(sock, MAC_SIZE)
    body = recv_exact(sock, replies.body_length(header))
    return replies.decode(header, mac, body)


def signed(send: Codec, version: int, code: int, body: bytes, seq: int = 0) -> bytes:
    header = HEADER.pack(MAGIC, version, code, seq, len(body))
    return header + hmac.new(send.key, header + body, hashlib.sha256).digest() + body


def _tampered(frame: bytes) -> bytes:
    return frame[:-1] + bytes([frame[-1] ^ 1])


#: One stream per kind of fault, keyed by the reason the server counts; each gets the handshake
#: answer and the request codec of its own connection.
BAD_STREAMS: dict[str, Callable[[bytes, Codec], bytes]] = {
    "garbage": lambda answer, send: b"GET / HTTP/1.1\r\nHost: maggy\r\nAccept: */*\r\n\r\n" + b"x" * 16,
    "bad_auth": lambda answer, send: _tampered(answer),
    "oversized": lambda answer, send: answer + HEADER.pack(MAGIC, VERSION, int(MsgType.GET), 0, MAX_BODY + 1),
    "truncated": lambda answer, send: answer + send.encode(MsgType.GET, 0, {"worker": 0})[:-3],
    "bad_mac": lambda answer, send: answer + _tampered(send.encode(MsgType.GET, 0, {"worker": 0})),
    "unknown_type": lambda answer, send: answer + signed(send, VERSION, 99, b"{}"),
    "bad_version": lambda answer, send: answer + signed(send, VERSION + 1, int(MsgType.GET), b"{}"),
    "bad_body": lambda answer, send: answer + signed(send, VERSION, int(MsgType.GET), b"\xff not json"),
    "replay": lambda answer, send: answer + send.encode(MsgType.GET, 1, {"worker": 0}),
}


def send_and_expect_close(address, secret: bytes, data: Callable[[bytes, Codec], bytes],
                          fingerprint: bytes | None = None) -> bytes:
    """Send ``data(answer, codec)`` on a fresh connection; what came back before the server closed."""
    sock, answer, send = connect(address, secret, fingerprint=fingerprint)
    with sock:
        received = b""
        try:
            sock.sendall(data(answer, send))
            socket.socket.shutdown(sock, socket.SHUT_WR)  # SSLSocket.shutdown would drop its TLS state
            while chunk := sock.recv(65536):
                received += chunk
        except OSError:  # closed before it read all we sent (reset, broken pipe, not connected)
            pass
        return received


class StandInServers:
    """RPC servers, each with a stand-in driver on a thread of its own that keeps the messages the
    server received (``srv.received``) and answers each with ``answer(message)``."""

    def __init__(self, secret: bytes, answer: Callable[[Message], Message]) -> None:
        self.secret, self.answer = secret, answer
        self.made: list[tuple[RpcServer, threading.Event]] = []

    def start(self, **options) -> RpcServer:
        inbox: queue.Queue = queue.Queue()
        srv = RpcServer(self.secret, inbox, **options).start()
        srv.received = []  # type: ignore[attr-defined]
        stop = threading.Event()

        def serve() -> None:
            while not stop.is_set():
                try:
                    msg = inbox.get(timeout=0.05)
                except queue.Empty:
                    continue
                if msg.message is not None:
                    srv.received.append(msg.message)  # type: ignore[attr-defined]
                    srv.reply(msg.conn, self.answer(msg.message))

        threading.Thread(target=serve, daemon=True).start()
        self.made.append((srv, stop))
        return srv

    def close(self) -> None:
        for srv, stop in self.made:
            stop.set()
            srv.stop()
