"""The driver's end of the RPC channel: one thread that accepts, authenticates, verifies and enqueues.

The server never decides anything. Each verified frame is decoded into its typed message
(:mod:`maggy.rpc.messages`) here, on the RPC thread, and becomes an :class:`Inbound` on the
driver's queue; the driver answers with :meth:`RpcServer.reply`, which hands the frame back to
this thread to send. A bad frame (a body that does not fit its message type included) is counted
by reason and its connection closed; the server and every other connection carry on.

What a peer can cost the driver is bounded: a connection that has not answered the challenge
within ``auth_timeout`` is closed, at most ``max_pending`` wait for their answer at a time (the
oldest makes way once it has had ``pending_grace`` seconds; until then new ones wait in the
kernel's backlog, so that a burst of executors connecting at once is served, not evicted), at most
``max_connections`` are open, a frame must arrive within
``frame_timeout`` of its first byte, and frames in progress hold at most ``max_buffered`` bytes
together. Deadlines sit in a heap, so the cost of a request does not grow with idle connections.
Errors from ``accept()`` (EMFILE included) are counted, and accepting pauses briefly.

With ``tls`` (the experiment's server context, see :mod:`maggy.rpc.tls`) every connection first
completes a TLS handshake, driven by the same loop (``do_handshake`` until it stops wanting to
read or write), and only then gets its challenge: the handshake counts against ``auth_timeout``
and holds a handshake slot of ``max_pending`` like the challenge does. A peer that does not speak
TLS is closed and counted as ``bad_tls``. Until the proof checks out, the server still takes no
more than the handshake answer's 52 bytes from the TLS layer, which holds at most one TLS record
(16 KiB) of a peer's data besides.
"""

from __future__ import annotations

import collections
import errno
import heapq
import logging
import queue
import selectors
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

from maggy.rpc.messages import BodyError, Message, decode
from maggy.rpc.protocol import MAX_BODY, FrameError, FrameReader, challenge, check_secret

log = logging.getLogger(__name__)

#: Seconds between two warnings about dropped frames (the counts are always kept).
LOG_EVERY = 10.0
#: Seconds accepting pauses when accept() failed for want of descriptors or memory, or while
#: every handshake slot is taken by a young connection.
ACCEPT_PAUSE = 0.05
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class Replies(Protocol):
    """Where the driver's replies go: the RPC server, or a test's stand-in."""

    def reply(self, conn: int, message: Message) -> None: ...

    def close_connection(self, conn: int) -> None: ...


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
    deadline: float | None
    opened: float
    out: bytearray = field(default_factory=bytearray)
    replies: collections.deque = field(default_factory=collections.deque)  # seqs awaiting a reply
    buffered: int = 0
    handshaking: bool = False  # in the TLS handshake: the challenge waits in ``out``


