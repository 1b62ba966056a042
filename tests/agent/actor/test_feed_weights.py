"""The actor refuses weights holding a NaN or an infinity: a forged, well-formed ``weights``
message (right names and shapes, a valid SHA-256) sent on the wire by a real ROUTER socket
standing in for the learner is counted and logged by parameter name, never loaded, and the actor
acts on with its last good weights; the next finite weights are loaded as usual."""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
import zmq

from agent.actor.feed import LearnerFeed
from agent.actor.streamx_policy import StreamXPolicy
from learners.link.wire import (
    HELLO,
    WEIGHTS,
    WEIGHTS_ANNOUNCE,
    WEIGHTS_GET,
    WELCOME,
    WireLimits,
    decode,
    encode,
    pack_weights,
)
from learners.streamx import build_algorithm

SPEC = {"obs_dim": 4, "action_dim": 1, "n_actions": None, "algo": "stream-ac"}


class ForgingLearner:
    """A ROUTER on loopback that speaks just enough of the learner's side to hand out weights."""

    def __init__(self) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self.actor: bytes | None = None

    def recv(self, kind: str, timeout_s: float = 20.0):
        """The next message of type ``kind`` from the actor (others, e.g. heartbeats, skipped)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.sock.poll(100):
                routing, *frames = self.sock.recv_multipart()
                msg = decode(frames, WireLimits())
                self.actor = routing
                if msg.type == kind:
                    return msg
        raise AssertionError(f"no {kind} from the actor in {timeout_s} s")

    def send(self, kind: str, fields: dict, frames=()) -> None:
        self.sock.send_multipart([self.actor, *encode(kind, fields, frames)])

    def serve_weights(self, state: dict[str, torch.Tensor], version: int) -> None:
        """Announce ``version`` and answer the actor's request with ``state``, packed as the
        learner packs weights."""
        self.send(WEIGHTS_ANNOUNCE, {"version": version, "digest": "0" * 64, "nbytes": 0})
        self.recv(WEIGHTS_GET)
        fields, blob = pack_weights(state, version)
        self.send(WEIGHTS, fields, [blob])

    def close(self) -> None:
        self.sock.close(linger=0)
        self.ctx.term()


def _settles(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return predicate()


def _took(feed: LearnerFeed, version: int) -> bool:
    """Whether the actor acts with weights ``version`` (taking any that arrived, as its loop does)."""
    feed.take_weights()
    return feed.version == version


def test_weights_with_a_nan_or_an_inf_are_refused_and_the_actor_acts_on_with_its_last_ones(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    learner = ForgingLearner()
    policy = StreamXPolicy(build_algorithm("stream-ac", 4, action_dim=1, seed=0, fast=False))
    feed = LearnerFeed(tmp_path / "actor", "edge", learner.endpoint, SPEC, policy).start()
    try:
        learner.recv(HELLO)
        learner.send(WELCOME, {"acked_seq": 0, "weights_version": -1, "learner_id": "forger"})
        good = {k: torch.full_like(v, 0.01) for k, v in policy.state_dict().items()}
        learner.serve_weights(good, version=5)
        assert _settles(lambda: _took(feed, 5)), feed.version

        for version, poison in ((6, float("nan")), (7, float("inf"))):
            forged = {k: v.clone() for k, v in good.items()}
            name = sorted(forged)[1]
            forged[name].view(-1)[-1] = poison
            learner.serve_weights(forged, version)
            assert _settles(lambda v=version: feed.weights_refused == v - 5), feed.link.errors
            assert not feed.take_weights() and feed.version == 5  # nothing reached the policy
            assert f"refused weights v{version}" in caplog.text and name in caplog.text
        assert feed.link.errors["nonfinite_weights"] == 2
        acting = policy.state_dict()
        assert all(torch.equal(acting[k], good[k]) for k in good)  # still the last good weights
        chunk = policy.act({"state": np.zeros(4, np.float32)})
        assert np.isfinite(chunk.actions).all() and chunk.version == 5

        fixed = {k: torch.full_like(v, 0.02) for k, v in good.items()}
        learner.serve_weights(fixed, version=8)
        assert _settles(lambda: _took(feed, 8)), feed.version
        assert all(torch.equal(policy.state_dict()[k], fixed[k]) for k in fixed)
    finally:
        feed.close()
        learner.close()
