"""One episode log per stream (``episodes.csv``) and the one reader of it.

Every actor kind writes the same columns: ``rill train`` (``metrics/episodes.csv``), a scheduled or
edge actor and the VLA actor (``actors/NAME/episodes.csv``). A column a stream has no value for is
left empty (``seq`` in ``rill train``, ``success`` on a task that does not report it). ``rill
status``, the run summary and plots, the benchmarks and the tests all read through
:func:`read_episodes` / :func:`read_run_episodes`; files written before a column existed read back
with that column empty.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

FIELDS = ["step", "seq", "episode", "return", "length", "success", "policy_version", "wall_time", "outcome",
          "ended_by", "takeovers", "intervened_steps", "task_success"]


@dataclass(frozen=True)
class EpisodeRecord:
    """One finished episode. ``step``: the stream's step (or tick) count when it ended."""

    step: int
    episode: int
    ret: float
    length: int
    wall_time: float
    seq: int | None = None
    success: bool | None = None
    policy_version: int | None = None
    outcome: str | None = None  # success | failure | timeout | stopped
    ended_by: str | None = None  # robot | operator | time_limit | node_stopped
    takeovers: int | None = None  # times a person took over from the policy
    intervened_steps: int | None = None  # steps a person drove
    # a simulator's own success, where something else (a reward model) judged ``success``
    task_success: bool | None = None


class EpisodeLog:
    """Appends one row per finished episode to ``path``, flushed as it is written.

    ``resume_step`` keeps only the rows of episodes that ended at or before it (a resumed run
    recomputes the rest); ``fresh`` starts an empty file. Otherwise rows are appended to what is
    there, in the columns of the existing header (files of older rill versions keep theirs).
    """

    def __init__(self, path: Path, *, resume_step: int | None = None, fresh: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if fresh:
            self.path.unlink(missing_ok=True)
        elif resume_step is not None and self.path.exists():
            kept = [r for r in _rows(self.path) if int(r["step"]) <= resume_step]
            fields = _header(self.path)
            with open(self.path, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=fields)
                writer.writeheader()
                writer.writerows(kept)
        new = not self.path.exists() or self.path.stat().st_size == 0
        if not new and set(FIELDS) - set(_header(self.path)):
            _upgrade(self.path)
        self.fields = FIELDS if new else _header(self.path)
        self._file = open(self.path, "a", newline="")  # noqa: SIM115  closed in close()
        self._writer = csv.DictWriter(self._file, fieldnames=self.fields, extrasaction="ignore")
        if new:
            self._writer.writeheader()
            self._file.flush()

    def append(self, record: EpisodeRecord) -> None:
        row = {
            "step": record.step,
            "seq": "" if record.seq is None else record.seq,
            "episode": record.episode,
            "return": record.ret,
            "length": record.length,
            "success": "" if record.success is None else int(record.success),
            "policy_version": "" if record.policy_version is None else record.policy_version,
            "wall_time": round(record.wall_time, 3),
            "outcome": record.outcome or "",
            "ended_by": record.ended_by or "",
            "takeovers": "" if record.takeovers is None else record.takeovers,
            "intervened_steps": "" if record.intervened_steps is None else record.intervened_steps,
            "task_success": "" if record.task_success is None else int(record.task_success),
        }
        self._writer.writerow(row)
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _header(path: Path) -> list[str]:
    with open(path, newline="") as f:
        return next(csv.reader(f), FIELDS)


def _upgrade(path: Path) -> None:
    """Rewrite an older ``episodes.csv`` with every column of ``FIELDS`` (plus any it had)."""
    old = _header(path)
    fields = FIELDS + [f for f in old if f not in FIELDS]
    rows = _rows(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _int(value: str | None) -> int | None:
    return None if value in (None, "") else int(value)


def read_episodes(path: Path) -> list[EpisodeRecord]:
    """The episodes of one ``episodes.csv``, in the order they ended."""
    out = []
    for r in _rows(Path(path)):
        success, task_success = r.get("success"), r.get("task_success")
        out.append(
            EpisodeRecord(
                step=int(r["step"]),
                episode=int(r["episode"]),
                ret=float(r["return"]),
                length=int(r["length"]),
                wall_time=float(r.get("wall_time") or math.nan),
                seq=_int(r.get("seq")),
                success=None if success in (None, "") else bool(int(float(success))),
                policy_version=_int(r.get("policy_version")),
                outcome=r.get("outcome") or None,
                ended_by=r.get("ended_by") or None,
                takeovers=_int(r.get("takeovers")),
                intervened_steps=_int(r.get("intervened_steps")),
                task_success=None if task_success in (None, "") else bool(int(float(task_success))),
            )
        )
    return out


def read_run_episodes(run_dir: Path) -> list[EpisodeRecord]:
    """Every actor's episodes of a ``rill run`` / edge run (``actors/*/episodes.csv``), ordered by
    the time they ended (each actor's clock starts with that actor)."""
    episodes: list[EpisodeRecord] = []
    for path in sorted((Path(run_dir) / "actors").glob("*/episodes.csv")):
        episodes += read_episodes(path)
    return sorted(episodes, key=lambda e: e.wall_time)


def returns(episodes: Iterable[EpisodeRecord]) -> list[float]:
    return [e.ret for e in episodes]
