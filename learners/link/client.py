"""The actor's link to its learner, on a thread of its own.

The control loop only appends batch records to the local spool (``ActorSpool``, through
``SpoolBatcher``); it never waits on the network. The link takes from the spool what it has not
sent (the spool offers a record once it is durable locally, so a restarted actor can never reuse
a sequence number the learner has seen), keeps a window of unacknowledged transitions in flight
(``window`` transitions and ``window_bytes``, so camera frames do not pile up in ZeroMQ's queues),
tells the spool what the learner acknowledged, and has it resend everything unacknowledged after
a reconnect. It also fetches weights the learner announces and hands them to the control loop
through a mailbox, only finite ones: weights holding a NaN or an infinity are refused, counted
(``errors["nonfinite_weights"]``) and logged by name, and the actor acts on with the last good ones.
The link never calls the batcher, and reads the spool only through its methods.

ZeroMQ reconnects a socket by itself, but not out of every wedge: a half-open TCP connection whose
peer never answers the handshake, a CurveZMQ handshake against a learner that now has another
key (the key files are read when a socket is made), a send queue full towards a dead peer. So when
hellos go unanswered for ``RENEW_AFTER_S`` the link closes its socket (dropping whatever it had
queued) and makes a fresh one, waiting twice as long each time it gets no answer again, up to
``RENEW_MAX_S``. Nothing is lost or applied twice by it: what was in flight is resent after the
welcome, from what the learner says it holds.
"""

from __future__ import annotations

import collections
import logging
import random
import threading
import time
from typing import Any

import zmq

from learners.link.security import CurveClient, apply_client_curve, check_endpoint, check_plaintext_endpoint
from learners.link.spool import ActorSpool
from learners.link.throttle import LogThrottle
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
    name_some,
    nonfinite_weights,
    unpack_weights,
)

log = logging.getLogger(__name__)

