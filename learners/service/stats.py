"""The learner's statistics: the running counts behind each row of ``metrics/learner.csv``."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np

from learners.transition import Transition

STATS_FIELDS = ["updates", "wall_time", "updates_per_s", "weights_version", "staleness_mean",
                "staleness_max", "importance_mean", "importance_clipped", "skipped", "episodes",
                "interrupted", "recent_return", "intervened"]
RECENT_EPISODES = 100  # raw returns kept for ``recent``; a row reports the mean of the last 10


class LearnerStats:
    """Staleness, importance weights, stream gaps and raw episode returns since the learner started.

    ``episodes`` is carried across restarts by the checkpoint; the rest counts this process only,
    from ``updates_at_start`` on.
    """

    def __init__(self, path: Path, updates_at_start: int, episodes: int = 0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.episodes = episodes
        self.episode_returns: dict[str, float] = {}  # per actor, of the episode under way
        self.recent: list[float] = []
        self.skipped = 0  # sequence numbers an actor declared lost (never acknowledged)
        self.interrupted = 0  # episodes whose actor began another before their last transition
        self.staleness_sum = self.staleness_max = 0
        self.importance_sum = 0.0
        self.importance_n = self.importance_clipped = 0
        self.intervened: dict[str, int] = {}  # per actor: steps a person drove, applied as imitation
        self._t0, self._u0 = time.monotonic(), updates_at_start

    def staleness(self, versions_behind: int) -> None:
        """Record how many weight versions behind the acting policy of one transition was."""
        self.staleness_sum += versions_behind
        self.staleness_max = max(self.staleness_max, versions_behind)

    def importance(self, rho: float, clip: float) -> None:
        """Record one importance ratio ``rho`` and whether the clip truncated it."""
        self.importance_sum += min(rho, clip)
        self.importance_n += 1
        self.importance_clipped += rho > clip

    def intervened_step(self, actor_id: str) -> None:
        """Count one applied step that a person drove (``extras["intervened"]``)."""
        self.intervened[actor_id] = self.intervened.get(actor_id, 0) + 1

    def episode_step(self, t: Transition) -> None:
        """Add the raw (unscaled) reward of ``t`` to its actor's episode; close it when done."""
        raw = t.extras.get("raw_reward", t.reward) if isinstance(t.extras, dict) else t.reward
        total = self.episode_returns.get(t.actor_id, 0.0) + float(raw)
        if t.done:
            self.recent.append(total)
            self.recent = self.recent[-RECENT_EPISODES:]
            self.episodes += 1
            total = 0.0
        self.episode_returns[t.actor_id] = total

    def episode_interrupted(self, actor_id: str) -> None:
        """``actor_id``'s episode under way will never end (its actor restarted): drop its return."""
        self.episode_returns.pop(actor_id, None)
        self.interrupted += 1

    def row(self, updates: int, weights_version: int) -> dict:
        """The current ``learner.csv`` row."""
        now = time.monotonic()
        n = updates - self._u0
        return {"updates": updates, "wall_time": round(now - self._t0, 3),
                "updates_per_s": round(n / max(now - self._t0, 1e-9), 1), "weights_version": weights_version,
                "staleness_mean": round(self.staleness_sum / n, 3) if n else float("nan"),
                "staleness_max": self.staleness_max,
                "importance_mean": (round(self.importance_sum / self.importance_n, 4) if self.importance_n
                                    else float("nan")),
                "importance_clipped": self.importance_clipped, "skipped": self.skipped,
                "episodes": self.episodes, "interrupted": self.interrupted,
                "recent_return": float(np.mean(self.recent[-10:])) if self.recent else float("nan"),
                "intervened": sum(self.intervened.values())}

    def write(self, updates: int, weights_version: int) -> dict:
        """Append the current row to ``learner.csv`` (a header first if the file is new); returns it."""
        row = self.row(updates, weights_version)
        new = not self.path.exists() or self.path.stat().st_size == 0
        fields = STATS_FIELDS
        if not new:  # a file of an older learner keeps its columns
            with open(self.path, newline="") as f:
                fields = next(csv.reader(f), STATS_FIELDS)
        with open(self.path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)
        return row
