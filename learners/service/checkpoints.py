"""The learner's checkpoints: everything needed to continue exactly, and where in the cache.

A checkpoint stores, atomically, the algorithm's state (weights, counters, RNG), every actor's
eligibility traces, the map of the last seq applied per actor (with that transition's episode, step
and end, so that an episode an actor broke off is told apart after a restart too), the length of
the applied journal, the published weights version, the episode count, and the cache position
reached. That position is one past the last record *applied*, not the consumer's own position,
which runs ahead by the records polled but not yet applied: a restarted learner seeks there and
applies the records after it again (their first application died with the process), and none twice.
Checkpoints are only taken between records, so the position is always a record's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from learners.cache import Consumer
from learners.checkpoint import CheckpointStore
from learners.streamx.base import StreamAlgorithm

log = logging.getLogger(__name__)
KEEP = 3  # the newest checkpoints kept on disk


@dataclass
class ResumePoint:
    """Where learning stood at the checkpoint restored (all zero for a fresh run)."""

    applied: dict[str, int] = field(default_factory=dict)
    weights_version: int = 0
    episodes: int = 0
    journal_length: int = 0
    last_steps: dict[str, tuple[int, int, bool]] = field(default_factory=dict)


class LearnerCheckpoints:
    """Saves and restores the learner's state in ``directory``; tracks the position to claim."""

    def __init__(self, directory: Path, algo: StreamAlgorithm, consumer: Consumer) -> None:
        self.store = CheckpointStore(directory, keep=KEEP)
        self.algo, self.consumer = algo, consumer
        self.position = consumer.position  # one past the last record applied

    def restore(self) -> ResumePoint:
        """Load the newest checkpoint into the algorithm and seek the consumer to its position."""
        found = self.store.load_latest()
        if found is None:
            return ResumePoint()
        name, tensors, state = found
        self.algo.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("algo.")})
        self.algo.load_stream_traces({k[7:]: v for k, v in tensors.items() if k.startswith("traces.")})
        self.consumer.seek(int(state["consumer_position"]))
        self.position = self.consumer.position
        log.info("learner resumed from %s: %d updates, cache position %d", name, self.algo.updates,
                 self.consumer.position)
        return ResumePoint(applied={k: int(v) for k, v in state["applied"].items()},
                           weights_version=int(state["weights_version"]),
                           episodes=int(state.get("episodes", 0)),
                           journal_length=int(state["journal_length"]),
                           last_steps=_last_steps(name, state.get("last_steps", {})))

    def applied_record(self, offset: int) -> None:
        """Every transition of the record at cache ``offset`` has been applied."""
        self.position = offset + 1

    def save(self, applied: dict[str, int], journal_length: int, weights_version: int,
             episodes: int, last_steps: dict[str, tuple[int, int, bool]] | None = None) -> None:
        """Write a checkpoint at the current position, then let the cache reclaim what it covers.

        ``journal_length`` must be the synced length of the applied journal, so that it matches
        ``applied`` and the weights.
        """
        tensors = {f"algo.{k}": v for k, v in self.algo.state_dict().items()}
        tensors.update({f"traces.{k}": v for k, v in self.algo.stream_traces().items()})
        state = {"applied": applied, "consumer_position": self.position,
                 "journal_length": journal_length, "weights_version": weights_version,
                 "updates": self.algo.updates, "episodes": episodes,
                 "last_steps": {k: [int(e), int(n), bool(d)] for k, (e, n, d) in (last_steps or {}).items()}}
        self.store.save(self.algo.updates, tensors, state)
        if self.position > self.consumer.committed:  # lets retention reclaim what it covers
            self.consumer.commit(self.position - 1)


def _last_steps(name: str, raw: object) -> dict[str, tuple[int, int, bool]]:
    """``last_steps`` of checkpoint ``name``: actor -> (episode, step, done); absent in older ones."""
    def valid(v: object) -> bool:
        return (isinstance(v, list) and len(v) == 3 and all(isinstance(x, int) for x in v[:2])
                and isinstance(v[2], bool))

    if not isinstance(raw, dict) or not all(valid(v) for v in raw.values()):
        raise ValueError(f"learner checkpoint {name}: last_steps must map each actor to [episode, step, "
                         f"done], got {str(raw)[:200]}")
    return {str(actor): (v[0], v[1], v[2]) for actor, v in raw.items()}
