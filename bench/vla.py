"""Does the VLA see and read? Success of a pretrained VLA on the tabletop reach task, on held-out
seeded episodes, next to what it does blind or misled and what policies that neither see nor read
manage.

    MUJOCO_GL=egl python -m bench.vla [--quick] [--json OUT] [--vla DIR] [--run RUN] [--episodes N]

The arm is ``sim-tabletop`` with a proprioceptive state (``state: proprio``): where the blocks are
comes from the camera only, which block from the instruction only. On the same seeds (default 100
episodes from 200,000; ``--quick``: 6):

- ``vla``: the VLA from pixels, instruction and state (default: the VLA rill ships,
  ``policies/vla/pretrained/tabletop-reach``);
- ``expert``: the scripted expert (it reads the simulator's positions): the ceiling;
- ``swap``: the same scenes with the instruction re-pointed at the next block: how often the arm
  reaches the block named (about one in three by chance), and how often the scene's own goal;
- ``blind``: every camera frame black;
- ``random`` / ``forward`` / ``middle``: goal-ignoring policies (``agent.experts.baselines``);
- ``online`` (with ``--run RUN``, a finished ``rill run config/sim_tabletop_vla.yaml``): the VLA
  plus the residual heads that run learned, as its actor last held them (``actors/<id>/policy``,
  feature statistics frozen, the residual at its mean), next to ``vla``; and the run's own success
  at its start and end and its worst 50-episode window (from its episode logs, as
  ``metrics/success_summary.json`` has them);
- ``act`` latency of the VLA (median and 90th percentile over every call of the ``vla`` run);
- ``loop``: the VLA driving the arm in real time (the simulation advancing at 50 Hz on its own,
  inference on its own thread) for ``--loop-s`` seconds: holds per 1,000 ticks, split by where
  they happen: at an episode's start (before its first chunk), between chunks (the next one came
  late), on a stale frame, or because the policy failed.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from bench.common import TimedPolicy, machine, print_table, write_json
from policies.base import Policy

SEED = 200_000
COLORS = ["red", "blue", "yellow"]


def _robot(terminate_on_success: bool = True):
    from hal.config import RobotConfig

    return RobotConfig("bench-arm", "sim-tabletop", {
        "task": "reach", "state": "proprio", "colors": COLORS, "cameras": ["front"], "image_height": 96,
        "image_width": 96, "control_hz": 50, "max_delta": 1.0, "terminate_on_success": terminate_on_success})




def loop_holds(policy: Policy, seconds: float, seed: int) -> dict:
    """Drive the real-time arm for ``seconds`` and count holds by where they happen."""
    import dataclasses

    from agent.loop.episodes import drive_episodes
    from hal.registry import make_robot

    robot = _robot()
    robot = dataclasses.replace(robot, params={**robot.params, "real_time": True, "seed": seed})
    where = {"episode start": 0, "between chunks": 0, "stale frame": 0, "policy failing": 0, "other": 0}
    state = {"acted": False, "episode": 0}

    def on_tick(record) -> None:
        if record.episode != state["episode"]:
            state.update(episode=record.episode, acted=False)
        if not record.held:
            state["acted"] = True
            return
        if record.reason == "episode ended":  # the robot is reset after it, not held
            return
        if record.reason == "stale observation":
            where["stale frame"] += 1
        elif record.reason == "policy failing":
            where["policy failing"] += 1
        elif record.reason == "no chunk":
            where["between chunks" if state["acted"] else "episode start"] += 1
        else:
            where["other"] += 1

    with make_robot(robot) as arm:
        ticks = int(seconds * arm.control_hz)
        loop, _ = drive_episodes(arm, policy, lambda: False, on_tick=on_tick, max_ticks=ticks)
    n = max(loop.stats.ticks, 1)
    return {"ticks": loop.stats.ticks, "holds_per_1000": round(1000 * sum(where.values()) / n, 1),
            "by_where_per_1000": {k: round(1000 * v / n, 1) for k, v in where.items()},
            "deadline_misses": loop.stats.deadline_misses}


def online_policy(run_dir: str, deterministic: bool = True) -> tuple[Policy, str]:
    """The acting policy the first actor of the ``rill run`` at ``run_dir`` saved, and its path;
    the residual acts with its mean, or with ``deterministic=False`` samples as in training."""
    from pathlib import Path

    from agent.vla.snapshot import POLICY_DIR, load_residual_policy

    saved = sorted(Path(run_dir).glob(f"actors/*/{POLICY_DIR}"))
    if not saved:
        raise SystemExit(f"bench.vla: {run_dir} holds no actors/<id>/{POLICY_DIR}: not a finished "
                         "vla-residual rill run")
    return load_residual_policy(saved[0], deterministic=deterministic), str(saved[0])


def run_summary(run_dir: str) -> dict:
    """The run's success over its episodes (start, end, worst window), read from its directory."""
    from dataclasses import asdict
    from pathlib import Path

    from agent.actor.episodes import read_run_episodes
    from agent.job.summary import success_summary, success_text

    episodes = read_run_episodes(Path(run_dir))
    summary = success_summary(episodes)
    return {"episodes": len(episodes), "ticks": int(sum(e.length for e in episodes)),
            "success": asdict(summary) if summary else None,
            "success_text": success_text(summary) if summary else ""}


