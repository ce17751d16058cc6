"""The wire format between driver and workers: a challenge-response, then signed, typed JSON frames.

**Transport.** With TLS (the ``tls`` setting; see :mod:`maggy.rpc.tls`) a connection starts with
a TLS 1.3 handshake under the driver's certificate for this experiment, which the worker pins by
its SHA-256 fingerprint before it sends anything else; everything below then travels inside TLS,
so that hyperparameters, metrics and log lines are encrypted. Without TLS the same bytes travel
in clear.
TLS does not replace what follows: the challenge-response is what ties a connection to the
experiment, and the frames stay signed either way.

**Handshake.** On connect (after the TLS handshake, with TLS) the server sends a challenge,
``b"MGC" | version | server nonce`` (20 bytes); the client answers ``b"MGR" | version | client
nonce | proof`` (52 bytes), where the proof is an HMAC of both nonces under the experiment's
secret. Until the proof checks out the server reads no more than those 52 bytes from the
connection (with TLS: from the TLS layer, which holds at most one record of 16 KiB besides), so a
peer without the secret can make it buffer nothing larger. Both sides then derive a key per
direction from the secret and the two nonces: every connection has keys of its own.

**Frames.** ``header | mac | body``:

- header (12 bytes, big-endian): magic ``b"MG"``, protocol version (1 byte), message type
  (1 byte), sequence number (4 bytes), body length (4 bytes);
- mac (32 bytes): HMAC-SHA256 of header and body under the direction's key;
- body: a UTF-8 JSON object.

Requests are numbered 0, 1, 2, ... on their connection and the server takes each number once, in
order; a reply carries the number of the request it answers and the client takes nothing else.
So a frame recorded on one connection means nothing on another, nor twice on its own. A reader
checks magic, version and length from the header alone and verifies the MAC before it looks at
the type or the body; the body is decoded with bounded nesting, finite floats and bounded ints.
Nothing is unpickled.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import math
import secrets
import struct
from dataclasses import dataclass
from typing import Any

MAGIC = b"MG"
VERSION = 3  # 3: OK, STOP and TRIAL may carry grants
HEADER = struct.Struct(">2sBBII")
MAC_SIZE = 32
NONCE_SIZE = 16
CHALLENGE = struct.Struct(f">3sB{NONCE_SIZE}s")
RESPONSE = struct.Struct(f">3sB{NONCE_SIZE}s{MAC_SIZE}s")
#: Largest body accepted, in bytes; workers keep log batches and tracebacks below it.
MAX_BODY = 4 * 1024 * 1024
#: Deepest nesting of JSON arrays and objects in a body (messages need 3).
MAX_DEPTH = 8
#: Largest magnitude of an integer in a body.
MAX_INT = 2 ** 63


class MsgType(enum.IntEnum):
    # worker -> driver
    REGISTER = 1
    GET = 2
    METRIC = 3
    FINAL = 4
    LOG = 5
    ERROR = 6
    RENDEZVOUS = 7
    # driver -> worker
    TRIAL = 16
    OK = 17
    STOP = 18
    WAIT = 19
    DONE = 20
    WELCOME = 21


class FrameError(Exception):
    """A frame that must be dropped; ``reason`` is the key of the bad-frame counter."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def new_secret() -> bytes:
    """A fresh per-experiment key."""
    return secrets.token_bytes(32)


def check_secret(secret: bytes) -> None:
    """Refuse a key too short to authenticate anything."""
    if len(secret) < 16:
        raise ValueError("the RPC secret must be at least 16 bytes")


def _keys(secret: bytes, server_nonce: bytes, client_nonce: bytes) -> tuple[bytes, bytes]:
    """The (worker → driver, driver → worker) keys of one connection."""
    nonces = server_nonce + client_nonce
    return (hmac.new(secret, b"maggy-request" + nonces, hashlib.sha256).digest(),
            hmac.new(secret, b"maggy-reply" + nonces, hashlib.sha256).digest())


def _proof(secret: bytes, server_nonce: bytes, client_nonce: bytes) -> bytes:
    return hmac.new(secret, b"maggy-auth" + server_nonce + client_nonce, hashlib.sha256).digest()


