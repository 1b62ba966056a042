"""Batches at the learner: a resend that overlaps what it holds stores only the new part; a batch
whose columns break the spec is refused with the offending transition named."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from learners.cache.batch import encode_batch
from learners.link.wire import TRANSITIONS, encode
from learners.service import LearnerConfig, LearnerService
from learners.service.journal import read_journal
from learners.streamx import ConfigError
from learners.transition import Transition


def _rows(first: int, last: int, obs=None, action=None) -> list[Transition]:
    return [Transition(np.full(12, 0.01 * seq, np.float32) if obs is None else obs,
                       np.zeros(3, np.float32) if action is None else action, 0.1,
                       np.ones(12, np.float32), False, False, actor_id="ov", seq=seq)
            for seq in range(first, last + 1)]


def _send(sock, rows: list[Transition], after: int | None = None) -> None:
    fields = {"actor_id": rows[0].actor_id, "first_seq": rows[0].seq, "last_seq": rows[-1].seq}
    if after is not None:
        fields["after"] = after
    sock.send_multipart(encode(TRANSITIONS, fields, [encode_batch(rows)]))


def _error(sock) -> tuple[str, str]:
    while sock.poll(5000):
        reply = msgpack.unpackb(sock.recv_multipart()[0])
        if reply["type"] == "error":
            return reply["reason"], reply["detail"]
    raise AssertionError("no error reply")


def test_an_overlapping_resend_is_stored_from_the_first_new_transition(tmp_path, raw_actor, settles):
    config = LearnerConfig(bind="tcp://127.0.0.1:0", run_dir=tmp_path / "run", obs_dim=12, action_dim=3,
                           durability="os-buffered")
    with LearnerService(config) as service:
        sock = raw_actor(service, "ov")
        _send(sock, _rows(1, 5))
        _send(sock, _rows(3, 8))  # 3..5 held already
        _send(sock, _rows(1, 8))  # all held: acknowledged again, nothing stored
        assert settles(lambda: service.updater.applied.get("ov", 0) == 8)
        assert service.server.received == 8 and service.server.durable_seq["ov"] == 8
        spans = [service.cache.read_span(o) for o in service.cache.log.offsets()]
        assert spans == [("ov", 1, 5), ("ov", 6, 8)]
    assert read_journal(tmp_path / "run" / "applied.log") == [("ov", s) for s in range(1, 9)]


def test_a_gap_is_skipped_only_where_the_actor_says_it_has_nothing_before_it(tmp_path, raw_actor, settles):
    """An actor that wrote behind and was restarted declares ``after``: the last seq before the
    batch it still has. The learner skips to the batch only when it holds everything up to
    ``after``; any other gap is still refused (the actor then resends from what it holds)."""
    config = LearnerConfig(bind="tcp://127.0.0.1:0", run_dir=tmp_path / "run", obs_dim=12, action_dim=3,
                           durability="os-buffered")
    with LearnerService(config) as service:
        sock = raw_actor(service, "ov")
        _send(sock, _rows(1, 5))
        _send(sock, _rows(9, 10))  # a gap, undeclared
        assert _error(sock) == ("gap", "transitions 9..10: expected seq 6 next")
        _send(sock, _rows(9, 10), after=7)  # it says it still has 6..7: resend those first
        assert _error(sock) == ("gap", "transitions 9..10: expected seq 6 next")
        _send(sock, _rows(9, 10), after=9)  # nonsense: it cannot still have what it sends next
        assert _error(sock) == ("bad_field", "transitions 9..10: after=9 must be below first_seq")
        _send(sock, _rows(100, 102), after=5)  # 6..99 never come
        assert settles(lambda: service.server.durable_seq.get("ov", 0) == 102)
        assert service.server.skipped == {"ov": 94} and service.server.status()["skipped"] == {"ov": 94}
        assert service.server.rejected == {"gap": 2, "bad_field": 1}
        assert settles(lambda: service.updater.applied.get("ov", 0) == 102)
    applied = read_journal(tmp_path / "run" / "applied.log")
    assert applied == [("ov", s) for s in (*range(1, 6), 100, 101, 102)]


def test_a_batch_that_breaks_the_spec_names_its_transition(tmp_path, raw_actor, settles):
    config = LearnerConfig(bind="tcp://127.0.0.1:0", run_dir=tmp_path / "run", obs_dim=12, action_dim=3,
                           durability="os-buffered")
    with LearnerService(config) as service:
        sock = raw_actor(service, "ov")
        wrong_obs = _rows(1, 3, obs=np.zeros(11, np.float32))
        _send(sock, wrong_obs)
        assert _error(sock) == ("bad_shape", "transition ov/1: obs must be float32[12], got float32[11]")
        mixed = _rows(1, 3)
        mixed[2].action = np.zeros(3, np.float64)  # one row of another layout: checked row by row
        _send(sock, mixed)
        assert _error(sock) == ("bad_shape", "transition ov/3: action must be float32[3], got float64[3]")
        image_obs = {"state": np.zeros(12, np.float32), "image.cam": np.zeros((8, 8), np.uint8)}
        _send(sock, _rows(1, 2, obs=image_obs))
        assert _error(sock)[0] == "bad_shape"
        _send(sock, _rows(1, 2, obs={"state": np.zeros(12, np.float32),
                                     "image.cam": np.zeros((8, 8, 3), np.uint8)}))
        assert settles(lambda: service.server.durable_seq.get("ov", 0) == 2)
        assert service.server.rejected == {"bad_shape": 3}


def test_a_learner_must_take_the_batches_actors_send(tmp_path):
    with pytest.raises(ConfigError, match=r"learner\.max_batch_records must be an integer >= 1024, got 100"):
        LearnerConfig(bind="tcp://127.0.0.1:0", run_dir=tmp_path, obs_dim=3, action_dim=1,
                      max_batch_records=100)


def test_a_bad_value_bound_is_refused_by_name(tmp_path):
    for bad in (0, -1.0, float("nan"), "big"):
        with pytest.raises(ConfigError, match=r"learner\.max_abs_value must be a number > 0"):
            LearnerConfig(bind="tcp://127.0.0.1:0", run_dir=tmp_path, obs_dim=3, action_dim=1,
                          max_abs_value=bad)


def _camera_rows(first: int, last: int) -> list[Transition]:
    """Rows whose frames compress (flat shading, a block moving a pixel a row)."""
    out = []
    for seq in range(first, last + 1):
        frame = np.full((96, 96, 3), 60, np.uint8)
        frame[30:50, seq % 60:seq % 60 + 20] = (200, 40, 40)
        out.append(Transition({"state": np.full(12, 0.01 * seq, np.float32), "image.cam": frame},
                              np.zeros(3, np.float32), 0.1, {"state": np.ones(12, np.float32)}, False, False,
                              actor_id="cam", seq=seq))
    return out


def test_compressed_frames_are_stored_as_sent_and_a_corrupt_one_is_refused(tmp_path, raw_actor, settles):
    from learners.cache import ReplayCache
    from learners.cache.records import encode_transition

    config = LearnerConfig(bind="tcp://127.0.0.1:0", run_dir=tmp_path / "run", obs_dim=12, action_dim=3,
                           durability="os-buffered")
    rows = _camera_rows(1, 40)
    packed = encode_batch(rows, compress="zstd")
    assert len(packed) * 10 < len(encode_batch(rows))
    with LearnerService(config) as service:
        sock = raw_actor(service, "cam")
        broken = bytearray(packed)
        start = packed.index(b"\x28\xb5\x2f\xfd")  # zstd's magic number: the compressed frame
        broken[start + 30:start + 60] = bytes(30)
        fields = {"actor_id": "cam", "first_seq": 1, "last_seq": 40}
        sock.send_multipart(encode(TRANSITIONS, fields, [bytes(broken)]))
        reason, detail = _error(sock)
        assert "image.cam" in detail and "decompress" in detail, (reason, detail)
        assert service.server.durable_seq.get("cam", 0) == 0
        sock.send_multipart(encode(TRANSITIONS, fields, [packed]))
        assert settles(lambda: service.server.durable_seq.get("cam", 0) == 40)
    cache = ReplayCache(tmp_path / "run" / "cache")
    try:
        back = [t for _, t in cache.iter_transitions()]
        stored = [bytes(payload) for _, payload in cache.iter_records(raw=True)]
    finally:
        cache.close()
    assert [encode_transition(t) for t in back] == [encode_transition(t) for t in rows]
    assert stored == [packed]  # the batch as it came, compressed
