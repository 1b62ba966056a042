"""Camera-frame columns compressed in transition batches (``encode_batch(..., compress="zstd")``):
exact rows back, several times fewer bytes for frames like a camera's, noise left as it is, and a
compressed column that lies about what it holds refused by name."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import zstandard

from learners.cache import CacheConfig, RecordDecodeError, ReplayCache
from learners.cache.batch import decode_batch, encode_batch
from learners.cache.codec import packb, unpackb
from learners.cache.records import encode_transition
from learners.transition import Transition

MAX = 1 << 26


def _scene(i: int) -> np.ndarray:
    """A 96x96 frame like a rendered camera's: flat shading, a block that moves a pixel a frame."""
    y, x = np.mgrid[0:96, 0:96]
    frame = np.stack([(x + y) // 2, np.full_like(x, 90), 255 - y], axis=-1).astype(np.uint8)
    frame[40:56, 10 + i % 70:26 + i % 70] = (200, 30, 30)
    return frame


def _rows(n: int, frame=_scene, first: int = 1) -> list[Transition]:
    rng = np.random.default_rng(first)
    return [Transition({"state": rng.normal(size=4).astype(np.float32), "image.cam": frame(i),
                        "instruction": "reach the red block"},
                       rng.normal(size=2).astype(np.float32), 0.5, {"state": np.ones(4, np.float32),
                                                                    "image.cam": frame(i + 1)},
                       i == n - 1, False, actor_id="cam", seq=first + i, episode=0, step=i)
            for i in range(n)]


def _noise(i: int) -> np.ndarray:
    return np.random.default_rng(i).integers(0, 256, (96, 96, 3), np.uint8)


@pytest.mark.parametrize("writable", [True, False])
def test_compressed_frames_come_back_exactly_in_a_fraction_of_the_bytes(writable):
    rows = _rows(64)
    raw, packed = encode_batch(rows), encode_batch(rows, compress="zstd")
    assert len(packed) * 10 < len(raw)
    batch = decode_batch(memoryview(packed), max_size=MAX, writable=writable)
    assert [encode_transition(t) for t in batch] == [encode_transition(t) for t in rows]
    frames = batch.columns["obs"]["d"]["image.cam"]["a"]  # a stacked array once decoded, as unpacked ones
    assert frames.shape == (64, 96, 96, 3) and frames.flags.writeable == writable
    head = unpackb(packed[4:4 + struct.unpack_from("<I", packed)[0]], max_size=MAX)
    assert head[0] == 2 and "z" in head[4]["obs"]["d"]["image.cam"] and "a" in head[4]["obs"]["d"]["state"]
    assert unpackb(raw[4:4 + struct.unpack_from("<I", raw)[0]], max_size=MAX)[0] == 1


def test_frames_that_do_not_compress_are_stored_as_they_are():
    rows = _rows(16, frame=_noise)
    assert encode_batch(rows, compress="zstd") == encode_batch(rows)  # version 1, raw columns


def test_an_unknown_codec_is_refused_when_encoding():
    with pytest.raises(ValueError, match="compresses with one of \\('zstd',\\) or None, not 'lz4'"):
        encode_batch(_rows(2), compress="lz4")


def _rebuild(mutate, data: bytes | None = None) -> bytes:
    """A compressed batch of 4 with its head changed by ``mutate`` (and its data section replaced)."""
    payload = encode_batch(_rows(4), compress="zstd")
    (size,) = struct.unpack_from("<I", payload)
    doc = unpackb(payload[4:4 + size], max_size=MAX)
    mutate(doc[4]["obs"]["d"]["image.cam"]["z"], doc)
    head = packb(doc)
    return struct.pack("<I", len(head)) + head + (payload[4 + size:] if data is None else data)


@pytest.mark.parametrize("mutate, message", [
    (lambda z, d: z.__setitem__(0, "lz5"), "unknown codec 'lz5'"),
    (lambda z, d: z.__setitem__(5, z[5] - 1), "need 110592 bytes, the compressed section says it holds 1105"),
    (lambda z, d: z.__setitem__(4, 0), "invalid compressed size 0"),
    (lambda z, d: z.__setitem__(3, 10**7), "lies outside the"),
    (lambda z, d: z.__setitem__(2, [96, 96]), "need 36864 bytes"),
    (lambda z, d: z.pop(), "must be \\[codec, dtype, row shape, offset, nbytes, raw nbytes\\]"),
])
def test_a_malformed_compressed_column_is_refused_by_name(mutate, message):
    with pytest.raises(RecordDecodeError, match=message) as err:
        decode_batch(_rebuild(mutate), max_size=MAX, where="record at offset 7")
    assert "record at offset 7" in str(err.value) and "image.cam" in str(err.value)


def _section(payload: bytes, replace) -> bytes:
    """``payload`` with its image column's compressed section replaced by ``replace(section)``."""
    (size,) = struct.unpack_from("<I", payload)
    doc = unpackb(payload[4:4 + size], max_size=MAX)
    data = bytearray(payload[4 + size:])
    spec = doc[4]["obs"]["d"]["image.cam"]["z"]
    offset, nbytes = spec[3], spec[4]
    new = replace(bytes(data[offset:offset + nbytes]))
    # the sections after it move by the difference in size
    shift = len(new) - nbytes
    for column in _stacked(doc[4]):
        if column[-3 if len(column) == 6 else 2] > offset:
            column[3 if len(column) == 6 else 2] += shift
    spec[4] = len(new)
    data[offset:offset + nbytes] = new
    head = packb(doc)
    return struct.pack("<I", len(head)) + head + bytes(data)


def _stacked(columns):
    for column in columns.values():
        if isinstance(column, dict):
            form, value = next(iter(column.items()))
            if form in ("a", "z"):
                yield value
            elif form == "d":
                yield from _stacked(value)


def _checked(size: int, **options) -> bytes:
    return zstandard.ZstdCompressor(**options).compress(bytes(size))


@pytest.mark.parametrize("replace, message", [
    (lambda s: s[:20] + bytes(len(s) - 20), "does not decompress"),  # damaged after its header
    (lambda s: s[:-2], "does not decompress"),  # its checksum cut short
    (lambda s: s + _checked(10, write_checksum=True), "does not decompress"),  # something after it
    (lambda s: _checked(1000, write_checksum=True), "frame says it holds 1000, not the 110592 bytes"),
    # a frame that says it is large is refused before it is decompressed (into that much memory)
    (lambda s: _checked(10**6, write_checksum=True), "frame says it holds 1000000, not the 110592"),
    (lambda s: _checked(110592, write_checksum=True, write_content_size=False),
     "frame says it holds no size"),
    (lambda s: _checked(110592), "frame carries no checksum"),
])
@pytest.mark.parametrize("writable", [True, False])
def test_a_compressed_section_that_holds_something_else_is_refused(replace, message, writable):
    payload = _section(encode_batch(_rows(4), compress="zstd"), replace)
    with pytest.raises(RecordDecodeError, match=message):
        decode_batch(payload, max_size=MAX, where="record", writable=writable)


def test_compressed_columns_may_not_decode_to_more_than_a_record_may_hold():
    rows = _rows(32)
    payload = encode_batch(rows, compress="zstd")
    raw = 32 * 96 * 96 * 3
    with pytest.raises(RecordDecodeError, match=f"would decode to {raw} bytes or more, over the limit of "
                                                f"{len(payload) + 100} bytes"):
        decode_batch(payload, max_size=len(payload) + 100, where="record")
    # many small compressed columns: what they hold together is what is bounded
    many = [Transition({f"image.k{k}": np.zeros((96, 96, 3), np.uint8) for k in range(8)},
                       np.zeros(2, np.float32), 0.0, np.zeros(2, np.float32), False, False, actor_id="x",
                       seq=1 + i) for i in range(64)]
    bomb = encode_batch(many, compress="zstd")
    assert len(bomb) < 20_000  # 14 MB of zeros
    with pytest.raises(RecordDecodeError, match=r"image\.k[0-9]'\]: the compressed columns would decode to"):
        decode_batch(bomb, max_size=4 << 20, where="record", writable=False)
    assert len(list(decode_batch(bomb, max_size=16 << 20))) == 64


def test_the_cache_keeps_compressed_batches_and_reads_them_back(tmp_path):
    rows = _rows(200)
    with ReplayCache(tmp_path / "c", CacheConfig(durability="fsync")) as cache:
        for i in range(0, 200, 50):
            cache.append_batch(encode_batch(rows[i:i + 50], compress="zstd"))
    with ReplayCache(tmp_path / "c") as cache:
        back = [t for _, t in cache.iter_transitions()]
    assert [encode_transition(t) for t in back] == [encode_transition(t) for t in rows]
