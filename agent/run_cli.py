"""``rill run CONFIG`` and ``rill status RUN``: a whole run placed and supervised by the HAL scheduler.

A run config is a HAL run spec (robots, learner, actors, restart, heartbeat; see
``hal.runspec``) plus a ``train:`` section for the learning itself. ``rill run`` fills in the
learner's and actors' commands, asks the scheduler for placements (an infeasible spec is refused
before anything starts), starts the workers, shows a live table, and when every actor has taken
its steps stops the learner (which writes its checkpoint) and draws the learning curve.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger("rill")
DEFAULT_CONFIG = "config/sim_hopper.yaml"
DRAIN_S = 60.0  # how long the learner may take to learn from what is still in its cache


@dataclass
class RunTrainConfig:
    """The ``train:`` section of a run config."""

    algo: str = "stream-ac"
    seed: int = 0
    steps_per_actor: int = 100_000
    hyper: dict[str, Any] = field(default_factory=dict)
    max_lag: int | None = 64  # simulated robots wait for the learner beyond this; None: never
    episode_steps: int | None = None  # time-feature horizon; default: the simulator's time limit
    policy: str = "streamx"  # streamx | vla-residual
    vla: str | None = None  # vla-residual: a saved VLA directory; None: the tiny VLA built locally
    chunk_size: int = 8  # vla-residual: actions per chunk (one learning step per chunk)
    residual_scale: float = 1.0
    base_scale: float = 1.0
    control_hz: float | None = None  # vla-residual: loop rate (a simulated robot may run faster)
    keep_images: bool = False

    def __post_init__(self) -> None:
        from agent.loop.config import MIN_CHUNK
        from learners.streamx import ConfigError, algorithm_config

        if self.policy not in ("streamx", "vla-residual"):
            raise ConfigError(f"train.policy must be streamx or vla-residual, got {self.policy!r}")
        if type(self.steps_per_actor) is not int or self.steps_per_actor <= 0:
            raise ConfigError(
                f"train.steps_per_actor must be a positive integer, got {self.steps_per_actor!r}"
            )
        if type(self.chunk_size) is not int or self.chunk_size < MIN_CHUNK:
            raise ConfigError(f"train.chunk_size must be an integer >= {MIN_CHUNK}, got {self.chunk_size!r}: "
                              "a chunk's first action is due while it is being computed")
        algorithm_config(self.algo, self.hyper)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunTrainConfig:
        from learners.streamx.config import reject_unknown_keys

        reject_unknown_keys("train", values, cls)
        return cls(**values)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _robot_shapes(spec) -> tuple[int, int, int | None]:
    """``(state dim, action dim, episode steps)`` shared by the robots the actors will drive."""
    import hal.registry as registry
    from hal.errors import HalError

    types = {a.robot_type for a in spec.actors if a.robot_type} | {
        r.type for r in spec.robots if any(a.robot == r.name for a in spec.actors)
    }
    shapes = set()
    for robot in spec.robots:
        if robot.type not in types:
            continue
        instance = registry.make_robot(robot)
        obs, act = instance.observation_spec, instance.action_spec
        if "state" not in obs:
            raise HalError(f"robot {robot.name!r} ({robot.type}) has no 'state' observation to learn from")
        horizon = getattr(instance, "episode_steps", None)
        if horizon is None and "env_id" in robot.params:
            from sim.envs import make_env, time_limit

            horizon = time_limit(make_env(robot.params["env_id"]))
        shapes.add((int(obs["state"].shape[0]), act.dim, horizon))
    if len(shapes) != 1:
        raise HalError(f"the actors' robots must share one observation/action shape, found {sorted(shapes)}")
    return shapes.pop()


def _vla_feature_dim(train: RunTrainConfig, state_dim: int, action_dim: int) -> int:
    """What the residual heads learn from: the VLA's pooled features plus the state."""
    from policies.vla import VLAPolicy, load_vla, tiny_vla

    model = (
        load_vla(train.vla) if train.vla else tiny_vla(state_dim, action_dim, train.chunk_size, train.seed)
    )
    return int(VLAPolicy(model).feature_dim)