def measure(vla_dir: str | None, episodes: int, seed: int, loop_s: float = 30.0,
            run_dir: str | None = None) -> dict:
    import torch

    from agent.experts.baselines import ForwardPolicy, MiddlePolicy, RandomPolicy
    from agent.experts.tabletop import TabletopExpert
    from agent.pretrain.evaluate import InstructionSwap, blank_cameras, evaluate_policy
    from policies.vla.build import load_vla, pretrained_vla_path
    from policies.vla.policy import VLAPolicy

    torch.set_num_threads(1)
    path = vla_dir or pretrained_vla_path("tabletop-reach")
    policy = VLAPolicy(load_vla(path))
    timed = TimedPolicy(policy)
    results: dict[str, dict] = {}

    def run(name: str, acting, **kw) -> None:
        start = time.perf_counter()
        r = evaluate_policy(acting, kw.pop("robot", _robot()), episodes, seed, **kw)
        results[name] = {**r.to_dict(), "wall_s": round(time.perf_counter() - start, 1)}

    run("vla", timed)
    online: dict = {}
    if run_dir:
        learned, saved = online_policy(run_dir)
        run("online", learned)
        online = {"run": str(run_dir), "policy": saved, "weights_version": learned.version,
                  **run_summary(run_dir)}
    run("expert", TabletopExpert(colors=COLORS, chunk_size=2))
    swap = InstructionSwap(COLORS)
    run("swap", policy, edit=swap.edit, on_tick=swap.on_tick, robot=_robot(terminate_on_success=False))
    results["swap"]["named_block_reached"] = swap.reached_rate
    run("blind", policy, edit=blank_cameras)
    run("random", RandomPolicy(seed=seed))
    run("forward", ForwardPolicy())
    run("middle", MiddlePolicy())
    holds = loop_holds(policy, loop_s, seed)
    ms = np.array(timed.times) * 1e3
    act = {"median": round(float(np.median(ms)), 2), "p90": round(float(np.percentile(ms, 90)), 2),
           "calls": len(ms)}
    return {"vla": str(path), "episodes": episodes, "seeds": [seed, seed + episodes - 1], "runs": results,
            "act_ms": act, "loop": holds, **({"online": online} if online else {})}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="6 episodes per run (CI)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--vla", help="a saved VLA directory (default: the one rill ships)")
    parser.add_argument("--run", help="a finished rill run of config/sim_tabletop_vla.yaml: evaluate what "
                        "its online RL learned on the same seeds")
    parser.add_argument("--episodes", type=int, help="episodes per run (default 100; --quick: 6)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"first episode seed (default {SEED:,})")
    parser.add_argument("--loop-s", type=float, help="seconds of real-time driving (default 60; --quick: 5)")
    args = parser.parse_args(argv)
    os.environ.setdefault("MUJOCO_GL", "egl")
    episodes = args.episodes or (6 if args.quick else 100)
    if episodes < 1:
        parser.error(f"--episodes must be >= 1, got {episodes}")
    report = measure(args.vla, episodes, args.seed, args.loop_s or (5.0 if args.quick else 60.0), args.run)
    rows = []
    for name, r in report["runs"].items():
        extra = f"{100 * r['named_block_reached']:.0f}% reached the named block" if name == "swap" else ""
        rows.append([name, f"{100 * r['success_rate']:.0f}", f"{r['mean_ticks']:.0f}", extra, r["wall_s"]])
    print_table(f"tabletop reach, {episodes} held-out episodes from seed {args.seed:,}",
                ["run", "success %", "mean ticks", "", "wall s"], rows)
    act = report["act_ms"]
    print(f"VLA act(): median {act['median']} ms, p90 {act['p90']} ms over {act['calls']} calls "
          f"(1 CPU thread)")
    lp = report["loop"]
    print(f"real-time loop: {lp['holds_per_1000']} holds per 1,000 ticks over {lp['ticks']} ticks: "
          + ", ".join(f"{k} {v}" for k, v in lp["by_where_per_1000"].items()))
    if "online" in report:
        on = report["online"]
        print(f"online RL run {on['run']}: {on['episodes']} episodes, {on['ticks']:,} ticks; weights "
              f"v{on['weights_version']}; during the run: {on['success_text']}")
    payload = {**report, "_meta": {**machine(), "quick": args.quick, "mujoco_gl": os.environ["MUJOCO_GL"]}}
    write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main()

