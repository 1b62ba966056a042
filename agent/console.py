"""rich progress and tables for the CLI."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

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
