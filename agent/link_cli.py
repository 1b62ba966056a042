"""``rill learner``, ``rill actor`` and ``rill keys``: the edge-cloud commands."""

from __future__ import annotations

import argparse
import logging
import signal
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("rill")


def _sigterm_as_interrupt() -> None:
    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)  # also when started with SIGINT ignored (shell &)


def _env_layout(env_id: str) -> tuple[int, dict]:
    """Observation width after stream-x preprocessing, and the action layout, of ``env_id``."""
    import gymnasium as gym

    from sim.envs import action_layout, make_env

    env = make_env(env_id)
    obs_dim = int(np.prod(env.observation_space.shape))
    box = isinstance(env.action_space, gym.spaces.Box)
    layout = action_layout(env)
    env.close()
    return obs_dim + (1 if box else 0), layout


def cmd_learner(args: argparse.Namespace) -> int:
    from rich.live import Live
    from rich.table import Table

    from agent.cli import _parse_overrides
    from learners.link.security import CurveServer
    from learners.service import LearnerConfig, LearnerService
    from learners.streamx import ConfigError

    if args.obs_dim:
        obs_dim = args.obs_dim
        layout = {"action_dim": args.action_dim} if args.action_dim else {"n_actions": args.n_actions}
    else:
        obs_dim, layout = _env_layout(args.env)
    curve = CurveServer(args.curve_secret, args.allow_keys) if args.curve_secret else None
    for flag, value in (("--keep-gb", args.keep_gb), ("--keep-days", args.keep_days)):
        if value is not None and not value > 0:
            raise ConfigError(f"{flag} must be > 0, got {value:g}")
    config = LearnerConfig(
        bind=args.bind,
        run_dir=Path(args.run),
        obs_dim=obs_dim,
        algo=args.algo,
        seed=args.seed,
        hyper=_parse_overrides(args.hp or []),
        publish_every_updates=args.publish_every,
        publish_every_ms=args.publish_ms,
        checkpoint_every_updates=args.checkpoint_every,
        importance_clip=None if args.no_importance else args.importance_clip,
        insecure=args.insecure,
        curve=curve,
        durability=args.durability,
        retention_bytes=None if args.keep_gb is None else int(args.keep_gb * 1e9),
        retention_age_s=None if args.keep_days is None else args.keep_days * 86400.0,
        **layout,
    )
    worker = None
    if args.worker:
        from hal.worker import WorkerContext

        worker = WorkerContext.from_env()
    else:
        _sigterm_as_interrupt()
    service = LearnerService(config).start()
    log.info("learner listening on %s; run directory %s", service.endpoint, config.run_dir)
    if worker is not None:
        with worker:
            try:
                while not worker.stop_requested.wait(0.2):
                    worker.beat(
                        updates=service.algo.updates,
                        actors=len(service.server.sessions),
                        episodes=service.updater.episodes,
                    )
            finally:
                service.stop()
        return 0

    def table() -> Table:
        u = service.updater
        t = Table(title=f"rill learner {service.endpoint}")
        for col in ("updates", "weights", "actors", "received", "rejected", "episodes", "return"):
            t.add_column(col, justify="right")
        rejected = sum(service.server.rejected.values())
        recent = f"{np.mean(u.recent[-10:]):.1f}" if u.recent else "-"
        t.add_row(
            str(service.algo.updates),
            str(u.version),
            str(len(service.server.sessions)),
            str(service.server.received),
            str(rejected),
            str(u.episodes),
            recent,
        )
        return t

    try:
        with Live(table(), refresh_per_second=2, transient=False) as live:
            while True:
                time.sleep(0.5)
                live.update(table())
    except KeyboardInterrupt:
        log.info("learner stopping: writing a checkpoint")
    finally:
        service.stop()
    return 0


