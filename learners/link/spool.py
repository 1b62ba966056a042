"""``ActorSpool``: the actor's local replay cache, holding every transition until the learner has it.

The spool owns everything about an actor's records between the batcher and the learner:

- **sequence numbers**: the last one it holds on open, a floor a caller raises (one saved with
  the actor's state), and the learner's own count when it says it holds more (a lost spool) all
  bound the next one (``next_seq``) from below, so a number is never reused;
- **appends**: a closed batch (``append``) becomes one batch record, queued to send;
- **durability**: a record is offered to the link only once it is durable, so a restarted actor
  never reuses a sequence number the learner has seen; or, with ``durability="behind"``, sent
  from memory at once and written only if not acknowledged soon (``learners/link/behind.py``:
  camera frames are then written once on a machine, by the learner, not twice);
- **memory**: a record's bytes stay in memory to be sent only while the unsent records' bytes
  held are under ``memory_bytes``; past that (an actor whose link has been down for a while, a
  camera's frames piling up) they are read back from disk when their turn comes, and a record
  in flight is held by ZeroMQ alone (a resend reads it back; written behind, the spool keeps the
  bytes of what it has not written). So an outage costs disk, not memory;
- **acknowledgements**: the link says how far the learner holds this actor's stream (``acked``,
  ``learner_holds``); ``commit_acked`` makes that position durable (the ``acked`` consumer), so a
  restart resends only the rest;
- **trimming**: acknowledged segments past ``keep_bytes`` are dropped, never a record not yet
  acknowledged and never the one the last sequence number is read from on the next open;
- **a full disk** (a robot's small flash): while the disk refuses writes (``write_error``: ENOSPC,
  a quota, EIO) the cache keeps what it had accepted in memory and retries it (at most every
  second), and refuses new appends. The stream then drops new transitions before they get a
  sequence number and counts them here (``dropped_disk_full``), so no number is ever skipped;
  what was spooled and not yet acknowledged is kept and still sent. ``tend`` (the link's thread,
  twice a second) trims every acknowledged segment at once, whatever ``keep_bytes`` allows, to
  make room, and logs the state (naming the path and the errno) at first and every
  ``FULL_LOG_EVERY_S``; when a retried write succeeds, spooling resumes by itself.

The link takes what is unsent (``take_unsent``) and tells the spool what happened to it; the
spool never calls the link, only sets ``appended`` (a ``Wakeup`` the link's poller watches).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from pathlib import Path
from typing import NamedTuple

from learners.cache import CacheConfig, CacheCorruptError, ReplayCache
from learners.cache.batch import COMPRESS, encode_batch
from learners.cache.config import DURABILITY_MODES
from learners.cache.errors import CacheFullError
from learners.link.behind import UNWRITTEN, WRITE_BEHIND_S, WriteBehind
from learners.link.upkeep import ACKED, SpoolUpkeep
from learners.link.wakeup import Wakeup
from learners.transition import Transition

#: Acknowledged history an actor keeps on its own disk by default (the learner holds it all).
KEEP_BYTES = 256 * 1024 * 1024
SEGMENT_BYTES = 64 * 1024 * 1024
MEMORY_BYTES = 256 * 1024 * 1024  # unsent records' bytes held in memory; the rest are read back
#: What an actor's spool accepts: the cache's modes (written before sent), or written behind.
SPOOL_DURABILITY = (*DURABILITY_MODES, "behind")

log = logging.getLogger(__name__)


class SpooledRecord(NamedTuple):
    """A batch record not yet acknowledged: transitions ``first_seq..last_seq`` at ``offset``
    (``UNWRITTEN``: sent or queued from memory, not on the spool yet). ``payload`` is its bytes
    while the spool holds them in memory, None to read them back; ``nbytes`` their size where
    known (0 if not: a record found on disk at open, not yet read). ``after`` is the last sequence
    number before it that this actor still has (``first_seq - 1`` but after a restart that lost
    numbers); ``born`` when it was appended (monotonic s)."""

    first_seq: int
    last_seq: int
    offset: int
    payload: bytes | None
    nbytes: int = 0
    after: int = 0
    born: float = 0.0

    @property
    def rows(self) -> int:
        return self.last_seq - self.first_seq + 1


class Outgoing(NamedTuple):
    """A record the link sends: transitions ``first_seq..last_seq`` in ``payload``; the learner may
    skip to it from ``after`` (see ``SpooledRecord``)."""

    first_seq: int
    last_seq: int
    payload: bytes
    after: int


class ActorSpool(SpoolUpkeep, WriteBehind):
    """The spool of actor ``actor_id`` at ``path`` (created if new).

    Raises ``ValueError`` if the spool holds another actor's transitions. ``keep_bytes`` bounds
    the acknowledged history kept on disk; None keeps everything. ``memory_bytes`` bounds the
    unsent records' bytes held in memory (the rest wait on disk). ``compress`` (``"zstd"`` or
    None) compresses camera-frame columns in the records it writes and sends (``encode_batch``).
    """

    def __init__(self, path: Path, actor_id: str, durability: str, *, keep_bytes: int | None = KEEP_BYTES,
                 segment_bytes: int = SEGMENT_BYTES, memory_bytes: int = MEMORY_BYTES,
                 compress: str | None = "zstd") -> None:
        if not isinstance(memory_bytes, int) or memory_bytes < 0:
            raise ValueError(f"ActorSpool: memory_bytes must be a non-negative int, got {memory_bytes!r}")
        if durability not in SPOOL_DURABILITY:
            raise ValueError(f"ActorSpool: durability must be one of {SPOOL_DURABILITY}, got {durability!r}")
        behind = durability == "behind"
        durability = "fsync" if behind else durability  # what it writes, it syncs
        config = CacheConfig(durability=durability, segment_bytes=segment_bytes, retention_bytes=keep_bytes)
        if compress is not None and compress not in COMPRESS:
            raise ValueError(f"ActorSpool: compress must be one of {COMPRESS} or None, got {compress!r}")
        self.path, self.actor_id, self.compress = Path(path), actor_id, compress
        self.cache = ReplayCache(self.path, config)
        self.appended = Wakeup()  # set on every append: the link waits on it in its poller
        # Records move between these two queues (and back, when a connection is lost) under
        # ``_lock``, so that ``backlog``, read from other threads, never misses a record on its
        # way from one to the other (seen: a drain that stopped before the last batch).
        self._lock = threading.Lock()
        self._unsent: collections.deque[SpooledRecord] = collections.deque()
        self._inflight: collections.deque[SpooledRecord] = collections.deque()
        self._queued_rows = 0  # transitions in both queues
        self._inflight_rows = 0
        self._inflight_bytes = 0  # bytes of the records in flight, as sent
        self.memory_bytes = memory_bytes
        self.held_bytes = 0  # bytes of unsent records held in memory
        #: Transitions a batcher holds for this spool, not yet appended (its open batch): they
        #: count as not acknowledged. The batcher writes it; ``append`` zeroes it, as a batcher
        #: appends its whole open batch at once.
        self.open_rows = 0
        self.seq = 0  # the last sequence number handed out
        self.last_seq = 0  # the highest one spooled, or the floor (what the link says at hello)
        self.learner_seq = 0  # the highest of ours the learner said it holds (at hello)
        self.acked_seq = 0
        self.acked_offset = -1  # the offset of the last acknowledged record
        self._committed_offset = -1
        self._trimmed_at = float("-inf")
        self._closed = False
        #: Transitions the stream dropped, unnumbered, because this spool could not write (its
        #: disk full): written by the control loop's thread only, read by anyone.
        self.dropped_disk_full = 0
        self.trimmed_for_room = 0  # acknowledged segments deleted early to make room
        self._full_since: float | None = None  # since when ``tend`` has seen writes refused
        self._full_logged = 0.0  # when the disk-full state was last logged
        self._dropped_reported = 0  # dropped_disk_full when the last full disk was over
        self._room_at = float("-inf")
        self._commit_error: str | None = None
        self._tail_seq = 0  # the last sequence number of the newest record (the next one's ``after``)
        #: How many records at the front of the queues (in flight, then unsent: an order every
        #: move keeps) are on the spool; those after them are not (written behind, oldest first).
        self._written = 0
        self.write_behind_s = None
        try:
            self._init_behind(WRITE_BEHIND_S if behind else None)
            self._acked = self.cache.consumer(ACKED)
            self._scan()
        except BaseException:
            self.close()
            raise
        #: The last sequence number of a transition this actor's earlier life kept (its spool's
        #: last record, or a floor raised since): where its step count continues.
        self.kept_seq = self.last_seq
        # Numbers up to the reservation may have been sent (written behind): never again.
        self.last_seq = max(self.last_seq, self.reserved)
        self.seq = self._opened_seq = self.last_seq  # what was on disk at open is durable

    def _scan(self) -> None:
        """Queue the records not yet acknowledged and find the last sequence number. The scan
        starts at the last acknowledged record (the consumer committed just past it), so the
        last sequence number is known even when everything was acknowledged."""
        committed = self._acked.committed
        for offset in self.cache.offsets(max(committed - 1, 0)):
            try:
                span = self.cache.read_span(offset)
            except CacheCorruptError as e:
                log.error("spool %s: %s; its transitions are lost", self.path, e)
                continue
            if span is None:
                continue
            owner, first, last = span
            if owner != self.actor_id:
                raise ValueError(f"spool {self.path} belongs to actor {owner!r}, not {self.actor_id!r}")
            if offset >= committed:
                self._unsent.append(SpooledRecord(first, last, offset, None, after=self._tail_seq))
                self._queued_rows += last - first + 1
                self._written += 1
            self.last_seq = max(self.last_seq, last)
            self._tail_seq = last

    # -- sequence numbers (the control loop's thread) ----------------------------------------------
    def next_seq(self) -> int:
        """The next sequence number: after the last handed out or spooled, the floor and the
        learner's count. (Only the control loop's thread calls this; ``last_seq`` and
        ``learner_seq``, written by others, only grow.)"""
        if self.learner_seq > self.seq:  # the learner holds more of us than our spool did
            log.error("actor %s: the learner holds seq %d but this actor's spool ended at %d; continuing "
                      "after the learner's", self.actor_id, self.learner_seq, self.seq)
            self.seq = self.learner_seq
        self.seq = max(self.seq, self.last_seq) + 1  # past rows a caller numbered itself
        return self.seq

    def durable_seq(self) -> int:
        """The highest sequence number this spool holds durably or the learner holds: a floor a
        restarted actor may continue after (the last one handed out may never have reached the
        disk, and continuing past it would leave a gap the learner waits on forever)."""
        durable = self.cache.durable_offset
        with self._lock:
            best = max(self.acked_seq, self.learner_seq, self._opened_seq)
            for queue in (self._inflight, self._unsent):
                for record in queue:
                    if 0 <= record.offset < durable:
                        best = max(best, record.last_seq)
        return best

    def raise_floor(self, seq: int) -> None:
        """Never hand out a sequence number at or below ``seq`` (e.g. one saved with the actor's state)."""
        self.kept_seq = max(self.kept_seq, seq)
        if seq > self.seq:
            self.seq = seq
            self.last_seq = max(self.last_seq, seq)

    # -- appends and durability ----------------------------------------------------------------
    def append(self, rows: list[Transition], still_open: int = 0) -> int:
        """Append ``rows`` (consecutive transitions of this actor) as one batch record, queue it to
        send once durable (written behind: at once), and return its offset (``UNWRITTEN`` when
        written behind); the batcher then holds ``still_open`` more.
        Raises what the cache raises (nothing queued): ``CacheFullError`` while the disk refuses;
        ``ValueError`` for rows numbered at or below a number this spool has used (a number is
        never given twice: callers take them from ``next_seq``)."""
        floor = max(self._tail_seq, self._opened_seq)
        if rows and rows[0].seq <= floor:
            raise ValueError(f"actor {self.actor_id}: spool {self.path}: transitions {rows[0].seq}.."
                             f"{rows[-1].seq} do not follow seq {floor}, the last this spool numbered "
                             "or reserved (take sequence numbers from next_seq)")
        payload = encode_batch(rows, self.compress)
        behind = self.writes_behind
        if behind:  # refused now, as a write-through spool would: a record it cannot write is lost
            if self.write_error is not None:  # (and no more is held in memory than it would hold)
                raise self.write_error
            self.cache.check_record_size(len(payload))
        offset = UNWRITTEN if behind else self.cache.append_batch(payload)
        n = len(payload)
        with self._lock:  # open to queued in one step: ``backlog`` never sees them in neither
            hold = behind or self.held_bytes + n <= self.memory_bytes
            if behind:  # (counted apart: these bytes are the only copy until written or acked)
                self.behind_bytes += n
            elif hold:
                self.held_bytes += n
            record = SpooledRecord(rows[0].seq, rows[-1].seq, offset, payload if hold else None, n,
                                   self._tail_seq, time.monotonic())
            self._tail_seq = rows[-1].seq
            self._unsent.append(record)
            if not behind:
                self._written += 1
            self._queued_rows += record.rows
            self.open_rows = still_open
            self.last_seq = max(self.last_seq, record.last_seq)
        self.appended.set()
        return offset

    @property
    def write_error(self) -> CacheFullError | None:
        """Why the spool's disk refuses writes now (appends raise meanwhile), or None."""
        return self.cache.write_error

    def drop(self, count: int = 1) -> None:
        """``count`` transitions were not spooled, and never numbered, for a disk refusing writes."""
        self.dropped_disk_full += count

    @property
    def durable_offset(self) -> int:
        return self.cache.durable_offset

    def flush(self) -> bool:
        """Make everything appended durable now."""
        return self.cache.flush()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Make everything appended durable (per ``durability``) and release the directory; stop
        the link first (it reads the spool)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._spill_at_close()
            self.cache.close()
        finally:
            self.appended.close()

    # -- what the link sends (the link's thread) ---------------------------------------------------
    @property
    def backlog(self) -> int:
        """Transitions not yet acknowledged by the learner (those in an open batch too)."""
        with self._lock:
            return self._queued_rows + self.open_rows

    @property
    def unsent_count(self) -> int:
        """Records queued and not in flight."""
        return len(self._unsent)

    def pending(self) -> list[tuple[int, int, int]]:
        """``(first_seq, last_seq, offset)`` of every record not yet acknowledged, in order."""
        with self._lock:
            return [(r.first_seq, r.last_seq, r.offset) for r in (*self._inflight, *self._unsent)]

    def take_unsent(self, window: int, window_bytes: int | None = None) -> Outgoing | None:
        """The next record to send, now in flight; None if there is none, if ``window``
        transitions (or ``window_bytes``, when given; one record always goes) are in flight, or
        if it is not durable yet (written behind: if its numbers could not be reserved). The spool
        keeps no copy of what is in flight and on disk: a resend reads it back."""
        if self.writes_behind and not self._reserve_ahead():
            return None
        durable = self.cache.durable_offset
        with self._lock:  # in flight from the moment it leaves the queue
            full = self._inflight_rows >= window or (
                window_bytes is not None and self._inflight and self._inflight_bytes >= window_bytes)
            if not self._unsent or full or self._unsent[0].offset >= durable:
                return None
            if self.writes_behind and self._unsent[0].last_seq > self.reserved:
                return None  # appended after the reservation was checked: reserved on the next call
            record = self._unsent.popleft()
            payload = record.payload
            if record.offset == UNWRITTEN:  # its only copy: kept while in flight
                self._inflight.append(record)
            else:
                if payload is not None:
                    self.held_bytes -= len(payload)
                self._inflight.append(record._replace(payload=None))
            self._inflight_rows += record.rows
            self._inflight_bytes += record.nbytes
        if payload is None:
            payload = self.cache.read_batch_bytes(record.offset)
            if not record.nbytes:  # found on disk at open: its size is known now
                with self._lock:  # (only this thread takes records: it is still the last)
                    self._inflight[-1] = self._inflight[-1]._replace(nbytes=len(payload))
                    self._inflight_bytes += len(payload)
        return Outgoing(record.first_seq, record.last_seq, payload, record.after)

    def put_back(self, payload: bytes | None = None) -> None:
        """The record ``take_unsent`` gave last could not be sent: it is the next to send again
        (with ``payload``, the bytes it gave, held again so they need not be read back).
        (Only the link's thread takes records and handles acknowledgements.)"""
        with self._lock:
            record = self._inflight.pop()
            self._inflight_rows -= record.rows
            self._inflight_bytes -= record.nbytes
            if record.offset == UNWRITTEN:  # it kept its bytes (counted in ``behind_bytes``)
                self._unsent.appendleft(record)
                return
            if payload is not None:
                self.held_bytes += len(payload)
            self._unsent.appendleft(record._replace(payload=payload))

    def resend_unacked(self) -> None:
        """The connection was lost: everything in flight goes back to the front, in order."""
        with self._lock:
            self._unsent.extendleft(reversed(self._inflight))  # (their bytes are read back)
            self._inflight.clear()
            self._inflight_rows = self._inflight_bytes = 0

    def learner_holds(self, seq: int) -> None:
        """The learner (re)admitted this actor holding every seq <= ``seq``: resend everything
        after it, and never hand out a sequence number at or below it."""
        self.resend_unacked()
        self.acked(seq)
        self.learner_seq = max(self.learner_seq, seq)

    def acked(self, seq: int) -> None:
        """The learner holds every seq <= ``seq``: forget the records it covers."""
        with self._lock:
            self.acked_seq = max(self.acked_seq, seq)
            for queue in (self._inflight, self._unsent):
                while queue and queue[0].last_seq <= self.acked_seq:
                    record = queue.popleft()
                    self._queued_rows -= record.rows
                    if queue is self._inflight:
                        self._inflight_rows -= record.rows
                        self._inflight_bytes -= record.nbytes
                    if record.offset == UNWRITTEN:  # acknowledged before it was due: never written
                        self.behind_bytes -= record.nbytes
                        continue
                    self._written -= 1
                    self.acked_offset = record.offset
                    if queue is self._unsent and record.payload is not None:
                        self.held_bytes -= len(record.payload)

    # -- upkeep (the link's thread) ----------------------------------------------------------------
    def tend(self) -> None:
        """Twice a second, from the link's thread: write what is due behind, then the upkeep of
        ``SpoolUpkeep.tend``. Never raises."""
        try:
            self.spill()
        except Exception as e:  # a failing disk must not stop the link sending what it has
            log.warning("actor %s: spool %s: writing behind failed: %s", self.actor_id, self.path, e)
        super().tend()
