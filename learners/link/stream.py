"""``TransitionStream``: an actor's side of the link: sequence numbers, the spool, the link thread.

Whatever produces transitions (a stream-x actor on an environment, a VLA control loop) hands them
to ``emit``: the stream gathers them into batch records (``SpoolBatcher``), appends each batch to
the local spool and queues it for the link, without waiting on anything. Sequence numbers are never
reused: the spool's last one on start, a caller's saved floor, and the learner's own count when it
says it holds more (a lost spool) all bound the next one from below.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from learners.link.batcher import SpoolBatcher
from learners.link.client import ActorLink
from learners.link.security import CurveClient
from learners.link.spool import KEEP_BYTES, open_spool
from learners.transition import Transition

log = logging.getLogger(__name__)


class TransitionStream:
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
        if not actor_id or "/" in actor_id or len(actor_id.encode()) > 200:
            raise ValueError(f"actor_id {actor_id!r}: 1-200 bytes, no '/'")
        self.actor_id = actor_id
        self.spool, pending, self.seq = open_spool(Path(directory) / "spool", actor_id, durability,
                                                   keep_bytes=spool_keep_bytes)
        self.link = ActorLink(
            learner, actor_id, spec, self.spool, weight_shapes=weight_shapes, curve=curve, insecure=insecure
        )
        for first, last, offset in pending:
            self.link.enqueue(first, last, offset, None)
        self.link.last_seq = self.seq
        self.batcher = SpoolBatcher(self.spool, self.link)

    def raise_floor(self, seq: int) -> None:
        """Never hand out a sequence number at or below ``seq`` (e.g. one saved with the actor's state)."""
        if seq > self.seq:
            self.seq = seq
            self.link.last_seq = seq

    def next_seq(self) -> int:
        if self.link.learner_seq > self.seq:  # the learner holds more of us than our spool did
            log.error(
                "actor %s: the learner holds seq %d but this actor's spool ended at %d; continuing "
                "after the learner's",
                self.actor_id,
                self.link.learner_seq,
                self.seq,
            )
            self.seq = self.link.learner_seq
        self.seq += 1
        return self.seq

    def emit(self, transition: Transition) -> None:
        """Spool ``transition`` (its ``seq`` already taken from ``next_seq``) and queue it to send."""
        self.batcher.add(transition)

    def flush(self) -> None:
        """Send what the open batch holds now, without waiting for it to fill (e.g. before
        waiting on the learner to learn from these very transitions)."""
        self.batcher.flush()

    def take_weights(self) -> tuple[int, dict[str, Any], float] | None:
        return self.link.mailbox.take()

    def start(self) -> TransitionStream:
        self.link.start()
        return self

    def close(self, drain_s: float = 0.0) -> None:
        self.link.stop(drain_s)
        self.spool.flush()
        self.spool.close()
