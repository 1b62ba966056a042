"""``SpoolBatcher``: gathers an actor's transitions into batch records for the spool and the link.

The control loop hands over one transition at a time (``add``: a list append, never a wait).
A batch is closed, encoded column by column (``learners.cache.batch``), appended to the spool as
one record and queued for the link when it holds ``max_rows`` transitions or about
``max_bytes``, or when its oldest transition has waited ``max_delay_s`` (checked on every
``add`` and by the link thread, so a quiet control loop's last transitions still go out).
A transition still in the open batch is not yet on the spool: like a record the spool had not
committed, it is lost if the process is killed, and its sequence number is handed out again
after the restart; the learner has never seen it, since the link sends only durable records.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from learners.cache import ReplayCache
from learners.cache.batch import MAX_BATCH_ROWS, encode_batch
from learners.cache.format import KIND_BATCH
from learners.link.client import ActorLink
from learners.transition import Transition

log = logging.getLogger(__name__)

MAX_ROWS = MAX_BATCH_ROWS
MAX_BYTES = 4 * 1024 * 1024
MAX_DELAY_S = 0.02


def _nbytes(t: Transition) -> int:
    total = 128
    for value in (t.obs, t.next_obs):
        if type(value) is np.ndarray:
            total += value.nbytes
        elif isinstance(value, dict):
            total += sum(v.nbytes for v in value.values() if isinstance(v, np.ndarray))
    return total


class SpoolBatcher:
    """Batches ``spool``'s transitions for ``link`` (and becomes the link's ``source``)."""

    def __init__(self, spool: ReplayCache, link: ActorLink, *, max_rows: int = MAX_ROWS,
                 max_bytes: int = MAX_BYTES, max_delay_s: float = MAX_DELAY_S) -> None:
        if not 1 <= max_rows <= MAX_BATCH_ROWS or max_bytes < 1 or max_delay_s < 0:
            raise ValueError(f"SpoolBatcher: max_rows ({max_rows}) must be in [1, {MAX_BATCH_ROWS}], "
                             f"max_bytes ({max_bytes}) positive, max_delay_s ({max_delay_s}) not negative")
        self.spool, self.link = spool, link
        self.max_rows, self.max_bytes, self.max_delay_s = max_rows, max_bytes, max_delay_s
        self._lock = threading.Lock()
        self._open: list[Transition] = []
        self._opened_at = 0.0
        self._rows_cap = max_rows
        self.batches = 0
        link.source = self

    def add(self, t: Transition) -> None:
        """Take ``t`` (its ``seq`` the next of this actor's); closes the batch when it is due."""
        with self._lock:
            rows = self._open
            if rows and (t.seq != rows[-1].seq + 1 or t.actor_id != rows[-1].actor_id):
                self._close()  # a batch holds consecutive transitions only
            if not self._open:
                self._opened_at = time.monotonic()
                # The first transition sizes the batch: rows of one stream share their layout.
                self._rows_cap = max(1, min(self.max_rows, self.max_bytes // _nbytes(t)))
            self._open.append(t)
            if len(self._open) >= self._rows_cap or time.monotonic() - self._opened_at >= self.max_delay_s:
                self._close()

    def flush_due(self) -> None:
        """Close the open batch if its oldest transition has waited ``max_delay_s`` (link thread)."""
        if self._open and time.monotonic() - self._opened_at >= self.max_delay_s:
            with self._lock:
                if self._open and time.monotonic() - self._opened_at >= self.max_delay_s:
                    try:
                        self._close()
                    except Exception as e:  # the link thread must live on; _close logged what was lost
                        log.debug("closing a batch from the link thread failed: %s", e)

    def flush(self) -> None:
        """Close the open batch now."""
        with self._lock:
            if self._open:
                self._close()

    @property
    def open_rows(self) -> int:
        return len(self._open)

    def _close(self) -> None:
        rows, self._open = self._open, []
        try:
            payload = encode_batch(rows)
            offset = self.spool.log.append(payload, KIND_BATCH)
        except Exception as e:
            log.error("actor %s: transitions %d..%d could not be spooled and are lost: %s",
                      rows[0].actor_id, rows[0].seq, rows[-1].seq, e)
            raise
        self.link.enqueue(rows[0].seq, rows[-1].seq, offset, payload)
        self.batches += 1
