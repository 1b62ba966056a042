"""What a person supervising learning on a robot watches, as plain numbers.

``agent_node`` writes a ``supervision`` section into its status file (``status.json``) on its
report timer; ``rill watch`` shows it live and ``rill status`` shows the same afterwards from the
run directory's files. The episode figures come from an ``EpisodeTally``: the learner client adds
each finished episode to it on the control thread (one small immutable snapshot swapped in, never
a lock) and the report timer reads it; ``rill status`` builds one from ``episodes.csv``.

Success rate: episodes that succeeded over those judged, where an episode is judged when it ended
in ``success``, ``failure`` or ``timeout`` (a time limit is no success); episodes ``stopped``
(cut short by the operator or the node stopping) or with no outcome are not counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.actor.episodes import EpisodeRecord

WINDOW = 20  # the recent episodes the live figures are over
JUDGED = ("success", "failure", "timeout")


@dataclass(frozen=True)
class _Counts:
    recent: tuple[EpisodeRecord, ...] = ()
    episodes: int = 0
    judged: int = 0
    successes: int = 0
    takeovers: int = 0
    intervened_steps: int = 0
    ended_by: tuple[tuple[str, int], ...] = ()


@dataclass
class EpisodeTally:
    """Every finished episode counted, the last ``window`` kept. One thread adds; any thread reads
    ``counts()`` (an immutable snapshot replaced whole on each ``add``)."""

    window: int = WINDOW
    _counts: _Counts = field(default_factory=_Counts)

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"EpisodeTally: window must be at least 1 episode, got {self.window}")

    @classmethod
    def of(cls, records: Iterable[EpisodeRecord], window: int = WINDOW) -> EpisodeTally:
        tally = cls(window)
        for r in records:
            tally.add(r)
        return tally

    def add(self, r: EpisodeRecord) -> None:
        c = self._counts
        ended = dict(c.ended_by)
        who = r.ended_by or "unknown"
        ended[who] = ended.get(who, 0) + 1
        self._counts = _Counts(
            recent=(*c.recent, r)[-self.window:], episodes=c.episodes + 1,
            judged=c.judged + (r.outcome in JUDGED), successes=c.successes + (r.outcome == "success"),
            takeovers=c.takeovers + (r.takeovers or 0),
            intervened_steps=c.intervened_steps + (r.intervened_steps or 0),
            ended_by=tuple(sorted(ended.items())))

    def counts(self) -> _Counts:
        return self._counts

    def summary(self) -> dict[str, Any]:
        """The episode part of the ``supervision`` section (see ``supervision_section``)."""
        c = self._counts
        recent = c.recent
        judged = [r for r in recent if r.outcome in JUDGED]
        last = recent[-1] if recent else None
        return {
            "episodes": c.episodes,
            "success": {"window": self.window, "recent": _rate(judged), "recent_judged": len(judged),
                        "overall": c.successes / c.judged if c.judged else None, "overall_judged": c.judged},
            "interventions": {
                "last_takeovers": None if last is None else last.takeovers or 0,
                "last_intervened_steps": None if last is None else last.intervened_steps or 0,
                "mean_takeovers": _mean(r.takeovers or 0 for r in recent),
                "mean_intervened_steps": _mean(r.intervened_steps or 0 for r in recent),
                "total_takeovers": c.takeovers, "total_intervened_steps": c.intervened_steps},
            "ended_by": {"recent": _count(r.ended_by or "unknown" for r in recent),
                         "overall": dict(c.ended_by)},
            "recent_outcomes": [r.outcome or "" for r in recent],
            "recent_takeovers": [r.takeovers or 0 for r in recent],
        }


def _rate(records: Sequence[EpisodeRecord]) -> float | None:
    return sum(r.outcome == "success" for r in records) / len(records) if records else None


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def _count(keys: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for k in keys:
        out[k] = out.get(k, 0) + 1
    return dict(sorted(out.items()))


def loop_health(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The loop part of the section, from ``agent.ros.diagnostics.loop_snapshot``'s plain data."""
    keys = ("ticks", "holds", "deadline_misses", "stale_observations", "policy_failures")
    return {"state": snapshot.get("loop_state", ""), "level": snapshot.get("level"),
            "message": snapshot.get("message", ""), **{k: snapshot.get(k) for k in keys}}


def reward_model_state(acting: Any) -> dict[str, Any] | None:
    """The reward model's confidence in the newest frame, its threshold, and the confident frames
    in a row (``streak`` of ``consecutive``); None when the robot has no reward model."""
    detector = getattr(acting, "detector", None)
    if detector is None:
        return None
    return {"confidence": float(detector.confidence), "threshold": float(detector.threshold),
            "streak": int(detector.streak), "consecutive": int(detector.consecutive),
            "declared": bool(detector.declared)}


def supervision_section(*, time_s: float, period_s: float, instruction: str, reward_model: dict | None,
                        episode: dict[str, Any], tally: EpisodeTally | None,
                        loop: dict[str, Any]) -> dict[str, Any]:
    """The ``supervision`` section of ``agent_node``'s status (schema in ``docs/design.md``)."""
    out: dict[str, Any] = {"time": time_s, "period_s": period_s, "instruction": instruction,
                           "reward_model": reward_model, "episode": episode}
    out.update((tally or EpisodeTally()).summary())
    out["loop"] = loop
    return out


def intervention_windows(records: Sequence[EpisodeRecord], size: int = 10) -> list[dict[str, Any]]:
    """Per ``size`` consecutive episodes (the last window may be shorter): their range, success
    rate (as ``EpisodeTally``), mean takeovers and intervened steps per episode."""
    if size < 1:
        raise ValueError(f"intervention_windows: size must be at least 1 episode, got {size}")
    out = []
    for i in range(0, len(records), size):
        part = records[i:i + size]
        judged = [r for r in part if r.outcome in JUDGED]
        out.append({"first": i + 1, "last": i + len(part), "success": _rate(judged), "judged": len(judged),
                    "takeovers": _mean(r.takeovers or 0 for r in part),
                    "intervened_steps": _mean(r.intervened_steps or 0 for r in part)})
    return out
