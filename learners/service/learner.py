"""``LearnerService``: the replay cache, the network server and the updater, run together."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from hal.errors import ConfigError
from learners.cache import CacheConfig, CacheError, ReplayCache
from learners.link.server import LearnerServer
from learners.link.weights import WeightsBox
from learners.service.config import LearnerConfig
from learners.service.updater import Updater
from learners.streamx import algorithm_config, build_algorithm

log = logging.getLogger(__name__)
STATUS_EVERY_S = 2.0
STOP_WAIT_S = 60.0  # how long stop() waits for the learner's threads


class LearnerService:
    """Owns everything a learner runs; ``start()`` it, ``stop()`` it (a checkpoint is written).

    The network thread never waits for learning and learning never waits for the network: they
    meet only in the cache (records in) and the weights box (weights out). ``status()`` (also
    written to ``metrics/learner_status.json`` every 2 s) says, among other things, whether the
    cache can write: on a full disk the learner stops acknowledging until it can.
    """

    def __init__(self, config: LearnerConfig) -> None:
        self.config = config
        run = config.run_dir
        claim_learner_dir(config)
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
        self._learn_error: str | None = None  # the last error learning stopped on, while it lasts
        self._status_error: str | None = None

    def _held_seqs(self) -> dict[str, int]:
        """Highest durable seq per actor: the checkpoint's applied map, then the cache beyond it."""
        held = dict(self.updater.applied)
        for offset in self.cache.offsets(self.updater.consumer.position):
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
                         threading.Thread(target=self._learn, name="learner-update", daemon=True),
                         threading.Thread(target=self._report, name="learner-status", daemon=True)]
        for t in self._threads:
            t.start()
        self.server.ready.wait(5)
        self.write_status()
        return self

    def _learn(self) -> None:
        last_stats = last_retention = time.monotonic()
        retain = self.config.retention_bytes is not None or self.config.retention_age_s is not None
        while not self._stop.is_set():
            try:
                if self.updater.step(timeout=0.05):
                    self.server.learned()
                if self._learn_error is not None:
                    log.warning("learner: learning goes on (it had stopped on: %s)", self._learn_error)
                    self._learn_error = None
            except (OSError, CacheError) as e:  # a full disk under a checkpoint or the cache's offsets
                self._learning_failed(e)
                continue
            now = time.monotonic()
            if now - last_stats > 2.0:
                last_stats = now
                try:
                    self.updater.write_stats()
                except OSError as e:
                    log.warning("learner: could not write its stats: %s", e)
            if retain and now - last_retention > self.config.retention_every_s:
                last_retention = now
                self.apply_retention()

    def _report(self) -> None:
        """Write the status every 2 s, on a thread of its own: it must tell of a full disk while
        learning is busy (or paused)."""
        while not self._stop.wait(STATUS_EVERY_S):
            self.write_status()

    def _learning_failed(self, error: Exception) -> None:
        """Learning stopped on a write error: say so once, go back to the first record not yet
        applied (the updater polled past it), and try again in a second."""
        if str(error) != self._learn_error:
            log.error("learner: learning paused: %s; retrying every second", error)
        self._learn_error = str(error)
        self.updater.consumer.seek(self.updater.position)
        self._stop.wait(1.0)

    def status(self) -> dict[str, Any]:
        """Where the learner stands: updates, weights version, episodes, connected actors,
        transitions stored, refusals by reason, ``cache`` (``"ok"`` or ``"full: ..."``: while the
        disk is full nothing more is acknowledged), ``learning`` (``"ok"``, why it paused, or why it
        stopped for good: non-finite weights), ``weights_refused`` (publications refused),
        ``intervened`` (per actor: steps a person drove, learned as imitation) and ``interrupted``
        (episodes an actor broke off, by a restart or a move, since this learner started)."""
        if self.updater.halted is not None:
            learning = f"stopped: {self.updater.halted}"
        else:
            learning = "ok" if self._learn_error is None else f"paused: {self._learn_error}"
        return {"time": time.time(), "updates": self.algo.updates, "weights_version": self.updater.version,
                "episodes": self.updater.episodes, **self.server.status(), "learning": learning,
                "weights_refused": self.updater.publisher.refused,
                "intervened": dict(self.updater.stats.intervened),
                "interrupted": self.updater.stats.interrupted}

    def write_status(self) -> None:
        """Write ``status()`` to ``metrics/learner_status.json`` (atomically; a failure is logged
        once: the status is for reading, never a reason to stop)."""
        path = self.config.run_dir / "metrics" / "learner_status.json"
        tmp = path.with_suffix(".json.tmp")
        try:
            tmp.write_text(json.dumps(self.status(), indent=1))
            os.replace(tmp, path)
        except OSError as e:
            if str(e) != self._status_error:
                log.warning("learner: could not write %s: %s", path, e)
            self._status_error = str(e)
        else:
            self._status_error = None

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
        deadline = time.monotonic() + STOP_WAIT_S
        for t in self._threads:  # learning may be inside a kernel compile (seconds on a slow CPU)
            t.join(timeout=max(deadline - time.monotonic(), 0.1))
        stuck = [t.name for t in self._threads if t.is_alive()]
        if stuck:  # closing the journal and the cache under a running thread would corrupt them
            log.error("learner: %s did not stop within %.0f s; stopping without a final checkpoint "
                      "(a restart resumes from the last one and applies the rest once)", stuck, STOP_WAIT_S)
            return
        self.write_status()
        try:
            self.updater.write_stats()
            self.updater.close()
        except (OSError, CacheError) as e:  # a full disk: a restart resumes from the last checkpoint
            log.error("learner: no checkpoint written at stop: %s", e)
        try:
            self.cache.close()
        except (CacheError, OSError) as e:  # what was not durable was never acknowledged: resent
            log.error("learner: stopped with the disk full: %s", e)

    def __enter__(self) -> LearnerService:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


IDENTITY_FILE = "learner.json"


def claim_learner_dir(config: LearnerConfig) -> None:
    """Make ``config.run_dir`` this learner's: new, or holding a learner of the same algorithm,
    shapes, seed and hyperparameters (``learner.json``, written on first use), whose checkpoint it
    resumes. Another learner's directory is a ``ConfigError`` naming what differs, before anything
    in it is touched: its checkpoint would fail to load by shape, or be resumed with other
    hyperparameters without a word."""
    identity = {"algo": config.algo, "obs_dim": config.obs_dim, "action_dim": config.action_dim,
                "n_actions": config.n_actions, "seed": config.seed,
                "hyper": algorithm_config(config.algo, dict(config.hyper)).to_dict()}
    path = Path(config.run_dir) / IDENTITY_FILE
    if path.is_file():
        try:
            held = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            held = f"unreadable ({e})"
        if not isinstance(held, dict):
            raise ConfigError(f"learner run directory {config.run_dir}: {IDENTITY_FILE} is not a learner's "
                              f"description: {str(held)[:200]}")
        identity = json.loads(json.dumps(identity))  # as it reads back (tuples as lists)
        differ = [f"{k}: {held.get(k)!r} -> {v!r}" for k, v in identity.items() if held.get(k) != v]
        if differ:
            raise ConfigError(f"learner run directory {config.run_dir} holds another learner "
                              f"({'; '.join(differ)}); give this one another run directory")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(identity, indent=1, sort_keys=True))
    tmp.replace(path)
