"""rich views for the CLI: progress bars, the run's worker table, the HAL inventory."""

from __future__ import annotations

import math
import numbers
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from hal.supervised import DONE, STOPPED

console = Console()


def train_with_progress(trainer) -> dict:
    """Run ``trainer`` under a progress bar; print the summary and where the results are."""
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>6.0f} steps/s"),
        TextColumn("ep {task.fields[episodes]}"),
        TextColumn("return {task.fields[ret]:>8.1f}"),
        TextColumn("skipped {task.fields[skipped]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    cfg = trainer.config
    with Progress(*columns, console=console, refresh_per_second=4) as progress:
        task = progress.add_task(
            f"{cfg.algo} {cfg.env}",
            total=cfg.steps,
            completed=trainer.step,
            rate=0.0,
            episodes=trainer.episode,
            ret=float("nan"),
            skipped=0,
        )

        def update(tr, rate: float) -> None:
            progress.update(
                task,
                completed=tr.step,
                rate=rate,
                episodes=tr.episode,
                ret=tr.recent_return(),
                skipped=tr.nonfinite,
            )

        summary = trainer.run(update)
        update(trainer, summary["steps_per_s"])
    table = Table(title=f"rill train: {cfg.run}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        table.add_row(key, f"{value:.1f}" if isinstance(value, float) else str(value))
    console.print(table)
    console.print(
        f"learning curve: {trainer.run_dir / 'learning_curve.png'}\n"
        f"metrics: {trainer.run_dir / 'metrics'} (CSV, TensorBoard)"
    )
    return summary


def show_eval(run, result, video) -> None:
    table = Table(title=f"rill eval: {run} ({result.checkpoint})")
    table.add_column("episode", justify="right")
    table.add_column("return", justify="right")
    table.add_column("length", justify="right")
    for i, (ret, n) in enumerate(zip(result.returns, result.lengths)):
        table.add_row(str(i), f"{ret:.1f}", str(n))
    table.add_row("mean ± std", f"{result.mean:.1f} ± {result.std:.1f}", "")
    console.print(table)
    if video:
        console.print(f"video: {video}")


def render_inventory(report: dict[str, Any], console: Console) -> None:
    hosts = Table(title="Hosts")
    for col in ("host", "CPUs", "CPU use", "memory free / total", "GPUs"):
        hosts.add_column(col, justify="left" if col == "host" else "right")
    for h in report["hosts"]:
        use = "" if h.get("cpu_percent") is None else f"{h['cpu_percent']:.0f}%"
        hosts.add_row(
            h["name"],
            f"{h['cpus']:g}",
            use,
            f"{h['memory_available_gb']:.1f} / {h['memory_total_gb']:.1f} GB",
            str(len(h["accelerators"])),
        )
    console.print(hosts)

    gpus = Table(title="Accelerators")
    for col in ("host", "device", "name", "memory free / total"):
        gpus.add_column(col)
    for h in report["hosts"]:
        for a in h["accelerators"]:
            gpus.add_row(
                h["name"],
                f"{a['kind']}:{a['index']}",
                a["name"],
                f"{a['memory_free_gb']:.1f} / {a['memory_total_gb']:.1f} GB",
            )
    if not gpus.rows:
        gpus.add_row("[dim]none[/dim]", "", "[dim]no CUDA GPU found; learners run on CPU[/dim]", "")
    console.print(gpus)

    robots = Table(title="Robots")
    for col in ("robot", "type", "host", "from", "health", "lease holder", "expires in"):
        robots.add_column(col, no_wrap=col in ("robot", "type", "health"))
    for r in report["robots"]:
        style = {True: "green", False: "red"}.get(r["ok"], "yellow")
        health = f"[{style}]{r['health']}[/{style}]"
        if r["detail"] and r["ok"] is not True:  # say why only when something is wrong
            health += f"\n[dim]{r['detail']}[/dim]"
        remaining = "" if r["lease_remaining_s"] is None else f"{r['lease_remaining_s']:.1f} s"
        robots.add_row(
            r["name"], r["type"], r["host"], r["source"], health, r["holder"] or "[dim]free[/dim]", remaining
        )
    console.print(robots)


# How a worker's state is coloured in the worker table.
STATE_COLORS = {
    "running": "green",
    "starting": "cyan",
    "backoff": "yellow",
    "stopping": "yellow",
    "failed": "red",
    "done": "blue",
    "stopped": "dim",
}
# Short labels for the long progress keys of the actors (the values are over their last 20 episodes).
PROGRESS_LABELS = {
    "success_rate_recent": "success",
    "return_recent": "return",
    "weights_version": "weights",
    "acked_seq": "acked",
}


def compact_value(value: Any, key: str = "") -> str:
    """``value`` of progress ``key`` in few characters: integers with thousands separators, a success
    rate as a percentage, other floats to 3 significant digits, NaN and None as ``-``."""
    if value is None or isinstance(value, (bool, str)):
        return "-" if value is None else str(value)
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if not isinstance(value, numbers.Real):
        return str(value)
    value = float(value)
    if math.isnan(value):
        return "-"
    if "success" in key and 0.0 <= value <= 1.0:
        return f"{value:.0%}"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def progress_text(progress: dict[str, Any] | None) -> str:
    """A worker's progress as ``key=value`` pairs separated by spaces (so a narrow cell wraps between
    pairs, never inside one)."""
    pairs = (f"{PROGRESS_LABELS.get(k, k)}={compact_value(v, k)}" for k, v in (progress or {}).items())
    return "  ".join(pairs)


def heartbeat_age(age_s: float | None) -> str:
    """How long ago a worker last beat: ``0.4s``, ``12s``, ``5m``, ``2.5h``; ``-`` before its first."""
    if age_s is None:
        return "-"
    if age_s < 10:
        return f"{age_s:.1f}s"
    if age_s < 120:
        return f"{age_s:.0f}s"
    return f"{age_s / 60:.0f}m" if age_s < 7200 else f"{age_s / 3600:.1f}h"


class WorkerTable:
    """A run's workers, readable at any terminal width (a rich renderable).

    One table with a row per worker (worker, state, robot and device on their host, restarts/moves,
    heartbeat, progress and detail) where every worker's progress fits on one line; otherwise, as in
    an 80-column terminal, those first columns as a compact table and under it a second table with
    each worker's progress and detail, wrapped between ``key=value`` pairs. Names, states and
    progress values are never shortened: a cell too narrow wraps or folds.
    """

    def __init__(self, workers: list[dict[str, Any]], title: str) -> None:
        self.workers = workers
        self.title = title

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        compact = self._table(with_progress=False)
        longest = max((len(progress_text(w.get("progress"))) for w in self.workers), default=0)
        if Measurement.get(console, options, compact).maximum + longest + 3 <= options.max_width:
            yield self._table(with_progress=True)
        else:
            yield compact
            yield self._progress_table()

    def _table(self, with_progress: bool) -> Table:
        table = Table(title=self.title, title_justify="left")
        table.add_column("worker", no_wrap=True)  # other columns wrap first
        table.add_column("state", no_wrap=True)
        table.add_column("robot · device @ host", overflow="fold")
        table.add_column(Text("restarts\n/moves"), justify="right")
        table.add_column("heartbeat", justify="right", overflow="fold")
        if with_progress:
            table.add_column("progress · detail", overflow="fold")
        for w in self.workers:
            # a worker that ended well beats no more; a failed one's last beat says when it was last heard
            beat = "-" if w["state"] in (DONE, STOPPED) else heartbeat_age(w.get("heartbeat_age_s"))
            row = [w["name"], _state(w["state"]), _placement(w), f"{w['restarts']}/{w['moves']}", beat]
            table.add_row(*row, *([_progress_cell(w)] if with_progress else []))
        return table

    def _progress_table(self) -> Table:
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        table.add_column("worker", overflow="fold")
        table.add_column("progress · detail", overflow="fold")
        for w in self.workers:
            table.add_row(w["name"], _progress_cell(w))
        return table


def _progress_cell(w: dict[str, Any]) -> Text:
    """The worker's progress and, on a line of its own, its detail (red for a failed worker)."""
    cell = Text(progress_text(w.get("progress")) or "-")
    if w.get("detail"):
        cell.append("\n" + w["detail"], style="red" if w["state"] == "failed" else "dim")
    return cell


def _state(state: str) -> str:
    color = STATE_COLORS.get(state, "white")
    return f"[{color}]{state}[/{color}]"


def _placement(w: dict[str, Any]) -> str:
    where = f"{w['device']} @ {w['host']}"
    return f"{w['robot']} · {where}" if w.get("robot") else where


def worker_table(status: dict[str, Any] | list, title: str = "Workers") -> WorkerTable:
    """A run's workers: ``status`` is a run's ``status.json`` dict or ``Scheduler.status()``."""
    from dataclasses import asdict, is_dataclass

    workers = (
        status.get("workers", [])
        if isinstance(status, dict)
        else [asdict(w) if is_dataclass(w) else w for w in status]
    )
    return WorkerTable(workers, title)


def learner_table(service) -> Table:
    """One row on an edge learner: updates, weights version, actors, frames received and refused."""
    import numpy as np

    u = service.updater
    t = Table(title=f"rill learner {service.endpoint}")
    for col in ("updates", "weights", "actors", "received", "rejected", "episodes", "return"):
        t.add_column(col, justify="right")
    recent = f"{np.mean(u.recent[-10:]):.1f}" if u.recent else "-"
    t.add_row(str(service.algo.updates), str(u.version), str(len(service.server.sessions)),
              str(service.server.received), str(sum(service.server.rejected.values())), str(u.episodes),
              recent)
    return t


def serve_with_table(service) -> None:
    """Show ``learner_table`` live until Ctrl-C (or SIGTERM, turned into one)."""
    import time

    from rich.live import Live

    with Live(learner_table(service), refresh_per_second=2, transient=False) as live:
        while True:
            time.sleep(0.5)
            live.update(learner_table(service))


def act_with_progress(runner, total: int | None) -> dict:
    """Run an edge actor under a progress bar: steps, episodes, acknowledged, backlog, weights; with a
    person in the loop (``--keyboard``) also who drives, the episode's phase, its takeovers and
    intervened steps so far, and the last outcome."""
    columns = [
        TextColumn(f"[bold]{runner.config.actor_id}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("ep {task.fields[ep]}"),
        TextColumn("acked {task.fields[acked]}"),
        TextColumn("backlog {task.fields[backlog]}"),
        TextColumn("weights v{task.fields[ver]}"),
        TimeElapsedColumn(),
    ]
    operated = getattr(runner, "operated", None)
    if operated is not None:  # --keyboard: who drives, the episode and its interventions
        columns.insert(3, TextColumn("{task.fields[op]}"))
    with Progress(*columns, console=console, refresh_per_second=2) as progress:
        task = progress.add_task("", total=total, ep=0, acked=0, backlog=0, ver=-1, op="")

        def update(r) -> None:
            progress.update(task, completed=r.steps, ep=r.episode, acked=r.link.acked_seq,
                            backlog=r.link.backlog, ver=r.version, op=operated.status() if operated else "")

        if operated is not None:  # each step: the operator watches the line while waiting, too
            return runner.run(on_step=update)
        return runner.run(on_progress=update)
