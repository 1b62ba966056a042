"""The actor's link to its learner, on a thread of its own.

The control loop only appends to the local spool (a replay cache) and hands the link the record's
offset; it never waits on the network. The link sends spooled records once they are durable
locally (so a restarted actor can never reuse a sequence number the learner has seen), keeps a
window of unacknowledged records in flight, forgets them when the learner acknowledges, and
resends everything unacknowledged after a reconnect. It also fetches weights the learner
announces and hands them to the control loop through a mailbox.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any

import zmq

from agent.actor.spool import trim_spool
from learners.cache import ReplayCache
from learners.security import CurveClient, apply_client_curve, check_plaintext_endpoint
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
    unpack_weights,
)

log = logging.getLogger(__name__)

TRIM_EVERY_S = 10.0  # how often acknowledged spool segments past the size bound are dropped


class WeightsMailbox:
    """One slot: the link puts the newest verified weights, the control loop takes them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._item: tuple[int, dict[str, Any], float] | None = None

    def put(self, version: int, state: dict[str, Any]) -> None:
        with self._lock:
            self._item = (version, state, time.monotonic())

    def take(self) -> tuple[int, dict[str, Any], float] | None:
        with self._lock:
            item, self._item = self._item, None
            return item


class ActorLink:
    """Streams ``(seq, offset)`` records of ``spool`` to the learner at ``endpoint``."""

    def __init__(
        self,
        endpoint: str,
        actor_id: str,
        spec: dict[str, Any],
        spool: ReplayCache,
        *,
        weight_shapes: dict[str, tuple[int, ...]],
        curve: CurveClient | None = None,
        insecure: bool = False,
        window: int = 16_384,
        batch: int = 1024,
        timeout_s: float = 3.0,
        limits: WireLimits | None = None,
    ) -> None:
        if curve is None:
            check_plaintext_endpoint(endpoint, insecure, "actor")
        self.endpoint, self.actor_id, self.spec, self.spool = endpoint, actor_id, spec, spool
        self.weight_shapes, self.curve = weight_shapes, curve
        self.window, self.batch, self.timeout_s = window, batch, timeout_s
        self.limits = limits or WireLimits(max_records=max(batch, 4096))
        self.mailbox = WeightsMailbox()
        # Records move between these two queues (and back, when a connection is lost) under
        # ``_queues``, so that ``backlog``, read from other threads, never misses a record that
        # is on its way from one to the other (seen: a drain that stopped before the last batch).
        self._queues = threading.Lock()
        self.unsent: collections.deque[tuple[int, int, bytes | None]] = collections.deque()
        self.inflight: collections.deque[tuple[int, int, bytes | None]] = collections.deque()
        self.last_seq = 0  # highest seq handed to the link
        self.acked_seq = 0
        self.learner_seq = 0  # the highest seq of ours the learner said it holds (at hello)
        self.applied_seq = 0  # how far the learner has learned from this actor's stream
        self.acked_offset = -1
        self.connected = False
        self.weights_version = -1
        self.errors: collections.Counter[str] = collections.Counter()
        self.sent = 0
        self._acked_consumer = spool.consumer("acked")
        self._committed_offset = -1
        self._trimmed_at = float("-inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- called by the control loop --------------------------------------------------------------
    def enqueue(self, seq: int, offset: int, payload: bytes | None) -> None:
        with self._queues:
            self.unsent.append((seq, offset, payload))
            self.last_seq = seq

    @property
    def backlog(self) -> int:
        """Records not yet acknowledged by the learner."""
        with self._queues:
            return len(self.unsent) + len(self.inflight)

    def start(self) -> ActorLink:
        self._thread = threading.Thread(target=self._run, name=f"link-{self.actor_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self, drain_s: float = 0.0) -> None:
        """Stop, after waiting up to ``drain_s`` for every record to be acknowledged."""
        deadline = time.monotonic() + drain_s
        while self.backlog and time.monotonic() < deadline:
            time.sleep(0.01)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- the link thread -------------------------------------------------------------------------
    def _socket(self, ctx: zmq.Context) -> zmq.Socket:
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.ROUTING_ID, self.actor_id.encode())
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, self.limits.max_message_bytes)
        sock.setsockopt(zmq.SNDHWM, 1000)
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
        if self.curve is not None:
            apply_client_curve(sock, self.curve)
        sock.connect(self.endpoint)
        return sock

    def _run(self) -> None:
        ctx = zmq.Context()
        sock = self._socket(ctx)
        last_hello = last_rx = last_beat = 0.0
        fetching_since = 0.0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if self.connected and now - last_rx > self.timeout_s:
                    log.warning(
                        "actor %s: learner silent for %.1fs; reconnecting", self.actor_id, now - last_rx
                    )
                    self._lost()
                if not self.connected and now - last_hello > 0.5:
                    self._send(
                        sock, HELLO, {"actor_id": self.actor_id, "last_seq": self.last_seq, "spec": self.spec}
                    )
                    last_hello = now
                if self.connected:
                    self._send_batches(sock)
                    if now - last_beat > 0.5:
                        self._commit_acked()
                        self._send(sock, HEARTBEAT, {"time": time.time(), "actor_id": self.actor_id})
                        last_beat = now
                if sock.poll(2 if self.connected and self.unsent else 20):
                    while True:
                        try:
                            frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        last_rx = time.monotonic()
                        want = self._handle(frames)
                        if want and (not fetching_since or time.monotonic() - fetching_since > 5):
                            self._send(sock, WEIGHTS_GET, {"actor_id": self.actor_id})
                            fetching_since = time.monotonic()
                        elif want is False:
                            fetching_since = 0.0
                        if not self.connected:
                            last_hello = 0.0
            if self.connected:
                self._send(sock, BYE, {"actor_id": self.actor_id})
            self._commit_acked()
        finally:
            sock.close(linger=100)
            ctx.term()

    def _commit_acked(self) -> None:
        """Persist how far the learner has acknowledged, so a restart resends only the rest;
        now and then, drop acknowledged spool segments past the spool's size bound."""
        if self.acked_offset > self._committed_offset:
            self._acked_consumer.commit(self.acked_offset)
            self._committed_offset = self.acked_offset
            now = time.monotonic()
            if self.spool.config.retention_bytes is not None and now - self._trimmed_at > TRIM_EVERY_S:
                self._trimmed_at = now
                try:
                    trimmed = trim_spool(self.spool)
                except OSError as e:  # a full or failing disk: the spool keeps what it has
                    log.warning("actor %s: trimming the spool failed: %s", self.actor_id, e)
                else:
                    if trimmed.deleted:
                        log.info("actor %s: spool trimmed, %d acknowledged segment(s), %.1f MB freed",
                                 self.actor_id, len(trimmed.deleted), trimmed.freed_bytes / 1e6)

    def _send(self, sock: zmq.Socket, kind: str, fields: dict, frames=()) -> bool:
        try:
            sock.send_multipart(encode(kind, fields, frames), zmq.NOBLOCK, copy=False)
            return True
        except zmq.Again:
            return False

    def _lost(self) -> None:
        self.connected = False
        # Everything in flight goes back to the front of the queue, in order.
        with self._queues:
            self.unsent.extendleft(reversed(self.inflight))
            self.inflight.clear()

    def _send_batches(self, sock: zmq.Socket) -> None:
        durable = self.spool.durable_offset
        while self.unsent and len(self.inflight) < self.window:
            batch = []
            with self._queues:  # in flight from the moment they leave the queue
                while self.unsent and len(batch) < self.batch and len(self.inflight) < self.window:
                    if self.unsent[0][1] >= durable:  # not on the spool's disk yet
                        break
                    batch.append(self.unsent.popleft())
                    self.inflight.append(batch[-1])
            if not batch:
                return
            frames = [p if p is not None else self.spool.read_raw(o) for _, o, p in batch]
            fields = {"actor_id": self.actor_id, "first_seq": batch[0][0], "last_seq": batch[-1][0]}
            if not self._send(sock, TRANSITIONS, fields, frames):
                with self._queues:  # back to the front, in order (acks arrive on this thread only)
                    self.unsent.extendleft([self.inflight.pop() for _ in batch])
                return
            self.sent += len(batch)

    def _acked(self, seq: int) -> None:
        with self._queues:
            self.acked_seq = max(self.acked_seq, seq)
            for queue in (self.inflight, self.unsent):
                while queue and queue[0][0] <= self.acked_seq:
                    self.acked_offset = queue.popleft()[1]

    def _handle(self, frames: list) -> bool | None:
        """Process one message; True when weights should be fetched, False when they arrived."""
        try:
            msg = decode(frames, self.limits)
        except WireError as err:
            self.errors[err.reason] += 1
            log.warning("actor %s: bad message from the learner: %s", self.actor_id, err)
            return None
        f = msg.fields
        if msg.type == WELCOME:
            self.connected = True
            self._lost()  # resend everything not acknowledged, from the learner's point on
            self.connected = True
            self._acked(f["acked_seq"])
            self.learner_seq = max(self.learner_seq, f["acked_seq"])
            log.info(
                "actor %s: connected to learner %s (it holds seq <= %d; %d to send)",
                self.actor_id,
                f["learner_id"],
                f["acked_seq"],
                self.backlog,
            )
            return f["weights_version"] > self.weights_version
        if msg.type == ACK:
            self._acked(f["seq"])
            self.applied_seq = max(self.applied_seq, f.get("applied_seq", 0))
        elif msg.type == WEIGHTS_ANNOUNCE:
            return f["version"] > self.weights_version
        elif msg.type == WEIGHTS:
            try:
                state = unpack_weights(msg, self.weight_shapes)
            except WireError as err:
                self.errors[err.reason] += 1
                log.error("actor %s: refused weights: %s", self.actor_id, err)
                return False
            if f["version"] > self.weights_version:
                self.weights_version = f["version"]
                self.mailbox.put(f["version"], state)
            return False
        elif msg.type == ERROR:
            self.errors[f["reason"]] += 1
            log.warning(
                "actor %s: learner rejected a message: %s: %s", self.actor_id, f["reason"], f["detail"]
            )
            if f["reason"] in ("no_session", "gap"):
                self._lost()
        return None
