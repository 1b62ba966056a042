"""An authenticated actor sends thousands of mutated batches while a real actor trains: each is
refused with a counted reason or, where the mutation left a well-formed batch of finite numbers,
taken as data; none goes unanswered; the real actor's transitions are all applied exactly once
and the fuzzing actor's valid batches all acknowledged."""

from __future__ import annotations

import collections
import threading

import msgpack
import numpy as np

from agent.actor import ActorConfig, ActorRunner
from learners.cache.batch import encode_batch
from learners.link.wire import HEARTBEAT, HELLO, PROTOCOL_VERSION, TRANSITIONS, encode
from learners.service import LearnerConfig, LearnerService
from learners.service.journal import read_journal
from learners.transition import Transition

MESSAGES = 3000
REAL_STEPS = 1500


class MutationFuzzer:
    """robot-b's end of the link: one message at a time, each waited for until the learner has
    refused it (an ERROR) or acknowledged what it carried (an ACK reaching its last seq)."""

    def __init__(self, sock, rng: np.random.Generator) -> None:
        self.sock, self.rng = sock, rng
        self.seq = 0  # the last seq the learner acknowledged
        self.last_valid: list[bytes] | None = None
        self.outcomes: collections.Counter[str] = collections.Counter()  # kind -> refused/taken
        self.refusals: collections.Counter[str] = collections.Counter()  # reason -> count

    def rows(self, first: int, count: int, actor_id: str = "robot-b", width: int = 12) -> list[Transition]:
        normal = self.rng.standard_normal
        return [Transition(normal(width).astype(np.float32), np.tanh(normal(3)).astype(np.float32),
                           float(normal()), normal(width).astype(np.float32), False, False,
                           actor_id=actor_id, seq=seq, policy_version=0)
                for seq in range(first, first + count)]

    def message(self, kind: str) -> tuple[list[bytes], int | None]:
        """The frames of a message of mutation ``kind`` and the last seq it would add if taken
        (None: it cannot be taken)."""
        rng, first = self.rng, self.seq + 1
        count = int(rng.integers(1, 9))
        last = first + count - 1
        head = {"actor_id": "robot-b", "first_seq": first, "last_seq": last}
        rows = self.rows(first, count)
        row = int(rng.integers(count))
        if kind == "nan":
            getattr(rows[row], str(rng.choice(["obs", "next_obs", "action"])))[0] = np.nan
        elif kind == "bad_reward":
            rows[row].reward = float(rng.choice([np.nan, np.inf, -np.inf]))
        elif kind == "wrong_width":
            rows = self.rows(first, count, width=11)
        elif kind == "wrong_dtype":
            rows[row].action = rows[row].action.astype(np.float64)
        elif kind == "other_actor":
            rows = self.rows(first, count, actor_id="robot-a")
        batch = encode_batch(rows)
        if kind == "valid":
            return encode(TRANSITIONS, head, [batch]), last
        if kind == "bit_flip":
            flipped = bytearray(batch)
            for _ in range(int(rng.integers(1, 4))):
                at = int(rng.integers(len(flipped) * 8))
                flipped[at // 8] ^= 1 << (at % 8)
            return encode(TRANSITIONS, head, [bytes(flipped)]), last
        if kind == "truncated":
            return encode(TRANSITIONS, head, [batch[: int(rng.integers(len(batch)))]]), None
        if kind == "lying_header":
            head["last_seq"] = last + int(rng.choice([-1, 1])) if count > 1 else last + 1
            return encode(TRANSITIONS, head, [batch]), None
        if kind == "gap":
            return encode(TRANSITIONS, {**head, "first_seq": first + 5, "last_seq": last + 5}, [batch]), None
        if kind == "extra_frames":
            return [*encode(TRANSITIONS, head, [batch]), b"extra"], None
        if kind == "huge_count":
            return encode(TRANSITIONS, {**head, "last_seq": first + 10**9}, [batch]), None
        if kind == "names_other_actor":
            return encode(TRANSITIONS, {**head, "actor_id": "robot-a"}, [batch]), None
        if kind == "bad_header":
            junk = rng.choice([b"\xc1" + rng.bytes(8),
                               msgpack.packb({"v": PROTOCOL_VERSION + 1, "type": TRANSITIONS, **head})])
            return [junk, batch], None
        if kind == "duplicate" and self.last_valid is not None:
            return self.last_valid, self.seq
        return encode(TRANSITIONS, head, [batch]), None  # nan, bad_reward, wrong_*, other_actor

    def send(self, kind: str) -> str:
        """Send one message of ``kind``; ``"taken"`` or the reason it was refused."""
        frames, last = self.message(kind)
        self.sock.send_multipart(frames)
        # Answered by an ERROR, or (taken) by an ACK up to its last seq; a heartbeat every second
        # asks for the acknowledgement again, should one have been dropped.
        for _ in range(30):
            while self.sock.poll(1000):
                reply = msgpack.unpackb(self.sock.recv_multipart()[0])
                if reply["type"] == "error":
                    self.refusals[reply["reason"]] += 1
                    self.outcomes[f"{kind}: refused"] += 1
                    return reply["reason"]
                if reply["type"] == "ack" and last is not None and reply["seq"] >= last:
                    assert reply["seq"] == max(last, self.seq), (kind, reply)
                    if last > self.seq and kind == "valid":
                        self.last_valid = frames
                    self.seq = max(self.seq, last)
                    self.outcomes[f"{kind}: taken"] += 1
                    return "taken"
            self.sock.send_multipart(encode(HEARTBEAT, {"time": 0.0, "actor_id": "robot-b"}))
        raise AssertionError(f"a {kind} message was never answered")


KINDS = ["valid"] * 8 + ["bit_flip"] * 3 + ["truncated", "lying_header", "nan", "bad_reward", "wrong_width",
                                             "wrong_dtype", "gap", "extra_frames", "huge_count",
                                             "other_actor", "names_other_actor", "bad_header", "duplicate"]


def test_mutated_batches_from_an_authenticated_actor_while_a_real_one_trains(
        tmp_path, curve_keys, curve_socket, settles):
    keys = curve_keys("robot-a", "robot-b")
    config = LearnerConfig(bind="tcp://127.0.0.1:0", run_dir=tmp_path / "run", obs_dim=12, action_dim=3,
                           curve=keys.server, durability="os-buffered")
    with LearnerService(config) as service:
        actor = ActorRunner(ActorConfig(learner=service.endpoint, env="Hopper-v5", actor_id="robot-a",
                                        run_dir=tmp_path / "run", durability="os-buffered",
                                        curve=keys.client("robot-a")))
        thread = threading.Thread(target=actor.run, kwargs={"steps": REAL_STEPS})
        thread.start()
        try:
            sock = curve_socket(service.endpoint, keys, "robot-b", "robot-b")
            sock.send_multipart(encode(HELLO, {"actor_id": "robot-b", "last_seq": 0,
                                               "spec": service.config.spec}))
            while (msgpack.unpackb(sock.recv_multipart()[0]))["type"] != "welcome":
                pass
            rng = np.random.default_rng(17)
            fuzzer = MutationFuzzer(sock, rng)
            for _ in range(MESSAGES):
                kind = str(rng.choice(KINDS))
                outcome = fuzzer.send(kind)
                if kind in ("valid", "duplicate"):
                    assert outcome == "taken", (kind, outcome)
            thread.join(timeout=300)
            assert not thread.is_alive()
            actor.link.stop(drain_s=60)
            assert actor.link.acked_seq == actor.seq == REAL_STEPS and actor.link.backlog == 0
            assert not actor.link.errors, actor.link.errors
        finally:
            thread.join(timeout=30)
            actor.close()
        server = service.server
        # Every refusal was counted under the reason the fuzzer was told, and nothing else was.
        assert dict(server.rejected) == dict(fuzzer.refusals), (server.rejected, fuzzer.refusals)
        for reason in ("bad_record", "gap", "bad_value", "bad_shape", "bad_frames", "oversized",
                       "bad_field", "malformed", "bad_version"):
            assert fuzzer.refusals[reason] > 0, (reason, fuzzer.refusals)
        assert sum(fuzzer.outcomes.values()) == MESSAGES and fuzzer.outcomes["valid: taken"] > 500
        assert server.durable_seq == {"robot-a": REAL_STEPS, "robot-b": fuzzer.seq}, server.durable_seq
        expected = {"robot-a": REAL_STEPS, "robot-b": fuzzer.seq}
        assert settles(lambda: service.updater.applied == expected, timeout=120), service.updater.applied
    applied = read_journal(tmp_path / "run" / "applied.log")
    for actor_id, last in expected.items():
        assert [s for a, s in applied if a == actor_id] == list(range(1, last + 1)), actor_id
