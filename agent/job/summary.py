"""What a job shows: the learner's and the success lines in the live view, the end-of-run summary,
the curves.

Everything is read from the run directory (the actors' episode logs, the learner's statistics), so
``rill status`` shows a finished run the same way the live view showed it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from agent.actor.episodes import EpisodeRecord, read_run_episodes


def learning_line(run_dir: Path):
    """One line on the learner: updates, their rate, episodes, recent return, staleness."""
    from rich.text import Text

    stats = Path(run_dir) / "metrics" / "learner.csv"
    lines = stats.read_text().strip().splitlines() if stats.exists() else []
    if len(lines) < 2:
        return Text("learner: waiting for its first statistics")
    row = dict(zip(lines[0].split(","), lines[-1].split(",")))
    return Text(
        f"learner: {row['updates']} updates ({row['updates_per_s']}/s), {row['episodes']} episodes, "
        f"recent return {float(row['recent_return']):.1f}, staleness {row['staleness_mean']}"
    )


def learner_state_line(run_dir: Path, now: float | None = None):
    """One line on the learner's state (``metrics/learner_status.json``, written every 2 s): whether
    its cache can write (on a full disk it acknowledges nothing until space returns), whether
    learning runs, which actors are connected, refusals, and how old the report is. Red when the
    cache or learning is not ok; a missing or unreadable report is said as such."""
    import time

    from rich.text import Text

    path = Path(run_dir) / "metrics" / "learner_status.json"
    if not path.exists():
        return Text("learner state: no report yet (metrics/learner_status.json)")
    try:
        state = json.loads(path.read_text())
        cache, learning = str(state["cache"]), str(state["learning"])
        age = (time.time() if now is None else now) - float(state["time"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        return Text(f"learner state: unreadable {path}: {e}", style="red")
    rejected = sum(int(n) for n in state.get("rejected", {}).values())
    text = (f"learner state: cache {cache}; learning {learning}; actors "
            f"{', '.join(state.get('actors', [])) or 'none'} connected; {rejected} refused; "
            f"reported {age:.0f}s ago")
    return Text(text, style=None if cache == "ok" and learning == "ok" else "bold red")


@dataclass(frozen=True)
class SuccessSummary:
    """Success at the start of a run and what online learning made of it (rates in 0..1).

    ``start_rate``: over the first ``window`` episodes (all of them while there are fewer): for a
    pretrained policy, how it did before learning changed much. ``now_rate``: over the last
    ``window`` episodes after the first window (fewer while there are fewer; None before any).
    ``best_rate``/``worst_rate``: over every ``window`` consecutive episodes after the first window
    (``rolling_windows`` of them; None until one exists). ``worst_drop``: ``start_rate`` minus
    ``worst_rate``, 0 if success never fell below the start.
    """

    window: int
    episodes: int
    start_rate: float
    start_episodes: int
    now_rate: float | None = None
    now_episodes: int = 0
    best_rate: float | None = None
    worst_rate: float | None = None
    worst_drop: float | None = None
    rolling_windows: int = 0


def success_summary(episodes: Sequence[EpisodeRecord], window: int = 50) -> SuccessSummary | None:
    """``SuccessSummary`` of the ``episodes`` that report success (in the order they ended); None
    when none does."""
    if window < 1:
        raise ValueError(f"success_summary: window must be at least 1 episode, got {window}")
    success = np.array([float(e.success) for e in episodes if e.success is not None])
    if not success.size:
        return None
    start, later = success[:window], success[window:]
    summary = SuccessSummary(window, int(success.size), float(start.mean()), int(start.size))
    if later.size:
        now = later[-window:]
        summary = replace(summary, now_rate=float(now.mean()), now_episodes=int(now.size))
    if later.size >= window:
        sums = np.cumsum(np.concatenate([[0.0], later]))
        rolling = (sums[window:] - sums[:-window]) / window
        worst = float(rolling.min())
        summary = replace(summary, best_rate=float(rolling.max()), worst_rate=worst,
                          worst_drop=max(summary.start_rate - worst, 0.0), rolling_windows=int(rolling.size))
    return summary


def success_text(s: SuccessSummary) -> str:
    """``s`` in one line, e.g. ``success: start 84% (first 50 eps) -> now 91% (last 50); worst
    50-episode window 78% (drop 6 pts), best 95%; 1,204 episodes``."""
    if s.now_rate is None:
        return f"success: start {s.start_rate:.0%} (first {s.start_episodes} eps, so far)"
    text = f"success: start {s.start_rate:.0%} (first {s.start_episodes} eps) -> now {s.now_rate:.0%} "
    if s.worst_rate is None:
        return text + f"(next {s.now_episodes}); {s.episodes:,} episodes"
    drop = f"drop {s.worst_drop * 100:.0f} pts" if s.worst_drop else "never below the start"
    return text + (f"(last {s.now_episodes}); worst {s.window}-episode window {s.worst_rate:.0%} ({drop}), "
                   f"best {s.best_rate:.0%}; {s.episodes:,} episodes")


def success_line(run_dir: Path, window: int = 50):
    """The run's ``success_text`` as a rich ``Text``; None when its task reports no success."""
    from rich.text import Text

    summary = success_summary(read_run_episodes(run_dir), window)
    return None if summary is None else Text(success_text(summary))


def write_success_summary(run_dir: Path, summary: SuccessSummary) -> Path:
    """``summary`` as JSON in ``<run_dir>/metrics/success_summary.json`` (for the benchmarks)."""
    path = Path(run_dir) / "metrics" / "success_summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(summary), indent=1) + "\n")
    return path


def print_result(run_dir: Path) -> None:
    """Raw episodic returns at the start and at the end of the run, over all actors; where the task
    reports success, the ``success_text`` line, also written by ``write_success_summary``."""
    from rich.console import Console
    from rich.table import Table

    episodes = read_run_episodes(run_dir)
    console = Console()
    if len(episodes) >= 20:
        returns = [e.ret for e in episodes]
        table = Table(title="episodic return (raw), all actors")
        for col in ("episodes", "first 10: mean", "last 10: mean", "best"):
            table.add_column(col, justify="right")
        table.add_row(str(len(returns)), f"{np.mean(returns[:10]):.1f}", f"{np.mean(returns[-10:]):.1f}",
                      f"{max(returns):.1f}")
        console.print(table)
    summary = success_summary(episodes)
    if summary is not None:
        console.print(success_text(summary))
        write_success_summary(run_dir, summary)


def plot_run(run_dir: Path, title: str) -> Path | None:
    """The run's learning curve over every actor's episodes: raw returns (and success rate, when the
    task reports success) against the total environment steps of all actors, in order of ending."""
    from agent.plots import plot_learning_curve, step_window_average

    episodes = read_run_episodes(run_dir)
    if not episodes:
        return None
    steps = np.cumsum([e.length for e in episodes])
    out = Path(run_dir) / "learning_curve.png"
    plot_learning_curve(steps, [e.ret for e in episodes], out, title)
    if all(e.success is not None for e in episodes):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        success = np.array([float(e.success) for e in episodes])
        window = max(float(steps[-1]) / 20, 1.0)
        fig, ax = plt.subplots(figsize=(7, 3), dpi=110)
        ax.plot(steps, step_window_average(steps, success, window), color="tab:green", lw=2)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("environment steps")
        ax.set_ylabel(f"success rate (last {window:,.0f} steps)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(Path(run_dir) / "success_rate.png")
        plt.close(fig)
    return out
