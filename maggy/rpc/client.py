"""The worker's end of the RPC channel: one connection, request/reply under a lock."""

from __future__ import annotations

import socket
import threading

from maggy.rpc import tls
from maggy.rpc.messages import Message, decode
from maggy.rpc.protocol import CHALLENGE, HEADER, MAC_SIZE, FrameError, respond


class RpcClient:
    """Answers the driver's challenge, then sends requests and waits for their replies; safe to
    share between the worker's threads. A reply must carry the number of the request it answers
    under this connection's key: anything else raises ConnectionError.

    With ``tls_fingerprint`` (the SHA-256 of the driver's certificate) the connection starts with
    a TLS handshake, and nothing is sent in it unless the driver presented that certificate.
    """

    def __init__(self, host: str, port: int, secret: bytes, *, timeout: float = 120.0,
                 handshake_timeout: float = 10.0, attempts: int = 3, tls_fingerprint: bytes | None = None) -> None:
        self._lock = threading.Lock()
        self._seq = 0
        for _ in range(attempts):
            # a connection the driver's listen queue dropped in a burst never gets its challenge:
            # connect again rather than wait for the request timeout
            self._sock = socket.create_connection((host, port), timeout=timeout)
            try:
                self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._sock.settimeout(handshake_timeout)
                if tls_fingerprint is not None:
                    self._sock = tls.connect(self._sock, tls_fingerprint, f"{host}:{port}")
                answer, self._send, self._receive = respond(secret, self._recv(CHALLENGE.size))
                self._sock.sendall(answer)
                self._sock.settimeout(timeout)
                return
            except TimeoutError:
                self._sock.close()
            except BaseException:
                self._sock.close()
                raise
        raise ConnectionError(f"the maggy driver at {host}:{port} sent no challenge in {attempts} attempts "
                              f"of {handshake_timeout:g}s" + (" (TLS handshake included)" if tls_fingerprint else ""))

    def request(self, message: Message) -> Message:
        """Send ``message`` and return the driver's typed reply (BodyError if it does not fit)."""
        with self._lock:
            seq = self._seq
            self._sock.sendall(self._send.encode(message.TYPE, seq, message.to_body()))
            self._seq += 1
            header = self._recv(HEADER.size)
            rest = self._recv(MAC_SIZE + self._receive.body_length(header))
        try:
            mtype, answered, body = self._receive.decode(header, rest[:MAC_SIZE], rest[MAC_SIZE:])
        except FrameError as exc:
            raise ConnectionError(f"the maggy driver's reply was refused ({exc})") from None
        if answered != seq:
            raise ConnectionError(f"a reply to request {answered} arrived for request {seq}")
        return decode(mtype, body, replies=True)

    @property
    def local_host(self) -> str:
        """This end's address on the connection: the interface through which the driver, and
        most likely the other workers, reach this host."""
        return str(self._sock.getsockname()[0])

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
