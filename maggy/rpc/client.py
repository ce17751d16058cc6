"""The worker's end of the RPC channel: one connection, request/reply under a lock."""

from __future__ import annotations

import socket
import threading
from maggy.rpc.messages import Message, decode
from maggy.rpc.protocol import HEADER, MAC_SIZE, SEQ, SESSION, Codec, new_session


class RpcClient:
    """Sends a request and waits for its reply; safe to share between the worker's threads."""

    def __init__(self, host: str, port: int, secret: bytes, *, timeout: float = 120.0) -> None:
        self._codec = Codec(secret)
        self._lock = threading.Lock()
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._session = new_session()
        self._seq = 0

    def request(self, message: Message) -> Message:
        """Send ``message`` and return the driver's typed reply (BodyError if it does not fit)."""
        with self._lock:
            body = {**message.to_body(), SESSION: self._session, SEQ: self._seq}
            self._sock.sendall(self._codec.encode(message.TYPE, body))
            self._seq += 1
            header = self._recv(HEADER.size)
            length = self._codec.body_length(header)
            rest = self._recv(MAC_SIZE + length)
        return decode(*self._codec.decode(header, rest[:MAC_SIZE], rest[MAC_SIZE:]), replies=True)

    def _recv(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self._sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("the maggy driver closed the connection")
            buf += chunk
        return bytes(buf)

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass
