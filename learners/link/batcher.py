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

While the spool's disk refuses writes (``CacheFullError``) a batch it refused is held, whole, as
the open batch (its transitions are numbered: dropping them would leave a hole in the sequence
that the learner waits on forever) and offered again every ``RETRY_S``; ``accepting`` says False
meanwhile, so the stream numbers nothing new until the held batch is on the spool.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from learners.cache.batch import MAX_BATCH_ROWS
from learners.cache.errors import CacheFullError
from learners.link.spool import ActorSpool
from learners.transition import Transition

log = logging.getLogger(__name__)

MAX_ROWS = MAX_BATCH_ROWS
MAX_BYTES = 4 * 1024 * 1024
MAX_DELAY_S = 0.02
IDLE_CHECK_S = 1.0  # how often an idle timer looks whether its spool was closed under it
RETRY_S = 0.25  # how often a batch the spool refused (its disk full) is offered again


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
        self._retry_at = 0.0
        self.blocked = False  # the spool refused the open batch (a full disk): held, offered again
        self.batches = 0

    def accepting(self) -> bool:
        """Whether the spool can take a new transition now: False while its disk refuses writes
        or a batch it refused is still held (offered again here when due: an append only queues,
        it never waits for the disk)."""
        if self.blocked:
            with self._lock:
                if self.blocked and time.monotonic() >= self._retry_at:
                    self._close()
                if self.blocked:
                    return False
        return self.spool.write_error is None

    def add(self, t: Transition) -> None:
        """Take ``t`` (its ``seq`` the next of this actor's); closes the batch when it is due."""
        with self._lock:
            rows = self._open
            if rows and not self.blocked and (t.seq != rows[-1].seq + 1 or t.actor_id != rows[-1].actor_id):
                self._close()  # a batch holds consecutive transitions only
            if not self._open:
                self._opened_at = time.monotonic()
                # The first transition sizes the batch: rows of one stream share their layout.
                self._rows_cap = max(1, min(self.max_rows, self.max_bytes // _nbytes(t)))
                self._arm_timer()
            self._open.append(t)  # (held with the rest while blocked: it has its number already)
            if not self.blocked and (len(self._open) >= self._rows_cap
                                     or time.monotonic() - self._opened_at >= self.max_delay_s):
                self._close()
            self.spool.open_rows = len(self._open)

    def flush_due(self) -> None:
        """Close the open batch if its oldest transition has waited ``max_delay_s`` (the timer
        does this on its own; this is for a caller that wants it now)."""
        with self._lock:
            if self._open and time.monotonic() - self._opened_at >= self.max_delay_s and not self.blocked:
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
            if self._open:  # still refused: the disk is full as the actor stops
                rows, self._open = self._open, []
                self.spool.open_rows = 0
                log.error("actor %s: transitions %d..%d were held for a full disk and are lost at close: "
                          "never sent, so their sequence numbers are handed out again after a restart",
                          rows[0].actor_id, rows[0].seq, rows[-1].seq)
        if timer is not None:
            timer.join(timeout=5)

    @property
    def open_rows(self) -> int:
        return len(self._open)

    def _close(self) -> None:
        """Append the open batch to the spool (lock held): as one record, or as several when it
        grew while held (runs of consecutive transitions, ``_rows_cap`` at most each)."""
        rows, start = self._open, 0
        # ``add`` closes a batch at a jump and at its cap; only a held one may need cutting.
        cuts = _cuts(rows, self._rows_cap) if self.blocked or len(rows) > self._rows_cap else [len(rows)]
        try:
            for end in cuts:
                # (the spool counts them as queued, no longer open, at once)
                self.spool.append(rows[start:end], still_open=len(rows) - end)
                start = end
                self.batches += 1
        except CacheFullError as e:
            self._open = rows[start:]
            self.spool.open_rows = len(self._open)
            if not self.blocked:
                log.warning("actor %s: transitions %d..%d are held in memory, not yet spooled: %s; "
                            "offered again every %.2f s, nothing new is numbered meanwhile",
                            rows[start].actor_id, rows[start].seq, rows[-1].seq, e, RETRY_S)
            self.blocked = True
            self._retry_at = time.monotonic() + RETRY_S
            self._arm_timer()
            return
        except Exception as e:
            self._open = []
            self.spool.open_rows = 0
            self.blocked = False
            log.error("actor %s: transitions %d..%d could not be spooled and are lost: %s",
                      rows[start].actor_id, rows[start].seq, rows[-1].seq, e)
            raise
        self._open = []
        if self.blocked:
            log.warning("actor %s: the held transitions are spooled (up to %d)", rows[-1].actor_id,
                        rows[-1].seq)
        self.blocked = False

    # -- the timer: closes a batch that has waited ``max_delay_s`` --------------------------------
    def _arm_timer(self) -> None:
        """A batch opened (lock held): wake the timer, or start it (lazily: one thread per batcher,
        which ends when the batcher closes or, idle, finds its spool closed)."""
        if (self.max_delay_s == 0 and not self.blocked) or self._closed:
            return  # every add closes its batch itself (a held one needs the timer to retry)
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
                    due = self._retry_at if self.blocked else self._opened_at + self.max_delay_s
                    left = due - time.monotonic()
                    if left > 0:
                        self._due.wait(left)
                        continue
                    try:
                        self._close()
                    except Exception as e:  # the timer must live on; _close logged what was lost
                        log.debug("closing a batch from the timer failed: %s", e)
            finally:
                self._timer_running = False


def _cuts(rows: list[Transition], cap: int) -> list[int]:
    """Where to cut ``rows`` into runs of consecutive transitions of at most ``cap`` each (the end
    index of each run)."""
    cuts, start = [], 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or i - start >= cap or rows[i].seq != rows[i - 1].seq + 1:
            cuts.append(i)
            start = i
    return cuts
