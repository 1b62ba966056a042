"""The wire protocol rejects every kind of malformed message with a counted reason."""

from __future__ import annotations

import msgpack
import pytest
import torch

from learners.link.wire import (
    ACK,
    DIGEST_CHUNK,
    HELLO,
    PROTOCOL_VERSION,
    TRANSITIONS,
    WEIGHTS,
    Message,
    WireError,
    WireLimits,
    decode,
    encode,
    pack_weights,
    unpack_weights,
    weights_digest,
)

LIMITS = WireLimits(max_header_bytes=1024, max_record_bytes=4096, max_records=8, max_weights_bytes=1 << 20)


def test_round_trip_with_bulk_frames():
    frames = encode(TRANSITIONS, {"actor_id": "a", "first_seq": 3, "last_seq": 4}, [b"x" * 10])
    msg = decode(frames, LIMITS)
    assert msg.type == TRANSITIONS and msg.fields["first_seq"] == 3 and msg.frames == [b"x" * 10]


def _header(**fields) -> bytes:
    return msgpack.packb({"v": PROTOCOL_VERSION, **fields})


@pytest.mark.parametrize(("frames", "reason"), [
    ([], "empty"),
    ([b"\xc1\xff"], "malformed"),  # 0xc1 is never used in msgpack
    ([msgpack.packb({"v": 1, "type": "hello"})[:-3]], "malformed"),
    ([msgpack.packb([1, 2, 3])], "malformed"),
    ([_header(type="hello").replace(bytes([PROTOCOL_VERSION]), b"\x07", 1)], "bad_version"),
    ([msgpack.packb({"v": 1, "type": "heartbeat", "time": 1.0})], "bad_version"),  # a version 1 actor
    ([msgpack.packb({"v": 99, "type": ACK, "actor_id": "a", "seq": 1})], "bad_version"),
    ([_header(type="launch_missiles")], "unknown_type"),
    ([_header(type=ACK, actor_id="a")], "bad_field"),
    ([_header(type=ACK, actor_id="a", seq="7")], "bad_field"),
    ([_header(type=ACK, actor_id="a", seq=True)], "bad_field"),
    ([_header(type=HELLO, actor_id="a", last_seq=0, spec={}, pad="x" * 2000)], "oversized"),
    ([_header(type=TRANSITIONS, actor_id="a", first_seq=1, last_seq=2), b"r", b"s"], "bad_frames"),
    ([_header(type=TRANSITIONS, actor_id="a", first_seq=1, last_seq=2)], "bad_frames"),
    ([_header(type=TRANSITIONS, actor_id="a", first_seq=1, last_seq=100), b"r"], "oversized"),
    ([_header(type=TRANSITIONS, actor_id="a", first_seq=5, last_seq=4)], "bad_field"),
    ([_header(type=TRANSITIONS, actor_id="a", first_seq=5, last_seq=6, after=5), b"r"], "bad_field"),
    ([_header(type=TRANSITIONS, actor_id="a", first_seq=5, last_seq=6, after=-1), b"r"], "bad_field"),
    ([_header(type=TRANSITIONS, actor_id="a", first_seq=1, last_seq=1), b"r" * 5000], "oversized"),
    ([_header(type=ACK, actor_id="a", seq=1), b"extra"], "bad_frames"),
    ([msgpack.packb({"v": 1, "type": ACK, "actor_id": b"bytes", "seq": 1}, use_bin_type=True)], "malformed"),
])
def test_malformed_messages_are_rejected_with_a_reason(frames, reason):
    with pytest.raises(WireError) as err:
        decode(frames, LIMITS)
    assert err.value.reason == reason


def test_weights_are_checked_by_checksum_and_shapes():
    state = {"actor.w": torch.randn(4, 3), "actor.b": torch.zeros(4)}
    fields, blob = pack_weights(state, version=7)
    msg = decode(encode(WEIGHTS, fields, [blob]), LIMITS)
    shapes = {"actor.w": (4, 3), "actor.b": (4,)}
    got = unpack_weights(msg, shapes)
    assert torch.equal(got["actor.w"], state["actor.w"])
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    with pytest.raises(WireError, match="bad_checksum"):
        unpack_weights(Message(WEIGHTS, fields, [bytes(tampered)]), shapes)
    with pytest.raises(WireError, match="bad_shape"):
        unpack_weights(msg, {"actor.w": (3, 4), "actor.b": (4,)})
    junk = b"not safetensors at all"
    with pytest.raises(WireError, match="malformed"):
        unpack_weights(Message(WEIGHTS, {"version": 1, "digest": weights_digest(junk)}, [junk]))


def test_the_weights_digest_covers_every_chunk_and_the_length():
    """SHA-256 of (length, each 4 MiB chunk's CRC-32C, little-endian)."""
    import hashlib

    from crc32c import crc32c

    payload = bytes(range(256)) * (3 * DIGEST_CHUNK // 256 + 1000)  # three chunks and a bit
    chunks = [payload[i : i + DIGEST_CHUNK] for i in range(0, len(payload), DIGEST_CHUNK)]
    expected = hashlib.sha256(len(payload).to_bytes(8, "little")
                              + b"".join(crc32c(c).to_bytes(4, "little") for c in chunks)).hexdigest()
    assert len(chunks) == 4 and weights_digest(payload) == expected
    for where in (0, DIGEST_CHUNK + 5, len(payload) - 1):  # one flipped bit in any chunk
        damaged = bytearray(payload)
        damaged[where] ^= 1
        assert weights_digest(bytes(damaged)) != expected
    assert weights_digest(payload[:-1]) != expected  # truncated
    assert weights_digest(b"") != weights_digest(b"\0")