class RpcServer:
    """A selector loop on its own thread; ``address`` is where workers connect."""

    def __init__(self, secret: bytes, inbox: "queue.Queue[Inbound]", *, host: str = "127.0.0.1",
                 port: int = 0, frame_timeout: float = 10.0, auth_timeout: float = 5.0,
                 max_connections: int = 4096, max_pending: int = 256, pending_grace: float = 1.0,
                 max_buffered: int = 16 * MAX_BODY, tls: ssl.SSLContext | None = None) -> None:
        check_secret(secret)
        self._secret = secret
        self._tls = tls
        self._inbox = inbox
        self._frame_timeout, self._auth_timeout = frame_timeout, auth_timeout
        self._max_connections, self._max_pending, self._max_buffered = max_connections, max_pending, max_buffered
        self._pending_grace = pending_grace
        self._listener = socket.create_server((host, port), backlog=1024)
        self._listener.setblocking(False)
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._outbox: collections.deque[tuple[int, Message | None]] = collections.deque()
        self._conns: dict[int, _Conn] = {}
        self._pending: dict[int, None] = {}  # unauthenticated connections, oldest first
        self._deadlines: list[tuple[float, int]] = []  # (when, connection); stale entries skipped
        self._buffered = 0
        self._accept_paused_until: float | None = None
        self._next_id = 0
        self._stopping = False
        self._lock = threading.Lock()
        #: Dropped frames and connections by reason (garbage, oversized, bad_auth, bad_mac,
        #: bad_version, unknown_type, bad_body, truncated, replay, auth_timeout, evicted,
        #: refused, overloaded, accept_error, bad_tls).
        self.bad_frames: collections.Counter[str] = collections.Counter()
        self._logged: collections.Counter[str] = collections.Counter()
        self._last_log = float("-inf")
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

    @property
    def buffered(self) -> int:
        """Bytes held or reserved for frames in progress, all connections together."""
        return self._buffered

    @property
    def connections(self) -> int:
        """Open connections, authenticated or not."""
        return len(self._conns)

    def reply(self, conn: int, message: Message) -> None:
        """Queue a reply on ``conn``; thread-safe, never blocks on the network."""
        self._outbox.append((conn, message))
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
                timeout = 0.5
                if self._deadlines:
                    timeout = min(timeout, max(0.0, self._deadlines[0][0] - time.monotonic()))
                for key, mask in self._sel.select(timeout=timeout):
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
                self._expire()
        finally:
            for cid in list(self._conns):
                self._close(cid, notify=False)
            self._sel.close()
            self._listener.close()
            self._wake_r.close()
            self._wake_w.close()

    # ---- connections -----------------------------------------------------------------------

    def _accept(self) -> None:
        while True:
            full = len(self._pending) >= self._max_pending
            if full and time.monotonic() - self._conns[next(iter(self._pending))].opened < self._pending_grace:
                self._pause_accepting()  # the rest wait in the backlog
                return
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and friends: survive, make room, retry shortly
                self._count("accept_error")
                if exc.errno in _OUT_OF_RESOURCES:
                    self._evict_oldest_pending()
                    self._pause_accepting()
                return
            if len(self._conns) >= self._max_connections:
                self._count("refused")
                sock.close()
                continue
            if full:
                self._evict_oldest_pending()
            self._open(sock)

    def _pause_accepting(self) -> None:
        self._sel.unregister(self._listener)
        self._accept_paused_until = time.monotonic() + ACCEPT_PAUSE
        heapq.heappush(self._deadlines, (self._accept_paused_until, -1))

    def _open(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tls is not None:
            sock = self._tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        nonce, hello = challenge()
        cid = self._next_id
        self._next_id += 1
        now = time.monotonic()
        deadline = now + self._auth_timeout
        conn = _Conn(sock, FrameReader(self._secret, nonce), deadline, now, handshaking=self._tls is not None)
        self._conns[cid] = conn
        self._pending[cid] = None
        heapq.heappush(self._deadlines, (deadline, cid))
        self._sel.register(sock, selectors.EVENT_READ, cid)
        conn.out += hello
        self._flush(cid)

    def _evict_oldest_pending(self) -> None:
        if self._pending:
            self._count("evicted")
            self._close(next(iter(self._pending)))

    def _expire(self) -> None:
        now = time.monotonic()
        while self._deadlines and self._deadlines[0][0] <= now:
            when, cid = heapq.heappop(self._deadlines)
            if cid == -1:
                if self._accept_paused_until == when:
                    self._accept_paused_until = None
                    self._sel.register(self._listener, selectors.EVENT_READ, "accept")
                continue
            conn = self._conns.get(cid)
            if conn is not None and conn.deadline == when:
                self._count("truncated" if conn.reader.authenticated else "auth_timeout")
                self._close(cid)
        if len(self._deadlines) > 2 * len(self._conns) + 1024:  # drop stale entries now and then
            self._deadlines = [(w, c) for w, c in self._deadlines
                               if c == -1 or (c in self._conns and self._conns[c].deadline == w)]
            heapq.heapify(self._deadlines)

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _handshake(self, cid: int, conn: _Conn) -> None:
        """Take the TLS handshake a step further; once it is done, send the challenge."""
        assert isinstance(conn.sock, ssl.SSLSocket)
        try:
            conn.sock.do_handshake()
        except ssl.SSLWantReadError:
            self._sel.modify(conn.sock, selectors.EVENT_READ, cid)
            return
        except ssl.SSLWantWriteError:
            self._sel.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, cid)
            return
        except ssl.SSLEOFError:  # connected and went away, as a port probe does: not a fault
            self._close(cid)
            return
        except ssl.SSLError as exc:  # plain TCP, or a TLS it cannot agree on
            self._count("bad_tls", f"TLS handshake: {exc.reason or exc}")
            self._close(cid)
            return
        except OSError:
            self._close(cid)
            return
        conn.handshaking = False
        self._flush(cid)

    def _read(self, cid: int) -> None:
        conn = self._conns.get(cid)
        if conn is None:
            return
        if conn.handshaking:
            self._handshake(cid, conn)
            return
        # TLS may hold decrypted bytes (the rest of a record) that the selector cannot see
        while self._take(cid, conn) and isinstance(conn.sock, ssl.SSLSocket) and conn.sock.pending():
            pass

    def _take(self, cid: int, conn: _Conn) -> bool:
        """Read once from ``conn`` and act on it; whether the connection is still open."""
        reader = conn.reader
        try:  # before the handshake, nothing beyond it is read
            data = conn.sock.recv(65536 if reader.authenticated else reader.wanted())
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return True
        except ssl.SSLError as exc:  # a record that fails TLS's own checks
            self._count("bad_tls", exc.reason or exc)
            self._close(cid)
            return False
        except OSError:
            data = b""
        if not data:
            if reader.partial:
                self._count("truncated")
            self._close(cid)
            return False
        was_pending = not reader.authenticated
        try:
            messages = []
            for mtype, seq, body in reader.feed(data):
                messages.append(decode(mtype, body))
                conn.replies.append(seq)
        except (FrameError, BodyError) as exc:
            self._count(exc.reason if isinstance(exc, FrameError) else "bad_body", exc)
            self._close(cid)
            return False
        if was_pending and reader.authenticated:
            self._pending.pop(cid, None)
            conn.deadline = None
        self._buffered += reader.buffered - conn.buffered
        conn.buffered = reader.buffered
        if self._buffered > self._max_buffered:
            self._count("overloaded", "frames in progress exceed the server's buffer limit")
            self._close(cid)
            return False
        if reader.authenticated:
            if not reader.partial:
                conn.deadline = None
            elif conn.deadline is None:
                conn.deadline = time.monotonic() + self._frame_timeout
                heapq.heappush(self._deadlines, (conn.deadline, cid))
        for message in messages:
            self._inbox.put(Inbound(cid, message))
        return True

    def _send_outbox(self) -> None:
        while self._outbox:
            cid, message = self._outbox.popleft()
            conn = self._conns.get(cid)
            if conn is None:
                continue
            if message is None:
                self._close(cid, notify=False)
                continue
            codec = conn.reader.reply_codec
            assert codec is not None, "replies go only to authenticated connections"
            conn.out += codec.encode(message.TYPE, conn.replies.popleft(), message.to_body())
            self._flush(cid)

    def _flush(self, cid: int) -> None:
        conn = self._conns.get(cid)
        if conn is None:
            return
        if conn.handshaking:
            self._handshake(cid, conn)
            return
        try:
            # TLS: a write that wants to wait is retried with the same bytes first (``out`` only grows)
            sent = conn.sock.send(conn.out) if conn.out else 0
            del conn.out[:sent]
        except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            pass
        except OSError:
            self._close(cid)
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.out else 0)
        self._sel.modify(conn.sock, events, cid)

    def _count(self, reason: str, detail: object = None) -> None:
        """Count a dropped frame or connection; warn at most every LOG_EVERY seconds."""
        with self._lock:
            self.bad_frames[reason] += 1
            self._logged[reason] += 1
            now = time.monotonic()
            if now - self._last_log < LOG_EVERY:
                return
            counts, self._logged, self._last_log = self._logged, collections.Counter(), now
        log.warning("maggy rpc: dropped %s (%s); such warnings come at most every %.0f s",
                    ", ".join(f"{n} {r}" for r, n in counts.most_common()), detail or reason, LOG_EVERY)

    def _close(self, cid: int, notify: bool = True) -> None:
        conn = self._conns.pop(cid, None)
        if conn is None:
            return
        self._pending.pop(cid, None)
        self._buffered -= conn.buffered
        try:
            self._sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()
        if notify and not self._stopping and conn.reader.authenticated:
            self._inbox.put(Inbound(cid, None))
