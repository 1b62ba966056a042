"""Transition batches: exact round trips of every layout, strict decoding, and the cache's readers."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from learners.cache import CacheConfig, RecordDecodeError, ReplayCache, SchemaVersionError
from learners.cache.batch import BATCH_VERSION, batch_span, decode_batch, encode_batch
from learners.cache.codec import packb, unpackb
from learners.cache.export import export_parquet
from learners.cache.format import KIND_BATCH
from learners.cache.records import encode_transition
from learners.transition import Transition

MAX = 1 << 24


def _state(n: int, actor: str = "a", first: int = 1, episode_len: int = 4) -> list[Transition]:
    rng = np.random.default_rng(first)
    return [Transition(rng.normal(size=5).astype(np.float32), rng.normal(size=2).astype(np.float32),
                       float(rng.normal()), rng.normal(size=5).astype(np.float32),
                       (first + i) % episode_len == 0, False, actor_id=actor, seq=first + i,
                       episode=(first + i - 1) // episode_len, step=(first + i - 1) % episode_len,
                       policy_version=i, behavior_logp=-float(i), timestamp=1e9 + i,
                       extras={"raw_reward": 0.5 * i})
            for i in range(n)]


def _mixed() -> list[Transition]:
    """Rows whose layouts differ: dict observations with images and text, int and None actions,
    arrays of different shapes, extras with different keys."""
    out = []
    for i in range(6):
        obs = {"state": np.full(3, i, np.float32), "image.cam": np.full((4, 4, 3), i, np.uint8),
               "instruction": f"task {i % 2}"}
        next_obs = {"state": np.full(3, i + 1, np.float32)} if i % 3 else np.arange(i + 1, dtype=np.float64)
        out.append(Transition(obs, i, 1.0, next_obs, False, i == 5, actor_id="m", seq=10 + i,
                              next_action=None if i % 2 else np.zeros(i + 1, np.int32),
                              extras={} if i % 2 else {"k": [1, "two", None], "arr": np.arange(i)}))
    return out


@pytest.mark.parametrize("rows", [_state(1), _state(300), _mixed()], ids=["one", "state", "mixed"])
def test_every_row_comes_back_exactly(rows):
    payload = encode_batch(rows)
    batch = decode_batch(payload, max_size=MAX)
    assert (batch.actor_id, batch.first_seq, batch.last_seq, len(batch)) == (
        rows[0].actor_id, rows[0].seq, rows[-1].seq, len(rows))
    assert batch_span(payload) == (rows[0].actor_id, rows[0].seq, rows[-1].seq)
    back = list(batch)
    # The per-transition record encodes every value with its type: equal bytes, equal rows.
    assert [encode_transition(t) for t in back] == [encode_transition(t) for t in rows]
    assert encode_transition(batch.transition(len(rows) - 1)) == encode_transition(rows[-1])


def test_rows_of_one_layout_are_stored_as_stacked_arrays():
    batch = decode_batch(encode_batch(_state(50)), max_size=MAX)
    assert batch.columns["obs"]["a"].shape == (50, 5) and batch.columns["obs"]["a"].dtype == np.float32
    assert batch.columns["reward"].dtype == np.float64 and batch.columns["terminated"].dtype == np.bool_
    mixed = decode_batch(encode_batch(_mixed()), max_size=MAX).columns["obs"]["d"]
    assert mixed["image.cam"]["a"].shape == (6, 4, 4, 3) and "l" in mixed["instruction"]


@pytest.mark.parametrize("rows, message", [
    ([], "at least one"),
    (_state(2) + _state(1, first=5), "consecutive"),
    (_state(2) + _state(1, actor="b", first=3), "consecutive"),
])
def test_a_batch_holds_one_actors_consecutive_transitions(rows, message):
    with pytest.raises(ValueError, match=message):
        encode_batch(rows)


def _rebuild(mutate, tail: bytes = b"") -> bytes:
    """A batch of 3 with its head re-encoded after ``mutate`` changed it, and ``tail`` appended."""
    payload = encode_batch(_state(3))
    (size,) = struct.unpack_from("<I", payload)
    doc = unpackb(payload[4:4 + size], max_size=MAX)
    mutate(doc)
    head = packb(doc)
    return struct.pack("<I", len(head)) + head + payload[4 + size:] + tail


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.__setitem__(3, 4), "reward must be float64\\[4\\]"),
    (lambda d: d.__setitem__(3, 0), "count must be a positive int"),
    (lambda d: d.__setitem__(2, -1), "first_seq must be a non-negative int"),
    (lambda d: d.__setitem__(1, 7), "actor_id must be a str"),
    (lambda d: d[4].__setitem__("reward", np.zeros(3, np.float32)), "reward must be float64"),
    (lambda d: d[4]["obs"]["a"].__setitem__(3, 40), "3 rows of float32\\[5\\] need 60 bytes"),
    (lambda d: d[4]["obs"]["a"].__setitem__(2, 10**6), "lies outside the"),
    (lambda d: d[4]["obs"]["a"].__setitem__(0, "|O"), "not allowed"),
    (lambda d: d[4]["obs"]["a"].__setitem__(1, [5, -1]), "invalid row shape"),
    (lambda d: d[4]["obs"].__setitem__("a", [1, 2]), "must be \\[dtype, row shape, offset, nbytes\\]"),
    (lambda d: d[4].__setitem__("action", {"l": [1, 2]}), "action: list column must hold 3"),
    (lambda d: d[4].__setitem__("extras", {"q": []}), "extras: unknown column form 'q'"),
    (lambda d: d[4].__setitem__("extras", {"d": {b"k": {"l": [1, 2, 3]}}}), "keys must be str"),
    (lambda d: d[4].pop("next_obs"), "missing columns \\['next_obs'\\]"),
    (lambda d: d[4].__setitem__("png", {"l": [1, 2, 3]}), "unexpected columns \\['png'\\]"),
    (lambda d: d.pop(), "expected a 5-item array"),
])
def test_malformed_batches_are_refused_by_name(mutate, message):
    with pytest.raises(RecordDecodeError, match=message) as err:
        decode_batch(_rebuild(mutate), max_size=MAX, where="record at offset 9")
    assert "record at offset 9" in str(err.value)


def test_truncated_oversized_and_newer_batches_are_refused():
    payload = encode_batch(_state(10))
    with pytest.raises(RecordDecodeError, match="record"):
        decode_batch(payload[:-7], max_size=MAX, where="record")
    with pytest.raises(RecordDecodeError, match="exceeds the limit"):
        decode_batch(payload, max_size=100)
    with pytest.raises(SchemaVersionError, match="newer than this rill"):
        decode_batch(_rebuild(lambda d: d.__setitem__(0, BATCH_VERSION + 1)), max_size=MAX)
    with pytest.raises(RecordDecodeError, match="cover 144 of the data section's 148 bytes"):
        decode_batch(_rebuild(lambda d: None, tail=b"junk"), max_size=MAX)
    with pytest.raises(RecordDecodeError, match="too short"):
        decode_batch(b"\x01", max_size=MAX)
    with pytest.raises(RecordDecodeError, match="runs past"):
        decode_batch(b"\xff\xff\x00\x00" + payload[4:], max_size=MAX)


def test_the_cache_reads_batches_as_transitions(tmp_path):
    a = _state(10, actor="a")  # episodes of 4: 0, 1, 2
    b = _state(6, actor="b")
    with ReplayCache(tmp_path / "c", CacheConfig(durability="none")) as cache:
        cache.log.append(encode_batch(a[:6]), KIND_BATCH)
        cache.append(b[0])  # a per-transition record between batches
        cache.log.append(encode_batch(b[1:]), KIND_BATCH)
        cache.log.append(encode_batch(a[6:]), KIND_BATCH)
        cache.flush()
        expected = [("a", s) for s in range(1, 7)] + [("b", s) for s in range(1, 7)]
        assert [(t.actor_id, t.seq) for _, t in cache.iter_transitions()] == (
            expected + [("a", s) for s in range(7, 11)])
        assert [t.seq for _, t in cache.iter_transitions(actor_id="a", episode=1)] == [5, 6, 7, 8]
        episodes = [(e.actor_id, e.episode, len(e.transitions), e.complete) for e in cache.iter_episodes("a")]
        assert episodes == [("a", 0, 4, True), ("a", 1, 4, True), ("a", 2, 2, False)]
        assert cache.read_span(2) == ("b", 2, 6) and cache.read_span(1) == ("b", 1, 1)
        polled = cache.consumer("x").poll(10)
        assert [type(r).__name__ for _, r in polled] == ["TransitionBatch", "Transition", "TransitionBatch",
                                                         "TransitionBatch"]
        drawn = cache.sample(200, rng=0)
        assert all(isinstance(t, Transition) for t in drawn)
        assert {(t.actor_id, t.seq) for t in drawn} <= {(t.actor_id, t.seq) for t in a + b}
    summary = export_parquet(tmp_path / "c", tmp_path / "out.parquet")
    assert summary.rows == 16 and summary.skipped_opaque == 0


def test_a_batch_too_large_for_the_cache_is_refused_before_anything_is_written(tmp_path):
    from learners.cache import RecordTooLargeError

    with ReplayCache(tmp_path / "c", CacheConfig(durability="none", max_record_bytes=4096)) as cache:
        with pytest.raises(RecordTooLargeError):
            cache.log.append(encode_batch(_state(100)), KIND_BATCH)
        assert cache.stats().records == 0


def test_an_episode_with_a_transition_missing_inside_is_not_complete(tmp_path, caplog):
    # a record lost to corruption leaves a hole: the episode's steps 0, 1, 3 must not pass as whole
    steps = _state(8)  # two episodes of 4 (seq 1-4, 5-8)
    with ReplayCache(tmp_path / "c", CacheConfig(durability="none")) as cache:
        for t in steps[:2] + steps[3:]:
            cache.append(t)
        cache.flush()
        with caplog.at_level("WARNING"):
            episodes = [(e.episode, len(e.transitions), e.complete) for e in cache.iter_episodes()]
    assert episodes == [(0, 3, False), (1, 4, True)]
    assert "episode 0 of a has transitions missing (after seq 2); taken as incomplete" in caplog.text
