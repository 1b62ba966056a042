"""Transition records: round trips, images, schema versions, malformed payloads, reuse."""

from __future__ import annotations

from pathlib import Path

import msgpack
import numpy as np
import pytest

from learners.cache import (
    CacheConfig,
    RecordDecodeError,
    ReplayCache,
    SchemaVersionError,
)
from learners.cache.codec import packb
from learners.cache.format import KIND_TRANSITION
from learners.cache.records import SCHEMA_VERSION, decode_transition, encode_transition
from learners.transition import Transition


def make(
    actor: str = "arm0",
    seq: int = 0,
    episode: int = 0,
    step: int = 0,
    done: bool = False,
    image: bool = True,
) -> Transition:
    rng = np.random.default_rng(seq)
    obs = {
        "state": rng.standard_normal(7).astype(np.float32),
        "instruction": "stack the cubes",
        "timestamp": 12.5,
    }
    if image:
        gradient = np.arange(24 * 32 * 3).reshape(24, 32, 3) // 37 + seq
        obs["image.wrist"] = gradient.astype(np.uint8)
    return Transition(
        obs=obs,
        action=rng.standard_normal(4).astype(np.float32),
        reward=0.5,
        next_obs=dict(obs),
        terminated=done,
        truncated=False,
        actor_id=actor,
        seq=seq,
        episode=episode,
        step=step,
        policy_version=3,
        behavior_logp=-1.25,
        timestamp=99.0,
        extras={"chunk": np.arange(3)},
    )


def assert_same(a: Transition, b: Transition) -> None:
    for key in (
        "actor_id",
        "seq",
        "episode",
        "step",
        "reward",
        "terminated",
        "truncated",
        "policy_version",
        "behavior_logp",
        "timestamp",
        "next_action",
    ):
        assert getattr(a, key) == getattr(b, key), key
    np.testing.assert_array_equal(a.action, b.action)
    for name in ("obs", "next_obs"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    np.testing.assert_array_equal(a.extras["chunk"], b.extras["chunk"])


@pytest.mark.parametrize("codec", ["raw", "png"])
def test_transitions_round_trip_through_the_cache(tmp_path: Path, codec: str) -> None:
    config = CacheConfig(image_codec=codec)
    original = [make(seq=i) for i in range(5)]
    with ReplayCache(tmp_path, config) as cache:
        offsets = cache.append_many(original)
        cache.flush(timeout=10)
        raw_size = len(cache.read_raw(offsets[0]))
    with ReplayCache(tmp_path, config) as cache:
        for offset, t in zip(offsets, original):
            assert_same(cache.read(offset), t)
    assert (raw_size > 2 * 24 * 32 * 3) == (codec == "raw")  # two raw images per record


def test_vector_observations_and_integer_actions(tmp_path: Path) -> None:
    t = Transition(
        obs=np.zeros(4),
        action=2,
        reward=1.0,
        next_obs=np.ones(4),
        terminated=True,
        truncated=False,
        next_action=1,
    )
    with ReplayCache(tmp_path) as cache:
        offset = cache.append(t)
        cache.flush(timeout=10)
        out = cache.read(offset)
    assert out.action == 2 and out.next_action == 1 and out.done
    np.testing.assert_array_equal(out.next_obs, np.ones(4))


def test_a_record_from_a_future_schema_is_a_clear_error(tmp_path: Path) -> None:
    future = packb([SCHEMA_VERSION + 1, "arm0", 0, 0, 0, {"whatever": 1}])
    with ReplayCache(tmp_path) as cache:
        offset = cache.log.append(future, KIND_TRANSITION)
        cache.flush(timeout=10)
        with pytest.raises(
            SchemaVersionError,
            match=f"schema version {SCHEMA_VERSION + 1} is newer .* at offset|offset {offset}",
        ):
            cache.read(offset)
        assert cache.read_raw(offset) == future  # nothing modified
        with pytest.raises(SchemaVersionError):
            list(cache.iter_transitions(actor_id="arm0"))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.__setitem__(0, 0), "invalid schema version 0"),
        (lambda d: d.__setitem__(1, 5), "actor_id must be a str"),
        (lambda d: d.__setitem__(2, "x"), "seq must be an int"),
        (lambda d: d[5].pop("reward"), "missing fields \\['reward'\\]"),
        (lambda d: d[5].__setitem__("surprise", 1), "unexpected fields \\['surprise'\\]"),
        (lambda d: d[5].__setitem__("reward", "high"), "reward must be float"),
        (lambda d: d[5].__setitem__("action", "left"), "action must be an array or int"),
        (lambda d: d[5].__setitem__("obs", [1, 2]), "obs: must be an array or a map"),
        (lambda d: d[5].__setitem__("png", {"obs": {"image.x": b"not a png"}}), "unreadable PNG"),
        (lambda d: d.append(1), "expected a 6-item array"),
    ],
)
def test_malformed_transitions_are_rejected_by_name(mutate, message: str) -> None:
    doc = msgpack.unpackb(encode_transition(make(image=False)), raw=False)
    doc[5] = {k: v for k, v in doc[5].items()}
    mutate(doc)
    with pytest.raises(RecordDecodeError, match=message):
        decode_transition(msgpack.packb(doc, use_bin_type=True), max_size=1 << 20)


def test_garbage_and_oversized_payloads_are_rejected() -> None:
    with pytest.raises(RecordDecodeError, match="malformed msgpack"):
        decode_transition(b"\xc1\xc1", max_size=100)
    with pytest.raises(RecordDecodeError, match="exceeds the limit"):
        decode_transition(encode_transition(make()), max_size=100)


def test_iteration_by_actor_and_episode(tmp_path: Path) -> None:
    with ReplayCache(tmp_path) as cache:
        for step in range(3):  # two actors, interleaved
            for actor in ("a", "b"):
                for episode in (0, 1):
                    cache.append(
                        make(
                            actor,
                            seq=episode * 3 + step,
                            episode=episode,
                            step=step,
                            done=step == 2 and episode == 0,
                            image=False,
                        )
                    )
        cache.flush(timeout=10)
        mine = [t for _, t in cache.iter_transitions(actor_id="a", episode=1)]
        assert [(t.actor_id, t.episode, t.step) for t in mine] == [("a", 1, s) for s in range(3)]
        episodes = list(cache.iter_episodes(actor_id="b"))
        assert [(e.actor_id, e.episode, e.complete, len(e.transitions)) for e in episodes] == [
            ("b", 0, True, 3),
            ("b", 1, False, 3),
        ]
        assert [t.step for t in episodes[0].transitions] == [0, 1, 2]
        assert len(list(cache.iter_episodes())) == 4


def test_sampling_is_uniform_and_the_decoded_cache_stays_bounded(tmp_path: Path) -> None:
    config = CacheConfig(segment_bytes=64 * 1024, read_cache_bytes=20_000)
    with ReplayCache(tmp_path, config) as cache:
        offsets = cache.append_many([make(seq=i, image=False) for i in range(800)])
        cache.flush(timeout=10)
        assert cache.stats().segments > 3
        rng = np.random.default_rng(0)
        seen = [t.seq for _ in range(160) for t in cache.sample(100, rng)]
        counts = np.bincount(seen, minlength=800)
        assert counts.min() > 0 and counts.max() < 50  # 16,000 draws over 800: ~20 each
        assert cache.decoded_cache.bytes <= 20_000
        assert 0 < len(cache.decoded_cache) < 800
        assert cache.decoded_cache.hits > 0
        assert len(offsets) == 800
