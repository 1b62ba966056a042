"""The strict msgpack codec: numpy round trips, and every malformed input rejected by name."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from learners.cache.codec import EXT_NDARRAY, DecodeError, EncodeError, packb, unpackb


def test_round_trip_of_nested_documents_with_arrays() -> None:
    doc = {
        "state": np.arange(6, dtype=np.float32).reshape(2, 3),
        "big_endian": np.arange(4, dtype=">i8"),
        "flags": np.array([True, False]),
        "empty": np.zeros((0, 3), np.uint8),
        "scalar": np.float64(2.5),
        "text": "pick",
        "raw": b"\x00\x01",
        "nested": [1, None, {"x": np.int16(7)}],
    }
    out = unpackb(packb(doc), max_size=1 << 20)
    assert out["state"].dtype == np.float32 and out["state"].shape == (2, 3)
    np.testing.assert_array_equal(out["state"], doc["state"])
    np.testing.assert_array_equal(out["big_endian"], np.arange(4))
    assert out["flags"].tolist() == [True, False]
    assert out["empty"].shape == (0, 3)
    assert out["scalar"] == 2.5 and out["nested"][2]["x"] == 7
    assert out["text"] == "pick" and out["raw"] == b"\x00\x01"
    out["state"][0, 0] = 9  # decoded arrays are writable copies


def test_non_contiguous_arrays_encode_their_values() -> None:
    a = np.arange(12).reshape(3, 4)[:, ::2]
    np.testing.assert_array_equal(unpackb(packb(a), max_size=1000), a)


@pytest.mark.parametrize("bad", [np.array([object()]), {1, 2}, object()])
def test_encode_rejects_what_it_cannot_represent(bad: object) -> None:
    with pytest.raises(EncodeError):
        packb({"x": bad})


def _ext(dtype: str, shape: list, data: bytes) -> bytes:
    inner = msgpack.packb([dtype, shape, data], use_bin_type=True)
    return msgpack.packb(msgpack.ExtType(EXT_NDARRAY, inner))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_ext("|O", [1], b"\x00" * 8), "not allowed"),
        (_ext("<f4", [3], b"\x00" * 8), "needs 12 bytes, got 8"),
        (_ext("<f4", [-1], b""), "invalid shape"),
        (_ext("nonsense", [1], b"\x00"), "unknown dtype"),
        (_ext("[('a', '<i4')]", [1], b"\x00" * 4), "unknown dtype"),
        (_ext("02", [1], b"\x00"), "unknown dtype"),  # np.dtype raises SyntaxError, not ValueError
        (msgpack.packb(msgpack.ExtType(7, b"xyz")), "unknown msgpack ext type 7"),
        (msgpack.packb(msgpack.ExtType(EXT_NDARRAY, b"\xc1")), "malformed numpy array"),
        (msgpack.packb(msgpack.Timestamp(1, 0)), "ext type -1"),
        (b"\x92\x01", "malformed msgpack"),
        (msgpack.packb(1) + b"\x01", "trailing bytes"),
        (msgpack.packb({1: 2}), "malformed msgpack"),
    ],
)
def test_decode_rejects_malformed_input_naming_the_problem(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        unpackb(data, max_size=1 << 20)


def test_decode_rejects_oversized_documents_before_parsing() -> None:
    with pytest.raises(DecodeError, match="exceeds the limit of 10 bytes"):
        unpackb(packb(b"x" * 100), max_size=10)
