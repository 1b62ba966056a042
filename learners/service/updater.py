"""The learner's update side: consume the cache in order, learn, publish weights, checkpoint.

Transitions are applied in cache order, which is each actor's sequence order; each actor has
its own eligibility traces over the shared weights. A checkpoint stores, atomically, the weights,
every actor's traces, the normalizer-free algorithm state, the cache position reached and the
length of the applied journal, so a restarted learner continues exactly where the checkpoint
stood: the transitions after it are applied again (their first application died with the
process), and none twice.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch

from learners.cache import ReplayCache
from learners.cache.batch import TransitionBatch
from learners.checkpoint import CheckpointStore
from learners.link.weights import WeightsBox
from learners.link.wire import pack_weights
from learners.service.config import LearnerConfig
from learners.service.journal import AppliedJournal
from learners.streamx.base import StreamAlgorithm
from learners.streamx.registry import algorithm_spec
from learners.transition import Transition

log = logging.getLogger(__name__)
STATS_FIELDS = ["updates", "wall_time", "updates_per_s", "weights_version", "staleness_mean",
                "staleness_max", "importance_mean", "importance_clipped", "out_of_order", "episodes",
                "recent_return"]


# Deprecated alias of StreamAlgorithm.acting_module(): remove once agent/ is switched.
def acting_module(algo: StreamAlgorithm) -> tuple[str, torch.nn.Module]:
    """Deprecated: use ``algo.acting_module()``."""
    return algo.acting_module()


class Updater:
    def __init__(self, config: LearnerConfig, cache: ReplayCache, algo: StreamAlgorithm,
                 weights: WeightsBox) -> None:
        self.config, self.cache, self.algo, self.weights = config, cache, algo, weights
        self.consumer = cache.consumer("learner")
        self.store = CheckpointStore(config.run_dir / "checkpoints", keep=3)
        self.applied: dict[str, int] = {}
        self.version = 0
        self.out_of_order = 0
        self.episode_returns: dict[str, float] = {}
        self.recent: list[float] = []
        self.episodes = 0
        self._policy_weighted = algorithm_spec(config.algo).policy_weighted
        self._stale_sum = self._stale_max = self._rho_sum = self._rho_n = self._clipped = 0
        journal_length = self._restore()
        # One past the last record applied: what a checkpoint may claim. The consumer's own
        # position runs ahead of it by the records polled but not yet applied.
        self.position = self.consumer.position
        self.journal = AppliedJournal(config.run_dir / "applied.log", journal_length)
        self._last_publish = time.monotonic()
        self._since_publish = 0
        self._stats_path = config.run_dir / "metrics" / "learner.csv"
        self._stats_path.parent.mkdir(parents=True, exist_ok=True)
        self._t0, self._u0 = time.monotonic(), self.algo.updates
        self.publish()

    # -- persistence -----------------------------------------------------------------------------
    def _restore(self) -> int:
        found = self.store.load_latest()
        if found is None:
            return 0
        name, tensors, state = found
        self.algo.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("algo.")})
        self.algo.load_stream_traces({k[7:]: v for k, v in tensors.items() if k.startswith("traces.")})
        self.applied = {k: int(v) for k, v in state["applied"].items()}
        self.version = int(state["weights_version"])
        self.episodes = int(state.get("episodes", 0))
        self.consumer.seek(int(state["consumer_position"]))
        log.info("learner resumed from %s: %d updates, cache position %d", name, self.algo.updates,
                 self.consumer.position)
        return int(state["journal_length"])

    def checkpoint(self) -> None:
        journal_length = self.journal.sync()
        tensors = {f"algo.{k}": v for k, v in self.algo.state_dict().items()}
        tensors.update({f"traces.{k}": v for k, v in self.algo.stream_traces().items()})
        state = {"applied": self.applied, "consumer_position": self.position,
                 "journal_length": journal_length, "weights_version": self.version,
                 "updates": self.algo.updates, "episodes": self.episodes}
        self.store.save(self.algo.updates, tensors, state)
        if self.position > self.consumer.committed:  # lets retention reclaim what it covers
            self.consumer.commit(self.position - 1)

    # -- learning --------------------------------------------------------------------------------
    def publish(self) -> None:
        name, module = self.algo.acting_module()
        self.version = self.algo.updates
        fields, blob = pack_weights({f"{name}.{k}": v for k, v in module.state_dict().items()},
                                    self.version)
        self.weights.put(fields["version"], fields["sha256"], blob)
        self._last_publish = time.monotonic()
        self._since_publish = 0

    def _importance_weight(self, t: Transition) -> float:
        clip = self.config.importance_clip
        if clip is None or not hasattr(self.algo, "log_prob") or not math.isfinite(t.behavior_logp):
            return 1.0
        rho = math.exp(min(self.algo.log_prob(t.obs, t.action) - t.behavior_logp, 50.0))
        self._rho_sum += min(rho, clip)
        self._rho_n += 1
        self._clipped += rho > clip
        return min(rho, clip)

    def apply(self, t: Transition) -> None:
        last = self.applied.get(t.actor_id, 0)
        if t.seq <= last:  # cannot happen with an intact cache; never apply twice
            log.error("transition %s/%d already applied; skipped", t.actor_id, t.seq)
            return
        if t.seq != last + 1:
            self.out_of_order += 1
            log.error("transition %s/%d follows %d: a gap in the actor's stream", t.actor_id, t.seq, last)
        stale = self.version - t.policy_version
        self._stale_sum += stale
        self._stale_max = max(self._stale_max, stale)
        if isinstance(t.obs, dict) or isinstance(t.next_obs, dict):  # images ride along in the cache;
            t = dataclasses.replace(t, obs=_state(t.obs), next_obs=_state(t.next_obs))  # heads learn 'state'
        self.algo.select_stream(t.actor_id)
        if self._policy_weighted:
            self.algo.update(t, policy_weight=self._importance_weight(t))
        else:
            self.algo.update(t)
        self.applied[t.actor_id] = t.seq
        self.journal.record(t.actor_id, t.seq)
        self._track_return(t)
        self._since_publish += 1

    def _track_return(self, t: Transition) -> None:
        raw = t.extras.get("raw_reward", t.reward) if isinstance(t.extras, dict) else t.reward
        total = self.episode_returns.get(t.actor_id, 0.0) + float(raw)
        if t.done:
            self.recent.append(total)
            self.recent = self.recent[-100:]
            self.episodes += 1
            total = 0.0
        self.episode_returns[t.actor_id] = total

    def step(self, timeout: float = 0.05) -> int:
        """Apply the records available now (waiting up to ``timeout`` for the first); returns how
        many records (transitions or batches of them) were consumed."""
        records = self.consumer.poll(4, timeout)
        every = self.config.checkpoint_every_updates
        for offset, record in records:
            before = self.algo.updates
            if isinstance(record, TransitionBatch):
                for t in record:
                    self.apply(t)
            elif isinstance(record, Transition):
                self.apply(record)
            self.position = offset + 1
            # Only between records: a checkpoint's cache position is a record's.
            if self.algo.updates // every > before // every:
                self.checkpoint()
            self._maybe_publish()
        if not records:
            self._maybe_publish()
        return len(records)

    def _maybe_publish(self) -> None:
        waited_ms = (time.monotonic() - self._last_publish) * 1e3
        if self._since_publish and (self._since_publish >= self.config.publish_every_updates
                                    or waited_ms >= self.config.publish_every_ms):
            self.publish()

    def write_stats(self) -> dict:
        now = time.monotonic()
        n = self.algo.updates - self._u0
        row = {"updates": self.algo.updates, "wall_time": round(now - self._t0, 3),
               "updates_per_s": round(n / max(now - self._t0, 1e-9), 1), "weights_version": self.version,
               "staleness_mean": round(self._stale_sum / n, 3) if n else float("nan"),
               "staleness_max": self._stale_max,
               "importance_mean": round(self._rho_sum / self._rho_n, 4) if self._rho_n else float("nan"),
               "importance_clipped": self._clipped, "out_of_order": self.out_of_order,
               "episodes": self.episodes,
               "recent_return": float(np.mean(self.recent[-10:])) if self.recent else float("nan")}
        new = not self._stats_path.exists()
        with open(self._stats_path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=STATS_FIELDS)
            if new:
                writer.writeheader()
            writer.writerow(row)
        return row

    def close(self) -> None:
        self.checkpoint()
        self.journal.close()


def _state(obs):
    return obs["state"] if isinstance(obs, dict) else obs


def journal_path(run_dir: Path) -> Path:
    return Path(run_dir) / "applied.log"
