"""The actor's link to its learner, on a thread of its own.

The control loop only appends batch records to the local spool (a replay cache, through
``SpoolBatcher``) and hands the link each record's sequence range and offset; it never waits on
the network. The link sends spooled records once they are durable
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
from typing import Any, Protocol

import zmq

from learners.cache import ReplayCache
from learners.cache.batch import encode_batch
from learners.cache.format import KIND_TRANSITION
from learners.cache.records import decode_transition
from learners.link.security import CurveClient, apply_client_curve, check_plaintext_endpoint
from learners.link.spool import trim_spool
from learners.link.wakeup import Wakeup
from learners.link.wire import (
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


class BatchSource(Protocol):
    """What feeds the link batch records (``learners.link.batcher.SpoolBatcher``)."""

    open_rows: int  # transitions taken but not yet in a queued batch

    def flush(self) -> None: ...  # queue the open batch now

    def flush_due(self) -> None: ...  # queue it if it has waited long enough (link thread)


class ActorLink:
    """Streams the batch records of ``spool`` (``(first_seq, last_seq, offset)``) to the learner at
    ``endpoint``, one message each."""

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
        timeout_s: float = 3.0,
        limits: WireLimits | None = None,
    ) -> None:
        if curve is None:
            check_plaintext_endpoint(endpoint, insecure, "actor")
        self.endpoint, self.actor_id, self.spec, self.spool = endpoint, actor_id, spec, spool
        self.weight_shapes, self.curve = weight_shapes, curve
        self.window, self.timeout_s = window, timeout_s
        self.limits = limits or WireLimits()
        self.mailbox = WeightsMailbox()
        # Records move between these two queues (and back, when a connection is lost) under
        # ``_queues``, so that ``backlog``, read from other threads, never misses a record that
        # is on its way from one to the other (seen: a drain that stopped before the last batch).
        self._queues = threading.Lock()
        # (first_seq, last_seq, offset, payload or None to read it from the spool)
        self.unsent: collections.deque[tuple[int, int, int, bytes | None]] = collections.deque()
        self.inflight: collections.deque[tuple[int, int, int, bytes | None]] = collections.deque()
        self._backlog = 0  # transitions in both queues
        self._inflight_rows = 0
        self.source: BatchSource | None = None  # where batches come from (``SpoolBatcher``)
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
        self._wakeup = Wakeup()  # set when a batch is queued

    # -- called by the control loop --------------------------------------------------------------
    def enqueue(self, first_seq: int, last_seq: int, offset: int, payload: bytes | None) -> None:
        """Queue the spool's record at ``offset``: transitions ``first_seq..last_seq``."""
        with self._queues:
            self.unsent.append((first_seq, last_seq, offset, payload))
            self._backlog += last_seq - first_seq + 1
            self.last_seq = max(self.last_seq, last_seq)
        self._wakeup.set()  # the link thread may be waiting on the socket

    @property
    def backlog(self) -> int:
        """Transitions not yet acknowledged by the learner (those still in an open batch too)."""
        with self._queues:
            queued = self._backlog
        return queued + (self.source.open_rows if self.source is not None else 0)

    def start(self) -> ActorLink:
        self._thread = threading.Thread(target=self._run, name=f"link-{self.actor_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self, drain_s: float = 0.0) -> None:
        """Stop, after waiting up to ``drain_s`` for every record to be acknowledged."""
        deadline = time.monotonic() + drain_s
        if self.source is not None:
            self.source.flush()
        while self.backlog and time.monotonic() < deadline:
            time.sleep(0.01)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._thread is None or not self._thread.is_alive():
            self._wakeup.close()

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
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        wake = self._wakeup.fileno()  # (the poller reports plain descriptors by number)
        poller.register(wake, zmq.POLLIN)
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
                if self.source is not None:
                    self.source.flush_due()
                if self.connected:
                    self._send_batches(sock)
                    if now - last_beat > 0.5:
                        self._commit_acked()
                        self._send(sock, HEARTBEAT, {"time": time.time(), "actor_id": self.actor_id})
                        last_beat = now
                events = dict(poller.poll(2 if self.connected and self.unsent else 20))
                if wake in events:  # a batch was queued: send it on the next turn
                    self._wakeup.clear()
                if sock in events:
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
            self._inflight_rows = 0

    def _send_batches(self, sock: zmq.Socket) -> None:
        durable = self.spool.durable_offset
        while True:
            with self._queues:  # in flight from the moment it leaves the queue
                if not self.unsent or self._inflight_rows >= self.window or self.unsent[0][2] >= durable:
                    return  # nothing to send, the window is full, or the next is not on disk yet
                entry = self.unsent.popleft()
                self.inflight.append(entry)
                self._inflight_rows += entry[1] - entry[0] + 1
            first, last, offset, payload = entry
            frame = payload if payload is not None else self._spooled(offset)
            fields = {"actor_id": self.actor_id, "first_seq": first, "last_seq": last}
            if not self._send(sock, TRANSITIONS, fields, [frame]):
                with self._queues:  # back to the front (acks arrive on this thread only)
                    self.unsent.appendleft(self.inflight.pop())
                    self._inflight_rows -= last - first + 1
                return
            self.sent += last - first + 1

    def _spooled(self, offset: int) -> bytes:
        """The batch bytes of the spool's record at ``offset``; a single-transition record (what
        an actor of protocol version 1 spooled) is sent as a batch of one."""
        kind, payload = self.spool.log.read(offset)
        if kind == KIND_TRANSITION:
            where = f"spool record at offset {offset}"
            t = decode_transition(payload, max_size=self.spool.config.max_record_bytes, where=where)
            payload = encode_batch([t])
        return payload

    def _acked(self, seq: int) -> None:
        with self._queues:
            self.acked_seq = max(self.acked_seq, seq)
            for queue in (self.inflight, self.unsent):
                while queue and queue[0][1] <= self.acked_seq:
                    first, last, self.acked_offset, _ = queue.popleft()
                    self._backlog -= last - first + 1
                    if queue is self.inflight:
                        self._inflight_rows -= last - first + 1

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