def challenge() -> tuple[bytes, bytes]:
    """A server's (nonce, challenge bytes) for a new connection."""
    nonce = secrets.token_bytes(NONCE_SIZE)
    return nonce, CHALLENGE.pack(b"MGC", VERSION, nonce)


def respond(secret: bytes, data: bytes) -> tuple[bytes, "Codec", "Codec"]:
    """A client's answer to the challenge ``data``, with its (request, reply) codecs.

    >>> secret = b"k" * 32
    >>> nonce, hello = challenge()
    >>> answer, send, _ = respond(secret, hello)
    >>> _, receive = accept(secret, nonce, answer)
    >>> receive.decode(*split(send.encode(MsgType.GET, 0, {"worker": 1})))
    (<MsgType.GET: 2>, 0, {'worker': 1})
    """
    check_secret(secret)
    magic, version, server_nonce = CHALLENGE.unpack(data.ljust(CHALLENGE.size, b"\0")[:CHALLENGE.size])
    if magic != b"MGC" or len(data) != CHALLENGE.size:
        raise ConnectionError("the peer is not a maggy driver")
    if version != VERSION:
        raise ConnectionError(f"the maggy driver speaks protocol {version}, this worker {VERSION}: "
                              "run the same maggy version on the driver and the executors")
    client_nonce = secrets.token_bytes(NONCE_SIZE)
    request_key, reply_key = _keys(secret, server_nonce, client_nonce)
    answer = RESPONSE.pack(b"MGR", VERSION, client_nonce, _proof(secret, server_nonce, client_nonce))
    return answer, Codec(request_key), Codec(reply_key)


def accept(secret: bytes, nonce: bytes, data: bytes) -> tuple["Codec", "Codec"]:
    """The server's (reply, request) codecs if ``data`` proves the secret; FrameError otherwise."""
    magic, version, client_nonce, proof = RESPONSE.unpack(data)
    if magic != b"MGR":
        raise FrameError("garbage", f"bad handshake magic {magic!r}")
    if not hmac.compare_digest(proof, _proof(secret, nonce, client_nonce)):
        raise FrameError("bad_auth")
    if version != VERSION:
        raise FrameError("bad_version", f"got {version}, speak {VERSION}")
    request_key, reply_key = _keys(secret, nonce, client_nonce)
    return Codec(reply_key), Codec(request_key)


def split(frame: bytes) -> tuple[bytes, bytes, bytes]:
    """A whole frame's (header, mac, body)."""
    return frame[:HEADER.size], frame[HEADER.size:HEADER.size + MAC_SIZE], frame[HEADER.size + MAC_SIZE:]


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} out of range")
    return value


def _bounded(text: str) -> int:
    if len(text) > 20 or abs(value := int(text)) > MAX_INT:
        raise ValueError(f"integer {text[:40]} out of range")
    return value


def _constant(name: str) -> float:
    raise ValueError(f"{name} is not a number maggy accepts")


def _depth(obj: Any, limit: int) -> bool:
    """Whether ``obj`` nests arrays and objects no deeper than ``limit``."""
    level = [obj]
    for _ in range(limit + 1):
        level = [v for o in level if isinstance(o, (dict, list))
                 for v in (o.values() if isinstance(o, dict) else o)]
        if not level:
            return True
    return False


def loads(body: bytes) -> dict[str, Any]:
    """The JSON object in ``body``, or FrameError("bad_body") for anything else.

    >>> loads(b'{"metric": 1e400}')
    Traceback (most recent call last):
    ...
    maggy.rpc.protocol.FrameError: bad_body: number 1e400 out of range
    """
    try:
        obj = json.loads(body, parse_float=_finite, parse_int=_bounded, parse_constant=_constant)
    except RecursionError:
        raise FrameError("bad_body", "nested too deep") from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise FrameError("bad_body", str(exc)) from None
    if not isinstance(obj, dict):
        raise FrameError("bad_body", "body is not a JSON object")
    if not _depth(obj, MAX_DEPTH):
        raise FrameError("bad_body", f"nested deeper than {MAX_DEPTH}")
    return obj


