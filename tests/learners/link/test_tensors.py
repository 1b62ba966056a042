"""The weights codec: standard safetensors both ways, views without copies, damage named."""

from __future__ import annotations

import json
import struct

import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from learners.link.tensors import TensorsFormatError, all_finite, decode, encode


def _state() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "actor.w": torch.randn(7, 5, generator=g),
        "actor.b": torch.randn(5, generator=g).double(),
        "actor.h": torch.randn(3, 3, generator=g).to(torch.bfloat16),
        "actor.f16": torch.randn(4, generator=g).half(),
        "count": torch.tensor(12345678901, dtype=torch.int64),  # 0-dim
        "steps": torch.arange(6, dtype=torch.int32).reshape(2, 3),
        "mask": torch.tensor([True, False, True]),
        "bytes": torch.arange(5, dtype=torch.uint8),
        "empty": torch.zeros(0, 4),
    }


def _equal(a: dict, b: dict) -> bool:
    return set(a) == set(b) and all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)


def test_the_library_reads_what_encode_writes_and_decode_reads_what_the_library_writes():
    state = _state()
    blob = encode(state, metadata={"rill_weights_version": "9"})
    assert _equal(st_load(blob), state)
    got, meta = decode(blob)
    assert _equal(got, state) and meta == {"rill_weights_version": "9"}
    got, meta = decode(st_save(state, metadata={"k": "v"}))
    assert _equal(got, state) and meta == {"k": "v"}


def test_encode_snapshots_and_decode_shares_the_buffer():
    w = torch.ones(1000)
    blob = encode({"w": w})
    w.add_(1.0)  # the publisher's network moves on; the blob does not
    got, _ = decode(blob)
    assert torch.equal(got["w"], torch.ones(1000))
    buf = bytearray(blob)
    view, _ = decode(buf)
    struct.pack_into("<f", buf, len(buf) - 4, 5.0)  # the view reads the buffer it came from
    assert view["w"][-1].item() == 5.0


def _f32(name: str, shape: list[int], offsets: list[int], dtype: object = "F32") -> dict:
    return {name: {"dtype": dtype, "shape": shape, "data_offsets": offsets}}


def _with_header(header: dict, data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


@pytest.mark.parametrize(
    ("blob", "words"),
    [
        (b"\x01\x02", "too short"),
        (struct.pack("<Q", 10_000) + b"{}", "does not fit"),
        (struct.pack("<Q", 4) + b"nope", "not JSON"),
        (_with_header([1, 2], b""), "not a JSON object"),
        (_with_header(_f32("w", [1], [0, 4], dtype="F99"), b"\0" * 4), "unknown dtype"),
        (_with_header(_f32("w", [-1], [0, 4]), b"\0" * 4), "shape"),
        (_with_header(_f32("w", [2], [0, 16]), b"\0" * 8), "outside"),
        (_with_header(_f32("w", [2], [0, 4]), b"\0" * 4), "4 bytes for shape"),
        (_with_header(_f32("a", [2], [0, 8]) | _f32("b", [1], [4, 8]), b"\0" * 8), "overlaps"),
        (_with_header(_f32("a", [1], [4, 8]), b"\0" * 8), "gap"),
        (_with_header(_f32("a", [1], [0, 4]), b"\0" * 8), "after the last"),
        (_with_header({"__metadata__": {"k": 1}}, b""), "__metadata__"),
        (_with_header(_f32("w", [1], [0, 4], dtype=[1]), b"\0" * 4), "unknown dtype"),
        (_with_header(_f32("w", [1], [0, 4], dtype={}), b"\0" * 4), "unknown dtype"),
        (_with_header(_f32("w", [0, 2**70], [0, 0]), b""), "shape"),
        (_with_header(_f32("w", [0, 2**47, 2**47, 2**47], [0, 0]), b""), "shape"),
        (struct.pack("<Q", 100_000) + b"[" * 100_000, "not JSON"),
        (struct.pack("<Q", 5000) + b"1" * 5000, "not JSON"),
        (_with_header(_f32("\udc80", [1], [0, 4]), b"\0" * 4), "UTF-8"),
    ],
)
def test_damaged_payloads_are_refused_by_name(blob, words):
    with pytest.raises(TensorsFormatError, match=words):
        decode(blob)


def test_a_header_not_padded_to_8_bytes_still_gives_aligned_tensors():
    raw = json.dumps(_f32("w", [3], [0, 12])).encode()
    raw += b" " * ((-len(raw) % 8) + 2)  # 8-aligned plus 2: the data starts misaligned for float32
    got, _ = decode(struct.pack("<Q", len(raw)) + raw + struct.pack("<3f", 1.0, 2.0, 3.0))
    assert got["w"].tolist() == [1.0, 2.0, 3.0] and got["w"].data_ptr() % 4 == 0


def test_all_finite_finds_nan_and_infinity_and_is_not_fooled_by_an_overflowing_sum():
    assert all_finite(torch.randn(1000))
    big = torch.full((4,), 3e38)  # finite, but the float32 sum overflows
    assert all_finite(big)
    for bad in (float("nan"), float("inf"), float("-inf")):
        t = torch.randn(1000)
        t[517] = bad
        assert not all_finite(t)
    assert all_finite(torch.arange(10)) and all_finite(torch.zeros(0))
