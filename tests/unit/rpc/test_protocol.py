from __future__ import annotations

import pytest

from maggy.rpc.protocol import HEADER, MAGIC, MAX_BODY, Codec, FrameError, FrameReader, MsgType

SECRET = b"k" * 32


def test_round_trip_through_a_split_stream():
    codec = Codec(SECRET)
    data = codec.encode(MsgType.METRIC, {"trial_id": "t", "points": [[0, 1.5]]}) + \
        codec.encode(MsgType.FINAL, {"trial_id": "t"})
    reader = FrameReader(codec)
    got = []
    for i in range(0, len(data), 7):  # arbitrary fragmentation
        got += reader.feed(data[i:i + 7])
    assert got == [(MsgType.METRIC, {"trial_id": "t", "points": [[0, 1.5]]}),
                   (MsgType.FINAL, {"trial_id": "t"})]
    assert not reader.partial


def _reason(codec, data):
    with pytest.raises(FrameError) as err:
        FrameReader(codec).feed(data)
    return err.value.reason


def test_each_fault_is_classified_before_the_body_is_decoded():
    codec = Codec(SECRET)
    good = codec.encode(MsgType.GET, {})
    assert _reason(codec, b"\x00" * 64) == "garbage"
    assert _reason(codec, HEADER.pack(MAGIC, 1, 2, MAX_BODY + 1)) == "oversized"
    assert _reason(codec, Codec(b"z" * 32).encode(MsgType.GET, {})) == "bad_mac"
    tampered = bytearray(good)
    tampered[-1] ^= 1
    assert _reason(codec, bytes(tampered)) == "bad_mac"
    # a valid MAC over a wrong version or type: only reachable with the secret
    for version, code, reason in [(2, 2, "bad_version"), (1, 77, "unknown_type")]:
        header = HEADER.pack(MAGIC, version, code, 2)
        assert _reason(codec, header + codec._mac(header, b"{}") + b"{}") == reason
    header = HEADER.pack(MAGIC, 1, 2, 2)
    assert _reason(codec, header + codec._mac(header, b"[]") + b"[]") == "bad_body"


def test_truncated_frame_stays_partial():
    codec = Codec(SECRET)
    reader = FrameReader(codec)
    assert reader.feed(codec.encode(MsgType.GET, {})[:-1]) == []
    assert reader.partial


def test_limits_on_secret_and_size():
    with pytest.raises(ValueError):
        Codec(b"short")
    with pytest.raises(ValueError, match="exceeds"):
        Codec(SECRET, max_body=10).encode(MsgType.LOG, {"lines": ["x" * 20]})
    with pytest.raises(ValueError):
        Codec(SECRET).encode(MsgType.METRIC, {"v": float("nan")})
