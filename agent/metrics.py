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



def train_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` was written by ``rill train`` (its ``run.json`` and progress log)."""
    return (Path(run_dir) / "run.json").is_file() and (Path(run_dir) / "metrics" / "progress.csv").is_file()


def train_status_lines(run_dir: Path) -> list[str]:
    """What ``rill status`` says of a ``rill train`` run: how far it is, its recent return, whether it
    finished (``summary.json``), its newest checkpoint."""
    import json

    from hal.config import read_yaml_mapping
    from learners.checkpoint import PREFIX

    run_dir = Path(run_dir)
    stored = run_dir / "config.yaml"
    config = read_yaml_mapping(stored, "the run's config") if stored.is_file() else {}
    with open(run_dir / "metrics" / "progress.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    env, algo, seed = (config.get(k, "?") for k in ("env", "algo", "seed"))
    head = f"rill train {env} with {algo}, seed {seed}"
    summary, goal = run_dir / "summary.json", config.get("steps")
    done = json.loads(summary.read_text()) if summary.is_file() else {}
    if done and not (isinstance(goal, int) and done.get("steps", 0) < goal):  # (else: resumed to go further)
        # finished: the summary has the last step, which the progress rows may not
        lines = [f"{head}: finished at step {done.get('steps')} of {goal}, {done.get('episodes')} episodes, "
                 f"mean return of the last 100 episodes {done.get('final_return_mean_last_100')} (last 10: "
                 f"{done.get('final_return_mean_last_10')}), {done.get('steps_per_s')} steps/s"]
    elif not rows:
        lines = [f"{head}: no progress logged yet"]
    else:
        last = rows[-1]
        step = int(last["step"])
        share = f" of {goal} ({100.0 * step / goal:.0f}%)" if isinstance(goal, int) and goal else ""
        lines = [f"{head}: step {last['step']}{share}, {last['episodes']} episodes, recent return "
                 f"{float(last['recent_return']):.1f}, {float(last['steps_per_s']):.0f} steps/s"]
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").glob(f"{PREFIX}*") if p.is_dir())
    lines.append(f"newest checkpoint: {checkpoints[-1] if checkpoints else 'none yet'}")
    return lines