def prepare(path: Path) -> tuple[Any, RunTrainConfig]:
    import sim.robots  # noqa: F401  registers the simulated robot types
    from hal.runspec import RunSpec

    raw = yaml.safe_load(Path(path).read_text()) or {}
    train = RunTrainConfig.from_dict(raw.get("train") or {})
    spec = RunSpec.from_yaml(path, ignore=("train",))
    state_dim, action_dim, horizon = _robot_shapes(spec)
    episode_steps = train.episode_steps or horizon or 1000
    obs_dim = state_dim + 1  # stream-x on the state, plus the time feature
    extra: list[str] = []
    if train.policy == "vla-residual":
        obs_dim = _vla_feature_dim(train, state_dim, action_dim)
        extra = [
            "--policy",
            "vla-residual",
            "--chunk-size",
            str(train.chunk_size),
            "--residual-scale",
            str(train.residual_scale),
            "--base-scale",
            str(train.base_scale),
        ]
        extra += ["--vla", train.vla] if train.vla else []
        extra += ["--control-hz", str(train.control_hz)] if train.control_hz else []
        extra += ["--keep-images"] if train.keep_images else []
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    py = [sys.executable, "-m", "agent.cli"]
    hp = [a for k, v in train.hyper.items() for a in ("--hp", f"{k}={yaml.safe_dump(v).strip()}")]
    common = ["--algo", train.algo, "--seed", str(train.seed), *hp]
    spec.learner.command = [
        *py,
        "learner",
        "--worker",
        "--bind",
        endpoint,
        "--run",
        "{run_dir}",
        "--obs-dim",
        str(obs_dim),
        "--action-dim",
        str(action_dim),
        *common,
    ]
    for actors in spec.actors:
        lag = ["--max-lag", str(train.max_lag)] if train.max_lag is not None else []
        actors.command = [
            *py,
            "actor",
            "--worker",
            "--learner",
            endpoint,
            "--steps",
            str(train.steps_per_actor),
            "--episode-steps",
            str(episode_steps),
            *lag,
            *common,
            *extra,
        ]
    return spec, train


def cmd_run(args: argparse.Namespace) -> int:
    from rich.console import Group
    from rich.live import Live

    from agent.hal_cli import worker_table
    from hal.scheduler import DONE, Scheduler

    spec, train = prepare(Path(args.config))
    run_dir = spec.directory
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(Path(args.config).read_text())
    scheduler = Scheduler(spec)
    placement = scheduler.place()  # refuses an infeasible spec before anything starts
    for note in getattr(placement, "notes", []):
        log.info("%s", note)

    def view():
        return Group(worker_table(scheduler.status(), title=f"rill run {spec.name}"), _learning_line(run_dir))

    finished_at = None

    def on_poll(s) -> None:
        nonlocal finished_at
        live.update(view())
        status = s.status()
        actors = [w for w in status if w.role == "actor"]
        if not actors or not all(w.state == DONE for w in actors):
            return
        if finished_at is None:
            finished_at = time.monotonic()
            log.info(
                "every actor finished its %d steps; the learner catches up, then stops", train.steps_per_actor
            )
        sent = sum(int(w.progress.get("seq", 0)) for w in actors)
        learned = max((int(w.progress.get("updates", 0)) for w in status if w.role == "learner"), default=0)
        if learned >= sent or time.monotonic() - finished_at > DRAIN_S:
            s.stop()

    with scheduler, Live(view(), refresh_per_second=2) as live:
        scheduler.start(placement)
        try:
            scheduler.run(on_poll=on_poll)
        except KeyboardInterrupt:
            log.warning(
                "interrupted: stopping every worker (actors keep their spools, the learner checkpoints)"
            )
            scheduler.stop()
    png = plot_run(run_dir, f"rill run {spec.name}")
    _print_result(run_dir)
    log.info("run directory %s%s", run_dir, f"; learning curve {png}" if png else "")
    return 0


