"""Learning-curve figures (raw episodic return against environment steps)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    if len(values) == 0:
        return values
    window = max(1, min(window, len(values)))
    kernel = np.ones(window) / window
    head = np.cumsum(values[: window - 1]) / np.arange(1, window)
    return np.concatenate([head, np.convolve(values, kernel, mode="valid")])


def plot_learning_curve(steps, returns, out: Path, title: str, window: int = 20) -> Path:
    """Save a PNG of each episode's raw return and its moving average."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, returns = np.asarray(steps), np.asarray(returns, np.float64)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(steps, returns, ".", ms=2, alpha=0.35, color="tab:blue", label="episode return")
    if len(returns):
        ax.plot(steps, moving_average(returns, window), color="tab:blue", lw=2,
                label=f"moving average ({min(window, len(returns))} episodes)")
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
