"""Thousands of malformed frames at the learner: each rejected with a counted reason, while a
real actor keeps training through the same socket."""

from __future__ import annotations

import threading
import time

import msgpack
import numpy as np
import zmq

from agent.actor import ActorConfig, ActorRunner
from learners.cache.batch import encode_batch
from learners.link.wire import PROTOCOL_VERSION, TRANSITIONS, encode
from learners.service import LearnerConfig, LearnerService
from learners.transition import Transition


def _garbage(rng: np.random.Generator, i: int, name: str) -> list[bytes]:
    kind = i % 10
    head = {"v": PROTOCOL_VERSION}
    if kind == 0:  # random bytes
        return [rng.bytes(int(rng.integers(0, 300))) for _ in range(int(rng.integers(1, 4)))]
    if kind == 1:  # truncated msgpack
        whole = msgpack.packb({**head, "type": "ack", "actor_id": "x", "seq": 5})
        return [whole[: int(rng.integers(1, len(whole)))]]
    if kind == 2:  # wrong version
        return [msgpack.packb({"v": int(rng.integers(PROTOCOL_VERSION + 1, 1000)), "type": "heartbeat",
                               "time": 1.0})]
    if kind == 3:  # unknown type
        return [msgpack.packb({**head, "type": rng.bytes(6).hex()})]
    if kind == 4:  # wrong field types
        return [msgpack.packb({**head, "type": "ack", "actor_id": 5, "seq": "x"})]
    if kind == 5:  # hello with a spec that does not match
        return [msgpack.packb({**head, "type": "hello", "actor_id": name, "last_seq": 0,
                               "spec": {"obs_dim": 999}})]
    if kind == 6:  # a huge sequence range
        return [msgpack.packb({**head, "type": TRANSITIONS, "actor_id": "fz", "first_seq": 1,
                               "last_seq": 10**12})]
    if kind == 7:  # one batch frame expected, two sent
        return [msgpack.packb({**head, "type": TRANSITIONS, "actor_id": "fz", "first_seq": 1, "last_seq": 3}),
                b"one", b"two"]
    if kind == 8:
        return [msgpack.packb({**head, "type": "weights", "version": 1})]  # missing digest / frame
    return [msgpack.packb({**head, "type": "heartbeat", "time": 1.0})]  # valid, but no hello first


def test_fuzzed_learner_keeps_serving_a_real_actor(tmp_path):
    port_cfg = LearnerConfig(bind="tcp://127.0.0.1:0", run_dir=tmp_path / "run", obs_dim=12, action_dim=3,
                             durability="os-buffered")
    service = LearnerService(port_cfg).start()
    actor = ActorRunner(ActorConfig(learner=service.endpoint, env="Hopper-v5", actor_id="real",
                                    run_dir=tmp_path / "run", durability="os-buffered"))
    actor_done = threading.Event()

    def drive() -> None:
        actor.run(steps=1500)
        actor_done.set()

    thread = threading.Thread(target=drive)
    thread.start()
    rng = np.random.default_rng(0)
    ctx = zmq.Context()
    sent = 0
    try:
        socks = []
        for k in range(4):
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.ROUTING_ID, f"fz{k}".encode() if k else b"\xff\xfe")
            s.connect(service.endpoint)
            socks.append(s)
        # A fuzzer that did say hello properly, then sends transitions with wrong shapes/gaps.
        ok = socks[1]
        ok.send_multipart(encode("hello", {"actor_id": "fz1", "last_seq": 0, "spec": port_cfg.spec}))
        assert ok.poll(5000)
        ok.recv_multipart()
        five = np.zeros(5, np.float32)
        bad_shape = encode_batch([Transition(five, np.zeros(3, np.float32), 0.0, five, False, False,
                                             actor_id="fz1", seq=1)])
        for i in range(3000):
            if i % 50 == 0:
                ok.send_multipart(encode(TRANSITIONS, {"actor_id": "fz1", "first_seq": 1, "last_seq": 1},
                                         [bad_shape]))
            elif i % 50 == 1:
                ok.send_multipart(encode(TRANSITIONS, {"actor_id": "fz1", "first_seq": 7, "last_seq": 7},
                                         [bad_shape]))
            elif i % 50 == 2:
                ok.send_multipart(encode(TRANSITIONS, {"actor_id": "fz1", "first_seq": 1, "last_seq": 1},
                                         [rng.bytes(64)]))
            else:
                k = 2 if i % 10 == 9 else i % 4  # fz2 never says hello
                socks[k].send_multipart(_garbage(rng, i, f"fz{k}"))
            sent += 1
        deadline = time.monotonic() + 60
        while sum(service.server.rejected.values()) < sent and time.monotonic() < deadline:
            time.sleep(0.05)
        assert actor_done.wait(120)
        actor.link.stop(drain_s=30)
        rejected = dict(service.server.rejected)
        assert sum(rejected.values()) == sent, rejected
        for reason in ("malformed", "bad_version", "unknown_type", "bad_field", "bad_spec", "no_session",
                       "bad_frames", "oversized", "bad_shape", "gap", "bad_record"):
            assert rejected.get(reason, 0) > 0, (reason, rejected)
        assert actor.link.acked_seq == actor.seq == 1500 and actor.link.backlog == 0
        assert not actor.link.errors
        deadline = time.monotonic() + 60
        while service.updater.applied.get("real", 0) < 1500 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert service.updater.applied == {"real": 1500}
    finally:
        for s in socks:
            s.close(0)
        ctx.term()
        thread.join(timeout=10)
        actor.close()
        service.stop()


