"""The flags of ``rill learner`` and ``rill actor`` (argparse), kept apart from what the commands do."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_common_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from learners.streamx.registry import algorithm_names

    p.add_argument("--env", default="Hopper-v5", help="gymnasium id fixing observation/action shapes")
    p.add_argument("--algo", default="stream-ac", choices=algorithm_names(control_only=True))
    p.add_argument("--hp", action="append", metavar="KEY=VALUE", help="hyperparameter override")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run", default="runs/edge", help="run directory")
    p.add_argument("--insecure", action="store_true",
                   help="allow plain-text TCP beyond loopback (warned about loudly)")
    p.add_argument("--durability", default="fsync", choices=["fsync", "os-buffered", "none", "behind"],
                   help="how the cache (learner) or spool (actor) writes; behind, actors only: sent at once, "
                   "written only if not acknowledged within a second (see learners/link/behind.py)")
    return p


def add_learner_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--bind", default="tcp://127.0.0.1:5555")
    p.add_argument("--obs-dim", type=int, help="observation width (instead of deriving it from --env)")
    p.add_argument("--action-dim", type=int, help="continuous action width (with --obs-dim)")
    p.add_argument("--n-actions", type=int, help="number of discrete actions (with --obs-dim)")
    p.add_argument("--curve-secret", type=Path, help="learner's CurveZMQ .key_secret file")
    p.add_argument("--allow-keys", type=Path,
                   help="directory of allowed actors' public keys: one ACTOR_ID.key per actor id; a key "
                   "speaks only as the actor id its file is named after (re-read every second: removing "
                   "a file revokes the key)")
    p.add_argument("--publish-every", type=int, default=100, help="publish weights every N updates")
    p.add_argument("--publish-ms", type=float, default=500.0, help="... or every T milliseconds")
    p.add_argument("--weights-dtype", choices=("float32", "float16", "bfloat16"), default="float32",
                   help="dtype weights travel in (float16/bfloat16: half the bytes, rounded weights)")
    p.add_argument("--checkpoint-every", type=int, default=20_000, help="checkpoint every N updates")
    p.add_argument("--importance-clip", type=float, default=1.0)
    p.add_argument("--no-importance", action="store_true", help="no importance weighting")
    p.add_argument("--keep-gb", type=float, help="replay cache retention: delete the oldest consumed "
                   "segments past this size (default: keep everything)")
    p.add_argument("--keep-days", type=float, help="... or older than this many days")
    return p


def add_actor_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--learner", default="tcp://127.0.0.1:5555")
    from agent.policy_registry import POLICIES, policy_names

    p.add_argument("--actor-id",
                   help="stable id of this actor (its sequence numbers continue across restarts)")
    p.add_argument("--policy", default="streamx", choices=policy_names("actor"),
                   help="; ".join(f"{n}: {POLICIES[n].summary}" for n in policy_names("actor")))
    p.add_argument("--steps", type=int, help="stop once the actor has taken N steps in all, counting "
                   "those of its earlier runs kept in --run (default: run until stopped)")
    p.add_argument("--control-hz", type=float, help="pace the loop at this rate")
    p.add_argument("--max-lag", type=int,
                   help="simulation only: wait while more than N transitions are not yet learned from")
    p.add_argument("--drain", type=float, default=10.0, help="seconds to wait for acks when done")
    p.add_argument("--summary-json", type=Path, help="write the actor's final summary here")
    p.add_argument("--curve-secret", type=Path, help="actor's CurveZMQ .key_secret file")
    p.add_argument("--learner-key", type=Path, help="learner's public .key file")
    op = p.add_argument_group("a person at the terminal (--keyboard)")
    op.add_argument("--keyboard", action="store_true",
                    help="take over and run episodes from this terminal: space take over/release, arrows "
                    "or i j k l nudge, [ ] axis pair, x zero, g start, s success, f failure, r reset, q stop")
    op.add_argument("--keyboard-step", type=float, default=0.1, help="how far one key nudges an action")
    op.add_argument("--time-limit", type=float, default=0.0,
                    help="end an episode running this many seconds as a timeout (0: no limit)")
    op.add_argument("--auto-start", action="store_true",
                    help="start each episode by itself instead of waiting for g")
    return p