HEARTBEAT_S = 0.5  # also how often the spool is tended (acknowledged position, a full disk)
HELLO_EVERY_S = 0.5
RENEW_AFTER_S = 5.0  # hellos unanswered this long: a fresh socket
RENEW_MAX_S = 60.0
WINDOW_BYTES = 64 * 1024 * 1024  # batch bytes in flight at most (one batch always goes)


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
    """Streams the batch records of ``spool`` to the learner at ``endpoint``, one message each."""

    def __init__(
        self,
        endpoint: str,
        actor_id: str,
        spec: dict[str, Any],
        spool: ActorSpool,
        *,
        weight_shapes: dict[str, tuple[int, ...]],
        curve: CurveClient | None = None,
        insecure: bool = False,
        window: int = 16_384,
        window_bytes: int = WINDOW_BYTES,
        timeout_s: float = 3.0,
        limits: WireLimits | None = None,
    ) -> None:
        check_endpoint(endpoint, "actor")
        if curve is None:
            check_plaintext_endpoint(endpoint, insecure, "actor")
        self.endpoint, self.actor_id, self.spec, self.spool = endpoint, actor_id, spec, spool
        self.weight_shapes, self.curve = weight_shapes, curve
        self.window, self.window_bytes, self.timeout_s = window, window_bytes, timeout_s
        self.limits = limits or WireLimits()
        self.mailbox = WeightsMailbox()
        self.applied_seq = 0  # how far the learner has learned from this actor's stream
        self.connected = False
        self.weights_version = -1
        self.errors: collections.Counter[str] = collections.Counter()
        self.sent = 0
        self.renewals = 0  # sockets replaced because hellos went unanswered
        self.weights_refused = 0  # weights messages refused for non-finite values
        # The learner's last answer to a hello that was an error ("bad_spec: ..."), until a welcome:
        # a mismatch no resend can fix (the actor's and the learner's configs disagree)
        self.refused: str | None = None
        self._refusals, self._refusal_log = 0, LogThrottle()  # a refused hello, said every 30 s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what the spool knows, read where callers have always read it --------------------------
    @property
    def backlog(self) -> int:
        """Transitions not yet acknowledged by the learner (those still in an open batch too)."""
        return self.spool.backlog

    @property
    def acked_seq(self) -> int:
        """The highest sequence number the learner has acknowledged (it holds every one up to it)."""
        return self.spool.acked_seq

    @property
    def learner_seq(self) -> int:
        """The highest sequence number of ours the learner said it holds (at hello)."""
        return self.spool.learner_seq

    @property
    def last_seq(self) -> int:
        """The highest sequence number spooled, or the spool's floor (said at hello)."""
        return self.spool.last_seq

    def start(self) -> ActorLink:
        """Start the link's thread; while it runs, another call does nothing (two threads would
        share one spool and one session). A stopped link does not start again: make a new one."""
        if self._stop.is_set():
            raise RuntimeError(f"actor {self.actor_id}: this link was stopped; a new ActorLink is needed")
        if self._thread is not None and self._thread.is_alive():
            return self
        self._thread = threading.Thread(target=self._run, name=f"link-{self.actor_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self, drain_s: float = 0.0) -> None:
        """Stop, after waiting up to ``drain_s`` for every record to be acknowledged (close the
        batcher first, so that its open batch is among them)."""
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
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        appended = self.spool.appended
        wake = appended.fileno()  # (the poller reports plain descriptors by number)
        poller.register(wake, zmq.POLLIN)
        last_hello = last_rx = last_beat = last_tend = 0.0
        fetching_since = 0.0
        unanswered_since, backoff = 0.0, RENEW_AFTER_S  # hellos without a welcome: since when
        renew_after = backoff
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if self.connected and now - last_rx > self.timeout_s:
                    log.warning(
                        "actor %s: learner silent for %.1fs; reconnecting", self.actor_id, now - last_rx
                    )
                    self._lost()
                if now - last_tend > HEARTBEAT_S:
                    self.spool.tend()  # (never raises: a full disk must not stop the sending)
                    last_tend = now
                if self.connected:
                    unanswered_since, backoff = 0.0, RENEW_AFTER_S
                else:
                    if not unanswered_since:
                        unanswered_since, renew_after = now, backoff
                    elif now - unanswered_since > renew_after:
                        sock = self._renew(ctx, poller, sock, now - unanswered_since)
                        backoff = min(backoff * 2, RENEW_MAX_S)
                        # (jittered: actors of one learner that restarted do not all come back at once)
                        renew_after = backoff * random.uniform(0.9, 1.1)
                        unanswered_since, last_hello, fetching_since = now, 0.0, 0.0
                    if now - last_hello > HELLO_EVERY_S:
                        self._send(sock, HELLO, {"actor_id": self.actor_id, "last_seq": self.last_seq,
                                                 "spec": self.spec})
                        last_hello = now
                if self.connected:
                    self._send_batches(sock)
                    if now - last_beat > HEARTBEAT_S:
                        self._send(sock, HEARTBEAT, {"time": time.time(), "actor_id": self.actor_id})
                        last_beat = now
                events = dict(poller.poll(2 if self.connected and self.spool.unsent_count else 20))
                if wake in events:  # a batch was spooled: send it on the next turn
                    appended.clear()
                if sock in events:
                    while True:
                        try:
                            frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        last_rx = time.monotonic()
                        was_connected = self.connected
                        want = self._handle(frames)
                        if want and (not fetching_since or time.monotonic() - fetching_since > 5):
                            self._send(sock, WEIGHTS_GET, {"actor_id": self.actor_id})
                            fetching_since = time.monotonic()
                        elif want is False:
                            fetching_since = 0.0
                        if was_connected and not self.connected:  # the session was lost: hello now
                            last_hello = 0.0
            if self.connected:
                self._send(sock, BYE, {"actor_id": self.actor_id})
            self.spool.commit_acked()
        finally:
            sock.close(linger=100)
            ctx.term()

    def _renew(self, ctx: zmq.Context, poller: zmq.Poller, sock: zmq.Socket, waited: float) -> zmq.Socket:
        """Hellos went unanswered for ``waited`` seconds: replace ``sock`` by a fresh socket (a new
        connection, a new handshake, the key files read again, nothing left queued). Keeps
        ``sock`` if a fresh one cannot be made (e.g. a key file unreadable): tried again later."""
        try:
            fresh = self._socket(ctx)
        except (zmq.ZMQError, OSError, ValueError) as e:
            log.error("actor %s: no answer from %s for %.1f s, and no fresh socket could be made: %s",
                      self.actor_id, self.endpoint, waited, e)
            return sock
        poller.unregister(sock)
        sock.close(linger=0)
        poller.register(fresh, zmq.POLLIN)
        self.renewals += 1
        log.warning("actor %s: no answer to hello from %s for %.1f s; reconnecting on a fresh socket (%d so "
                    "far)", self.actor_id, self.endpoint, waited, self.renewals)
        return fresh

    def _refusal(self, why: str) -> None:
        self._refusals += 1
        due = self._refusal_log.due(why)  # counts the repeat either way
        if due is not None or why != self.refused:  # a new reason is said at once
            log.error("actor %s: learner %s refuses this actor's hello (%d times so far): %s; nothing is "
                      "sent until it accepts, transitions wait in the spool", self.actor_id, self.endpoint,
                      self._refusals, why)
        self.refused = why

    def _send(self, sock: zmq.Socket, kind: str, fields: dict, frames=()) -> bool:
        try:
            sock.send_multipart(encode(kind, fields, frames), zmq.NOBLOCK, copy=False)
            return True
        except zmq.Again:
            return False

    def _lost(self) -> None:
        self.connected = False
        self.spool.resend_unacked()

    def _send_batches(self, sock: zmq.Socket) -> None:
        while True:
            # None: nothing to send, the window is full, or the next record is not on disk yet.
            record = self.spool.take_unsent(self.window, self.window_bytes)
            if record is None:
                return
            first, last, frame, after = record
            fields = {"actor_id": self.actor_id, "first_seq": first, "last_seq": last}
            if after != first - 1:  # numbers before it that this actor no longer has (a restart)
                fields["after"] = after
            if not self._send(sock, TRANSITIONS, fields, [frame]):
                self.spool.put_back(frame)  # acknowledgements arrive on this thread only
                return
            self.sent += last - first + 1

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
            if self.connected:  # another answer to hellos that queued up while connecting: resending
                return None     # what is in flight again would only send it twice
            self.connected, self.refused = True, None
            self.spool.learner_holds(f["acked_seq"])  # resend what it lacks; never reuse what it has
            log.info(
                "actor %s: connected to learner %s (it holds seq <= %d; %d to send)",
                self.actor_id,
                f["learner_id"],
                f["acked_seq"],
                self.backlog,
            )
            return f["weights_version"] > self.weights_version
        if msg.type == ACK:
            self.spool.acked(f["seq"])
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
            bad = nonfinite_weights(state)
            if bad:  # one NaN in a weight makes every action NaN: act on with the last good ones
                self.errors["nonfinite_weights"] += 1
                self.weights_refused += 1
                log.error("actor %s: refused weights v%d from the learner: non-finite values in %s; acting "
                          "on with weights v%d", self.actor_id, f["version"], name_some(bad),
                          self.weights_version)
                return False
            if f["version"] > self.weights_version:
                self.weights_version = f["version"]
                self.mailbox.put(f["version"], state)
            return False
        elif msg.type == ERROR:
            self.errors[f["reason"]] += 1
            if not self.connected:  # the answer to a hello: said when it starts, then now and then
                self._refusal(f"{f['reason']}: {f['detail']}")
                return None
            log.warning(
                "actor %s: learner rejected a message: %s: %s", self.actor_id, f["reason"], f["detail"]
            )
            if f["reason"] in ("no_session", "gap"):
                self._lost()
        return None
