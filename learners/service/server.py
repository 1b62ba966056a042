"""The learner's network side: one ZeroMQ ROUTER socket serving any number of actors.

Each actor connects a DEALER whose routing id is its actor id. Transition batches are checked
record by record (decoded strictly, shapes against the learner's spec, sequence contiguity),
appended to the replay cache unchanged, and acknowledged only once the cache says they are
durable. Duplicates (a resend after a lost ack) are dropped and re-acknowledged, so delivery is
idempotent. Anything malformed is answered with an ERROR naming the reason, counted, and the
server keeps serving.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
import uuid
from dataclasses import dataclass

import numpy as np
import zmq

from learners.cache import ReplayCache
from learners.cache.errors import CacheError
from learners.cache.format import KIND_TRANSITION
from learners.cache.records import decode_transition
from learners.security import apply_server_curve, start_authenticator
from learners.service.config import LearnerConfig
from learners.service.weights import WeightsBox
from learners.transition import Transition
from learners.wire import (
    ACK,
    BYE,
    ERROR,
    HEARTBEAT,
    HELLO,
    TRANSITIONS,
    WEIGHTS,
    WEIGHTS_ANNOUNCE,
    WEIGHTS_GET,
    WELCOME,
    WireError,
    WireLimits,
    decode,
    encode,
)

log = logging.getLogger(__name__)


@dataclass
class Session:
    actor_id: str
    last_seen: float
    announced: int = -1
    applied_sent: int = -1


class LearnerServer:
    """Serve actors on ``config.bind`` until ``stop`` is set (call ``serve`` in a thread)."""

    def __init__(self, config: LearnerConfig, cache: ReplayCache, weights: WeightsBox,
                 durable_seq: dict[str, int], limits: WireLimits | None = None,
                 applied_seq: dict[str, int] | None = None) -> None:
        self.config, self.cache, self.weights = config, cache, weights
        self.applied_seq = applied_seq if applied_seq is not None else {}  # the updater's, read-only
        self.limits = limits or WireLimits(max_records=config.max_batch_records)
        self.learner_id = uuid.uuid4().hex[:12]
        self.appended_seq = dict(durable_seq)  # highest seq appended per actor (maybe not durable)
        self.durable_seq = dict(durable_seq)  # highest seq durable per actor: what acks say
        self.pending: collections.deque[tuple[int, str, int]] = collections.deque()  # offset, actor, seq
        self.sessions: dict[str, Session] = {}
        self.rejected: collections.Counter[str] = collections.Counter()
        self.received = 0
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.ctx = zmq.Context()
        self._auth = None
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.MAXMSGSIZE, self.limits.max_message_bytes)
        self.sock.setsockopt(zmq.SNDHWM, 10_000)
        self.sock.setsockopt(zmq.RCVHWM, 10_000)
        if config.curve is not None:
            self._auth = start_authenticator(self.ctx, config.curve)
            apply_server_curve(self.sock, config.curve)
        self.sock.bind(config.bind)
        self.endpoint = self.sock.getsockopt(zmq.LAST_ENDPOINT).decode()

    # -- the loop --------------------------------------------------------------------------------
    def serve(self) -> None:
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        self.ready.set()
        try:
            while not self.stop.is_set():
                events = dict(poller.poll(1 if self.pending else 20))
                if self.sock in events:
                    for _ in range(256):
                        try:
                            # Copied into bytes: a transition batch is many small frames, which
                            # bytes carry more cheaply than zmq.Frame objects, and the cache keeps
                            # bytes as they are.
                            frames = self.sock.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self._handle(frames)
                self._send_acks()
                self._announce_weights()
                self._report_applied()
        finally:
            self.close()

    def close(self) -> None:
        self.sock.close(linger=0)
        if self._auth is not None:
            self._auth.stop()
        self.ctx.term()

    def _send(self, actor_id: str, kind: str, fields: dict, frames=()) -> None:
        try:
            self.sock.send_multipart([actor_id.encode(), *encode(kind, fields, frames)], zmq.NOBLOCK,
                                     copy=False)
        except zmq.Again:  # the actor is gone or not reading; acks are cumulative, weights refetched
            pass

    def _reject(self, actor_id: str | None, err: WireError) -> None:
        self.rejected[err.reason] += 1
        log.warning("rejected a message from %s: %s", actor_id or "an unknown peer", err)
        if actor_id is not None:
            self._send(actor_id, ERROR, {"reason": err.reason, "detail": err.detail[:500]})

    def _handle(self, frames: list[bytes]) -> None:
        routing = frames[0]
        try:
            actor_id = routing.decode()
        except UnicodeDecodeError:
            actor_id = None
        try:
            msg = decode(frames[1:], self.limits)
            if msg.type == HELLO:
                self._hello(actor_id, msg.fields)
                return
            session = self.sessions.get(actor_id) if actor_id else None
            if session is None:
                raise WireError("no_session", f"{msg.type} before hello")
            session.last_seen = time.monotonic()
            if msg.fields.get("actor_id", actor_id) != actor_id:
                claimed = msg.fields.get("actor_id")
                raise WireError("bad_field", f"actor_id {claimed!r} on {actor_id!r}'s link")
            if msg.type == TRANSITIONS:
                self._transitions(actor_id, msg)
            elif msg.type == WEIGHTS_GET:
                self._send_weights(actor_id)
            elif msg.type == HEARTBEAT:
                # Answered with the current acknowledgement: an ACK the socket had to drop (a full
                # queue) is repaired within a heartbeat, even after the actor's last batch.
                self._ack_now(actor_id)
            elif msg.type == BYE:
                self.sessions.pop(actor_id, None)
            else:
                raise WireError("unexpected_type", f"{msg.type} is not sent to a learner")
        except WireError as err:
            self._reject(actor_id, err)

    def _hello(self, actor_id: str | None, fields: dict) -> None:
        if actor_id is None or fields["actor_id"] != actor_id or not actor_id:
            raise WireError("bad_field", "hello: actor_id must equal the link's routing id")
        spec = fields["spec"]
        mine = self.config.spec
        wrong = {k: (spec.get(k), v) for k, v in mine.items() if spec.get(k) != v}
        if wrong:
            raise WireError("bad_spec", "hello: spec differs from the learner's: " +
                            ", ".join(f"{k}: actor {a!r} vs learner {b!r}" for k, (a, b) in wrong.items()))
        held = self.durable_seq.get(actor_id, 0)
        if fields["last_seq"] < held:
            log.warning("actor %s says its last seq is %d but the learner holds %d: its spool was lost; "
                        "new transitions must continue after %d", actor_id, fields["last_seq"], held, held)
        self.sessions[actor_id] = Session(actor_id, time.monotonic())
        latest = self.weights.latest()
        self._send(actor_id, WELCOME, {"acked_seq": held, "learner_id": self.learner_id,
                                       "weights_version": latest.version if latest else -1})
        log.info("actor %s connected (holds seq <= %d, learner has <= %d)", actor_id,
                 fields["last_seq"], held)

    def _transitions(self, actor_id: str, msg) -> None:
        first, last = msg.fields["first_seq"], msg.fields["last_seq"]
        have = self.appended_seq.get(actor_id, 0)
        if last <= have:  # all duplicates: re-ack what is durable
            self._ack_now(actor_id)
            return
        if first > have + 1:
            raise WireError("gap", f"transitions {first}..{last}: expected seq {have + 1} next")
        fresh = msg.frames[have + 1 - first:]
        states: list[np.ndarray] = []
        for i, frame in enumerate(fresh):
            self._check_record(actor_id, have + 1 + i, frame, states)
        if not np.isfinite(np.concatenate(states)).all():  # one pass for the batch, then find which
            self._find_nonfinite(actor_id, have + 1, fresh)
        payloads = fresh
        try:
            offsets = self.cache.log.append_many(payloads, KIND_TRANSITION)
        except CacheError as e:
            raise WireError("cache_error", f"could not store transitions {have + 1}..{last}: {e}") from e
        self.appended_seq[actor_id] = last
        self.pending.append((offsets[-1], actor_id, last))
        self.received += len(payloads)

    def _check_record(self, actor_id: str, seq: int, payload: bytes, states: list[np.ndarray]) -> None:
        """Decode and check one record; its state vectors go to ``states`` for the batch's
        finiteness check."""
        try:
            t = decode_transition(payload, max_size=self.limits.max_record_bytes, where=f"{actor_id}/{seq}")
        except (ValueError, CacheError) as e:
            raise WireError("bad_record", str(e)) from e
        self._validate(t, actor_id, seq, states)

    def _find_nonfinite(self, actor_id: str, first: int, payloads: list[bytes]) -> None:
        """Raise for the first record of a batch with a non-finite observation or action (the slow
        path: the batch's one-pass check found one)."""
        for i, payload in enumerate(payloads):
            t = decode_transition(payload, max_size=self.limits.max_record_bytes)
            for name in ("obs", "next_obs", "action"):
                state = _state_of(getattr(t, name))
                if isinstance(state, np.ndarray) and not np.isfinite(state).all():
                    raise WireError("bad_value", f"transition {actor_id}/{first + i}: {name} is not finite")
        raise AssertionError("a batch with a non-finite observation, but no record has one")

    def _validate(self, t: Transition, actor_id: str, seq: int, states: list[np.ndarray]) -> None:
        where = f"transition {actor_id}/{seq}"
        if t.actor_id != actor_id or t.seq != seq:
            raise WireError("bad_record", f"{where}: record says {t.actor_id}/{t.seq}")
        cfg = self.config
        states.append(_check_observation(t.obs, cfg.obs_dim, f"{where}: obs"))
        states.append(_check_observation(t.next_obs, cfg.obs_dim, f"{where}: next_obs"))
        if cfg.action_dim is not None:
            a = t.action
            if not (isinstance(a, np.ndarray) and a.shape == (cfg.action_dim,) and a.dtype == np.float32):
                raise WireError("bad_shape", f"{where}: action must be float32[{cfg.action_dim}]")
            states.append(a)  # its finiteness is checked with the batch's observations
        elif not (isinstance(t.action, int) and 0 <= t.action < cfg.n_actions):
            raise WireError("bad_value", f"{where}: action must be an int in [0, {cfg.n_actions})")
        if not math.isfinite(t.reward):
            raise WireError("bad_value", f"{where}: reward is not finite")

    def _ack_now(self, actor_id: str) -> None:
        applied = self.applied_seq.get(actor_id, 0)
        self._send(actor_id, ACK, {"actor_id": actor_id, "seq": self.durable_seq.get(actor_id, 0),
                                   "applied_seq": applied})
        session = self.sessions.get(actor_id)
        if session is not None:
            session.applied_sent = applied

    def _report_applied(self) -> None:
        """Tell actors how far learning has got (a simulated actor may pace itself on it)."""
        for session in self.sessions.values():
            if self.applied_seq.get(session.actor_id, 0) > session.applied_sent:
                self._ack_now(session.actor_id)

    def _send_acks(self) -> None:
        if not self.pending:
            return
        durable = self.cache.durable_offset
        acked: dict[str, int] = {}
        while self.pending and self.pending[0][0] < durable:
            _, actor_id, seq = self.pending.popleft()
            acked[actor_id] = seq
        for actor_id, seq in acked.items():
            self.durable_seq[actor_id] = seq
            if actor_id in self.sessions:
                self._ack_now(actor_id)

    def _announce_weights(self) -> None:
        latest = self.weights.latest()
        if latest is None:
            return
        for session in self.sessions.values():
            if session.announced < latest.version:
                session.announced = latest.version
                self._send(session.actor_id, WEIGHTS_ANNOUNCE, {"version": latest.version,
                                                                 "sha256": latest.sha256,
                                                                 "nbytes": len(latest.blob)})

    def _send_weights(self, actor_id: str) -> None:
        latest = self.weights.latest()
        if latest is None:
            raise WireError("no_weights", "no weights published yet")
        self._send(actor_id, WEIGHTS, {"version": latest.version, "sha256": latest.sha256}, [latest.blob])


def _state_of(value):
    return value["state"] if isinstance(value, dict) else value


def _check_observation(value, obs_dim: int, where: str) -> np.ndarray:
    """A learner observation: a float32[obs_dim] vector, or a dict holding one under ``state``
    (what the learner learns from) plus optional ``image.<camera>`` uint8 HxWx3 frames (kept in
    the cache for reuse, never fed to the stream-x heads). Returns the state vector; whether it
    is finite is checked for a whole batch at once (``LearnerServer._transitions``)."""
    if type(value) is np.ndarray:  # the common case first
        if value.dtype == np.float32 and value.shape == (obs_dim,):
            return value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "state":
                continue
            ok = (key.startswith("image.") and isinstance(item, np.ndarray) and item.dtype == np.uint8
                  and item.ndim == 3 and item.shape[2] == 3)
            if not ok:
                raise WireError("bad_shape", f"{where}[{key!r}]: only 'state' and uint8 HxWx3 "
                                             "'image.<camera>' entries are accepted")
        if "state" not in value:
            raise WireError("bad_shape", f"{where}: an observation dict needs a 'state' vector")
        value = value["state"]
    if not (isinstance(value, np.ndarray) and value.dtype == np.float32 and value.shape == (obs_dim,)):
        got = f"{getattr(value, 'dtype', type(value).__name__)}{list(getattr(value, 'shape', []))}"
        raise WireError("bad_shape", f"{where} must be float32[{obs_dim}], got {got}")
    return value
