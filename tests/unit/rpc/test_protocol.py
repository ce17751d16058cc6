from __future__ import annotations

import pytest

from maggy.rpc.protocol import (
    HEADER,
    MAGIC,
    MAX_BODY,
    RESPONSE,
    VERSION,
    Codec,
    FrameError,
    FrameReader,
    MsgType,
    challenge,
    loads,
    respond,
)

SECRET = b"k" * 32


def _pair(secret=SECRET):
    """A server-side reader and the client's request codec after a real handshake."""
    nonce, hello = challenge()
    answer, send, receive = respond(secret, hello)
    reader = FrameReader(SECRET, nonce)
    assert reader.feed(answer) == [] and reader.authenticated
    return reader, send, receive


def test_round_trip_through_a_split_stream():
    nonce, hello = challenge()
    answer, send, _ = respond(SECRET, hello)
    data = answer + send.encode(MsgType.METRIC, 0, {"trial_id": "t", "points": [[0, 1.5]]}) + \
        send.encode(MsgType.FINAL, 1, {"trial_id": "t"})
    reader = FrameReader(SECRET, nonce)
    got = []
    for i in range(0, len(data), 7):  # arbitrary fragmentation, the handshake included
        got += reader.feed(data[i:i + 7])
    assert got == [(MsgType.METRIC, 0, {"trial_id": "t", "points": [[0, 1.5]]}), (MsgType.FINAL, 1, {"trial_id": "t"})]
    assert not reader.partial


def test_each_connection_has_its_own_keys_and_replies_name_their_request():
    reader_a, send_a, receive_a = _pair()
    reader_b, _, receive_b = _pair()
    frame = send_a.encode(MsgType.GET, 0, {"worker": 0})
    with pytest.raises(FrameError, match="bad_mac"):  # recorded on one connection, replayed on another
        reader_b.feed(frame)
    reply = reader_a.reply_codec.encode(MsgType.OK, 0, {})
    assert receive_a.decode(*_split(reply))[:2] == (MsgType.OK, 0)
    with pytest.raises(FrameError, match="bad_mac"):
        receive_b.decode(*_split(reply))
    with pytest.raises(FrameError, match="bad_mac"):  # a request reflected back is no reply
        receive_a.decode(*_split(frame))


def _split(frame):
    return frame[:HEADER.size], frame[HEADER.size:HEADER.size + 32], frame[HEADER.size + 32:]


def test_requests_are_taken_once_and_in_order():
    reader, send, _ = _pair()
    assert len(reader.feed(send.encode(MsgType.GET, 0, {}))) == 1
    with pytest.raises(FrameError, match="replay"):
        reader.feed(send.encode(MsgType.GET, 0, {}))
    reader, send, _ = _pair()
    with pytest.raises(FrameError, match="replay"):
        reader.feed(send.encode(MsgType.GET, 1, {}))


def test_the_handshake_needs_the_secret_and_reads_no_more_than_itself():
    nonce, hello = challenge()
    reader = FrameReader(SECRET, nonce)
    assert reader.wanted() == RESPONSE.size
    forged, _, _ = respond(b"z" * 32, hello)
    with pytest.raises(FrameError, match="bad_auth"):
        reader.feed(forged)
    with pytest.raises(FrameError, match="garbage"):
        FrameReader(SECRET, nonce).feed(b"GET / HTTP/1.1\r\nHost: maggy\r\n\r\n" + b"x" * 64)
    answer, _, _ = respond(SECRET, challenge()[1])  # an answer to another connection's challenge
    with pytest.raises(FrameError, match="bad_auth"):
        FrameReader(SECRET, nonce).feed(answer)
    with pytest.raises(ConnectionError, match="not a maggy driver"):
        respond(SECRET, b"HTTP/1.1 200 OK\r\n\r\n")


def _reason(make):
    """Why a fresh connection drops the bytes ``make(request codec)`` returns."""
    reader, send, _ = _pair()
    with pytest.raises(FrameError) as err:
        reader.feed(make(send))
    return err.value.reason


def _signed(version, code, body):
    def make(send):
        header = HEADER.pack(MAGIC, version, code, 0, len(body))
        return header + send._mac(header, body) + body  # a valid MAC needs the connection's key
    return make


def test_each_fault_is_classified_before_the_body_is_decoded():
    def tampered(send):
        frame = bytearray(send.encode(MsgType.GET, 0, {}))
        frame[-1] ^= 1
        return bytes(frame)

    assert _reason(lambda send: b"\x00" * 64) == "garbage"
    assert _reason(lambda send: HEADER.pack(MAGIC, VERSION, 2, 0, MAX_BODY + 1)) == "oversized"
    assert _reason(lambda send: HEADER.pack(MAGIC, VERSION + 1, 2, 0, 2)) == "bad_version"
    assert _reason(tampered) == "bad_mac"
    assert _reason(lambda send: Codec(b"z" * 32).encode(MsgType.GET, 0, {})) == "bad_mac"
    assert _reason(_signed(VERSION, 77, b"{}")) == "unknown_type"
    assert _reason(_signed(VERSION, 2, b"[]")) == "bad_body"


@pytest.mark.parametrize("body, detail", [
    (b"[" * 100_000 + b"]" * 100_000, "nested too deep"),
    (b'{"a":' + b"[" * 9 + b"]" * 9 + b"}", "nested deeper than 8"),
    (b'{"metric": 1e400}', "out of range"),
    (b'{"metric": -Infinity}', "not a number"),
    (b'{"metric": NaN}', "not a number"),
    (b'{"worker": 1' + b"0" * 400 + b"}", "out of range"),
    (b'\xff not json', "bad_body"),
])
def test_authentic_but_malformed_bodies_are_bad_bodies(body, detail):
    with pytest.raises(FrameError, match=detail) as err:
        loads(body)
    assert err.value.reason == "bad_body"


def test_truncated_frame_stays_partial_and_says_what_it_holds():
    reader, send, _ = _pair()
    frame = send.encode(MsgType.LOG, 0, {"lines": ["x" * 1000]})
    assert reader.feed(frame[:-1]) == []
    assert reader.partial and reader.buffered == len(frame) - HEADER.size


def test_limits_on_secret_and_size():
    with pytest.raises(ValueError, match="the RPC secret must be at least 16 bytes"):
        respond(b"short", challenge()[1])
    with pytest.raises(ValueError, match="exceeds"):
        Codec(SECRET, max_body=10).encode(MsgType.LOG, 0, {"lines": ["x" * 20]})
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        Codec(SECRET).encode(MsgType.METRIC, 0, {"v": float("nan")})