_BAD_REWARDS = {"reward": np.nan, "reward=inf": np.inf, "reward=-inf": -np.inf, "reward=1e300": 1e300}


def _batch(actor_id: str, first: int, poison: dict[int, str] | None = None) -> list[bytes]:
    """Three well-formed transitions from ``first`` on; ``poison`` puts a NaN into one field of a
    transition (``reward=inf``, ``reward=1e300``...: that reward; ``obs=3e38``: a huge value)."""
    poison = poison or {}
    transitions = []
    for seq in range(first, first + 3):
        obs, action = np.zeros(12, np.float32), np.zeros(3, np.float32)
        next_obs = np.ones(12, np.float32)
        {"obs": obs, "next_obs": next_obs, "action": action}.get(poison.get(seq, ""), np.zeros(1))[0] = np.nan
        if poison.get(seq) == "obs=3e38":
            obs[5] = 3e38
        reward = _BAD_REWARDS.get(poison.get(seq, ""), 0.0)
        transitions.append(Transition(obs, action, reward, next_obs, False, False, actor_id=actor_id,
                                      seq=seq))
    return encode(TRANSITIONS, {"actor_id": actor_id, "first_seq": first, "last_seq": first + 2},
                  [encode_batch(transitions)])


def test_a_non_finite_value_rejects_its_whole_batch_and_names_the_record(tmp_path, raw_actor):
    config = LearnerConfig(bind="tcp://127.0.0.1:0", run_dir=tmp_path / "run", obs_dim=12, action_dim=3,
                           durability="os-buffered")
    with LearnerService(config) as service:
        sock = raw_actor(service, "nan")
        errors = []
        poisons = ({2: "next_obs"}, {3: "action"}, {1: "obs"}, {2: "reward"}, {3: "reward=inf"},
                   {1: "reward=-inf"}, {2: "reward=1e300"}, {3: "obs=3e38"})
        for poison in poisons:
            sock.send_multipart(_batch("nan", 1, poison))
            while sock.poll(5000):  # (weight announcements may come first)
                reply = msgpack.unpackb(sock.recv_multipart()[0])
                if reply["type"] == "error":
                    errors.append((reply["reason"], reply["detail"]))
                    break
        sock.send_multipart(_batch("nan", 1))
        deadline = time.monotonic() + 10
        while service.server.durable_seq.get("nan", 0) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert errors == [("bad_value", "transition nan/2: next_obs is not finite"),
                          ("bad_value", "transition nan/3: action is not finite"),
                          ("bad_value", "transition nan/1: obs is not finite"),
                          ("bad_value", "transition nan/2: reward is not finite"),
                          ("bad_value", "transition nan/3: reward is not finite"),
                          ("bad_value", "transition nan/1: reward is not finite"),
                          ("bad_value", "transition nan/2: reward is out of range (|value| > "
                                        "max_abs_value=1e+06)"),
                          ("bad_value", "transition nan/3: obs is out of range (|value| > "
                                        "max_abs_value=1e+06)")], errors
        assert service.server.rejected["bad_value"] == 8
        # Nothing of a rejected batch was kept: the clean resend is stored whole, from seq 1.
        assert service.server.received == 3 and service.server.durable_seq["nan"] == 3
