"""What a job shows: the learner's line in the live view, the end-of-run table, the curves.

Everything is read from the run directory (the actors' episode logs, the learner's statistics), so
``rill status`` shows a finished run the same way the live view showed it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from agent.actor.episodes import read_run_episodes


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
    import json
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


def print_result(run_dir: Path) -> None:
    """Raw episodic returns (and success rates, where the task reports them) at the start and at the
    end of the run, over all actors."""
    from rich.console import Console
    from rich.table import Table

    episodes = read_run_episodes(run_dir)
    if len(episodes) < 20:
        return
    returns = [e.ret for e in episodes]
    table = Table(title="episodic return (raw), all actors")
    for col in ("episodes", "first 10: mean", "last 10: mean", "best"):
        table.add_column(col, justify="right")
    table.add_row(str(len(returns)), f"{np.mean(returns[:10]):.1f}", f"{np.mean(returns[-10:]):.1f}",
                  f"{max(returns):.1f}")
    console = Console()
    console.print(table)
    successes = [float(e.success) for e in episodes if e.success is not None]
    if len(successes) >= 100:
        console.print(f"success rate: first 50 episodes {np.mean(successes[:50]):.0%}, "
                      f"last 50 episodes {np.mean(successes[-50:]):.0%}")


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
