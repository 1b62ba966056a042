"""Learning-curve figures (raw episodic return against environment steps)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def step_window_average(steps: np.ndarray, values: np.ndarray, window: float) -> np.ndarray:
    """At each episode, the mean of the episodes that ended within the last ``window`` steps.

    Windows of steps, not of episodes: episode lengths vary a hundredfold while a policy learns,
    and an episode-count window would stretch across most of a run at the end.
    """
    starts = np.searchsorted(steps, steps - window, side="right")
    csum = np.concatenate([[0.0], np.cumsum(values)])
    ends = np.arange(1, len(values) + 1)
    return (csum[ends] - csum[starts]) / (ends - starts)


def plot_learning_curve(steps, returns, out: Path, title: str) -> Path:
    """Save a PNG of each episode's raw return and its running average over 5% of the steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, returns = np.asarray(steps), np.asarray(returns, np.float64)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(steps, returns, "o", ms=3, alpha=0.4, color="tab:blue", label="episode return")
    if len(returns):
        window = max(float(steps[-1]) / 20, 1.0)
        ax.plot(
            steps,
            step_window_average(steps, returns, window),
            color="tab:blue",
            lw=2,
            label=f"mean over the last {window:,.0f} steps",
        )
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episodic return (raw)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_pretraining(metrics: Path, out: Path, title: str) -> Path:
    """Save a PNG of a ``rill pretrain`` run from its ``metrics.jsonl``: training and validation loss
    against the step, and the success rate of each evaluation on a second axis. A step logged twice
    (a run killed after logging and resumed from an earlier checkpoint) counts its later row."""
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows: dict[int, dict] = {}
    for line in Path(metrics).read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            rows[int(row["step"])] = {**rows.get(int(row["step"]), {}), **row}
    steps = sorted(rows)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for key, label in (("loss", "training loss"), ("val_loss", "validation loss (held-out episodes)")):
        xs = [s for s in steps if key in rows[s]]
        ax.plot(xs, [rows[s][key] for s in xs], label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("action error (L1)")
    evals = [s for s in steps if rows[s].get("eval")]
    if evals:
        ax2 = ax.twinx()
        ax2.plot(evals, [100 * rows[s]["eval"]["success_rate"] for s in evals], "o-", color="tab:green",
                 label="success on held-out seeds")
        ax2.set_ylabel("success %")
        ax2.set_ylim(0, 100)
        ax2.legend(loc="upper right")
    ax.legend(loc="upper left")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
