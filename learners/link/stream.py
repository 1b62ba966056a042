"""``TransitionStream``: an actor's side of the link, the one entry point actors use.

Whatever produces transitions (a stream-x actor on an environment, a VLA control loop) hands them
to ``emit``, without waiting on anything. They flow one way: ``SpoolBatcher`` gathers them into
batches → ``ActorSpool`` appends each as one record → ``ActorLink`` sends what the spool has not
sent, once durable, and tells the spool what the learner acknowledged. Sequence numbers come from
the spool (``next_seq``), which never reuses one: its last one on start, a caller's saved floor,
and the learner's own count when it says it holds more (a lost spool) all bound the next from below.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from learners.link.batcher import SpoolBatcher
from learners.link.client import ActorLink
from learners.link.security import CurveClient
from learners.link.spool import KEEP_BYTES, ActorSpool
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
    ) -> None:
        check_actor_id(actor_id)
        self.actor_id = actor_id
        self.spool = ActorSpool(Path(directory) / "spool", actor_id, durability, keep_bytes=spool_keep_bytes)
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

    def raise_floor(self, seq: int) -> None:
        """Never hand out a sequence number at or below ``seq`` (e.g. one saved with the actor's state)."""
        self.spool.raise_floor(seq)

    def next_seq(self) -> int:
        """The sequence number of the next transition to ``emit``."""
        return self.spool.next_seq()

    def emit(self, transition: Transition) -> None:
        """Spool ``transition`` (its ``seq`` already taken from ``next_seq``) and queue it to send."""
        self.batcher.add(transition)

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
            self.spool.flush()
            self.spool.close()
