"""Damaged files on disk: torn and garbage tails, flipped bytes, broken LMDB structure, foreign or
newer directories. Damage is reported by segment and offset, never returned, and confined to its
segment; appends continue."""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from learners.cache import CacheConfig, CacheCorruptError, CacheFormatError, ReplayCache
from learners.cache.files import write_marker
from learners.cache.verify import verify_cache

CONFIG = CacheConfig(segment_bytes=64 * 1024, commit_interval_ms=1.0)


def build(directory: Path, n: int = 600, seed: int = 0) -> dict[int, bytes]:
    rng = random.Random(seed)
    data = [rng.randbytes(rng.randint(50, 600)) for _ in range(n)]
    with ReplayCache(directory, CONFIG) as cache:
        offsets = cache.append_many(data)
    return dict(zip(offsets, data))


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


def check_reopened(directory: Path, expected: dict[int, bytes]) -> dict[int, bytes]:
    """Open the damaged cache: nothing wrong is returned, and appends continue past every old
    offset. Returns what was readable."""
    with ReplayCache(directory, CONFIG) as cache:
        returned = dict(cache.iter_records(raw=True))
        assert all(expected[o] == d for o, d in returned.items())
        assert all(r in expected.values() for r in cache.sample(200, np.random.default_rng(0)))
        offset = cache.append(b"continues")
        assert offset >= max(expected) + 1
        assert cache.wait_durable(offset, timeout=10) and cache.read(offset) == b"continues"
    with ReplayCache(directory, CONFIG) as cache:  # and once more, after that recovery
        assert dict(cache.iter_records(raw=True)) == {**returned, offset: b"continues"}
    return returned


def test_garbage_after_the_last_page_of_the_active_segment_changes_nothing(tmp_path: Path) -> None:
    expected = build(tmp_path)
    active = sorted(tmp_path.glob("*.lmdb"))[-1]
    with open(active / "data.mdb", "ab") as f:  # the pages of a transaction that never committed
        f.write(os.urandom(5000))
    assert verify_cache(tmp_path).ok
    assert check_reopened(tmp_path, expected) == expected


def test_a_torn_active_segment_is_salvaged_and_appends_continue(
    tmp_path: Path, segment_dirs, caplog: pytest.LogCaptureFixture
) -> None:
    original = tmp_path / "original"
    expected = build(original)
    active = segment_dirs(original)[-1]
    base = int(active.name[:20])
    size = (active / "data.mdb").stat().st_size
    rng = random.Random(1)
    for trial in range(6):
        work = tmp_path / f"t{trial}"
        shutil.copytree(original, work)
        cut = rng.randint(3 * 4096, size - 1)
        os.truncate(segment_dirs(work)[-1] / "data.mdb", cut)  # a torn tail: LMDB would fault on it
        report = verify_cache(work)
        assert not report.ok
        assert {p.segment for p in report.problems} == {active.name}
        assert "LMDB structure damaged" in report.problems[0].problem
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            returned = check_reopened(work, expected)
        assert f"segment {active.name}: not closed cleanly and damaged" in caplog.text
        assert "salvaged" in caplog.text
        assert {o for o in expected if o < base} <= set(returned)  # sealed segments untouched
        salvaged = [o for o in returned if o >= base]
        assert salvaged == sorted(salvaged)
        assert len(returned) < len(expected)


def test_flipped_payload_bytes_in_sealed_segments_are_reported_and_skipped(
    tmp_path: Path, damage_payload, segment_dirs
) -> None:
    expected = build(tmp_path)
    sealed = segment_dirs(tmp_path)[:-1]
    assert len(sealed) >= 3
    rng = random.Random(2)
    damaged: set[int] = set()
    for segment in (sealed[0], sealed[2]):
        base = int(segment.name[:20])
        stop = int(segment_dirs(tmp_path)[segment_dirs(tmp_path).index(segment) + 1].name[:20])
        for victim in rng.sample(range(base, stop), 2):
            damage_payload(segment, expected[victim])
            damaged.add(victim)

    report = verify_cache(tmp_path)
    assert not report.ok
    assert {p.offset for p in report.problems} == damaged
    assert {p.problem for p in report.problems} == {"checksum mismatch"}
    assert {p.segment for p in report.problems} == {sealed[0].name, sealed[2].name}

    with ReplayCache(tmp_path, CONFIG) as cache:
        for offset in damaged:
            message = f"segment .+\\.lmdb: checksum mismatch at offset {offset}"
            with pytest.raises(CacheCorruptError, match=message):
                cache.read(offset)
    returned = check_reopened(tmp_path, expected)
    assert returned == {o: d for o, d in expected.items() if o not in damaged}


def test_a_flipped_byte_in_the_active_segment_keeps_the_records_after_it(
    tmp_path: Path, damage_payload, segment_dirs
) -> None:
    expected = build(tmp_path)
    active = segment_dirs(tmp_path)[-1]
    first = int(active.name[:20])
    damage_payload(active, expected[first], at=0)
    returned = check_reopened(tmp_path, expected)
    assert returned == {o: d for o, d in expected.items() if o != first}


