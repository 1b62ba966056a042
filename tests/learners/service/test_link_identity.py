"""An actor's CurveZMQ key speaks only for that actor: another allow-listed key using its routing
id or its name is refused by reason and leaves its session and sequence numbers alone; a key
removed from the allow-list stops speaking without a restart."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
import zmq
import zmq.auth

from learners.cache.batch import encode_batch
from learners.link.security import AllowList, AllowListError
from learners.link.wire import HELLO, TRANSITIONS, encode
from learners.service import LearnerConfig, LearnerService
from learners.service.journal import read_journal
from learners.transition import Transition

REAL, FAKE = 0.5, -7.0  # the rewards of the real actor's transitions and of forged ones


def _config(tmp_path, keys) -> LearnerConfig:
    return LearnerConfig(bind="tcp://127.0.0.1:0", run_dir=tmp_path / "run", obs_dim=12, action_dim=3,
                         curve=keys.server, durability="os-buffered", fast=False)


def _hello(sock, actor_id: str, spec: dict, last_seq: int = 0) -> None:
    sock.send_multipart(encode(HELLO, {"actor_id": actor_id, "last_seq": last_seq, "spec": spec}))


def _send(sock, actor_id: str, first: int, last: int, reward: float = REAL) -> None:
    """Send transitions ``first..last``; a socket left with no connection (its key refused)
    queues nothing: that is not waited for."""
    rows = [Transition(np.full(12, 0.01 * seq, np.float32), np.zeros(3, np.float32), reward,
                       np.ones(12, np.float32), False, False, actor_id=actor_id, seq=seq)
            for seq in range(first, last + 1)]
    fields = {"actor_id": actor_id, "first_seq": first, "last_seq": last}
    try:
        sock.send_multipart(encode(TRANSITIONS, fields, [encode_batch(rows)]), zmq.NOBLOCK)
    except zmq.Again:
        pass


def _reply(sock, *types: str, timeout_s: float = 10.0) -> dict | None:
    """The next message of one of ``types`` (others, like weight announcements, are skipped), or
    None if none comes within ``timeout_s``."""
    while sock.poll(int(timeout_s * 1000)):
        reply = msgpack.unpackb(sock.recv_multipart()[0])
        if reply["type"] in types:
            return reply
    return None


def _welcomed(curve_socket, endpoint: str, keys, name: str, spec: dict, last_seq: int = 0,
              key: str | None = None):
    """Connect with ``key``'s secret key (``name``'s by default) as ``name`` and say hello;
    ``(socket, welcome)``. As an actor must: a hello left unanswered for 2 s is said again on a
    new connection (ZeroMQ ignores a connection of a routing id while an earlier one of that id
    is still being torn down)."""
    for _ in range(5):
        sock = curve_socket(endpoint, keys, key or name, name)
        _hello(sock, name, spec, last_seq)
        welcome = _reply(sock, "welcome", "error", timeout_s=2.0)
        if welcome is not None:
            assert welcome["type"] == "welcome", welcome
            return sock, welcome
        sock.close(linger=0)
    raise AssertionError(f"{name}: no welcome on five connections")


def _answer(sock, acked: int, timeout_s: float = 1.5) -> dict | None:
    """The first answer within ``timeout_s`` (a welcome, an error, an ack beyond ``acked``), or
    None; acknowledgements and weight announcements sent before a cut may still come."""
    while sock.poll(int(timeout_s * 1000)):
        reply = msgpack.unpackb(sock.recv_multipart()[0])
        if reply["type"] in ("welcome", "error") or (reply["type"] == "ack" and reply["seq"] > acked):
            return reply
    return None


def _acked(sock, seq: int) -> bool:
    while (reply := _reply(sock, "ack", "error")) is not None:
        assert reply["type"] == "ack", reply
        if reply["seq"] >= seq:
            return reply["seq"] == seq
    return False


def test_a_key_speaks_only_for_its_own_actor_id(tmp_path, curve_keys, curve_socket, settles):
    keys = curve_keys("robot-a", "robot-b")
    with LearnerService(_config(tmp_path, keys)) as service:
        server, spec, endpoint = service.server, service.config.spec, service.endpoint
        # robot-b's key as robot-a (routing id and hello) while robot-a is away: refused by name.
        squatter = curve_socket(endpoint, keys, "robot-b", "robot-a")
        _hello(squatter, "robot-a", spec)
        refused = _reply(squatter, "error", "welcome")
        assert refused is not None and refused["reason"] == "key_mismatch", refused
        assert "key of actor 'robot-b' may speak only as 'robot-b', not as 'robot-a'" in refused["detail"]
        _send(squatter, "robot-a", 1, 3, reward=FAKE)
        assert (_reply(squatter, "error") or {}).get("reason") == "key_mismatch"
        assert server.rejected == {"key_mismatch": 2}
        assert "robot-a" not in server.sessions and "robot-a" not in server.durable_seq
        squatter.close(linger=0)

        # robot-a with its own key: nothing of the forgery is held for it.
        real, welcome = _welcomed(curve_socket, endpoint, keys, "robot-a", spec)
        assert welcome["acked_seq"] == 0
        _send(real, "robot-a", 1, 3)
        assert _acked(real, 3)
        session = server.sessions["robot-a"]

        # robot-b's key on robot-a's routing id while robot-a is connected: it takes nothing over
        # (ZeroMQ ignores a second connection of a routing id), and none of its messages counts.
        impostor = curve_socket(endpoint, keys, "robot-b", "robot-a")
        _hello(impostor, "robot-a", spec)
        _send(impostor, "robot-a", 4, 6, reward=FAKE)
        # robot-b's key on its own routing id, naming robot-a in the hello and in a batch.
        own = curve_socket(endpoint, keys, "robot-b", "robot-b")
        _hello(own, "robot-a", spec)
        assert (_reply(own, "error", "welcome") or {}).get("reason") == "bad_field"
        _hello(own, "robot-b", spec)
        assert (_reply(own, "welcome", "error") or {}).get("type") == "welcome"
        _send(own, "robot-a", 4, 6, reward=FAKE)
        assert (_reply(own, "error") or {}).get("reason") == "bad_field"

        # robot-a goes on as if nothing happened: its 4..6 are new to the learner, not duplicates.
        _send(real, "robot-a", 4, 6)
        assert _acked(real, 6)
        assert server.sessions["robot-a"] is session and server.durable_seq["robot-a"] == 6
        assert _reply(impostor, "welcome", "ack", "error", timeout_s=0.5) is None, "the impostor was answered"
        assert server.rejected == {"key_mismatch": 2, "bad_field": 2}, server.rejected
        assert settles(lambda: service.updater.applied.get("robot-a") == 6)
        stored = [t for _, t in service.cache.iter_transitions("robot-a")]
        assert [t.seq for t in stored] == list(range(1, 7)) and {t.reward for t in stored} == {REAL}
        assert "robot-b" not in service.updater.applied
    assert read_journal(tmp_path / "run" / "applied.log") == [("robot-a", s) for s in range(1, 7)]


def test_an_actor_that_reconnects_with_its_own_key_resumes(tmp_path, curve_keys, curve_socket):
    keys = curve_keys("robot-a")
    with LearnerService(_config(tmp_path, keys)) as service:
        spec = service.config.spec
        first, welcome = _welcomed(curve_socket, service.endpoint, keys, "robot-a", spec)
        assert welcome["acked_seq"] == 0
        _send(first, "robot-a", 1, 3)
        assert _acked(first, 3)
        first.close(linger=0)  # (a restarted actor: its old connection goes, and its id is free)
        again, welcome = _welcomed(curve_socket, service.endpoint, keys, "robot-a", spec, last_seq=3)
        assert welcome["acked_seq"] == 3
        _send(again, "robot-a", 4, 5)
        assert _acked(again, 5)


def test_a_revoked_key_stops_speaking_without_a_restart(tmp_path, curve_keys, curve_socket, settles):
    keys = curve_keys("robot-a", "robot-b")
    with LearnerService(_config(tmp_path, keys)) as service:
        server, spec, endpoint = service.server, service.config.spec, service.endpoint
        socks = {}
        for name in ("robot-a", "robot-b"):
            socks[name], _ = _welcomed(curve_socket, endpoint, keys, name, spec)
            _send(socks[name], name, 1, 3)
            assert _acked(socks[name], 3)
        (keys.allow / "robot-a.key").unlink()
        assert settles(lambda: "robot-a" not in server.sessions, timeout=10), "robot-a's session stayed"
        # Its connection is cut (the socket is reopened) and the ZAP handler refuses it from now on:
        # nothing it sends arrives.
        assert settles(lambda: server.reopened == 1, timeout=10)
        _send(socks["robot-a"], "robot-a", 4, 6)
        assert _answer(socks["robot-a"], acked=3) is None
        # robot-b reconnects by itself and goes on in the session it had.
        assert "robot-b" in server.sessions
        _send(socks["robot-b"], "robot-b", 4, 6)
        assert _acked(socks["robot-b"], 6)

        # A replaced key: robot-a's new key speaks for it, and continues its sequence numbers.
        from learners.link.security import generate_keys

        public, _ = generate_keys(keys.dir, "robot-a-new")
        (keys.allow / "robot-a.key").write_bytes(public.read_bytes())
        renewed, welcome = _welcomed(curve_socket, endpoint, keys, "robot-a", spec, last_seq=6,
                                     key="robot-a-new")
        assert welcome["acked_seq"] == 3
        _send(renewed, "robot-a", 4, 6)
        assert _acked(renewed, 6)
        _send(socks["robot-a"], "robot-a", 7, 9)  # the old key stays out
        assert _answer(socks["robot-a"], acked=3) is None
        assert server.durable_seq == {"robot-a": 6, "robot-b": 6} and server.reopened == 1
        assert server.rejected == {}, server.rejected
        assert settles(lambda: service.updater.applied == {"robot-a": 6, "robot-b": 6})


def test_an_allow_list_binds_each_key_to_one_actor_id(curve_keys):
    keys = curve_keys("robot-a", "robot-b")
    key_a, key_b = (zmq.auth.load_certificate(keys.allow / f"{name}.key")[0].decode()
                    for name in ("robot-a", "robot-b"))
    allow = AllowList(keys.allow)
    assert allow.actors == {"robot-a": key_a, "robot-b": key_b}
    assert allow.actor_of(key_a) == "robot-a" and allow.actor_of(key_b.encode()) == "robot-b"
    assert allow.actor_of("0" * 40) is None and allow.actor_of(None) is None
    copy = keys.allow / "robot-c.key"
    copy.write_bytes((keys.allow / "robot-a.key").read_bytes())
    with pytest.raises(AllowListError, match=r"robot-a\.key and .*robot-c\.key hold the same key"):
        AllowList(keys.allow)
    copy.write_text("metadata\n")
    with pytest.raises(AllowListError, match=r"robot-c\.key: not a public key \(No public key found"):
        AllowList(keys.allow)
    with pytest.raises(FileNotFoundError, match=r"allow-list directory .*nowhere does not exist"):
        AllowList(keys.allow / "nowhere")
