"""Run metrics: per-episode and periodic scalars to CSV and TensorBoard event files."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

log = logging.getLogger(__name__)

EPISODE_FIELDS = ["step", "episode", "return", "length", "wall_time"]
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
            _truncate_csv(self.episodes_path, EPISODE_FIELDS, resume_step)
            _truncate_csv(self.progress_path, PROGRESS_FIELDS, resume_step)
        else:
            for p in (self.episodes_path, self.progress_path):
                p.unlink(missing_ok=True)
        self._episodes = self._open(self.episodes_path, EPISODE_FIELDS)
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

    def episode(self, step: int, episode: int, ret: float, length: int, wall_time: float) -> None:
        self._episodes[1].writerow(
            {
                "step": step,
                "episode": episode,
                "return": ret,
                "length": length,
                "wall_time": round(wall_time, 3),
            }
        )
        if self._tb:
            self._tb.add_scalar("episode/return", ret, step)
            self._tb.add_scalar("episode/length", length, step)

    def progress(self, row: dict[str, float]) -> None:
        self._progress[1].writerow(row)
        if self._tb:
            for key, value in row.items():
                if key != "step" and value == value:  # skip NaN
                    self._tb.add_scalar(f"train/{key}", value, row["step"])

    def flush(self) -> None:
        for f, _ in (self._episodes, self._progress):
            f.flush()
        if self._tb:
            self._tb.flush()

    def close(self) -> None:
        self.flush()
        for f, _ in (self._episodes, self._progress):
            f.close()
        if self._tb:
            self._tb.close()


def read_episodes(path: Path) -> tuple[list[int], list[float]]:
    """``(steps, returns)`` from an ``episodes.csv``."""
    steps, returns = [], []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            steps.append(int(row["step"]))
            returns.append(float(row["return"]))
    return steps, returns
