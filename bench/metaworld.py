"""Meta-World, a benchmark nobody in this project wrote: success per task of the scripted expert,
the pretrained VLA and (with ``--run``) the VLA after online RL, next to published VLA results.

    MUJOCO_GL=egl python -m bench.metaworld [--quick] [--json OUT] [--vla DIR] [--run RUN]
                                            [--pretrain RUN_DIR] [--tasks MT10] [--episodes N]

Protocol (rill's): for each task, ``--episodes`` episodes (default 10; ``--quick``: 2) on a
``sim-metaworld`` robot seeded from ``--seed`` (default 100,000: the demonstrations of
``config/demos_metaworld_mt10.yaml`` use seeds from 0, so these scenes are held out), the same
scenes for every policy; an episode succeeds when Meta-World's success flag rises within 500 steps
(``--quick``: 150). The VLA sees the 96x96 ``corner2`` frame, the instruction and LeRobot's 4-D
state (end effector, gripper); the expert reads the simulator (the ceiling); ``random`` is uniform
actions (the floor). Also: the VLA's ``act()`` latency (1 CPU thread), and with ``--pretrain`` the
pretraining run's steps and wall time (from its ``metrics.jsonl``).

``PUBLISHED`` holds what the SmolVLA paper reports on Meta-World (MT50, by difficulty group), so the
table can stand next to it; the protocols differ and ``PROTOCOL`` says how.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from bench.common import TimedPolicy, machine, print_table, write_json
from policies.base import Policy

SEED = 100_000
SHIPPED = "pretrained:metaworld-mt10"
QUICK_TASKS = ("reach-v3", "drawer-close-v3")

#: Shukor et al., "SmolVLA: A Vision-Language-Action Model for Affordable and Efficient Robotics"
#: (arXiv 2506.01844), Table 2: Meta-World MT50 success rate (%) by difficulty group.
PUBLISHED = {
    "Diffusion Policy": {"easy": 23.1, "medium": 10.7, "hard": 1.9, "very_hard": 6.1, "average": 10.5},
    "TinyVLA": {"easy": 77.6, "medium": 21.5, "hard": 11.4, "very_hard": 15.8, "average": 31.6},
    "pi0 (3.5B)": {"easy": 80.4, "medium": 40.9, "hard": 36.7, "very_hard": 44.0, "average": 50.5},
    "pi0 (3.5B, robotics-pretrained)": {
        "easy": 71.8,
        "medium": 48.2,
        "hard": 41.7,
        "very_hard": 30.0,
        "average": 47.9,
    },
    "SmolVLA (0.24B)": {"easy": 86.43, "medium": 46.36, "hard": 35.0, "very_hard": 60.0, "average": 56.95},
    "SmolVLA (0.45B)": {"easy": 82.5, "medium": 41.8, "hard": 45.0, "very_hard": 60.0, "average": 57.3},
    "SmolVLA (2.25B)": {"easy": 87.14, "medium": 51.82, "hard": 70.0, "very_hard": 64.0, "average": 68.24},
}
PROTOCOL = {
    "published": "MT50 (all 50 tasks), 50 demonstrations per task, 10 trials per task, 512x512 "
    "images, 100k training steps at batch 64 on GPUs; models of 0.24-3.5 B parameters "
    "(SmolVLA's backbone pretrained on web-scale vision-language data)",
    "rill": "the tasks run here (MT10 by default), ~50 expert demonstrations per task, the episodes of "
    "this bench per task on held-out seeds, one 96x96 camera, a 1 M-parameter VLA trained "
    "from scratch on 2 CPU cores",
}




# What an evaluated run's robots set that its policy depends on (the frames it sees).
CAMERA_PARAMS = ("camera", "image_height", "image_width", "camera_every")


def task_robot(task: str, episode_steps: int, camera: dict | None = None):
    """The robot a task is evaluated on; ``camera``: ``CAMERA_PARAMS`` of the run whose policy it
    evaluates (the bench's own defaults otherwise)."""
    from hal.config import RobotConfig

    return RobotConfig(
        f"metaworld-{task}", "sim-metaworld",
        {**(camera or {}), "tasks": [task], "episode_steps": episode_steps},
    )


def run_camera(run_dir: str | Path) -> dict:
    """The camera settings of the first Meta-World robot of the ``rill run`` at ``run_dir`` (its
    ``config.yaml``), so its policy is evaluated on the frames it learned from."""
    import yaml

    path = Path(run_dir) / "config.yaml"
    try:
        robots = (yaml.safe_load(path.read_text()) or {}).get("robots") or []
    except (OSError, yaml.YAMLError) as e:
        raise SystemExit(f"bench.metaworld: cannot read the run's config {path}: {e}") from None
    for robot in robots:
        if isinstance(robot, dict) and robot.get("type") == "sim-metaworld":
            params = robot.get("params") or {}
            return {k: params[k] for k in CAMERA_PARAMS if k in params}
    raise SystemExit(f"bench.metaworld: {path} names no sim-metaworld robot: not a Meta-World run")


def frames_per_chunk(policies: dict[str, Policy]) -> int:
    """How often the evaluation's camera gives a frame (``camera_every``): once per chunk when every
    policy that sees frames plans chunks of one length (a stepped loop plans from a chunk's first
    frame, so they see the same frames as with one every tick, for a fraction of the rendering);
    every tick otherwise. The expert and the random policy see no frames."""
    sizes = {int(getattr(p, "chunk_size", 1)) for name, p in policies.items()
             if name not in ("expert", "random")}
    return sizes.pop() if len(sizes) == 1 else 1


def check_frames(policy: Policy, robot, run_dir: str) -> None:
    """Refuse, by name, a run whose residual reads a camera or frame size the bench's robot does
    not give (every act would fail, and the episodes would count as failures)."""
    from hal.registry import make_robot

    locator = getattr(getattr(policy, "base", None), "locator", None)
    if locator is not None:
        problem = locator.config.frame_problem(make_robot(robot).observation_spec, robot.name)
        if problem is not None:
            raise SystemExit(f"bench.metaworld: the locator of {run_dir} {problem}")


def pretraining_time(run_dir: str | Path) -> dict:
    """Steps and wall time of a ``rill pretrain`` run, from its ``metrics.jsonl`` (each logged row's
    steps over its rate)."""
    path = Path(run_dir) / "metrics.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    logged = [r for r in rows if "steps_per_s" in r]
    wall, last = 0.0, 0
    for r in logged:
        if r["step"] > last:
            wall += (r["step"] - last) / max(r["steps_per_s"], 1e-9)
        last = r["step"]
    config = json.loads((Path(run_dir) / "config.json").read_text())
    return {
        "run": str(run_dir),
        "steps": last,
        "train_wall_s": round(wall, 1),
        "threads": config.get("threads"),
        "batch_size": config.get("batch_size"),
    }


def groups(per_task: dict[str, dict]) -> dict[str, float]:
    """Mean success (%) per difficulty group over the tasks run, and their average."""
    from sim.metaworld.tasks import difficulty

    by: dict[str, list[float]] = {}
    for task, r in per_task.items():
        by.setdefault(difficulty(task), []).append(100.0 * r["success_rate"])
    out = {g: round(float(np.mean(v)), 1) for g, v in by.items()}
    out["average"] = round(float(np.mean([100.0 * r["success_rate"] for r in per_task.values()])), 1)
    return out


def measure(
    tasks: list[str], episodes: int, seed: int, episode_steps: int, vla_dir: str | None, run_dir: str | None,
    baselines: bool = True, sample: bool = False,
) -> dict:
    import torch

    from agent.experts.baselines import RandomPolicy
    from agent.experts.metaworld import MetaWorldExpert
    from agent.pretrain.evaluate import evaluate_policy

    torch.set_num_threads(1)
    policies: dict[str, Policy] = {
        "expert": MetaWorldExpert(tasks),
        "random": RandomPolicy(seed=seed, action_dim=4),
    } if baselines else {}
    timed = None
    if vla_dir:
        from policies.vla.build import load_vla
        from policies.vla.policy import VLAPolicy

        timed = TimedPolicy(VLAPolicy(load_vla(vla_dir)))
        policies["vla"] = timed
    if run_dir:
        from bench.vla import online_policy

        policies["online"] = online_policy(run_dir)[0]
        if sample:
            # The residual as it acted in training (one Gaussian sample per chunk, seeded), on the
            # same scenes: how much of a run's training success its exploration, not its mean, earns.
            policies["online_sampled"] = online_policy(run_dir, deterministic=False)[0]
    camera = {"camera_every": frames_per_chunk(policies), **(run_camera(run_dir) if run_dir else {})}
    if run_dir:
        check_frames(policies["online"], task_robot(tasks[0], episode_steps, camera), run_dir)
    results: dict[str, dict] = {name: {} for name in policies}
    for task in tasks:
        for name, policy in policies.items():
            if name == "online_sampled":  # each task's samples from the same seed: whichever tasks
                policy.generator.manual_seed(0)  # ran before it, in whatever order, it gets the same
            start = time.perf_counter()
            r = evaluate_policy(policy, task_robot(task, episode_steps, camera), episodes, seed)
            results[name][task] = {**r.to_dict(), "wall_s": round(time.perf_counter() - start, 1)}
    report: dict = {
        "tasks": tasks,
        "episodes": episodes,
        "seeds": [seed, seed + episodes - 1],
        "episode_steps": episode_steps,
        "vla": vla_dir,
        "runs": results,
        "groups": {name: groups(per_task) for name, per_task in results.items()},
    }
    if timed is not None and timed.times:
        ms = np.array(timed.times) * 1e3
        report["act_ms"] = {
            "median": round(float(np.median(ms)), 2),
            "p90": round(float(np.percentile(ms, 90)), 2),
            "calls": len(ms),
        }
    return report


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{', '.join(QUICK_TASKS)}, 2 episodes each of at most 150 steps (CI)",
    )
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--vla", help=f"a saved VLA directory (or pretrained:NAME) to evaluate (default: "
                        f"{SHIPPED}, where rill ships it; 'none': expert and random only)")
    parser.add_argument(
        "--run", help="a finished vla-residual rill run on Meta-World: evaluate what its online RL learned"
    )
    parser.add_argument("--pretrain", help="the rill pretrain run directory the VLA came from: its time")
    parser.add_argument(
        "--tasks",
        default=None,
        help="a task set (MT10, easy, ...) or comma-separated tasks (default MT10; --quick: two easy tasks)",
    )
    parser.add_argument("--episodes", type=int, help="episodes per task (default 10; --quick: 2)")
    parser.add_argument("--episode-steps", type=int, help="steps per episode (default 500; --quick: 150)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"first episode seed (default {SEED:,})")
    parser.add_argument("--no-baselines", action="store_true",
                        help="skip the scripted expert and random actions (they do not depend on the VLA)")
    parser.add_argument("--sample", action="store_true",
                        help="with --run, also evaluate the residual sampling as in training (not its mean)")
    args = parser.parse_args(argv)
    if args.sample and not args.run:
        parser.error("--sample needs --run: it evaluates an online run's residual")
    os.environ.setdefault("MUJOCO_GL", "egl")
    from sim.metaworld.tasks import task_names

    spec = args.tasks or ("QUICK" if args.quick else "MT10")
    tasks = (
        list(QUICK_TASKS)
        if spec == "QUICK"
        else list(task_names(spec if "," not in spec else spec.split(",")))
    )
    episodes = args.episodes if args.episodes is not None else (2 if args.quick else 10)
    steps = args.episode_steps if args.episode_steps is not None else (150 if args.quick else 500)
    if episodes < 1 or not 1 <= steps <= 500:
        parser.error("--episodes must be >= 1 and --episode-steps within 1..500")
    vla = args.vla
    if vla is None:
        from policies.vla.build import pretrained_names

        vla = SHIPPED if SHIPPED.split(":")[1] in pretrained_names() else None
    report = measure(tasks, episodes, args.seed, steps, None if vla == "none" else vla, args.run,
                     baselines=not args.no_baselines, sample=args.sample)
    if not report["runs"]:
        parser.error("nothing to evaluate: --no-baselines with --vla none and no --run")
    if args.pretrain:
        report["pretraining"] = pretraining_time(args.pretrain)
    names = list(report["runs"])
    rows = [
        [task, *[f"{100 * report['runs'][n][task]['success_rate']:.0f}" for n in names]] for task in tasks
    ]
    for group, _ in report["groups"][names[0]].items():
        rows.append([f"{group} (mean)", *[f"{report['groups'][n][group]:.0f}" for n in names]])
    print_table(
        f"Meta-World success %, {episodes} held-out episodes per task from seed {args.seed:,}",
        ["task", *names],
        rows,
    )
    print_table(
        "published (SmolVLA paper, Table 2; MT50; other protocol)",
        ["model", "easy", "medium", "hard", "very hard", "average"],
        [
            [m, *[f"{v[k]:.1f}" for k in ("easy", "medium", "hard", "very_hard", "average")]]
            for m, v in PUBLISHED.items()
        ],
    )
    if "act_ms" in report:
        act = report["act_ms"]
        print(f"VLA act(): median {act['median']} ms, p90 {act['p90']} ms over {act['calls']} calls "
              "(1 CPU thread)")
    if "pretraining" in report:
        p = report["pretraining"]
        print(
            f"pretraining: {p['steps']:,} steps in {p['train_wall_s'] / 3600:.2f} h on {p['threads']} threads"
        )
    payload = {
        **report,
        "published": PUBLISHED,
        "protocol": PROTOCOL,
        "_meta": {**machine(), "quick": args.quick, "mujoco_gl": os.environ["MUJOCO_GL"]},
    }
    write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main()
