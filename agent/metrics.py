"""Run metrics: per-episode and periodic scalars to CSV and TensorBoard event files."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from agent.actor.episodes import EpisodeLog, EpisodeRecord

log = logging.getLogger(__name__)

PROGRESS_FIELDS = [
    "step",
    "wall_time",
    "steps_per_s",
    "episodes",
    "recent_return",
    "nonfinite_skipped",
    "overshoots",
    "mean_abs_delta",
    "mean_step_size",
]


def _truncate_csv(path: Path, fields: list[str], after_step: int) -> None:
    """Drop rows logged after ``after_step``: a resumed run recomputes them."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["step"]) <= after_step]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


class RunMetrics:
    """Appends episodes to ``metrics/episodes.csv`` and progress to ``metrics/progress.csv``.

    Both also go to TensorBoard under ``metrics/tb``. ``resume_step`` trims anything a crashed run
    logged after its last checkpoint, so the files read as one uninterrupted run.
    """

    def __init__(self, run_dir: Path, resume_step: int | None = None) -> None:
        self.dir = Path(run_dir) / "metrics"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.episodes_path = self.dir / "episodes.csv"
        self.progress_path = self.dir / "progress.csv"
        if resume_step is not None:
            _truncate_csv(self.progress_path, PROGRESS_FIELDS, resume_step)
        else:
            self.progress_path.unlink(missing_ok=True)
        self._episodes = EpisodeLog(self.episodes_path, resume_step=resume_step, fresh=resume_step is None)
        self._progress = self._open(self.progress_path, PROGRESS_FIELDS)
        self._tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.dir / "tb"), purge_step=resume_step)
        except ImportError:  # tensorboard is a dependency, but a stripped install still trains
            log.warning("tensorboard is not installed; metrics go to CSV only")

    @staticmethod
    def _open(path: Path, fields: list[str]):
        new = not path.exists()
        f = open(path, "a", newline="")  # noqa: SIM115  closed in close()
        writer = csv.DictWriter(f, fieldnames=fields)
        if new:
            writer.writeheader()
        return f, writer

    def episode(self, step: int, episode: int, ret: float, length: int, wall_time: float,
                success: bool | None = None) -> None:
        self._episodes.append(EpisodeRecord(step, episode, ret, length, wall_time, success=success))
        if self._tb:
            self._tb.add_scalar("episode/return", ret, step)
            self._tb.add_scalar("episode/length", length, step)
            if success is not None:
                self._tb.add_scalar("episode/success", float(success), step)

    def progress(self, row: dict[str, float]) -> None:
        self._progress[1].writerow(row)
        if self._tb:
            for key, value in row.items():
                if key != "step" and value == value:  # skip NaN
                    self._tb.add_scalar(f"train/{key}", value, row["step"])

    def flush(self) -> None:
        self._progress[0].flush()
        if self._tb:
            self._tb.flush()

    def close(self) -> None:
        self.flush()
        self._episodes.close()
        self._progress[0].close()
        if self._tb:
            self._tb.close()

