"""``SpoolBatcher``: gathers an actor's transitions into batch records for the spool.

The control loop hands over one transition at a time (``add``: a list append, never a wait).
A batch is closed and appended to the spool (``ActorSpool.append``: one batch record, queued for
the link) when it holds ``max_rows`` transitions or about ``max_bytes``, or when its oldest
transition has waited ``max_delay_s`` (checked on every ``add`` and by the batcher's own timer
thread, so a quiet control loop's last transitions still go out). Batches flow one way: batcher →
spool → link; the batcher never hears from the link.
A transition still in the open batch is not yet on the spool: like a record the spool had not
committed, it is lost if the process is killed, and its sequence number is handed out again
after the restart; the learner has never seen it, since the link sends only durable records.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from learners.cache.batch import MAX_BATCH_ROWS
from learners.link.spool import ActorSpool
from learners.transition import Transition

log = logging.getLogger(__name__)

MAX_ROWS = MAX_BATCH_ROWS
MAX_BYTES = 4 * 1024 * 1024
MAX_DELAY_S = 0.02
IDLE_CHECK_S = 1.0  # how often an idle timer looks whether its spool was closed under it


def _nbytes(t: Transition) -> int:
    total = 128
    for value in (t.obs, t.next_obs):
        if type(value) is np.ndarray:
            total += value.nbytes
        elif isinstance(value, dict):
            total += sum(v.nbytes for v in value.values() if isinstance(v, np.ndarray))
    return total


class SpoolBatcher:
    """Batches transitions into records of ``spool``. ``close`` appends the open batch and stops
    the timer."""

    def __init__(self, spool: ActorSpool, *, max_rows: int = MAX_ROWS,
                 max_bytes: int = MAX_BYTES, max_delay_s: float = MAX_DELAY_S) -> None:
        if not 1 <= max_rows <= MAX_BATCH_ROWS or max_bytes < 1 or max_delay_s < 0:
            raise ValueError(f"SpoolBatcher: max_rows ({max_rows}) must be in [1, {MAX_BATCH_ROWS}], "
                             f"max_bytes ({max_bytes}) positive, max_delay_s ({max_delay_s}) not negative")
        self.spool = spool
        self.max_rows, self.max_bytes, self.max_delay_s = max_rows, max_bytes, max_delay_s
        self._lock = threading.Lock()
        self._due = threading.Condition(self._lock)  # a batch opened, or the batcher closes
        self._open: list[Transition] = []
        self._opened_at = 0.0
        self._rows_cap = max_rows
        self._timer_running = False
        self._timer: threading.Thread | None = None
        self._closed = False
        self.batches = 0

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
                self._arm_timer()
            self._open.append(t)
            if len(self._open) >= self._rows_cap or time.monotonic() - self._opened_at >= self.max_delay_s:
                self._close()
            self.spool.open_rows = len(self._open)

    def flush_due(self) -> None:
        """Close the open batch if its oldest transition has waited ``max_delay_s`` (the timer
        does this on its own; this is for a caller that wants it now)."""
        with self._lock:
            if self._open and time.monotonic() - self._opened_at >= self.max_delay_s:
                self._close()

    def flush(self) -> None:
        """Close the open batch now."""
        with self._lock:
            if self._open:
                self._close()

    def close(self) -> None:
        """Close the open batch and stop the timer."""
        with self._lock:
            self._closed = True
            self._due.notify()
            timer, self._timer = self._timer, None
            if self._open:
                self._close()
        if timer is not None:
            timer.join(timeout=5)

    @property
    def open_rows(self) -> int:
        return len(self._open)

    def _close(self) -> None:
        rows, self._open = self._open, []
        try:
            self.spool.append(rows)  # (which counts them as queued, no longer open, at once)
        except Exception as e:
            self.spool.open_rows = 0
            log.error("actor %s: transitions %d..%d could not be spooled and are lost: %s",
                      rows[0].actor_id, rows[0].seq, rows[-1].seq, e)
            raise
        self.batches += 1

    # -- the timer: closes a batch that has waited ``max_delay_s`` --------------------------------
    def _arm_timer(self) -> None:
        """A batch opened (lock held): wake the timer, or start it (lazily: one thread per batcher,
        which ends when the batcher closes or, idle, finds its spool closed)."""
        if self.max_delay_s == 0 or self._closed:
            return  # every add closes its batch itself
        if self._timer_running:
            self._due.notify()
            return
        self._timer_running = True
        self._timer = threading.Thread(target=self._close_when_due, name=f"batcher-{self.spool.actor_id}",
                                       daemon=True)
        self._timer.start()

    def _close_when_due(self) -> None:
        with self._lock:
            try:
                while not self._closed:
                    if not self._open:
                        if self.spool.closed:
                            return
                        self._due.wait(IDLE_CHECK_S)
                        continue
                    left = self._opened_at + self.max_delay_s - time.monotonic()
                    if left > 0:
                        self._due.wait(left)
                        continue
                    try:
                        self._close()
                    except Exception as e:  # the timer must live on; _close logged what was lost
                        log.debug("closing a batch from the timer failed: %s", e)
            finally:
                self._timer_running = False
