"""``rill learner``, ``rill actor`` and ``rill keys``: the edge-cloud commands.

Each parses its flags, builds the package's config and runs it: ``LearnerService`` (learners),
``ActorRunner`` (agent.actor), ``generate_keys`` (learners.link.security). The live views are in
``agent.console``.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
from pathlib import Path

log = logging.getLogger("rill")


def _sigterm_as_interrupt() -> None:
    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)  # also when started with SIGINT ignored (shell &)


def cmd_learner(args: argparse.Namespace) -> int:
    from agent.console import serve_with_table
    from agent.train_cli import parse_overrides
    from hal.errors import ConfigError
    from learners.link.security import CurveServer
    from learners.service import LearnerConfig, LearnerService
    from sim.envs import stream_layout

    if args.obs_dim:
        obs_dim = args.obs_dim
        layout = {"action_dim": args.action_dim} if args.action_dim else {"n_actions": args.n_actions}
    else:
        obs_dim, layout = stream_layout(args.env)
    for flag, value in (("--keep-gb", args.keep_gb), ("--keep-days", args.keep_days)):
        if value is not None and not value > 0:
            raise ConfigError(f"{flag} must be > 0, got {value:g}")
    config = LearnerConfig(
        bind=args.bind, run_dir=Path(args.run), obs_dim=obs_dim, algo=args.algo, seed=args.seed,
        hyper=parse_overrides(args.hp or []), publish_every_updates=args.publish_every,
        publish_every_ms=args.publish_ms, checkpoint_every_updates=args.checkpoint_every,
        weights_dtype=args.weights_dtype,
        importance_clip=None if args.no_importance else args.importance_clip, insecure=args.insecure,
        curve=CurveServer(args.curve_secret, args.allow_keys) if args.curve_secret else None,
        durability=args.durability,
        retention_bytes=None if args.keep_gb is None else int(args.keep_gb * 1e9),
        retention_age_s=None if args.keep_days is None else args.keep_days * 86400.0,
        **layout,
    )
    _sigterm_as_interrupt()
    service = LearnerService(config).start()
    log.info("learner listening on %s; run directory %s", service.endpoint, config.run_dir)
    try:
        serve_with_table(service)
    except KeyboardInterrupt:
        log.info("learner stopping: writing a checkpoint")
    finally:
        service.stop()
    return 0


def _keyboard(args: argparse.Namespace):
    """``--keyboard``: a ``KeyboardOperator`` for the env's actions (None without the flag)."""
    import sys

    from agent.operator.keyboard import KeyboardOperator
    from sim.envs import stream_layout

    if not args.keyboard:
        return None
    if not sys.stdin.isatty():
        raise SystemExit("rill actor --keyboard: standard input is not a terminal; run it in one "
                         "(not under a pipe, nohup or a scheduler)")
    if not args.keyboard_step > 0:
        raise SystemExit(f"rill actor: --keyboard-step must be > 0, got {args.keyboard_step:g}")
    _, layout = stream_layout(args.env)
    if "action_dim" not in layout:
        raise SystemExit(f"rill actor --keyboard: {args.env} has {layout.get('n_actions')} discrete actions; "
                         "a person can take over only continuous ones")
    return KeyboardOperator(int(layout["action_dim"]), step=args.keyboard_step)


def cmd_actor(args: argparse.Namespace) -> int:
    from agent.actor import ActorConfig, ActorRunner
    from agent.console import act_with_progress
    from agent.operator.config import OperatorConfig
    from agent.operator.terminal import TerminalKeys
    from agent.train_cli import parse_overrides
    from learners.link.security import CurveClient

    if not args.actor_id:
        raise SystemExit("rill actor: --actor-id is required")
    config = ActorConfig(
        learner=args.learner, env=args.env, actor_id=args.actor_id, run_dir=Path(args.run), algo=args.algo,
        hyper=parse_overrides(args.hp or []), seed=args.seed, steps=args.steps, control_hz=args.control_hz,
        curve=CurveClient(args.curve_secret, args.learner_key) if args.curve_secret else None,
        insecure=args.insecure, durability=args.durability, max_lag=args.max_lag,
    )
    keyboard, keys = _keyboard(args), None
    _sigterm_as_interrupt()
    operator = None if keyboard is None else OperatorConfig(
        enabled=True, time_limit_s=args.time_limit, wait_for_start=not args.auto_start)
    runner = ActorRunner(config, operator=operator, intervention=keyboard)
    try:
        if keyboard is not None:
            keyboard.controller = runner.operated.controller
            keys = TerminalKeys(keyboard).start()
            log.info("keyboard: g start, space take over/release, arrows or i j k l nudge, [ ] axis pair, "
                     "x zero, s success, f failure, r reset, q stop")
        log.info("actor %s done: %s", args.actor_id, act_with_progress(runner, args.steps))
    except KeyboardInterrupt:
        log.info("actor %s stopping; unacknowledged transitions stay in its spool", args.actor_id)
    finally:
        if keys is not None:
            keys.close()  # the terminal back as it was
        runner.close(drain_s=args.drain)
        if args.summary_json:
            Path(args.summary_json).write_text(json.dumps(runner.summary(), indent=1))
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from learners.link.security import generate_keys

    public, secret = generate_keys(Path(args.dir), args.name, replace=args.replace)
    log.info("wrote %s (share it) and %s (keep it private)", public, secret)
    return 0


def add_link_commands(sub) -> None:
    from agent.link_args import add_actor_arguments, add_common_arguments, add_learner_arguments

    common = add_common_arguments(argparse.ArgumentParser(add_help=False))
    lp = sub.add_parser("learner", parents=[common], help="serve actors: learn from their streams")
    add_learner_arguments(lp).set_defaults(func=cmd_learner)
    ap = sub.add_parser("actor", parents=[common], help="act on an environment, stream to a learner")
    add_actor_arguments(ap).set_defaults(func=cmd_actor)
    kp = sub.add_parser("keys", help="CurveZMQ key pairs")
    ksub = kp.add_subparsers(dest="keys_command", required=True)
    gen = ksub.add_parser("generate", help="write NAME.key and NAME.key_secret")
    gen.add_argument("dir", type=Path)
    gen.add_argument("--name", required=True, help="the key's name; for an actor, its actor id")
    gen.add_argument("--replace", action="store_true",
                     help="replace an existing pair of that name (its peers must get the new public key)")
    gen.set_defaults(func=cmd_keys)
