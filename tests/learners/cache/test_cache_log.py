"""The log on LMDB: offsets, durability, group commit, reopening, segments and their markers."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import lmdb
import pytest

from learners.cache import (
    CacheClosedError,
    CacheConfig,
    CacheLockedError,
    NoSuchRecordError,
    RecordTooLargeError,
    ReplayCache,
)
from learners.cache import format as record_format
from learners.cache.format import KIND_TRANSITION

SMALL = CacheConfig(segment_bytes=64 * 1024, commit_interval_ms=1.0)


def records(n: int, size: int = 700) -> list[bytes]:
    return [i.to_bytes(4, "little") + os.urandom(size) for i in range(n)]


def data_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("*.lmdb/data.mdb"))


def test_offsets_are_record_numbers_across_segments_and_read_back(tmp_path: Path) -> None:
    data = records(300)
    with ReplayCache(tmp_path / "c", SMALL) as cache:
        offsets = [cache.append(r) for r in data]
        assert offsets == list(range(300))
        assert cache.wait_durable(offsets[-1], timeout=10)
        assert cache.durable_offset == 300
        assert [cache.read(o) for o in offsets] == data
        assert cache.stats().segments > 3
        assert cache.stats().records == 300
    with ReplayCache(tmp_path / "c", SMALL) as cache:
        assert [cache.read(o) for o in offsets] == data
        assert [r for _, r in cache.iter_records()] == data
        assert [o for o, _ in cache.iter_records(250)] == offsets[250:]
        more = cache.append(b"after reopen")
        assert more == 300
        assert cache.wait_durable(more, timeout=10) and cache.read(more) == b"after reopen"


def test_sealed_segments_are_marked_and_a_lost_marker_costs_only_a_check(tmp_path: Path) -> None:
    with ReplayCache(tmp_path, SMALL) as cache:
        offsets = cache.append_many(records(300))
        cache.flush(timeout=10)
    segments = sorted(tmp_path.glob("*.lmdb"))
    assert len(segments) > 3
    assert all((s / "SEALED").exists() for s in segments[:-1])
    assert not (segments[-1] / "SEALED").exists() and (segments[-1] / "CLOSED").exists()
    # Without its marker a sealed segment ends where the next begins, and LMDB's structural
    # check stands in for the digest before the file is opened.
    (segments[1] / "SEALED").unlink()
    with ReplayCache(tmp_path, SMALL) as cache:
        assert list(cache.log.offsets()) == offsets
        assert cache.read(offsets[-1]) is not None


def test_append_many_takes_memoryviews_like_zeromq_frames(tmp_path: Path) -> None:
    data = records(50)
    buffers = [bytearray(d) for d in data]
    with ReplayCache(tmp_path, SMALL) as cache:
        offsets = cache.log.append_many([memoryview(b) for b in buffers], KIND_TRANSITION)
        for b in buffers:  # the caller's buffers are reused at once: the cache kept its own copy
            b[:] = b"\x00" * len(b)
        assert cache.wait_durable(offsets[-1], timeout=10)
        assert [cache.read_raw(o) for o in offsets] == data
        single = cache.log.append(memoryview(data[0]), KIND_TRANSITION)
        assert cache.flush(timeout=10) and cache.read_raw(single) == data[0]


@pytest.mark.parametrize("durability", ["fsync", "os-buffered", "none"])
def test_every_durability_mode_persists_on_close(tmp_path: Path, durability: str) -> None:
    config = CacheConfig(durability=durability, commit_interval_ms=50.0, segment_bytes=64 * 1024)
    with ReplayCache(tmp_path, config) as cache:
        offsets = cache.append_many(records(200))
        assert cache.wait_durable(offsets[-1], timeout=10)
        assert cache.durable_offset == 200
    with ReplayCache(tmp_path, config) as cache:
        assert [o for o, _ in cache.iter_records()] == offsets


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
        assert sorted(everything) == list(range(800))
        for k, offsets in enumerate(got):
            assert all(cache.read(o) == bytes([k]) * 300 for o in offsets)


def test_record_over_the_limit_is_rejected_before_anything_is_written(tmp_path: Path) -> None:
    config = CacheConfig(max_record_bytes=1000)
    with ReplayCache(tmp_path, config) as cache:
        offset = cache.append(b"ok")
        cache.flush(timeout=10)
        size = data_bytes(tmp_path)
        with pytest.raises(RecordTooLargeError, match="1001 bytes exceeds max_record_bytes=1000"):
            cache.append(b"z" * 1001)
        with pytest.raises(RecordTooLargeError):
            cache.append_many([b"fine", b"z" * 1001])
        cache.flush(timeout=10)
        assert data_bytes(tmp_path) == size
        assert list(cache.log.offsets()) == [offset]
        assert cache.append(b"next") == offset + 1  # no offset was used up


def test_reads_of_missing_offsets_say_so(tmp_path: Path) -> None:
    with ReplayCache(tmp_path) as cache:
        offset = cache.append(b"abc")
        cache.flush(timeout=10)
        with pytest.raises(NoSuchRecordError, match="not \\(yet\\) a durable record"):
            cache.read(offset + 1)
        with pytest.raises(NoSuchRecordError, match="removed by retention"):
            cache.read(-1)


def test_one_writer_at_a_time_and_readers_alongside(tmp_path: Path) -> None:
    with ReplayCache(tmp_path, SMALL) as cache:
        first = cache.append_many(records(200))
        cache.flush(timeout=10)
        with pytest.raises(CacheLockedError, match="another process"):
            ReplayCache(tmp_path)
        with ReplayCache(tmp_path, CacheConfig(read_only=True)) as reader:
            assert [reader.read_raw(o) for o in first] == [cache.read_raw(o) for o in first]
            with pytest.raises(CacheClosedError, match="read-only"):
                reader.append(b"no")
        later = cache.append(b"after the reader left")  # the shared environments stay open
        assert cache.wait_durable(later, timeout=10) and cache.read(later) == b"after the reader left"
    with pytest.raises(CacheClosedError, match="closed"):
        cache.append(b"late")


def test_a_transaction_fuller_than_estimated_is_split_or_rolled(tmp_path: Path, monkeypatch) -> None:
    # Estimates 16 times too low: a 1 MiB transaction by estimate is 16 MiB, more than the map
    # (2 x segment_bytes + 8 MiB) holds. LMDB's MapFullError then halves the transaction in an
    # empty segment, or moves the rest to a new one; nothing is lost or stuck.
    monkeypatch.setattr("learners.cache.commit.footprint", lambda n, page: n // 16)
    data = records(300, size=100_000)
    config = CacheConfig(segment_bytes=1 << 20, commit_bytes=1 << 20)
    with ReplayCache(tmp_path, config) as cache:
        offsets = cache.append_many(data)
        assert cache.wait_durable(offsets[-1], timeout=60)
        assert 2 <= cache.stats().segments <= 8
        assert all(cache.read(o) == d for o, d in zip(offsets, data))
    sizes = [p.stat().st_size for p in tmp_path.glob("*.lmdb/data.mdb")]
    assert max(sizes) > 4 << 20  # far past segment_bytes: estimates did not end these segments


def test_records_carry_their_offset_in_their_checksum(tmp_path: Path) -> None:
    with ReplayCache(tmp_path, SMALL) as cache:
        a, b = cache.append_many([b"first record", b"second record"])
        cache.flush(timeout=10)
        segment = cache.log.segments()[0]
    env = lmdb.open(str(segment.path), readonly=True, lock=False)
    with env.begin() as txn:
        (key_a, value_a), (key_b, _) = list(txn.cursor())
    env.close()
    assert record_format.check_record(key_a, value_a) == (a, 0, b"first record")
    assert record_format.offset_of(key_b) == b
    moved = record_format.OFFSET.pack(b) + key_a[8:]  # a's kind and CRC under b's offset
    assert record_format.check_record(moved, value_a) == "checksum mismatch"


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


def test_only_so_many_sealed_segments_stay_open(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("learners.cache.log.MAX_OPEN_SEALED", 2)
    data = records(600)
    with ReplayCache(tmp_path, SMALL) as cache:
        offsets = cache.append_many(data)
        cache.flush(timeout=10)
    with ReplayCache(tmp_path, CacheConfig(read_only=True)) as cache:
        segments = cache.log.segments()
        assert len(segments) > 5
        for _ in range(2):  # evicted segments reopen (without their digest check again)
            for offset in reversed(offsets):
                assert cache.read(offset) == data[offset]
                assert sum(s.is_open for s in segments if s.sealed) <= 2


def test_a_received_zeromq_frame_is_kept_without_a_copy_until_written(tmp_path: Path) -> None:
    """The learner hands the cache the batch frame ZeroMQ received (``owned=True``): the cache
    keeps that frame alive, not a copy, until it is written, in LMDB or in the blob file."""
    import gc

    import zmq

    small, large = records(1)[0], bytes(range(256)) * (6 << 10)  # 1.5 MiB: the blob file
    ctx = zmq.Context()
    pull, push = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    push.connect(f"tcp://127.0.0.1:{port}")
    try:
        with ReplayCache(tmp_path, CacheConfig(durability="fsync")) as cache:
            offsets = []
            for payload in (small, large):
                push.send(payload)
                frame = pull.recv(copy=False)
                view = memoryview(frame).toreadonly()
                offsets.append(cache.log.append(view, KIND_TRANSITION, owned=True))
                del frame, view
            gc.collect()  # only the cache's queue holds the frames now
            assert cache.flush(timeout=10)
            assert [cache.read_raw(o) for o in offsets] == [small, large]
        with ReplayCache(tmp_path, CacheConfig(read_only=True)) as cache:
            assert [cache.read_raw(o) for o in offsets] == [small, large]
    finally:
        pull.close(0)
        push.close(0)
        ctx.term()
