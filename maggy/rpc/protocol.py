"""The wire format between driver and workers: signed, length-prefixed, typed JSON frames.

A frame is ``header | mac | body``:

- header (8 bytes, big-endian): magic ``b"MG"``, protocol version (1 byte), message type
  (1 byte), body length (4 bytes);
- mac (32 bytes): HMAC-SHA256 of header and body under the experiment's secret;
- body: a UTF-8 JSON object.

A reader checks the magic and the length limit from the header alone, verifies the MAC before it
looks at the version, the type or the body, and only then decodes JSON. Nothing is unpickled.

Every request names a random session (one per connection) and a sequence number starting at 0;
the server refuses a session it has seen on another connection and any number out of order, so
a recorded frame cannot be replayed.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import secrets
import struct
from typing import Any

MAGIC = b"MG"
VERSION = 1
HEADER = struct.Struct(">2sBBI")
MAC_SIZE = 32
#: Largest body accepted, in bytes; workers keep log batches and tracebacks below it.
MAX_BODY = 4 * 1024 * 1024


class MsgType(enum.IntEnum):
    # worker -> driver
    REGISTER = 1
    GET = 2
    METRIC = 3
    FINAL = 4
    LOG = 5
    ERROR = 6
    # driver -> worker
    TRIAL = 16
    OK = 17
    STOP = 18
    WAIT = 19
    DONE = 20


class FrameError(Exception):
    """A frame that must be dropped; ``reason`` is the key of the bad-frame counter."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def new_secret() -> bytes:
    """A fresh per-experiment key."""
    return secrets.token_bytes(32)


class Codec:
    """Encodes and verifies frames under one secret."""

    def __init__(self, secret: bytes, max_body: int = MAX_BODY) -> None:
        if len(secret) < 16:
            raise ValueError("the RPC secret must be at least 16 bytes")
        self._secret = secret
        self.max_body = max_body

    def _mac(self, header: bytes, body: bytes) -> bytes:
        return hmac.new(self._secret, header + body, hashlib.sha256).digest()

    def encode(self, mtype: MsgType, body: dict[str, Any]) -> bytes:
        payload = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
        if len(payload) > self.max_body:
            raise ValueError(f"message {mtype.name} of {len(payload)} bytes exceeds {self.max_body}")
        header = HEADER.pack(MAGIC, VERSION, int(mtype), len(payload))
        return header + self._mac(header, payload) + payload

    def body_length(self, header: bytes) -> int:
        """Length of the body announced by ``header``; rejects garbage and oversized frames."""
        magic, _, _, length = HEADER.unpack(header)
        if magic != MAGIC:
            raise FrameError("garbage", f"bad magic {magic!r}")
        if length > self.max_body:
            raise FrameError("oversized", f"{length} bytes announced, limit {self.max_body}")
        return length

    def decode(self, header: bytes, mac: bytes, body: bytes) -> tuple[MsgType, dict[str, Any]]:
        """Verify, then decode a complete frame."""
        if not hmac.compare_digest(mac, self._mac(header, body)):
            raise FrameError("bad_mac")
        _, version, code, _ = HEADER.unpack(header)
        if version != VERSION:
            raise FrameError("bad_version", f"got {version}, speak {VERSION}")
        try:
            mtype = MsgType(code)
        except ValueError:
            raise FrameError("unknown_type", str(code)) from None
        try:
            obj = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FrameError("bad_body", str(exc)) from None
        if not isinstance(obj, dict):
            raise FrameError("bad_body", "body is not a JSON object")
        return mtype, obj


class FrameReader:
    """Splits a byte stream into verified messages, for non-blocking sockets."""

    def __init__(self, codec: Codec) -> None:
        self._codec = codec
        self._buf = bytearray()

    @property
    def partial(self) -> bool:
        """Whether bytes of an incomplete frame are waiting."""
        return bool(self._buf)

    def feed(self, data: bytes) -> list[tuple[MsgType, dict[str, Any]]]:
        """Add bytes; return the complete messages. Raises FrameError on the first bad frame."""
        self._buf += data
        out = []
        while len(self._buf) >= HEADER.size:
            header = bytes(self._buf[:HEADER.size])
            length = self._codec.body_length(header)
            end = HEADER.size + MAC_SIZE + length
            if len(self._buf) < end:
                break
            mac = bytes(self._buf[HEADER.size:HEADER.size + MAC_SIZE])
            body = bytes(self._buf[HEADER.size + MAC_SIZE:end])
            del self._buf[:end]
            out.append(self._codec.decode(header, mac, body))
        return out


SESSION, SEQ = "_session", "_seq"


def new_session() -> str:
    return secrets.token_hex(16)


class ReplayGuard:
    """Admits each session on one connection only, with sequence numbers 0, 1, 2, ..."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def admit(self, state: dict[str, Any], body: dict[str, Any]) -> None:
        """Check and strip the session fields of ``body``; ``state`` is the connection's own dict.

        Raises FrameError("replay") when the frame was not sent fresh on this connection.
        """
        session, seq = body.pop(SESSION, None), body.pop(SEQ, None)
        if not isinstance(session, str) or isinstance(seq, bool) or not isinstance(seq, int):
            raise FrameError("replay", "no session or sequence number")
        if "session" not in state:
            if session in self._seen or seq != 0:
                raise FrameError("replay", "session already used or not starting at 0")
            self._seen.add(session)
            state["session"] = session
        elif session != state["session"] or seq != state["seq"] + 1:
            raise FrameError("replay", f"expected {state['seq'] + 1} in this session, got {seq}")
        state["seq"] = seq
