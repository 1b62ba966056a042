"""The log: offsets, durability, group commit, reopening, segments and their indexes."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from learners.cache import (
    CacheClosedError,
    CacheConfig,
    CacheLockedError,
    NoSuchRecordError,
    RecordTooLargeError,
    ReplayCache,
)
from learners.cache.format import SEGMENT_HEADER_SIZE

SMALL = CacheConfig(segment_bytes=16 * 1024, commit_interval_ms=1.0)


def records(n: int, size: int = 700) -> list[bytes]:
    return [i.to_bytes(4, "little") + os.urandom(size) for i in range(n)]


def test_offsets_increase_across_segments_and_read_back(tmp_path: Path) -> None:
    data = records(100)
    with ReplayCache(tmp_path / "c", SMALL) as cache:
        offsets = [cache.append(r) for r in data]
        assert cache.wait_durable(offsets[-1], timeout=10)
        assert offsets == sorted(offsets) and len(set(offsets)) == 100
        assert offsets[0] == SEGMENT_HEADER_SIZE
        assert cache.durable_offset > offsets[-1]
        assert [cache.read(o) for o in offsets] == data
        assert cache.stats().segments > 3
    with ReplayCache(tmp_path / "c", SMALL) as cache:
        assert [cache.read(o) for o in offsets] == data
        assert [r for _, r in cache.iter_records()] == data
        more = cache.append(b"after reopen")
        assert more > offsets[-1]
        assert cache.wait_durable(more, timeout=10) and cache.read(more) == b"after reopen"


def test_sealed_segments_have_indexes_used_on_open(tmp_path: Path) -> None:
    with ReplayCache(tmp_path, SMALL) as cache:
        offsets = cache.append_many(records(60))
        cache.flush(timeout=10)
    logs = sorted(tmp_path.glob("*.log"))
    indexes = sorted(tmp_path.glob("*.idx"))
    assert len(indexes) == len(logs) - 1  # all but the active segment
    # A lost index is rebuilt by a scan, and the records are the same.
    indexes[0].unlink()
    with ReplayCache(tmp_path, SMALL) as cache:
        assert list(cache.log.offsets()) == offsets
    assert indexes[0].exists()


def test_append_many_matches_append(tmp_path: Path) -> None:
    data = records(50)
    with ReplayCache(tmp_path, SMALL) as cache:
        offsets = cache.append_many(data)
        assert cache.wait_durable(offsets[-1], timeout=10)
        assert [cache.read(o) for o in offsets] == data


@pytest.mark.parametrize("durability", ["fsync", "os-buffered", "none"])
def test_every_durability_mode_persists_on_close(tmp_path: Path, durability: str) -> None:
    config = CacheConfig(durability=durability, commit_interval_ms=50.0)
    with ReplayCache(tmp_path, config) as cache:
        offset = cache.append(b"x" * 100)
        assert cache.wait_durable(offset, timeout=10)
    with ReplayCache(tmp_path, config) as cache:
        assert cache.read(offset) == b"x" * 100


def test_wait_durable_times_out_for_an_offset_never_appended(tmp_path: Path) -> None:
    with ReplayCache(tmp_path) as cache:
        offset = cache.append(b"a")
        assert cache.wait_durable(offset, timeout=10)
        assert not cache.wait_durable(offset + 10_000, timeout=0.05)


def test_group_commit_by_bytes_makes_records_durable_without_the_timer(tmp_path: Path) -> None:
    config = CacheConfig(commit_interval_ms=60_000.0, commit_bytes=4096)
    with ReplayCache(tmp_path, config) as cache:
        offsets = [cache.append(b"y" * 1000) for _ in range(10)]
        assert cache.wait_durable(offsets[3], timeout=10)  # crossed 4 KiB long before 60 s


def test_appends_from_threads_get_distinct_offsets(tmp_path: Path) -> None:
    got: list[list[int]] = [[] for _ in range(4)]
    with ReplayCache(tmp_path, SMALL) as cache:

        def work(k: int) -> None:
            got[k] = [cache.append(bytes([k]) * 300) for _ in range(200)]

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        cache.flush(timeout=10)
        everything = [o for g in got for o in g]
        assert len(set(everything)) == 800
        for k, offsets in enumerate(got):
            assert all(cache.read(o) == bytes([k]) * 300 for o in offsets)


def test_record_over_the_limit_is_rejected_before_anything_is_written(tmp_path: Path) -> None:
    config = CacheConfig(max_record_bytes=1000)
    with ReplayCache(tmp_path, config) as cache:
        offset = cache.append(b"ok")
        cache.flush(timeout=10)
        size = sum(p.stat().st_size for p in tmp_path.glob("*.log"))
        with pytest.raises(RecordTooLargeError, match="1001 bytes exceeds max_record_bytes=1000"):
            cache.append(b"z" * 1001)
        with pytest.raises(RecordTooLargeError):
            cache.append_many([b"fine", b"z" * 1001])
        cache.flush(timeout=10)
        assert sum(p.stat().st_size for p in tmp_path.glob("*.log")) == size
        assert list(cache.log.offsets()) == [offset]


def test_reads_of_missing_offsets_say_so(tmp_path: Path) -> None:
    with ReplayCache(tmp_path) as cache:
        offset = cache.append(b"abc")
        cache.flush(timeout=10)
        with pytest.raises(NoSuchRecordError, match="no record starts at offset"):
            cache.read(offset + 1)
        with pytest.raises(NoSuchRecordError, match="not \\(yet\\) a durable record"):
            cache.read(offset + 10_000)


def test_one_writer_at_a_time_and_readers_alongside(tmp_path: Path) -> None:
    with ReplayCache(tmp_path) as cache:
        offset = cache.append(b"first")
        cache.flush(timeout=10)
        with pytest.raises(CacheLockedError, match="another process"):
            ReplayCache(tmp_path)
        with ReplayCache(tmp_path, CacheConfig(read_only=True)) as reader:
            assert reader.read(offset) == b"first"
            with pytest.raises(CacheClosedError, match="read-only"):
                reader.append(b"no")
    with pytest.raises(CacheClosedError, match="closed"):
        cache.append(b"late")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("durability", "sometimes", "CacheConfig.durability='sometimes'"),
        ("segment_bytes", 100, "CacheConfig.segment_bytes=100"),
        ("commit_interval_ms", 0, "CacheConfig.commit_interval_ms=0"),
        ("image_codec", "jpeg", "CacheConfig.image_codec='jpeg'"),
        ("max_record_bytes", 1 << 40, "CacheConfig.max_record_bytes="),
        ("retention_bytes", -1, "CacheConfig.retention_bytes=-1"),
    ],
)
def test_config_errors_name_the_field_and_value(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        CacheConfig(**{field: value})