def _print_result(run_dir: Path) -> None:
    """Raw episodic returns at the start and at the end of the run, over all actors."""
    import csv

    from rich.console import Console
    from rich.table import Table

    returns = []
    for path in sorted((run_dir / "actors").glob("*/episodes.csv")):
        with open(path, newline="") as f:
            returns += [(float(r["wall_time"]), float(r["return"])) for r in csv.DictReader(f)]
    if len(returns) < 20:
        return
    returns = [r for _, r in sorted(returns)]
    successes = []
    for path in sorted((run_dir / "actors").glob("*/episodes.csv")):
        with open(path, newline="") as f:
            successes += [
                (float(r["wall_time"]), float(r["success"])) for r in csv.DictReader(f) if r.get("success")
            ]
    table = Table(title="episodic return (raw), all actors")
    for col in ("episodes", "first 10: mean", "last 10: mean", "best"):
        table.add_column(col, justify="right")
    table.add_row(
        str(len(returns)),
        f"{sum(returns[:10]) / 10:.1f}",
        f"{sum(returns[-10:]) / 10:.1f}",
        f"{max(returns):.1f}",
    )
    Console().print(table)
    if len(successes) >= 100:
        rates = [x for _, x in sorted(successes)]
        first, last = sum(rates[:50]) / 50, sum(rates[-50:]) / 50
        Console().print(f"success rate: first 50 episodes {first:.0%}, last 50 episodes {last:.0%}")


def _learning_line(run_dir: Path):
    from rich.text import Text

    stats = run_dir / "metrics" / "learner.csv"
    lines = stats.read_text().strip().splitlines() if stats.exists() else []
    if len(lines) < 2:
        return Text("learner: waiting for its first statistics")
    row = dict(zip(lines[0].split(","), lines[-1].split(",")))
    return Text(
        f"learner: {row['updates']} updates ({row['updates_per_s']}/s), {row['episodes']} episodes, "
        f"recent return {float(row['recent_return']):.1f}, staleness {row['staleness_mean']}"
    )


def plot_run(run_dir: Path, title: str) -> Path | None:
    """The run's learning curve over every actor's episodes: raw returns (and success rate, when the
    task reports success) against the total environment steps of all actors, in order of ending."""
    import csv

    import numpy as np

    from agent.plots import plot_learning_curve, step_window_average

    episodes = []
    for path in sorted((run_dir / "actors").glob("*/episodes.csv")):
        with open(path, newline="") as f:
            episodes += [
                (
                    float(r["wall_time"]),
                    int(r["length"]),
                    float(r["return"]),
                    float(r["success"]) if r.get("success") not in (None, "") else None,
                )
                for r in csv.DictReader(f)
            ]
    if not episodes:
        return None
    episodes.sort()
    steps = np.cumsum([n for _, n, _, _ in episodes])
    out = run_dir / "learning_curve.png"
    plot_learning_curve(steps, [r for _, _, r, _ in episodes], out, title)
    if all(s is not None for _, _, _, s in episodes):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        success = np.array([s for _, _, _, s in episodes])
        window = max(float(steps[-1]) / 20, 1.0)
        fig, ax = plt.subplots(figsize=(7, 3), dpi=110)
        ax.plot(steps, step_window_average(steps, success, window), color="tab:green", lw=2)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("environment steps")
        ax.set_ylabel(f"success rate (last {window:,.0f} steps)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(run_dir / "success_rate.png")
        plt.close(fig)
    return out


def cmd_status(args: argparse.Namespace) -> int:
    from rich.console import Console

    from agent.hal_cli import worker_table
    from hal.scheduler import read_run_status

    run_dir = Path(args.run)
    status = read_run_status(run_dir)
    console = Console(width=None if sys.stdout.isatty() else 200)
    console.print(worker_table(status, title=f"rill status {run_dir}"))
    console.print(_learning_line(run_dir))
    if status.get("time"):
        console.print(f"status written {time.time() - float(status['time']):.0f}s ago")
    return 0


def add_run_commands(sub) -> None:
    run = sub.add_parser("run", help="a whole run: learner + actors on robots, placed and supervised")
    run.add_argument(
        "config", nargs="?", default=DEFAULT_CONFIG, help=f"run config (default {DEFAULT_CONFIG})"
    )
    run.set_defaults(func=cmd_run)
    st = sub.add_parser("status", help="the workers and learning of a running or finished run")
    st.add_argument("run", help="run directory (e.g. runs/sim-hopper)")
    st.set_defaults(func=cmd_status)
