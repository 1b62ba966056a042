"""External records: large payloads in a segment's blob file, LMDB holding references to them."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest

from learners.cache import CacheConfig, CacheCorruptError, ReplayCache
from learners.cache.blobs import ALIGN, BLOB_NAME, REF, BlobWriter, read_blob
from learners.cache.files import read_marker, write_marker
from learners.cache.verify import verify_cache

LARGE = 40_000
CONFIG = CacheConfig(segment_bytes=1024 * 1024, commit_interval_ms=1.0, external_bytes=32 * 1024)


def build(directory: Path, n: int = 90, seed: int = 0, config: CacheConfig = CONFIG) -> dict[int, bytes]:
    """Every third record large (external), the rest small (inside LMDB)."""
    rng = random.Random(seed)
    sizes = [LARGE + rng.randint(0, 5000) if i % 3 == 0 else rng.randint(10, 900) for i in range(n)]
    data = [rng.randbytes(size) for size in sizes]
    with ReplayCache(directory, config) as cache:
        offsets = cache.append_many(data)
        assert cache.flush(timeout=30)
    return dict(zip(offsets, data))


def read_all(directory: Path, config: CacheConfig = CONFIG) -> dict[int, bytes]:
    with ReplayCache(directory, config) as cache:
        return dict(cache.iter_records(raw=True))


def blob_files(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*.lmdb/{BLOB_NAME}"))


def test_large_payloads_live_in_blob_files_and_read_back_exactly(tmp_path: Path) -> None:
    expected = build(tmp_path)
    blobs = blob_files(tmp_path)
    assert len(blobs) >= 2  # 30 large records of ~42 KB roll 1 MiB segments
    large = sum(len(v) for v in expected.values() if len(v) >= LARGE)
    assert sum(p.stat().st_size for p in blobs) >= large
    assert all(p.stat().st_size % ALIGN == 0 for p in blobs)
    lmdb_bytes = sum((p.parent / "data.mdb").stat().st_size for p in blobs)
    assert lmdb_bytes < large / 3  # LMDB holds the small records and the references only
    for p in blobs:  # each segment stays near its size bound, blob file included
        assert p.stat().st_size + (p.parent / "data.mdb").stat().st_size < 1024 * 1024 + 2 * (LARGE + 5000)
    assert read_all(tmp_path) == expected
    with ReplayCache(tmp_path, CONFIG) as cache:  # sampling and single reads go the same way
        for record in cache.sample(50, np.random.default_rng(0)):
            assert record in expected.values()
        assert all(cache.read(o) == expected[o] for o in expected)
    report = verify_cache(tmp_path)
    assert report.ok, report.problems
    assert sum(s.records for s in report.segments) == len(expected)


@pytest.mark.parametrize("durability", ["fsync", "os-buffered", "none"])
def test_external_records_read_back_in_every_durability_mode(tmp_path: Path, durability: str) -> None:
    directory = tmp_path / durability
    config = CacheConfig(segment_bytes=1024 * 1024, external_bytes=1024, durability=durability)
    payloads = [os.urandom(3000 + i) for i in range(30)]
    with ReplayCache(directory, config) as cache:
        offsets = [cache.append(p) for p in payloads]
        assert cache.flush(timeout=30)
        assert [cache.read(o) for o in offsets] == payloads  # the writer reads its own blobs
    assert blob_files(directory)
    assert read_all(directory, config) == dict(zip(offsets, payloads))


def test_a_flipped_byte_in_a_blob_fails_its_record_only(tmp_path: Path) -> None:
    expected = build(tmp_path)
    victim = next(o for o, v in expected.items() if len(v) >= LARGE)
    blob = blob_files(tmp_path)[0]
    raw = bytearray(blob.read_bytes())
    at = raw.find(expected[victim])
    assert at >= 0
    raw[at + 1000] ^= 0x5A
    blob.write_bytes(bytes(raw))

    with ReplayCache(tmp_path, CONFIG) as cache:
        with pytest.raises(CacheCorruptError, match=f"checksum mismatch at offset {victim}"):
            cache.read(victim)
        returned = dict(cache.iter_records(raw=True))
    assert victim not in returned
    assert returned == {o: v for o, v in expected.items() if o != victim}
    report = verify_cache(tmp_path)
    assert [(p.offset, p.problem) for p in report.problems] == [(victim, "checksum mismatch")]


def test_a_truncated_blob_file_is_reported_and_appends_continue(tmp_path: Path) -> None:
    expected = build(tmp_path)
    blob = blob_files(tmp_path)[-1]  # the active segment's
    size = blob.stat().st_size
    with open(blob, "r+b") as f:
        f.truncate(size // 2)
    with ReplayCache(tmp_path, CONFIG) as cache:
        returned = dict(cache.iter_records(raw=True))
        lost = sorted(set(expected) - set(returned))
        assert lost and all(len(expected[o]) >= LARGE for o in lost)  # only external ones
        assert all(expected[o] == v for o, v in returned.items())
        with pytest.raises(CacheCorruptError, match=f"cut short in {BLOB_NAME}.*at offset {lost[-1]}"):
            cache.read(lost[-1])
        more = os.urandom(LARGE)
        offset = cache.append(more)
        assert cache.wait_durable(offset, timeout=30) and cache.read(offset) == more
    assert read_all(tmp_path)[offset] == more
    problems = verify_cache(tmp_path).problems
    assert {p.offset for p in problems} == set(lost)


def test_a_torn_unreferenced_tail_is_skipped_by_the_next_writer(tmp_path: Path) -> None:
    expected = build(tmp_path)
    blob = blob_files(tmp_path)[-1]
    with open(blob, "ab") as f:  # a group written, its LMDB commit never made (a kill between)
        f.write(os.urandom(5000))
    assert verify_cache(tmp_path).ok
    more = [os.urandom(LARGE) for _ in range(3)]
    with ReplayCache(tmp_path, CONFIG) as cache:
        offsets = cache.append_many(more)
        assert cache.flush(timeout=30)
    assert read_all(tmp_path) == {**expected, **dict(zip(offsets, more))}
    assert verify_cache(tmp_path).ok


def test_salvage_of_a_damaged_segment_still_reads_its_external_records(tmp_path: Path) -> None:
    expected = build(tmp_path, n=150)
    victim = blob_files(tmp_path)[0].parent  # a sealed segment
    data_path = victim / "data.mdb"
    raw = bytearray(data_path.read_bytes())
    raw[:8192] = bytes(8192)  # both meta pages gone: LMDB cannot open it, salvage reads the leaves
    data_path.write_bytes(bytes(raw))
    report = verify_cache(tmp_path)
    assert report.segments[0].check == "salvaged"
    returned = read_all(tmp_path)
    assert all(expected[o] == v for o, v in returned.items())
    base = int(victim.name[:20])
    salvaged_large = [o for o in returned if o < base + 100 and len(expected[o]) >= LARGE and o >= base]
    assert salvaged_large  # external records came back through salvage, checked by their CRC


def test_a_format_2_segment_keeps_its_payloads_inside_lmdb(tmp_path: Path) -> None:
    with ReplayCache(tmp_path, CONFIG):
        pass
    (active,) = tmp_path.glob("*.lmdb")
    marker = read_marker(active / "SEGMENT")
    write_marker(active / "SEGMENT", {**marker, "format_version": 2})  # as an older rill made it
    payload = os.urandom(LARGE)
    with ReplayCache(tmp_path, CONFIG) as cache:
        offset = cache.append(payload)
        assert cache.wait_durable(offset, timeout=30)
    assert not (active / BLOB_NAME).exists()  # an older rill can still read this segment
    assert read_all(tmp_path) == {offset: payload}


@pytest.mark.parametrize("sync", [True, False])
def test_without_direct_io_a_blob_file_goes_through_the_page_cache(tmp_path: Path, sync: bool) -> None:
    # (where the file system refuses O_DIRECT, e.g. an older kernel's tmpfs, the writer falls back
    # to this on its own)
    writer = BlobWriter(tmp_path / BLOB_NAME, sync=sync, direct=False)
    assert not writer.direct
    payloads = [os.urandom(n) for n in (1, ALIGN, ALIGN + 1, 70_000)]
    refs = writer.write(payloads[:2]) + writer.write(payloads[2:])
    writer.flush()
    writer.close()
    fd = os.open(tmp_path / BLOB_NAME, os.O_RDONLY)
    try:
        assert [read_blob(fd, ref) for ref in refs] == payloads
        assert "cut short" in read_blob(fd, REF.pack(ALIGN, 10**12))  # a damaged length allocates nothing
        assert "reference of 3 bytes" in read_blob(fd, b"abc")
    finally:
        os.close(fd)
    reopened = BlobWriter(tmp_path / BLOB_NAME, sync=sync)
    assert reopened.end == (tmp_path / BLOB_NAME).stat().st_size  # appends after what is there
    reopened.close()


def test_external_bytes_is_validated() -> None:
    with pytest.raises(ValueError, match=r"CacheConfig\.external_bytes=0"):
        CacheConfig(external_bytes=0)
    assert CacheConfig(external_bytes=None).external_bytes is None
