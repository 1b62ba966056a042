"""``TransitionStream``: an actor's side of the link, the one entry point actors use.

Whatever produces transitions (a stream-x actor on an environment, a VLA control loop) hands them
to ``offer``, which numbers them, without waiting on anything. They flow one way: ``SpoolBatcher``
gathers them into batches → ``ActorSpool`` appends each as one record → ``ActorLink`` sends what
the spool has not sent, once durable, and tells the spool what the learner acknowledged. Sequence
numbers come from the spool (``next_seq``), which never reuses one: its last one on start, a
caller's saved floor, and the learner's own count when it says it holds more (a lost spool) all
bound the next from below.

A full disk under the spool never stops the caller: while the spool cannot write, ``offer``
drops the transition before it gets a sequence number and counts it (``dropped_disk_full``), so
the numbers the learner sees stay consecutive; see ``ActorSpool`` for the rest of that policy.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from learners.cache.errors import CacheFullError
from learners.link.batcher import SpoolBatcher
from learners.link.client import ActorLink
from learners.link.security import CurveClient
from learners.link.spool import KEEP_BYTES, SEGMENT_BYTES, ActorSpool
from learners.link.wire import check_actor_id
from learners.transition import Transition

log = logging.getLogger(__name__)


class TransitionStream:
    """Spool, link and batcher of actor ``actor_id``, whose spool lives in ``directory``/spool."""

    def __init__(
        self,
        directory: Path,
        actor_id: str,
        learner: str,
        spec: dict[str, Any],
        weight_shapes: dict[str, tuple[int, ...]],
        *,
        curve: CurveClient | None = None,
        insecure: bool = False,
        durability: str = "fsync",
        spool_keep_bytes: int | None = KEEP_BYTES,
        spool_segment_bytes: int = SEGMENT_BYTES,
        compress: str | None = "zstd",
    ) -> None:
        check_actor_id(actor_id)
        self.actor_id = actor_id
        self.spool = ActorSpool(Path(directory) / "spool", actor_id, durability, keep_bytes=spool_keep_bytes,
                                segment_bytes=spool_segment_bytes, compress=compress)
        try:
            self.link = ActorLink(learner, actor_id, spec, self.spool, weight_shapes=weight_shapes,
                                  curve=curve, insecure=insecure)
        except BaseException:  # e.g. a plain-text endpoint beyond loopback: release the spool
            self.spool.close()
            raise
        self.batcher = SpoolBatcher(self.spool)

    @property
    def seq(self) -> int:
        """The last sequence number handed out."""
        return self.spool.seq

    @property
    def writes_behind(self) -> bool:
        """Whether the spool writes behind the link (``durability="behind"``)."""
        return self.spool.writes_behind

    @property
    def kept_seq(self) -> int:
        """The last sequence number of a transition kept from this actor's earlier life (its
        spool's last record or a raised floor; with ``durability="behind"`` the numbers then jump
        past a reservation, so ``seq`` does not count transitions)."""
        return self.spool.kept_seq

    def kept_steps(self) -> int:
        """Transitions kept from this actor's earlier life, as far as its spool knows: ``kept_seq``
        while numbers are consecutive; 0 when written behind (numbers skip past reservations,
        and what the learner acknowledged before it was written is not on the spool)."""
        return 0 if self.spool.writes_behind else self.spool.kept_seq

    def durable_seq(self) -> int:
        """The highest sequence number durable in the spool or held by the learner."""
        return self.spool.durable_seq()

    def raise_floor(self, seq: int) -> None:
        """Never hand out a sequence number at or below ``seq`` (e.g. one saved with the actor's state)."""
        self.spool.raise_floor(seq)

    def next_seq(self) -> int:
        """The sequence number of the next transition to ``emit``."""
        return self.spool.next_seq()

    def offer(self, transition: Transition) -> bool:
        """Number ``transition`` (its ``seq`` is set here) and queue it to spool and send; never
        waits. While the spool cannot write (its disk full) it is dropped instead, before it gets
        a number, and counted in ``dropped_disk_full``: returns False."""
        if not self.batcher.accepting():
            self.spool.drop()
            return False
        transition.seq = self.spool.next_seq()
        self.batcher.add(transition)
        return True

    def emit(self, transition: Transition) -> None:
        """Spool ``transition`` (its ``seq`` already taken from ``next_seq``) and queue it to send.
        It is numbered, so it is never dropped: while the spool cannot write it waits in memory
        (callers that may outlast a full disk use ``offer``)."""
        self.batcher.add(transition)

    @property
    def dropped_disk_full(self) -> int:
        """Transitions dropped, unnumbered, because the spool could not write."""
        return self.spool.dropped_disk_full

    @property
    def spool_error(self) -> str | None:
        """Why the spool cannot write now (its disk full: the path and the errno), or None."""
        error = self.spool.write_error
        return None if error is None else str(error)

    def flush(self) -> None:
        """Send what the open batch holds now, without waiting for it to fill (e.g. before
        waiting on the learner to learn from these very transitions)."""
        self.batcher.flush()

    def take_weights(self) -> tuple[int, dict[str, Any], float] | None:
        """The newest weights the learner published since the last call: ``(version, state,
        monotonic time of arrival)``, or None."""
        return self.link.mailbox.take()

    def start(self) -> TransitionStream:
        self.link.start()
        return self

    def close(self, drain_s: float = 0.0) -> None:
        """Spool the open batch, wait up to ``drain_s`` for the learner to acknowledge everything,
        stop the link and close the spool."""
        try:
            self.batcher.close()
        finally:
            self.link.stop(drain_s)
            try:
                try:
                    self.spool.flush()
                finally:
                    self.spool.close()
            except CacheFullError as e:  # never sent, so never seen: numbered again after a restart
                log.error("actor %s: the spool closed on a full disk; what was not yet on it is lost: %s",
                          self.actor_id, e)
