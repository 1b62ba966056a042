"""Named consumers (resume, tailing) and retention (size, age, never unconsumed data)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from learners.cache import CacheConfig, CacheError, ReplayCache

SMALL = CacheConfig(segment_bytes=64 * 1024, commit_interval_ms=1.0)


def fill(cache: ReplayCache, n: int, start: int = 0) -> list[int]:
    offsets = cache.append_many([i.to_bytes(4, "little") * 100 for i in range(start, start + n)])
    assert cache.flush(timeout=10)
    return offsets


def test_consumer_resumes_after_its_committed_record(tmp_path: Path) -> None:
    with ReplayCache(tmp_path, SMALL) as cache:
        offsets = fill(cache, 50)
        reader = cache.consumer("learner")
        first = reader.poll(max_records=20)
        assert [o for o, _ in first] == offsets[:20]
        reader.commit(offsets[9])  # processed only ten of them
        more = reader.poll(max_records=5)  # in memory, the position moved on
        assert [o for o, _ in more] == offsets[20:25]
    with ReplayCache(tmp_path, SMALL) as cache:
        reader = cache.consumer("learner")
        assert [o for o, _ in reader.poll(max_records=3)] == offsets[10:13]
        with pytest.raises(CacheError, match="behind its committed position"):
            reader.commit(offsets[5])
        reader.commit()
        assert cache.consumers() == {"learner": offsets[12] + 1}
        other = cache.consumer("exporter")  # a new consumer starts at the beginning
        assert [o for o, _ in other.poll(max_records=2)] == offsets[:2]


def test_tailing_consumer_receives_records_appended_later(tmp_path: Path) -> None:
    with ReplayCache(tmp_path, SMALL) as cache:
        first = fill(cache, 3)
        reader = cache.consumer("learner")
        got: list[int] = []

        def tail() -> None:
            for offset, _record in reader.iter(follow=True, timeout=5):
                got.append(offset)
                if len(got) == 13:
                    return

        thread = threading.Thread(target=tail)
        thread.start()
        later = [cache.append(b"late %d" % i) for i in range(10)]
        thread.join(timeout=20)
        assert not thread.is_alive()
        assert got == first + later
        assert not reader.wait(timeout=0.01)  # nothing newer


def test_bad_consumer_names_are_refused(tmp_path: Path) -> None:
    with ReplayCache(tmp_path) as cache, pytest.raises(ValueError, match="consumer name"):
        cache.consumer("../escape")


def test_retention_by_size_never_deletes_what_a_consumer_has_not_passed(tmp_path: Path) -> None:
    config = CacheConfig(segment_bytes=64 * 1024, commit_interval_ms=1.0, retention_bytes=150_000)
    with ReplayCache(tmp_path, config) as cache:
        reader = cache.consumer("learner")
        offsets = fill(cache, 1000)
        segments = cache.log.segments()
        assert len(segments) > 5
        result = cache.apply_retention()
        assert result.deleted == [] and result.blocked_by == "learner"
        # The consumer passes the first three segments (and is one record short of the fourth).
        reader.commit(segments[3].base - 1)
        result = cache.apply_retention()
        assert result.deleted == [s.name for s in segments[:3]]
        assert result.blocked_by == "learner" and result.freed_bytes > 0
        assert cache.log.segments()[0].base == segments[3].base
        assert [o for o, _ in cache.iter_records()] == [o for o in offsets if o >= segments[3].base]
        assert not (tmp_path / segments[0].name).exists()
        reader.commit(segments[4].base - 2)  # still inside segment 3: it stays
        assert cache.apply_retention().deleted == []
        # Forced retention goes down to the size limit even past the consumer.
        result = cache.apply_retention(force=True)
        assert cache.stats().bytes <= 150_000 + 2 * 64 * 1024
        assert cache.log.segments()[-1].base == segments[-1].base  # the active one stays
    with ReplayCache(tmp_path, config) as cache:  # and the deletions hold after reopening
        assert cache.log.segments()[0].base == cache.stats().first_offset > segments[3].base
        assert not list(tmp_path.glob("*.deleting"))


def test_retention_by_age(tmp_path: Path) -> None:
    config = CacheConfig(segment_bytes=64 * 1024, commit_interval_ms=1.0, retention_age_s=0.0)
    with ReplayCache(tmp_path, config) as cache:
        fill(cache, 400)
        sealed = len(cache.log.segments()) - 1
        assert sealed > 1
        assert len(cache.apply_retention().deleted) == sealed  # no consumer registered
        assert len(cache.log.segments()) == 1


def test_retention_without_limits_deletes_nothing(tmp_path: Path) -> None:
    with ReplayCache(tmp_path, SMALL) as cache:
        fill(cache, 400)
        assert len(cache.log.segments()) > 1
        assert cache.apply_retention(force=True).deleted == []