def cmd_actor(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from agent.actor import ActorConfig, ActorRunner
    from agent.cli import _parse_overrides
    from learners.link.security import CurveClient

    curve = CurveClient(args.curve_secret, args.learner_key) if args.curve_secret else None
    if args.worker:
        return _actor_worker(args, curve)
    if not args.actor_id:
        raise SystemExit("rill actor: --actor-id is required (unless started by rill run)")
    config = ActorConfig(
        learner=args.learner,
        env=args.env,
        actor_id=args.actor_id,
        run_dir=Path(args.run),
        algo=args.algo,
        hyper=_parse_overrides(args.hp or []),
        seed=args.seed,
        steps=args.steps,
        control_hz=args.control_hz,
        curve=curve,
        insecure=args.insecure,
        durability=args.durability,
        max_lag=args.max_lag,
    )
    _sigterm_as_interrupt()
    runner = ActorRunner(config)
    columns = [
        TextColumn(f"[bold]{args.actor_id}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("ep {task.fields[ep]}"),
        TextColumn("acked {task.fields[acked]}"),
        TextColumn("backlog {task.fields[backlog]}"),
        TextColumn("weights v{task.fields[ver]}"),
        TimeElapsedColumn(),
    ]
    try:
        with Progress(*columns, refresh_per_second=2) as progress:
            task = progress.add_task("", total=args.steps, ep=0, acked=0, backlog=0, ver=-1)

            def update(r: ActorRunner) -> None:
                progress.update(
                    task,
                    completed=r.steps,
                    ep=r.episode,
                    acked=r.link.acked_seq,
                    backlog=r.link.backlog,
                    ver=r.version,
                )

            summary = runner.run(on_progress=update)
        log.info("actor %s done: %s", args.actor_id, summary)
    except KeyboardInterrupt:
        log.info("actor %s stopping; unacknowledged transitions stay in its spool", args.actor_id)
    finally:
        runner.close(drain_s=args.drain)
        if args.summary_json:
            import json

            Path(args.summary_json).write_text(json.dumps(runner.summary(), indent=1))
    return 0


def _vla_actor_worker(args: argparse.Namespace, curve, ctx, robot) -> int:
    """A scheduled actor whose robot is driven by a frozen VLA plus stream-x residual heads."""
    from agent.cli import _parse_overrides
    from agent.vla.actor import VLAActor, VLAActorConfig

    hidden = _parse_overrides(args.hp or []).get("hidden", (128, 128))
    with ctx.busy("loading the VLA"):
        actor = VLAActor(
            VLAActorConfig(
                learner=args.learner,
                actor_id=ctx.name,
                run_dir=ctx.run_dir,
                vla_path=args.vla,
                chunk_size=args.chunk_size,
                control_hz=args.control_hz,
                residual_scale=args.residual_scale,
                base_scale=args.base_scale,
                hidden=hidden,
                seed=args.seed,
                keep_images=args.keep_images,
                curve=curve,
                insecure=args.insecure,
                durability=args.durability,
            ),
            robot,
        )

    def progress() -> dict:
        summary = actor.summary()
        return {
            k: summary[k]
            for k in (
                "ticks",
                "seq",
                "episodes",
                "success_rate_recent",
                "return_recent",
                "acked_seq",
                "backlog",
                "weights_version",
            )
        }

    def should_stop() -> bool:
        if actor.ticks % 25 == 0:
            ctx.beat(**progress())
        return ctx.stop_requested.is_set()

    try:
        actor.run(ticks=args.steps, should_stop=should_stop)
    finally:
        actor.close(drain_s=args.drain if not ctx.stop_requested.is_set() else 2.0)
    ctx.beat(force=True, **progress())
    return 0


def _actor_worker(args: argparse.Namespace, curve) -> int:
    """``rill actor --worker``: started by the scheduler, driving the robot it leased for us."""
    from agent.actor import ActorConfig, ActorRunner
    from agent.actor.sources import RobotSource
    from agent.cli import _parse_overrides
    from hal.worker import WorkerContext

    ctx = WorkerContext.from_env()
    with ctx:
        robot = ctx.open_robot()
        if args.policy == "vla-residual":
            return _vla_actor_worker(args, curve, ctx, robot)
        config = ActorConfig(
            learner=args.learner,
            env=args.env,
            actor_id=ctx.name,
            run_dir=ctx.run_dir,
            algo=args.algo,
            hyper=_parse_overrides(args.hp or []),
            seed=args.seed,
            steps=args.steps,
            curve=curve,
            insecure=args.insecure,
            durability=args.durability,
            max_lag=args.max_lag,
        )
        runner = ActorRunner(config, RobotSource(robot, args.episode_steps))
        with ctx.busy("compiling the stream-x kernels"):
            runner.warm_up()

        def beat(r: ActorRunner) -> None:
            ctx.beat(
                steps=r.steps,
                seq=r.seq,
                acked=r.link.acked_seq,
                backlog=r.link.backlog,
                episodes=r.episode,
                weights=r.version,
            )

        try:
            runner.run(on_step=beat, should_stop=ctx.stop_requested.is_set)
        finally:
            runner.close(drain_s=args.drain if not ctx.stop_requested.is_set() else 2.0)
        # The last word to the scheduler: how far this actor's stream got, once drained.
        ctx.beat(
            force=True,
            steps=runner.steps,
            seq=runner.seq,
            acked=runner.link.acked_seq,
            backlog=runner.link.backlog,
            episodes=runner.episode,
            weights=runner.version,
        )
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from learners.link.security import generate_keys

    public, secret = generate_keys(Path(args.dir), args.name)
    log.info("wrote %s (share it) and %s (keep it private)", public, secret)
    return 0


def add_link_commands(sub) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--env", default="Hopper-v5", help="gymnasium id fixing observation/action shapes")
    common.add_argument("--algo", default="stream-ac", choices=["stream-ac", "stream-q", "stream-sarsa"])
    common.add_argument("--hp", action="append", metavar="KEY=VALUE", help="hyperparameter override")
    common.add_argument("--seed", type=int, default=0)
    common.add_argument("--run", default="runs/edge", help="run directory")
    common.add_argument(
        "--insecure", action="store_true", help="allow plain-text TCP beyond loopback (warned about loudly)"
    )
    common.add_argument("--durability", default="fsync", choices=["fsync", "os-buffered", "none"])

    lp = sub.add_parser("learner", parents=[common], help="serve actors: learn from their streams")
    lp.add_argument("--bind", default="tcp://127.0.0.1:5555")
    lp.add_argument("--obs-dim", type=int, help="observation width (instead of deriving it from --env)")
    lp.add_argument("--action-dim", type=int, help="continuous action width (with --obs-dim)")
    lp.add_argument("--n-actions", type=int, help="number of discrete actions (with --obs-dim)")
    lp.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # started by rill run
    lp.add_argument("--curve-secret", type=Path, help="learner's CurveZMQ .key_secret file")
    lp.add_argument("--allow-keys", type=Path, help="directory of allowed actors' public .key files")
    lp.add_argument("--publish-every", type=int, default=100, help="publish weights every N updates")
    lp.add_argument("--publish-ms", type=float, default=500.0, help="... or every T milliseconds")
    lp.add_argument("--checkpoint-every", type=int, default=20_000, help="checkpoint every N updates")
    lp.add_argument("--importance-clip", type=float, default=1.0)
    lp.add_argument("--no-importance", action="store_true", help="no importance weighting")
    lp.add_argument("--keep-gb", type=float, help="replay cache retention: delete the oldest consumed "
                    "segments past this size (default: keep everything)")
    lp.add_argument("--keep-days", type=float, help="... or older than this many days")
    lp.set_defaults(func=cmd_learner)

    ap = sub.add_parser("actor", parents=[common], help="act on an environment, stream to a learner")
    ap.add_argument("--learner", default="tcp://127.0.0.1:5555")
    ap.add_argument(
        "--actor-id", help="stable id of this actor (its sequence numbers continue across restarts)"
    )
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # started by rill run
    ap.add_argument("--episode-steps", type=int, help="robot episodes: the time-feature horizon")
    ap.add_argument(
        "--policy",
        default="streamx",
        choices=["streamx", "vla-residual"],
        help="streamx: a stream-x actor on the state; vla-residual: a frozen VLA plus stream-x "
        "residual heads (robots with a camera and instructions; with --worker)",
    )
    ap.add_argument("--vla", help="a saved VLA directory (default: the tiny VLA, built locally)")
    ap.add_argument("--chunk-size", type=int, default=8, help="actions per VLA chunk")
    ap.add_argument("--residual-scale", type=float, default=1.0, help="residual action scale")
    ap.add_argument("--base-scale", type=float, default=1.0, help="weight of the VLA's own actions")
    ap.add_argument("--keep-images", action="store_true", help="keep camera frames in the replay cache")
    ap.add_argument("--steps", type=int, help="stop after N steps (default: run until stopped)")
    ap.add_argument("--control-hz", type=float, help="pace the loop at this rate")
    ap.add_argument(
        "--max-lag",
        type=int,
        help="simulation only: wait while more than N transitions are not yet learned from",
    )
    ap.add_argument("--drain", type=float, default=10.0, help="seconds to wait for acks when done")
    ap.add_argument("--summary-json", type=Path, help="write the actor's final summary here")
    ap.add_argument("--curve-secret", type=Path, help="actor's CurveZMQ .key_secret file")
    ap.add_argument("--learner-key", type=Path, help="learner's public .key file")
    ap.set_defaults(func=cmd_actor)

    kp = sub.add_parser("keys", help="CurveZMQ key pairs")
    ksub = kp.add_subparsers(dest="keys_command", required=True)
    gen = ksub.add_parser("generate", help="write NAME.key and NAME.key_secret")
    gen.add_argument("dir", type=Path)
    gen.add_argument("--name", required=True)
    gen.set_defaults(func=cmd_keys)
