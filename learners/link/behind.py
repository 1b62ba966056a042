"""The actor spool writing behind the link (``durability: behind``), and its sequence reservation.

A write-through spool (``fsync``, ``os-buffered``, ``none``) writes every batch before the link
may send it, so camera frames are written twice on one machine: once by the actor's spool, once
by the learner's cache. With ``behind`` a batch is sent from memory at once and handed to the
spool (whose group commit syncs it within milliseconds) only if the learner has not acknowledged
it within ``WRITE_BEHIND_S``, if the unwritten bytes pass the spool's memory budget, or when the
spool closes. Memory: up to the budget of unwritten bytes, plus up to the budget of written
records held to send, plus what arrives between two upkeep passes. While the learner keeps
up, the spool writes next to nothing; during an outage everything is on the spool within about
``WRITE_BEHIND_S`` (plus the link's upkeep period, half a second).

What it costs: a transition sent and not yet written or acknowledged when the actor process dies
is lost (never acknowledged, so "acknowledged means durable" holds). What it keeps: a sequence
number is never reused. The link sends a record only once its numbers are inside a *reservation*
made durable first (``SEQ_RESERVED``, a small file in the spool, extended ``RESERVE_BLOCK`` at a
time by the link's thread); a reopened spool numbers on after the reservation, whatever was sent.
The numbers between what the spool holds and the reservation never come: the first record sent
after them carries ``after`` (the last one before it that the actor still has), and the learner,
holding everything up to ``after``, skips to it instead of waiting for them (``skipped`` in its
status).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from pathlib import Path
from typing import Any

from learners.cache import ReplayCache
from learners.cache.errors import CacheFullError
from learners.cache.files import read_marker, write_marker

#: How long a record sent from memory may stay unacknowledged before the spool writes it.
WRITE_BEHIND_S = 1.0
#: Sequence numbers reserved at a time (one small synced file write per block).
RESERVE_BLOCK = 1 << 16
RESERVATION_FILE = "SEQ_RESERVED"
UNWRITTEN = -1  # the offset of a record not (yet) on the spool

log = logging.getLogger("learners.link.spool")


def read_reservation(path: Path) -> int:
    """The reservation saved in spool directory ``path``: 0 when there is none. A damaged file is
    an error naming it (numbering on from a guess could reuse a number the learner has seen)."""
    file = Path(path) / RESERVATION_FILE
    if not file.exists():
        return 0
    doc = read_marker(file)
    seq = doc.get("seq") if doc else None
    if type(seq) is not int or seq < 0:
        raise ValueError(f"spool {path}: {RESERVATION_FILE} is damaged (not a checksummed reservation); "
                         "the sequence numbers this actor may have sent are unknown. Deleting the file "
                         "lets the actor number on after its spool's last record and its saved state; "
                         "transitions it then numbers like ones the learner already holds are dropped "
                         "there as duplicates")
    return seq


class WriteBehind:
    """Mixed into :class:`learners.link.spool.ActorSpool`: the reservation and the late writes."""

    path: Path
    actor_id: str
    cache: ReplayCache
    write_behind_s: float | None
    memory_bytes: int
    held_bytes: int
    _lock: threading.Lock
    _unsent: collections.deque
    _inflight: collections.deque
    _written: int

    def _init_behind(self, write_behind_s: float | None) -> None:
        self.write_behind_s = write_behind_s
        self.behind_bytes = 0  # bytes of records sent or queued from memory, not yet on the spool
        self.reserved = read_reservation(self.path)  # every number sent is <= this (durable)
        self._reserve_error: str | None = None

    @property
    def writes_behind(self) -> bool:
        return self.write_behind_s is not None

    def reserve(self, seq: int) -> None:
        """Make sure every number up to ``seq`` is inside the durable reservation (a synced file
        write when it is not, ``RESERVE_BLOCK`` numbers ahead). Only the link's thread calls it."""
        if seq > self.reserved:
            upto = seq + RESERVE_BLOCK
            write_marker(Path(self.path) / RESERVATION_FILE, {"seq": upto, "actor_id": self.actor_id})
            self.reserved = upto

    def spill(self, now: float | None = None, everything: bool = False) -> int:
        """Hand to the spool the records sent or queued from memory that are due: unacknowledged
        for ``write_behind_s``, past the memory budget, or ``everything`` (at close). Oldest first,
        so what is on the spool stays in sequence order; the spool's group commit syncs them
        within milliseconds. Returns the records handed over; stops at a disk that refuses writes
        (they stay in memory, tried again on the next call). Runs on the link's thread (or at
        close), the only one that removes or moves records; the lock is held only to pick them
        and to mark them written, never while they are checksummed and queued."""
        if not self.writes_behind:
            return 0
        now = time.monotonic() if now is None else now
        with self._lock:
            inflight, unsent = self._inflight, self._unsent
            excess = self.behind_bytes - self.memory_bytes
            due: list[tuple[int, Any]] = []  # (position in in-flight + unsent, record)
            for i in range(self._written, len(inflight) + len(unsent)):
                record = inflight[i] if i < len(inflight) else unsent[i - len(inflight)]
                if not (everything or excess > 0 or now - record.born >= self.write_behind_s):
                    break
                due.append((i, record))
                excess -= record.nbytes
        offsets: list[int] = []
        for _, record in due:  # (meanwhile the batcher may append at the tail: positions hold)
            try:
                offsets.append(self.cache.append_batch(record.payload))
            except CacheFullError:
                break
        with self._lock:
            in_flight = len(self._inflight)
            for (i, record), offset in zip(due, offsets, strict=False):
                queue, at = (self._inflight, i) if i < in_flight else (self._unsent, i - in_flight)
                self.behind_bytes -= record.nbytes
                keep = queue is self._unsent and self.held_bytes + record.nbytes <= self.memory_bytes
                if keep:  # still to send: held if the budget allows, else read back once durable
                    self.held_bytes += record.nbytes
                queue[at] = record._replace(offset=offset, payload=record.payload if keep else None)
                self._written += 1
        return len(offsets)

    def _spill_at_close(self) -> None:
        """Written behind: what the learner has not acknowledged goes to the spool before it closes."""
        if not self.writes_behind:
            return
        try:
            self.spill(everything=True)
        except Exception as e:
            log.error("actor %s: spool %s: writing the unacknowledged records at close failed: %s",
                      self.actor_id, self.path, e)
        if self.behind_bytes:
            log.error("actor %s: spool %s closes with %d bytes of unacknowledged transitions it could not "
                      "write (its disk refuses writes); they are lost", self.actor_id, self.path,
                      self.behind_bytes)

    def _reserve_ahead(self) -> bool:
        """Reserve the numbers of the next record to send (the link's thread); False when the
        reservation cannot be written (a full disk: nothing goes out whose number could be
        reused), said once per distinct error."""
        with self._lock:
            head = self._unsent[0].last_seq if self._unsent else 0
        try:
            self.reserve(head)
        except OSError as e:
            if str(e) != self._reserve_error:
                log.warning("actor %s: spool %s: could not reserve sequence numbers (%s); sending waits",
                            self.actor_id, self.path, e)
            self._reserve_error = str(e)
            return False
        if self._reserve_error is not None:
            log.warning("actor %s: spool %s: sequence numbers reserved again; sending resumes",
                        self.actor_id, self.path)
            self._reserve_error = None
        return True
