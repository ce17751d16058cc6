"""The driver's end of the RPC channel: one thread that accepts, verifies and enqueues.

The server never decides anything. Each verified frame is decoded into its typed message
(:mod:`maggy.rpc.messages`) here, on the RPC thread, and becomes an :class:`Inbound` on the
driver's queue; the driver answers with :meth:`RpcServer.reply`, which hands the frame back to
this thread to send. A bad frame (a body that does not fit its message type included) is counted
by reason and its connection closed; the server and every other connection carry on.
"""

from __future__ import annotations

import collections
import logging
import queue
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from maggy.rpc.messages import BodyError, Message, decode
from maggy.rpc.protocol import Codec, FrameError, FrameReader, ReplayGuard

log = logging.getLogger(__name__)


@dataclass
class Inbound:
    """A verified message from connection ``conn``; ``message`` None means the peer disconnected."""

    conn: int
    message: Message | None
    received: float = field(default_factory=time.monotonic)


@dataclass
class _Conn:
    sock: socket.socket
    reader: FrameReader
    out: bytearray = field(default_factory=bytearray)
    partial_since: float | None = None
    session: dict[str, Any] = field(default_factory=dict)


class RpcServer:
    """A selector loop on its own thread; ``address`` is where workers connect."""

    def __init__(self, secret: bytes, inbox: "queue.Queue[Inbound]", *, host: str = "127.0.0.1",
                 port: int = 0, frame_timeout: float = 10.0) -> None:
        self._codec = Codec(secret)
        self._guard = ReplayGuard()
        self._inbox = inbox
        self._frame_timeout = frame_timeout
        self._listener = socket.create_server((host, port), backlog=128)
        self._listener.setblocking(False)
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._outbox: collections.deque[tuple[int, bytes | None]] = collections.deque()
        self._conns: dict[int, _Conn] = {}
        self._next_id = 0
        self._stopping = False
        self._lock = threading.Lock()
        #: Dropped frames by reason (garbage, oversized, bad_mac, bad_version, unknown_type,
        #: bad_body, truncated, replay).
        self.bad_frames: collections.Counter[str] = collections.Counter()
        self._thread = threading.Thread(target=self._run, name="maggy-rpc", daemon=True)

    def start(self) -> "RpcServer":
        self._sel.register(self._listener, selectors.EVENT_READ, "accept")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread.start()
        return self

    @property
    def bad_frame_count(self) -> int:
        with self._lock:
            return sum(self.bad_frames.values())

    def reply(self, conn: int, message: Message) -> None:
        """Queue a reply on ``conn``; thread-safe, never blocks on the network."""
        self._outbox.append((conn, self._codec.encode(message.TYPE, message.to_body())))
        self._wake()

    def close_connection(self, conn: int) -> None:
        self._outbox.append((conn, None))
        self._wake()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        self._wake()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass

    def _run(self) -> None:
        try:
            while not self._stopping:
                for key, mask in self._sel.select(timeout=0.5):
                    if key.data == "accept":
                        self._accept()
                    elif key.data == "wake":
                        self._drain_wake()
                    else:
                        if mask & selectors.EVENT_READ:
                            self._read(key.data)
                        if mask & selectors.EVENT_WRITE:
                            self._flush(key.data)
                self._send_outbox()
                self._expire_partial_frames()
        finally:
            for cid in list(self._conns):
                self._close(cid, notify=False)
            self._sel.close()
            self._listener.close()
            self._wake_r.close()
            self._wake_w.close()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            cid = self._next_id
            self._next_id += 1
            self._conns[cid] = _Conn(sock, FrameReader(self._codec))
            self._sel.register(sock, selectors.EVENT_READ, cid)

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _read(self, cid: int) -> None:
        conn = self._conns.get(cid)
        if conn is None:
            return
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            if conn.reader.partial:
                self._count("truncated")
            self._close(cid)
            return
        try:
            messages = []
            for mtype, body in conn.reader.feed(data):
                self._guard.admit(conn.session, body)
                messages.append(decode(mtype, body))
        except (FrameError, BodyError) as exc:
            self._count(exc.reason if isinstance(exc, FrameError) else "bad_body")
            log.warning("maggy rpc: dropped a bad frame (%s); closing the connection", exc)
            self._close(cid)
            return
        conn.partial_since = (conn.partial_since or time.monotonic()) if conn.reader.partial else None
        for message in messages:
            self._inbox.put(Inbound(cid, message))

    def _send_outbox(self) -> None:
        while self._outbox:
            cid, frame = self._outbox.popleft()
            conn = self._conns.get(cid)
            if conn is None:
                continue
            if frame is None:
                self._close(cid, notify=False)
                continue
            conn.out += frame
            self._flush(cid)

    def _flush(self, cid: int) -> None:
        conn = self._conns.get(cid)
        if conn is None:
            return
        try:
            sent = conn.sock.send(conn.out)
            del conn.out[:sent]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._close(cid)
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.out else 0)
        self._sel.modify(conn.sock, events, cid)

    def _expire_partial_frames(self) -> None:
        now = time.monotonic()
        for cid, conn in list(self._conns.items()):
            if conn.partial_since is not None and now - conn.partial_since > self._frame_timeout:
                self._count("truncated")
                self._close(cid)

    def _count(self, reason: str) -> None:
        with self._lock:
            self.bad_frames[reason] += 1

    def _close(self, cid: int, notify: bool = True) -> None:
        conn = self._conns.pop(cid, None)
        if conn is None:
            return
        try:
            self._sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()
        if notify and not self._stopping:
            self._inbox.put(Inbound(cid, None))