@pytest.mark.parametrize("damage", ["truncated", "garbage page", "zeroed meta pages"])
def test_broken_lmdb_structure_is_confined_to_its_segment(tmp_path: Path, damage: str, segment_dirs) -> None:
    expected = build(tmp_path)
    victim = segment_dirs(tmp_path)[1]
    base, stop = (int(p.name[:20]) for p in segment_dirs(tmp_path)[1:3])
    data_path = victim / "data.mdb"
    raw = bytearray(data_path.read_bytes())
    if damage == "truncated":
        raw = raw[: len(raw) // 2]
    elif damage == "garbage page":
        page = len(raw) // 4096 // 2
        raw[page * 4096 : (page + 1) * 4096] = random.Random(3).randbytes(4096)
    else:
        raw[:8192] = bytes(8192)
    data_path.write_bytes(bytes(raw))

    report = verify_cache(tmp_path)
    assert not report.ok
    assert {p.segment for p in report.problems} == {victim.name}  # the others verify clean
    assert report.segments[1].check == "salvaged"
    lost = sum(p.count for p in report.problems if p.problem.endswith("lost"))
    assert report.segments[1].records + lost == stop - base

    returned = check_reopened(tmp_path, expected)
    assert {o for o in expected if not base <= o < stop} <= set(returned)
    assert len([o for o in returned if base <= o < stop]) == report.segments[1].records
    with ReplayCache(tmp_path, CONFIG) as cache:
        for offset in set(range(base, stop)) - set(returned):
            with pytest.raises(CacheCorruptError, match=f"segment {victim.name}: .*at offset {offset}"):
                cache.read(offset)


def test_a_directory_that_is_not_a_cache_is_refused_untouched(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    before = snapshot(tmp_path)
    with pytest.raises(CacheFormatError, match="not a rill replay cache"):
        ReplayCache(tmp_path)
    with pytest.raises(CacheFormatError):
        verify_cache(tmp_path)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(("version", "message"), [(99, "format version 99 is newer"), (1, "no longer read")])
def test_another_cache_format_is_refused_untouched(tmp_path: Path, version: int, message: str) -> None:
    build(tmp_path)
    meta = json.loads((tmp_path / "CACHE").read_text())
    meta["format_version"] = version
    (tmp_path / "CACHE").write_text(json.dumps(meta))
    with open(sorted(tmp_path.glob("*.lmdb"))[-1] / "data.mdb", "ab") as f:
        f.write(b"torn")  # would make an opening cache check the segment and rewrite markers
    before = snapshot(tmp_path)
    with pytest.raises(CacheFormatError, match=message):
        ReplayCache(tmp_path)
    assert snapshot(tmp_path) == before


def test_a_segment_of_a_newer_format_is_refused_untouched(tmp_path: Path, segment_dirs) -> None:
    build(tmp_path)
    first = segment_dirs(tmp_path)[0]
    write_marker(first / "SEGMENT", {"format_version": 7, "base": 0, "created_at": 0.0})
    with open(segment_dirs(tmp_path)[-1] / "data.mdb", "ab") as f:
        f.write(b"torn")
    before = snapshot(tmp_path)
    with pytest.raises(CacheFormatError, match=f"segment {first.name}: segment format version 7"):
        ReplayCache(tmp_path)
    with pytest.raises(CacheFormatError, match="segment format version 7"):
        verify_cache(tmp_path)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("size", [0, 4096, 8192])
def test_a_segment_lmdb_never_finished_creating_is_no_damage(tmp_path: Path, size: int) -> None:
    expected = build(tmp_path)
    # A writer killed while LMDB created the next segment's files: no meta pages, no record.
    base = max(expected) + 1
    segment = tmp_path / f"{base:020d}.lmdb"
    segment.mkdir()
    write_marker(segment / "SEGMENT", {"format_version": 2, "base": base, "created_at": 0.0})
    (segment / "data.mdb").write_bytes(bytes(size))
    (segment / "lock.mdb").write_bytes(bytes(8192))
    (tmp_path / "LOCK").write_text("12345 a-previous-boot\n")
    report = verify_cache(tmp_path)
    assert report.ok and report.segments[-1].check == "never committed"
    assert check_reopened(tmp_path, expected) == expected
    with ReplayCache(tmp_path, CONFIG) as cache:
        assert cache.append(b"next") == base + 1  # "continues" took base
    assert verify_cache(tmp_path).ok


@pytest.mark.parametrize("damage", ["deleted", "cut to two pages"])
def test_a_closed_segment_whose_data_file_was_lost_is_damage_not_a_fresh_start(tmp_path: Path,
                                                                                 damage: str) -> None:
    # The last segment closed cleanly (its CLOSED marker records where it ended); then its data
    # file went missing or was cut to LMDB's two meta pages, what a segment never committed looks
    # like. It used to be taken as never committed: verify said OK with 0 records, and a writer
    # started the segment afresh, handing out the lost offsets again (a consumer past them would
    # skip the new records).
    expected = build(tmp_path, n=40)
    last = sorted(p for p in tmp_path.iterdir() if p.name.endswith(".lmdb"))[-1]
    data = last / "data.mdb"
    if damage == "deleted":
        data.unlink()
    else:
        os.truncate(data, 8192)
    report = verify_cache(tmp_path)
    assert not report.ok and report.segments[-1].check == "salvaged"
    lost = [p.problem for p in report.problems if p.problem.endswith("lost")]
    assert lost and lost[-1].endswith(f"..{max(expected)} lost"), report.problems
    with ReplayCache(tmp_path, CONFIG) as cache:
        offset = cache.append(b"after")
        assert offset > max(expected)  # no offset is handed out twice
        assert cache.wait_durable(offset, timeout=10) and cache.read(offset) == b"after"
