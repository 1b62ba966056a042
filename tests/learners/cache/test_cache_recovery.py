"""Torn tails, flipped bytes and foreign directories: recovery, verify and readers as specified."""

from __future__ import annotations

import json
import logging
import random
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from crc32c import crc32c

from learners.cache import CacheConfig, CacheCorruptError, CacheFormatError, ReplayCache
from learners.cache.format import SEGMENT_HEADER_SIZE
from learners.cache.verify import verify_cache

CONFIG = CacheConfig(segment_bytes=8 * 1024, commit_interval_ms=1.0)


def build(directory: Path, n: int = 60, seed: int = 0) -> dict[int, bytes]:
    rng = random.Random(seed)
    data = [rng.randbytes(rng.randint(50, 600)) for _ in range(n)]
    with ReplayCache(directory, CONFIG) as cache:
        offsets = cache.append_many(data)
    return dict(zip(offsets, data))


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


def active_segment(directory: Path) -> Path:
    return sorted(directory.glob("*.log"))[-1]


def test_torn_active_segment_is_truncated_at_the_last_whole_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    original = tmp_path / "original"
    expected = build(original)
    active = active_segment(original)
    base = int(active.name[:20])
    rng = random.Random(1)
    size = active.stat().st_size
    for trial in range(12):
        work = tmp_path / f"t{trial}"
        shutil.copytree(original, work)
        cut = rng.randint(SEGMENT_HEADER_SIZE, size - 1)
        with open(active_segment(work), "r+b") as f:
            f.truncate(cut)
        report = verify_cache(work)
        assert report.ok  # a torn tail of the active segment is not damage...
        assert any(p.torn_tail for p in report.problems) == (
            cut not in {o - base for o in expected}
        )
        caplog.clear()
        with caplog.at_level(logging.WARNING), ReplayCache(work, CONFIG) as cache:
            kept = {o: d for o, d in expected.items() if o - base + 12 + len(d) <= cut}
            assert {o: cache.read(o) for o in cache.log.offsets()} == kept
            offset = cache.append(b"continues")
            assert cache.wait_durable(offset, timeout=10) and cache.read(offset) == b"continues"
        torn = cut - max(
            (o - base + 12 + len(d) for o, d in kept.items()), default=SEGMENT_HEADER_SIZE
        )
        if torn:
            assert f"truncated {torn} bytes (1 torn record)" in caplog.text
            assert active.name in caplog.text


def test_garbage_after_the_last_record_is_dropped_with_a_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    expected = build(tmp_path)
    with open(active_segment(tmp_path), "ab") as f:
        f.write(b"\x00" * 5000)
    with caplog.at_level(logging.WARNING), ReplayCache(tmp_path, CONFIG) as cache:
        assert {o: cache.read(o) for o in cache.log.offsets()} == expected
    assert "truncated 5000 bytes" in caplog.text


def test_flipped_bytes_in_sealed_segments_are_reported_and_skipped(tmp_path: Path) -> None:
    expected = build(tmp_path, n=120)
    sealed = sorted(tmp_path.glob("*.log"))[:-1]
    assert len(sealed) >= 3
    rng = random.Random(2)
    damaged: set[int] = set()
    for path in (sealed[0], sealed[2]):
        base = int(path.name[:20])
        starts = sorted(o - base for o in expected if base <= o < base + path.stat().st_size)
        raw = bytearray(path.read_bytes())
        for _ in range(2):
            victim = rng.choice(starts)
            i = rng.randint(victim, victim + 12 + len(expected[base + victim]) - 1)
            raw[i] ^= 1 << rng.randint(0, 7)
            damaged.add(base + victim)
        path.write_bytes(bytes(raw))

    report = verify_cache(tmp_path)
    assert not report.ok
    assert {p.offset for p in report.problems} == damaged
    assert {p.segment for p in report.problems} == {sealed[0].name, sealed[2].name}

    with ReplayCache(tmp_path, CONFIG) as cache:
        returned = dict(cache.iter_records())
        assert returned == {o: d for o, d in expected.items() if o not in damaged}
        for offset in damaged:
            with pytest.raises(CacheCorruptError, match=f"segment .+\\.log: .+ at offset {offset}"):
                cache.read(offset)
        valid = set(expected.values())
        assert all(r in valid for r in cache.sample(300, np.random.default_rng(0)))
        offset = cache.append(b"still appending")
        assert cache.wait_durable(offset, timeout=10)


def test_a_damaged_record_inside_the_active_segment_keeps_the_records_after_it(
    tmp_path: Path,
) -> None:
    expected = build(tmp_path)
    active = active_segment(tmp_path)
    base = int(active.name[:20])
    mine = sorted(o for o in expected if o >= base)
    assert len(mine) >= 3
    raw = bytearray(active.read_bytes())
    raw[mine[0] - base + 12] ^= 0xFF  # first payload byte of the first record
    active.write_bytes(bytes(raw))
    with ReplayCache(tmp_path, CONFIG) as cache:
        assert {o: cache.read(o) for o in cache.log.offsets()} == {
            o: d for o, d in expected.items() if o != mine[0]
        }
        with pytest.raises(CacheCorruptError, match=f"at offset {mine[0]}"):
            cache.read(mine[0])


def test_a_directory_that_is_not_a_cache_is_refused_untouched(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    before = snapshot(tmp_path)
    with pytest.raises(CacheFormatError, match="not a rill replay cache"):
        ReplayCache(tmp_path)
    with pytest.raises(CacheFormatError):
        verify_cache(tmp_path)
    assert snapshot(tmp_path) == before


def test_a_newer_cache_format_is_refused_untouched(tmp_path: Path) -> None:
    build(tmp_path)
    meta = json.loads((tmp_path / "CACHE").read_text())
    meta["format_version"] = 99
    (tmp_path / "CACHE").write_text(json.dumps(meta))
    with open(active_segment(tmp_path), "ab") as f:
        f.write(b"torn")  # would be truncated by a recovery that ran
    before = snapshot(tmp_path)
    with pytest.raises(CacheFormatError, match="format version 99 is newer"):
        ReplayCache(tmp_path)
    assert snapshot(tmp_path) == before


def test_a_segment_of_a_newer_format_is_refused_untouched(tmp_path: Path) -> None:
    build(tmp_path)
    first = sorted(tmp_path.glob("*.log"))[0]
    raw = bytearray(first.read_bytes())
    struct.pack_into("<H", raw, 8, 7)  # format version
    struct.pack_into("<I", raw, 24, crc32c(bytes(raw[:24])))
    first.write_bytes(bytes(raw))
    with open(active_segment(tmp_path), "ab") as f:
        f.write(b"torn")
    before = snapshot(tmp_path)
    with pytest.raises(CacheFormatError, match=f"segment {first.name}: segment format version 7"):
        ReplayCache(tmp_path)
    assert snapshot(tmp_path) == before
