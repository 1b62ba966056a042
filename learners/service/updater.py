"""The learner's update side: consume the cache in order, learn, publish weights, checkpoint.

``Updater`` coordinates four parts, each in its own module: ``TransitionApplier`` (the learning:
records applied in each actor's order, per-actor traces, importance weights, staleness),
``WeightPublisher`` (weights out to the actors), ``LearnerCheckpoints`` (save and restore, and the
cache position a checkpoint may claim) and ``LearnerStats`` (the rows of ``learner.csv``). A
restarted learner continues exactly where its last checkpoint stood: the transitions after it are
applied again (their first application died with the process), and none twice.

Weights that are not finite (a NaN or an infinity: every update after one is NaN too) are never
shipped and never checkpointed: once the publisher finds them the updater stops learning
(``halted`` says why), so that the records after the last good checkpoint stay unapplied there
and a restarted learner, the cause fixed, resumes from that checkpoint and applies them again,
none lost and none twice. The network side goes on storing and acknowledging meanwhile.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from learners.cache import ReplayCache
from learners.cache.batch import TransitionBatch
from learners.checkpoint import CheckpointStore
from learners.link.weights import WeightsBox
from learners.link.wire import name_some, nonfinite_weights
from learners.service.applier import TransitionApplier
from learners.service.checkpoints import LearnerCheckpoints
from learners.service.config import LearnerConfig
from learners.service.journal import AppliedJournal
from learners.service.publisher import WeightPublisher
from learners.service.stats import STATS_FIELDS, LearnerStats
from learners.streamx.base import StreamAlgorithm
from learners.transition import Transition

log = logging.getLogger(__name__)
POLL_RECORDS = 4  # records taken per poll: a checkpoint or a publish can fall between them

__all__ = ["STATS_FIELDS", "Updater", "journal_path"]


def journal_path(run_dir: Path) -> Path:
    return Path(run_dir) / "applied.log"


class Updater:
    """Applies the cache's records in order, publishing and checkpointing as it goes.

    Single-threaded: only the learner's update thread calls it. ``applied`` (actor -> last seq
    applied) is one dict for the updater's life, so others may hold it and see it grow.
    """

    def __init__(self, config: LearnerConfig, cache: ReplayCache, algo: StreamAlgorithm,
                 weights: WeightsBox) -> None:
        self.config, self.cache, self.algo, self.weights = config, cache, algo, weights
        self.consumer = cache.consumer("learner")
        self.checkpoints = LearnerCheckpoints(config.run_dir / "checkpoints", algo, self.consumer)
        resume = self.checkpoints.restore()
        self.journal = AppliedJournal(journal_path(config.run_dir), resume.journal_length)
        self.stats = LearnerStats(config.run_dir / "metrics" / "learner.csv", algo.updates,
                                  episodes=resume.episodes)
        self.learning = TransitionApplier(config, algo, self.journal, self.stats, resume.applied,
                                          resume.last_steps)
        self.publisher = WeightPublisher(algo, weights, config.publish_every_updates,
                                         config.publish_every_ms, version=resume.weights_version,
                                         dtype=config.weights_dtype)
        self.halted: str | None = None  # why learning stopped for good (non-finite weights), or None
        self.publish()

    # -- what other code reads -------------------------------------------------------------------
    @property
    def applied(self) -> dict[str, int]:
        return self.learning.applied

    @property
    def version(self) -> int:
        """The version of the weights published last."""
        return self.publisher.version

    @version.setter
    def version(self, value: int) -> None:
        self.publisher.version = value

    @property
    def position(self) -> int:
        """One past the last record applied: the cache position a checkpoint claims."""
        return self.checkpoints.position

    @property
    def store(self) -> CheckpointStore:
        return self.checkpoints.store

    @property
    def episodes(self) -> int:
        return self.stats.episodes

    @property
    def recent(self) -> list[float]:
        """The raw returns of the last episodes finished (up to 100), oldest first."""
        return self.stats.recent

    @property
    def episode_returns(self) -> dict[str, float]:
        return self.stats.episode_returns

    @property
    def skipped(self) -> int:
        return self.stats.skipped

    # -- the loop --------------------------------------------------------------------------------
    def apply(self, t: Transition) -> None:
        self.learning.apply(t, self.version)

    def step(self, timeout: float = 0.05) -> int:
        """Apply the records available now (waiting up to ``timeout`` for the first); returns how
        many records (transitions or batches of them) were consumed."""
        if self.halted is not None:
            time.sleep(timeout)  # (the learning thread calls again at once)
            return 0
        records = self.consumer.poll(POLL_RECORDS, timeout)
        every = self.config.checkpoint_every_updates
        for offset, record in records:
            before = self.algo.updates
            if isinstance(record, TransitionBatch):
                for t in record:
                    self.apply(t)
            elif isinstance(record, Transition):
                self.apply(record)
            self.checkpoints.applied_record(offset)
            # Only between records: a checkpoint's cache position is a record's.
            if self.algo.updates // every > before // every:
                self.checkpoint()
            self.publisher.maybe_publish()
            if self.publisher.nonfinite:
                self._halt(name_some(self.publisher.nonfinite))
                break
        if not records:
            self.publisher.maybe_publish()
            if self.publisher.nonfinite:
                self._halt(name_some(self.publisher.nonfinite))
        return len(records)

    def _halt(self, what: str) -> None:
        self.halted = (f"non-finite weights after update {self.algo.updates} ({what}): learning stopped; the "
                       f"actors keep weights v{self.version}; fix the cause and restart the learner: it "
                       f"resumes from its last good checkpoint, and what came after is applied again")
        log.error("learner: %s", self.halted)

    def publish(self) -> None:
        self.publisher.publish()

    def checkpoint(self) -> None:
        """Save a checkpoint, unless a value of the algorithm's state is not finite: a restart
        then resumes from the last good one."""
        bad = nonfinite_weights(self.algo.state_dict())
        if bad:
            log.error("learner: no checkpoint written after update %d: non-finite values in %s; a restart "
                      "resumes from the last good one", self.algo.updates, name_some(bad))
            return
        journal_length = self.journal.sync()  # first, so that the checkpoint's length is on disk
        self.checkpoints.save(self.applied, journal_length, self.version, self.episodes,
                              self.learning.last_steps)

    def write_stats(self) -> dict:
        return self.stats.write(self.algo.updates, self.version)

    def close(self) -> None:
        self.checkpoint()
        self.journal.close()