@dataclass(frozen=True)
class Codec:
    """Encodes and verifies frames under one key (one direction of one connection)."""

    key: bytes
    max_body: int = MAX_BODY

    def _mac(self, header: bytes, body: bytes) -> bytes:
        return hmac.new(self.key, header + body, hashlib.sha256).digest()

    def encode(self, mtype: MsgType, seq: int, body: dict[str, Any]) -> bytes:
        payload = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
        if len(payload) > self.max_body:
            raise ValueError(f"message {mtype.name} of {len(payload)} bytes exceeds {self.max_body}")
        header = HEADER.pack(MAGIC, VERSION, int(mtype), seq, len(payload))
        return header + self._mac(header, payload) + payload

    def body_length(self, header: bytes) -> int:
        """Length of the body announced by ``header``; rejects garbage and oversized frames."""
        magic, version, _, _, length = HEADER.unpack(header)
        if magic != MAGIC:
            raise FrameError("garbage", f"bad magic {magic!r}")
        if version != VERSION:
            raise FrameError("bad_version", f"got {version}, speak {VERSION}")
        if length > self.max_body:
            raise FrameError("oversized", f"{length} bytes announced, limit {self.max_body}")
        return length

    def decode(self, header: bytes, mac: bytes, body: bytes) -> tuple[MsgType, int, dict[str, Any]]:
        """Verify, then decode a complete frame into (type, sequence number, body)."""
        if not hmac.compare_digest(mac, self._mac(header, body)):
            raise FrameError("bad_mac")
        _, _, code, seq, _ = HEADER.unpack(header)
        try:
            mtype = MsgType(code)
        except ValueError:
            raise FrameError("unknown_type", str(code)) from None
        return mtype, seq, loads(body)


class FrameReader:
    """Turns the bytes of one connection into verified messages, for non-blocking sockets.

    It first expects the handshake answer to ``nonce``, then frames under the keys the handshake
    gives, numbered from 0. :meth:`wanted` says how many bytes to read next, so that a peer that
    has not proven the secret is never read beyond its handshake, and a frame's body is read into
    one buffer of the announced size.
    """

    def __init__(self, secret: bytes, nonce: bytes, max_body: int = MAX_BODY) -> None:
        self._secret, self._nonce, self._max_body = secret, nonce, max_body
        self.reply_codec: Codec | None = None
        self._codec: Codec | None = None
        self._buf = bytearray()
        self._need = RESPONSE.size
        self._header: bytes | None = None
        self._seq = 0

    @property
    def authenticated(self) -> bool:
        return self._codec is not None

    @property
    def partial(self) -> bool:
        """Whether bytes of an incomplete frame (or handshake) are waiting."""
        return bool(self._buf) or self._header is not None

    @property
    def buffered(self) -> int:
        """Bytes this reader holds or is about to hold for the frame in progress."""
        return self._need if self._header is not None else len(self._buf)

    def wanted(self) -> int:
        """How many bytes complete the current piece (handshake, header or body)."""
        return self._need - len(self._buf)

    def feed(self, data: bytes) -> list[tuple[MsgType, int, dict[str, Any]]]:
        """Add bytes; return the complete messages. Raises FrameError on the first bad frame."""
        out = []
        view = memoryview(data)
        while view:
            take = min(len(view), self._need - len(self._buf))
            self._buf += view[:take]
            view = view[take:]
            if len(self._buf) < self._need:
                break
            piece, self._buf = bytes(self._buf), bytearray()
            if self._codec is None:
                self.reply_codec, self._codec = accept(self._secret, self._nonce, piece)
                self._need = HEADER.size
            elif self._header is None:
                self._header = piece
                self._need = MAC_SIZE + self._codec.body_length(piece)
            else:
                mtype, seq, body = self._codec.decode(self._header, piece[:MAC_SIZE], piece[MAC_SIZE:])
                if seq != self._seq:
                    raise FrameError("replay", f"expected request {self._seq}, got {seq}")
                self._seq += 1
                self._header, self._need = None, HEADER.size
                out.append((mtype, seq, body))
        return out
