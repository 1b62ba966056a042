"""``LearnerService``: the replay cache, the network server and the updater, run together."""

from __future__ import annotations

import logging
import threading
import time

from learners.cache import CacheConfig, CacheError, ReplayCache
from learners.link.server import LearnerServer
from learners.link.weights import WeightsBox
from learners.service.config import LearnerConfig
from learners.service.updater import Updater
from learners.streamx import algorithm_config, build_algorithm

log = logging.getLogger(__name__)


class LearnerService:
    """Owns everything a learner runs; ``start()`` it, ``stop()`` it (a checkpoint is written).

    The network thread never waits for learning and learning never waits for the network: they
    meet only in the cache (records in) and the weights box (weights out).
    """

    def __init__(self, config: LearnerConfig) -> None:
        self.config = config
        run = config.run_dir
        for sub in ("checkpoints", "metrics"):
            (run / sub).mkdir(parents=True, exist_ok=True)
        self.cache = ReplayCache(run / "cache", CacheConfig(durability=config.durability,
                                                            retention_bytes=config.retention_bytes,
                                                            retention_age_s=config.retention_age_s,
                                                            segment_bytes=config.cache_segment_bytes))
        hyper = dict(config.hyper)
        self.algo = build_algorithm(config.algo, config.obs_dim, action_dim=config.action_dim,
                                    n_actions=config.n_actions, seed=config.seed,
                                    config=algorithm_config(config.algo, hyper), fast=config.fast)
        self.weights = WeightsBox()
        self.updater = Updater(config, self.cache, self.algo, self.weights)
        self.server = LearnerServer(config, self.cache, self.weights, self._held_seqs(),
                                    applied_seq=self.updater.applied)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _held_seqs(self) -> dict[str, int]:
        """Highest durable seq per actor: the checkpoint's applied map, then the cache beyond it."""
        held = dict(self.updater.applied)
        for offset in self.cache.log.offsets(self.updater.consumer.position):
            try:
                span = self.cache.read_span(offset)
            except CacheError as e:  # a corrupt record: the actor resends what it held
                log.warning("learner: %s", e)
                continue
            if span is not None:
                actor_id, _, last = span
                held[actor_id] = max(held.get(actor_id, 0), last)
        return held

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def start(self) -> LearnerService:
        self._threads = [threading.Thread(target=self.server.serve, name="learner-net", daemon=True),
                         threading.Thread(target=self._learn, name="learner-update", daemon=True)]
        for t in self._threads:
            t.start()
        self.server.ready.wait(5)
        return self

    def _learn(self) -> None:
        last_stats = last_retention = time.monotonic()
        retain = self.config.retention_bytes is not None or self.config.retention_age_s is not None
        while not self._stop.is_set():
            if self.updater.step(timeout=0.05):
                self.server.learned()
            now = time.monotonic()
            if now - last_stats > 2.0:
                self.updater.write_stats()
                last_stats = now
            if retain and now - last_retention > self.config.retention_every_s:
                last_retention = now
                self.apply_retention()

    def apply_retention(self) -> None:
        """Delete the cache's oldest segments past the retention limits that every registered
        consumer (the updater's included) has passed; a failure is logged, learning goes on."""
        try:
            result = self.cache.apply_retention()
        except OSError as e:
            log.warning("replay cache retention failed: %s", e)
            return
        if result.deleted:
            log.info("replay cache retention: deleted %d segment(s), %.1f MB", len(result.deleted),
                     result.freed_bytes / 1e6)

    def stop(self) -> None:
        self._stop.set()
        self.server.stop.set()
        for t in self._threads:
            t.join(timeout=10)
        self.updater.write_stats()
        self.updater.close()
        self.cache.close()

    def __enter__(self) -> LearnerService:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
