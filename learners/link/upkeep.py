"""The actor spool's upkeep: its acknowledged position on disk, trimming, and a full disk.

Mixed into :class:`learners.link.spool.ActorSpool` (whose cache, acknowledgements and counters it
uses), and run from the link's thread: ``tend`` twice a second, ``commit_acked`` after
acknowledgements. What a full disk does to the spool is described in ``spool.py``'s docstring.
"""

from __future__ import annotations

import errno as errnos
import logging
import time
from pathlib import Path
from typing import Any

from learners.cache import CacheError, ReplayCache, RetentionResult
from learners.cache.errors import CacheFullError

#: The consumer whose committed position is "the learner holds everything before this".
ACKED = "acked"
TRIM_EVERY_S = 10.0  # how often acknowledged segments past ``keep_bytes`` are dropped
ROOM_EVERY_S = 1.0  # while the disk refuses writes: how often acknowledged segments are trimmed
FULL_LOG_EVERY_S = 10.0  # while the disk refuses writes: how often that is logged again

log = logging.getLogger("learners.link.spool")  # one logger for the spool, whichever file speaks


class SpoolUpkeep:
    """The acknowledged position persisted, old segments trimmed, a full disk made room on."""

    path: Path
    actor_id: str
    cache: ReplayCache
    _acked: Any  # the ``ACKED`` consumer
    acked_offset: int
    _committed_offset: int
    _commit_error: str | None
    _trimmed_at: float
    dropped_disk_full: int
    trimmed_for_room: int
    _full_since: float | None
    _full_logged: float
    _dropped_reported: int
    _room_at: float
    backlog: int  # transitions not yet acknowledged (ActorSpool's property)

    # -- acknowledgements on disk, trimming ------------------------------------------------------
    def commit_acked(self) -> RetentionResult | None:
        """Persist how far the learner has acknowledged, so a restart resends only the rest; at
        most every ``TRIM_EVERY_S``, trim. Returns what a trim did, None when it did not run."""
        acked_offset = self.acked_offset
        if acked_offset <= self._committed_offset:
            return None
        try:
            self._acked.commit(acked_offset)
        except OSError as e:  # a full disk: kept in memory and committed later; meanwhile a
            if str(e) != self._commit_error:  # restart would only resend what the learner drops
                log.warning("actor %s: spool %s: could not persist the acknowledged position (%s); "
                            "retrying", self.actor_id, self.path, e)
            self._commit_error = str(e)
            return None
        self._commit_error = None
        self._committed_offset = acked_offset
        now = time.monotonic()
        if self.cache.config.retention_bytes is None or now - self._trimmed_at <= TRIM_EVERY_S:
            return None
        self._trimmed_at = now
        try:
            trimmed = self.trim()
        except OSError as e:  # a full or failing disk: the spool keeps what it has
            log.warning("actor %s: trimming the spool failed: %s", self.actor_id, e)
            return None
        if trimmed.deleted:
            log.info("actor %s: spool trimmed, %d acknowledged segment(s), %.1f MB freed",
                     self.actor_id, len(trimmed.deleted), trimmed.freed_bytes / 1e6)
        return trimmed

    def trim(self) -> RetentionResult:
        """Delete the oldest acknowledged segments past ``keep_bytes`` now. Never a record not yet
        acknowledged, and never the segment holding the last acknowledged one: a reopened spool
        reads its last sequence number there."""
        return self.cache.apply_retention(consumers={ACKED: max(self._acked.committed - 1, 0)})

    # -- a full disk (the link's thread) -----------------------------------------------------------
    def tend(self) -> None:
        """Twice a second, from the link's thread: while the disk refuses writes, trim what the
        learner holds to make room and say so; then persist the acknowledged position. Never
        raises: a spool that cannot write must not stop the link sending what it has."""
        error = self.cache.write_error
        now = time.monotonic()
        if error is not None:
            if now - self._room_at >= ROOM_EVERY_S:
                self._room_at = now
                self.make_room()
            self._report_full(error, now)
        elif self._full_since is not None:
            log.warning("actor %s: spool %s writes again after %.1f s; spooling resumed. %d transitions "
                        "were dropped meanwhile, before they got a sequence number (none is missing "
                        "from the stream)", self.actor_id, self.path, now - self._full_since,
                        self.dropped_disk_full - self._dropped_reported)
            self._full_since, self._dropped_reported = None, self.dropped_disk_full
        self.commit_acked()

    def _report_full(self, error: CacheFullError, now: float) -> None:
        dropped = self.dropped_disk_full
        if self._full_since is None:
            self._full_since = now
        elif now - self._full_logged < FULL_LOG_EVERY_S:
            return
        name = errnos.errorcode.get(error.errno, "?") if error.errno is not None else "no errno"
        log.error("actor %s: spool %s cannot write (%s): %s. New transitions are dropped before they get "
                  "a sequence number (dropped_disk_full=%d so far); the %d not yet acknowledged are kept "
                  "and sent; acknowledged history is trimmed to make room (%d segment(s) so far); "
                  "writing is retried", self.actor_id, self.path, name, error, dropped, self.backlog,
                  self.trimmed_for_room)
        self._full_logged = now

    def make_room(self) -> RetentionResult | None:
        """Delete every segment the learner has acknowledged now, past ``keep_bytes`` or not,
        except the one holding the last acknowledged record (a reopened spool reads its last
        sequence number there) and the active one. Goes by the acknowledgements in memory: the
        position on disk may be stale when the disk is full, and the worst a restart then does is
        resend what the learner holds and drops."""
        passed = max(self._acked.committed - 1, self.acked_offset, 0)
        config = self.cache.config
        # ``apply_retention`` expires by this spool's own config (no one else holds it): the
        # bound is lifted to 0 for this one pass, so every acknowledged segment counts as expired.
        keep, config.retention_bytes = config.retention_bytes, 0
        try:
            result = self.cache.apply_retention(consumers={ACKED: passed})
        except (OSError, CacheError) as e:
            log.warning("actor %s: spool %s: trimming to make room failed: %s", self.actor_id, self.path, e)
            return None
        finally:
            config.retention_bytes = keep
        if result.deleted:
            self.trimmed_for_room += len(result.deleted)
            log.warning("actor %s: spool %s: disk full: %d acknowledged segment(s) trimmed early, %.1f MB "
                        "freed", self.actor_id, self.path, len(result.deleted), result.freed_bytes / 1e6)
        return result
