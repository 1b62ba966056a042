"""``rill run CONFIG``, ``rill status RUN`` and ``rill worker FILE``: a whole job, placed and supervised.

``rill status`` also reads an ``agent_node``'s ``learner.run_dir`` (``actors/<id>/episodes.csv``
and ``status.json``): success, interventions and who ended the episodes, and its last status.

The job itself lives in ``agent.job``: its config, its preparation (worker files under
``<run>/workers/``), the workers' bodies, the supervision and the summary.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

DEFAULT_CONFIG = "config/sim_hopper.yaml"


def cmd_run(args: argparse.Namespace) -> int:
    from agent.job.supervise import run_job

    _, ok = run_job(Path(args.config), overwrite=args.overwrite)
    return 0 if ok else 1


def cmd_status(args: argparse.Namespace) -> int:
    from rich.console import Console

    from agent.console import worker_table
    from agent.job.summary import learner_state_line, learning_line, success_line
    from agent.metrics import train_run, train_status_lines
    from hal.scheduler import read_run_status

    run_dir = Path(args.run)
    console = Console(width=None if sys.stdout.isatty() else 200)
    if agent_node_run(run_dir):
        return agent_node_status(run_dir, console)
    if train_run(run_dir):
        for line in train_status_lines(run_dir):
            console.print(line)
        return 0
    learner_only = not (run_dir / "status.json").exists() and (run_dir / "metrics").is_dir()
    status = {} if learner_only else read_run_status(run_dir)  # a `rill learner` run dir: its learner
    if not learner_only:
        console.print(worker_table(status, title=f"rill status {run_dir}"))
    console.print(learning_line(run_dir))
    success = success_line(run_dir)
    if success is not None:  # the task reports success
        console.print(success)
    console.print(learner_state_line(run_dir))
    if status.get("time"):
        console.print(f"status written {time.time() - float(status['time']):.0f}s ago")
    return 0


def agent_node_run(run_dir: Path) -> bool:
    """An ``agent_node``'s ``learner.run_dir``: actors' episode logs or status files, and neither
    a ``rill run`` status nor a learner's metrics."""
    from agent.supervision_view import actor_dirs

    ours = not (run_dir / "status.json").exists() and not (run_dir / "metrics").is_dir()
    return ours and bool(actor_dirs(run_dir))


def agent_node_status(run_dir: Path, console) -> int:
    """Each actor's episodes and its last status (``agent.supervision_view.actor_report``)."""
    from agent.supervision_view import actor_dirs, actor_report

    for actor_dir in actor_dirs(run_dir):
        console.print(actor_report(actor_dir))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from agent.job.workers import run_worker

    return run_worker(Path(args.file))


def add_run_commands(sub) -> None:
    run = sub.add_parser("run", help="a whole run: learner + actors on robots, placed and supervised")
    run.add_argument("config", nargs="?", default=DEFAULT_CONFIG,
                     help=f"run config (default {DEFAULT_CONFIG})")
    run.add_argument("--overwrite", action="store_true",
                     help="replace a different run in the config's run_dir (the same run is continued)")
    run.set_defaults(func=cmd_run)
    st = sub.add_parser("status", help="the workers and learning of a running or finished run (or of an "
                        "agent_node's learner.run_dir: its episodes and last status; or of a rill train run)")
    st.add_argument("run", help="run directory (e.g. runs/sim-hopper, runs/ros-tabletop-agent)")
    st.set_defaults(func=cmd_status)
    worker = sub.add_parser("worker")  # started by the scheduler of rill run; not for people
    worker.add_argument("file", help="the worker's configuration, written by rill run")
    worker.set_defaults(func=cmd_worker)
