"""How well one camera frame can place a Meta-World task's goal: the geometry, apart from any model.

    python -m bench.metaworld_goal_geometry --task reach-v3 --task push-v3 --task pick-place-v3 \
        --json docs/results/bench/metaworld_goal_geometry.json
    python -m bench.metaworld_goal_geometry --quick        # CI: reach-v3, fewer samples

The VLA sees the goal through one 96x96 ``corner2`` frame. A frame gives two numbers about a point
(where it lands in the image), a goal has three, so one frame leaves the goal's depth along the
camera's ray open. How much that costs a task is a matter of its goal space and the camera: this
benchmark takes the camera as ``sim-metaworld`` places and renders it, draws goals uniformly from
the task's goal space (Meta-World's ``goal_space``), projects them, and asks what the best single
guess from a perfect reading of the goal's image position achieves: the mean of the goals that land
within ``--neighbours`` nearest image positions of the true one (a k-nearest-neighbour estimate of
E[goal | image position], fitted on ``--fit`` goals and scored on ``--score`` others). Reported:
the share of scored goals whose best guess lies within the task's success radius (Meta-World's
own: 5 cm for reach and push, 7 cm for pick-place), the median error and the mean error per axis.

This is not a bound on success: a policy may also read the marker's apparent size or watch its hand
pass in front of the goal, and it may search. It says whether a policy that sees as well as the
pixels allow could place the goal, so that a VLA well short of it is short of perception, not of
geometry.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np

from bench.common import print_table, write_json

# Meta-World's success radius per task (sawyer_*_v3.py: reach_dist, target_to_obj, obj_to_target)
SUCCESS_RADIUS = {"reach-v3": 0.05, "push-v3": 0.05, "pick-place-v3": 0.07}


def task_camera(task: str, image_size: tuple[int, int] = (96, 96)) -> tuple[Any, Any]:
    """The ``corner2`` camera of ``task`` as placed by ``MetaWorldEnv``, and the task's goal space."""
    from sim.metaworld.env import MetaWorldEnv

    env = MetaWorldEnv(task, image_size=image_size, render_mode=None)
    try:
        env.reset(seed=0)
        return env.pinhole(), env.sim.goal_space
    finally:
        env.close()


def goal_geometry(task: str, fit: int, score: int, neighbours: int, seed: int = 0) -> dict[str, Any]:
    """The best single guess of ``task``'s goal from its exact image position (module docstring)."""
    from scipy.spatial import cKDTree

    camera, space = task_camera(task)
    low, high = np.asarray(space.low, np.float64), np.asarray(space.high, np.float64)
    rng = np.random.default_rng(seed)
    fitted = rng.uniform(low, high, (fit, 3))
    scored = rng.uniform(low, high, (score, 3))
    pixels, depth = camera.project(fitted)
    _, nearest = cKDTree(pixels).query(camera.project(scored)[0], neighbours)
    guess = fitted[nearest].mean(1)
    error = np.linalg.norm(guess - scored, axis=1)
    radius = SUCCESS_RADIUS[task]
    return {
        "task": task,
        "goal_low": low.tolist(),
        "goal_high": high.tolist(),
        "success_radius_m": radius,
        "within_radius": round(float(np.mean(error <= radius)), 4),
        "median_error_cm": round(100 * float(np.median(error)), 2),
        "mean_abs_error_cm_xyz": [round(100 * float(e), 2) for e in np.abs(guess - scored).mean(0)],
        "goal_std_cm_xyz": [round(100 * float(s), 2) for s in scored.std(0)],
        "depth_range_m": [round(float(depth.min()), 3), round(float(depth.max()), 3)],
        "image_rows": [round(float(pixels[:, 0].min()), 1), round(float(pixels[:, 0].max()), 1)],
        "image_cols": [round(float(pixels[:, 1].min()), 1), round(float(pixels[:, 1].max()), 1)],
        "fit": fit,
        "score": score,
        "neighbours": neighbours,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", action="append", help="Meta-World task, repeatable (default reach-v3)")
    parser.add_argument("--fit", type=int, default=400_000, help="goals the estimate is fitted on")
    parser.add_argument("--score", type=int, default=20_000, help="goals it is scored on")
    parser.add_argument("--neighbours", type=int, default=100, help="nearest image positions averaged")
    parser.add_argument("--json", help="write the result here")
    parser.add_argument("--quick", action="store_true",
                        help="CI: reach-v3, 20,000 goals fitted, 2,000 scored")
    args = parser.parse_args(argv)
    os.environ.setdefault("MUJOCO_GL", "egl")
    if args.quick:
        args.task, args.fit, args.score = ["reach-v3"], 20_000, 2_000
    if min(args.fit, args.score, args.neighbours) < 1 or args.neighbours > args.fit:
        parser.error("--fit, --score and --neighbours must be >= 1, with --neighbours <= --fit")
    tasks = args.task or ["reach-v3"]
    unknown = [t for t in tasks if t not in SUCCESS_RADIUS]
    if unknown:
        parser.error(f"no success radius recorded for {', '.join(unknown)}: tasks are "
                     f"{', '.join(SUCCESS_RADIUS)}")
    results = [goal_geometry(task, args.fit, args.score, args.neighbours) for task in tasks]
    print_table("the best guess of the goal from its exact position in one 96x96 corner2 frame",
                ["task", "within success radius %", "median error cm", "mean abs error x / y / z cm",
                 "goal spread (std) x / y / z cm"],
                [[r["task"], f"{100 * r['within_radius']:.0f}", r["median_error_cm"],
                  " / ".join(map(str, r["mean_abs_error_cm_xyz"])),
                  " / ".join(map(str, r["goal_std_cm_xyz"]))]
                 for r in results])
    payload = {"runs": results, "_about": __doc__.split("\n\n")[2].replace("\n", " ")}
    write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main()
