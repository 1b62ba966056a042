"""The learner's network side: one ZeroMQ ROUTER socket serving any number of actors.

Each actor connects a DEALER whose routing id is its actor id. A transition batch is decoded
strictly and checked column by column against the learner's spec (``checks.py``), appended to
the replay cache unchanged as one record, and acknowledged only once the cache says it is
durable. Duplicates (a resend after a lost ack) are dropped and re-acknowledged, so delivery is
idempotent. Anything malformed is answered with an ERROR naming the reason, counted, and the
server keeps serving.

With CurveZMQ every message is checked against the key that authenticated its connection: the
key must still be on the allow-list and be the one bound to the actor id the message uses (its
routing id, and the actor id it names). A second connection cannot take over a connected actor's
routing id (no ``ROUTER_HANDOVER``; ZeroMQ ignores the newcomer), and ZeroMQ heartbeats drop a
dead connection within seconds, so the actor's own reconnect finds its id free. Without CurveZMQ
(loopback) ids are unauthenticated and the newest connection of an id takes it over.

Revocation needs no restart: the network loop looks at the allow-list directory every second
(``AllowList.refresh_due``); a key removed or replaced there loses its session at once and
anything it still sends is refused (``key_revoked``). ZeroMQ gives a ROUTER no way to cut one
peer, and a revoked key's connection would keep its actor id from the actor's new key, so the
learner then closes its socket and binds a new one on the same endpoint: every actor's ZeroMQ
socket reconnects by itself (the others keep their sessions; what was lost in between is resent,
being unacknowledged), and the ZAP handler refuses the revoked key.

A full disk under the replay cache holds actors back (``holdback.py``).
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import zmq

from learners.cache import ReplayCache
from learners.cache.batch import decode_batch, encode_batch
from learners.cache.errors import CacheError, CacheFullError
from learners.link.checks import check_batch
from learners.link.holdback import FullDiskHoldBack
from learners.link.security import AllowList, EndpointError, apply_server_curve, start_authenticator
from learners.link.throttle import LogThrottle
from learners.link.wakeup import Wakeup
from learners.link.weights import WeightsBox
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
)

if TYPE_CHECKING:  # the learner's config, read by attribute only: no import cycle
    from learners.service.config import LearnerConfig


log = logging.getLogger(__name__)

# ZeroMQ heartbeats: the learner pings every connection each second and drops one silent for 5 s;
# an actor drops its connection after 10 s without a ping (and reconnects). The learner always
# gives up first, so an actor that reconnects finds its routing id free.
HEARTBEAT_IVL_MS, HEARTBEAT_TIMEOUT_MS, HEARTBEAT_TTL_MS = 1000, 5000, 10_000


@dataclass
class Session:
    actor_id: str
    last_seen: float
    announced: int = -1
    applied_sent: int = -1
    held_back: bool = False  # transitions refused for a full disk, not yet resent


class LearnerServer(FullDiskHoldBack):
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
        # per (peer, reason): a peer repeating a refused message (a misconfigured actor's hello)
        self._reject_log = LogThrottle()
        self.received = 0
        #: Sequence numbers an actor declared it no longer has (``after`` on its first record after
        #: a restart that wrote behind): skipped, per actor.
        self.skipped: collections.Counter[str] = collections.Counter()
        self.cache_full: str | None = None  # why the cache cannot write now (a full disk), or None
        self.stop = threading.Event()
        self.ready = threading.Event()
        self._wakeup = Wakeup()  # set by the updater when it has applied records
        weights.on_put(self._wakeup.set)  # new weights are announced at once
        self.ctx = zmq.Context()
        self._auth = None
        self.allow: AllowList | None = None  # with CurveZMQ: which key speaks for which actor id
        if config.curve is not None:
            self.allow = AllowList(config.curve.allow_dir)
            self._auth = start_authenticator(self.ctx, self.allow)
        self.sock = self._socket()
        try:
            self.sock.bind(config.bind)
        except zmq.ZMQError as e:  # its port taken, an address not of this host
            self.close()
            raise EndpointError(f"learner: cannot bind {config.bind}: {e}") from None
        self.endpoint = self.sock.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.reopened = 0  # times the socket was replaced to cut revoked keys' connections

    def _socket(self) -> zmq.Socket:
        sock = self.ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
        sock.setsockopt(zmq.HEARTBEAT_TTL, HEARTBEAT_TTL_MS)
        sock.setsockopt(zmq.MAXMSGSIZE, self.limits.max_message_bytes)
        sock.setsockopt(zmq.SNDHWM, 10_000)
        sock.setsockopt(zmq.RCVHWM, 10_000)
        if self.config.curve is not None:
            apply_server_curve(sock, self.config.curve)
        else:  # ids are unauthenticated anyway: a restarted actor's connection replaces its old one
            sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
        return sock

    def _reopen(self, poller: zmq.Poller) -> None:
        """Replace the socket by a new one bound to the same endpoint, which drops every
        connection (actors reconnect by themselves)."""
        poller.unregister(self.sock)
        self.sock.close(linger=0)
        self.sock = self._socket()
        scheme, _, path = self.endpoint.partition("://")
        deadline = time.monotonic() + 5.0
        while True:
            # The old socket closes in ZeroMQ's own thread: its TCP port (or its ipc file, which
            # it deletes when it goes) may still be held for a moment.
            busy = scheme == "ipc" and os.path.exists(path)
            if not busy:
                try:
                    self.sock.bind(self.endpoint)
                    break
                except zmq.ZMQError as e:
                    if e.errno != zmq.EADDRINUSE:
                        raise
            if time.monotonic() > deadline:
                raise OSError(f"learner: could not bind {self.endpoint} again after closing it to "
                              "cut revoked keys' connections: still in use after 5 s")
            time.sleep(0.01)
        poller.register(self.sock, zmq.POLLIN)
        self.reopened += 1
        log.warning("learner: socket on %s reopened to cut revoked keys' connections; actors reconnect",
                    self.endpoint)

    # -- the loop --------------------------------------------------------------------------------
    def serve(self) -> None:
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        wake = self._wakeup.fileno()  # (the poller reports plain descriptors by number)
        poller.register(wake, zmq.POLLIN)
        self.ready.set()
        try:
            while not self.stop.is_set():
                events = dict(poller.poll(1 if self.pending else 20))
                if wake in events:
                    self._wakeup.clear()
                if self.sock in events:
                    for _ in range(256):
                        try:
                            frames, key = self._recv()
                        except zmq.Again:
                            break
                        self._handle(frames, key)
                if self.allow is not None and self._close_revoked(self.allow.refresh_due()):
                    self._reopen(poller)
                self._check_storage()
                self._send_acks()
                self._announce_weights()
                self._report_applied()
        finally:
            self.close()

    def close(self) -> None:
        self._wakeup.close()
        self.sock.close(linger=0)
        if self._auth is not None:
            self._auth.stop()
        self.ctx.term()

    def _recv(self) -> tuple[list, str | None]:
        """One message, and with CurveZMQ the key that authenticated its connection (z85 text;
        raises ``zmq.Again`` when none is queued). The routing id and the header come as bytes; a
        data frame (a batch) as a read-only view of the received frame itself: nobody writes to
        it again, so the cache keeps it without a copy (``append_batch(owned=True)``)."""
        parts = self.sock.recv_multipart(zmq.NOBLOCK, copy=False)
        key = None
        if self.allow is not None:
            try:
                key = parts[-1].get("User-Id")
            except zmq.ZMQError:  # no metadata: cannot happen on a CURVE socket; refused below
                key = None
        return [*(p.bytes for p in parts[:2]), *(memoryview(p).toreadonly() for p in parts[2:])], key

    def _send(self, actor_id: str, kind: str, fields: dict, frames=()) -> None:
        try:
            self.sock.send_multipart([actor_id.encode(), *encode(kind, fields, frames)], zmq.NOBLOCK,
                                     copy=False)
        except zmq.Again:  # the actor is gone or not reading; acks are cumulative, weights refetched
            pass

    def _reject(self, actor_id: str | None, err: WireError) -> None:
        self.rejected[err.reason] += 1
        unsaid = self._reject_log.due((actor_id, err.reason))
        if unsaid is not None:
            more = f" ({unsaid} more like it unsaid since)" if unsaid else ""
            log.warning("rejected a message from %s: %s%s", actor_id or "an unknown peer", err, more)
        if actor_id is not None:
            self._send(actor_id, ERROR, {"reason": err.reason, "detail": err.detail[:500]})

    def _handle(self, frames: list[bytes], key: str | None = None) -> None:
        routing = frames[0]
        try:
            actor_id = routing.decode()
        except UnicodeDecodeError:
            actor_id = None
        try:
            if self.allow is not None:
                self.allow.check(actor_id, routing, key)
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
                self._transitions(session, msg)
            elif msg.type == WEIGHTS_GET:
                self._send_weights(actor_id)
            elif msg.type == HEARTBEAT:
                # Answered with the current acknowledgement: an ACK the socket had to drop (a full
                # queue) is repaired within a heartbeat, even after the actor's last batch.
                self._ack_now(actor_id)
                if session.held_back and self.cache_full is None:
                    self._ask_resend(session)  # (again, should the first request have been dropped)
            elif msg.type == BYE:
                self.sessions.pop(actor_id, None)
            else:
                raise WireError("unexpected_type", f"{msg.type} is not sent to a learner")
        except WireError as err:
            self._reject(actor_id, err)

    def _close_revoked(self, actor_ids: set[str]) -> bool:
        """Forget the sessions of actors whose key was removed from or replaced in the allow-list
        (what they sent before stays: it was authenticated when it came); True if there were any."""
        for actor_id in sorted(actor_ids):
            if self.sessions.pop(actor_id, None) is not None:
                log.warning("actor %s: session closed: its key was removed from or replaced in the "
                            "allow-list %s", actor_id, self.allow.directory)
        return bool(actor_ids)

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

    def _transitions(self, session: Session, msg) -> None:
        actor_id = session.actor_id
        first, last = msg.fields["first_seq"], msg.fields["last_seq"]
        have = self.appended_seq.get(actor_id, 0)
        if last <= have:  # all duplicates: re-ack what is durable
            self._ack_now(actor_id)
            return
        if self.cache.write_error is not None:
            self._hold_back(session, first, last)
            return
        if first > have + 1:
            after = msg.fields.get("after")  # (decode checked it is below first_seq)
            if after is None or after > have:
                raise WireError("gap", f"transitions {first}..{last}: expected seq {have + 1} next")
        payload = msg.frames[0]
        try:
            # (bounded by what the cache will read back too: a batch it cannot read is refused now)
            batch = decode_batch(payload, max_size=min(self.limits.max_record_bytes,
                                                       self.cache.config.max_record_bytes),
                                 where=f"transitions {actor_id}/{first}..{last}", writable=False)
        except (ValueError, CacheError) as e:
            raise WireError("bad_record", str(e)) from e
        if (batch.actor_id, batch.first_seq, batch.last_seq) != (actor_id, first, last):
            raise WireError("bad_record", f"transitions {actor_id}/{first}..{last}: the batch holds "
                                          f"{batch.actor_id}/{batch.first_seq}..{batch.last_seq}")
        check_batch(batch, self.config)
        if first <= have:  # partly held already (a resend across a learner restart): keep the rest
            batch_rest = list(batch)[have + 1 - first:]
            payload = encode_batch(batch_rest, compress="zstd")
        try:
            offset = self.cache.append_batch(payload, owned=payload is msg.frames[0])
        except CacheFullError:
            self._hold_back(session, first, last)
            return
        except CacheError as e:
            raise WireError("cache_error", f"could not store transitions {have + 1}..{last}: {e}") from e
        session.held_back = False
        if first > have + 1:
            self._skip(actor_id, have, first)
            have = first - 1
        self.appended_seq[actor_id] = last
        self.pending.append((offset, actor_id, last))
        self.received += last - have

    def _skip(self, actor_id: str, have: int, first: int) -> None:
        """Actor ``actor_id`` no longer has seqs ``have + 1 .. first - 1`` (typically it wrote behind
        and was restarted: at most those it had not written were transitions, the rest reserved
        numbers; or its spool lost records)."""
        self.skipped[actor_id] += first - 1 - have
        log.warning("actor %s continues at seq %d: seqs %d..%d never come (the actor no longer has them: "
                    "a restart after writing behind, or a lost spool; none was acknowledged)", actor_id,
                    first, have + 1, first - 1)

    def status(self) -> dict[str, Any]:
        """The state a status line shows: connected actors, transitions stored, refusals by reason,
        and whether the cache can write (``"ok"``, or ``"full: "`` and why)."""
        return {"actors": sorted(self.sessions.copy()), "received": self.received,
                "rejected": dict(self.rejected), "skipped": dict(self.skipped),
                "cache": "ok" if self.cache_full is None else f"full: {self.cache_full}"}

    def _ack_now(self, actor_id: str) -> None:
        applied = self.applied_seq.get(actor_id, 0)
        self._send(actor_id, ACK, {"actor_id": actor_id, "seq": self.durable_seq.get(actor_id, 0),
                                   "applied_seq": applied})
        session = self.sessions.get(actor_id)
        if session is not None:
            session.applied_sent = applied

    def learned(self) -> None:
        """Called by the updater (another thread) after it applied records: the loop wakes and
        tells actors how far learning has got (a simulated actor may be waiting on it)."""
        self._wakeup.set()

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
                                                                 "digest": latest.digest,
                                                                 "nbytes": len(latest.blob)})

    def _send_weights(self, actor_id: str) -> None:
        latest = self.weights.latest()
        if latest is None:
            raise WireError("no_weights", "no weights published yet")
        self._send(actor_id, WEIGHTS, {"version": latest.version, "digest": latest.digest}, [latest.blob])
