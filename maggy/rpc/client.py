"""The worker's end of the RPC channel: one connection, request/reply under a lock."""

from __future__ import annotations

import socket
import threading
from typing import Any

from maggy.rpc.protocol import HEADER, MAC_SIZE, SEQ, SESSION, Codec, MsgType, new_session


class RpcClient:
    """Sends a request and waits for its reply; safe to share between the worker's threads."""

    def __init__(self, host: str, port: int, secret: bytes, *, timeout: float = 120.0) -> None:
        self._codec = Codec(secret)
        self._lock = threading.Lock()
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._session = new_session()
        self._seq = 0

    def request(self, mtype: MsgType, body: dict[str, Any]) -> tuple[MsgType, dict[str, Any]]:
        with self._lock:
            self._sock.sendall(self._codec.encode(mtype, {**body, SESSION: self._session, SEQ: self._seq}))
            self._seq += 1
            header = self._recv(HEADER.size)
            length = self._codec.body_length(header)
            rest = self._recv(MAC_SIZE + length)
        return self._codec.decode(header, rest[:MAC_SIZE], rest[MAC_SIZE:])

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
