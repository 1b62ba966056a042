"""``python -m bench.sim_camera``: what a simulated camera slower than the control loop saves.

    python -m bench.sim_camera --json docs/results/bench/sim_camera.json
    python -m bench.sim_camera --robot tabletop --json docs/results/bench/sim_camera_tabletop.json
    python -m bench.sim_camera --quick        # CI: fewer ticks, one round

The VLA actor (a shipped VLA with residual heads, chunks of 4, ``pace: fast``, its link spooling to
a learner that is not there) drives ``sim-metaworld`` on reach-v3 with the Meta-World VLA, or
(``--robot tabletop``) the tabletop arm of the README's main job with its VLA, once with a camera
frame every control tick (``camera_every: 1``) and once every 4 ticks (``camera_every: 4``, the
chunk's length: the frames the VLA plans from are the same, ``tests/agent/vla/test_vla_camera_rate.py``).
Reported per setting: ticks per second (the median of ``--rounds`` rounds, the settings alternating
within a round), the ratio of the two, and the share of the wall time spent rendering (timed
around ``MetaWorldEnv.render``, or ``TabletopEnv._frames``: its cameras and the kinematics before
them). On a machine without a GPU, MuJoCo renders through EGL in software: a 96x96 Meta-World frame
costs several milliseconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import machine, print_table, write_json

SETTINGS = (1, 4)
# robot -> (type, params, VLA, episode ticks, the env object and method that renders its frames)
ROBOTS: dict[str, tuple[str, dict[str, Any], str, int, str, str]] = {
    "metaworld": ("sim-metaworld", {"tasks": ["reach-v3"], "reward": "progress"}, "pretrained:metaworld-mt10",
                  500, "env", "render"),
    "tabletop": ("sim-tabletop", {"task": "reach", "colors": ["red", "blue", "yellow"], "cameras": ["front"],
                                  "state": "proprio", "control_hz": 50}, "pretrained:tabletop-reach", 150,
                 "tabletop", "_frames"),
}


def run_actor(robot_name: str, every: int, ticks: int, run_dir: Path) -> dict[str, Any]:
    """``ticks`` ticks of the VLA actor on a robot whose camera gives a frame every ``every`` ticks."""
    import sim.robots  # noqa: F401  registers the simulated robots
    from agent.vla.actor import VLAActor, VLAActorConfig
    from hal.backends import free_tcp_port
    from hal.config import RobotConfig
    from hal.registry import make_robot

    kind, params, vla, episode, holder, method = ROBOTS[robot_name]
    robot = RobotConfig("arm", kind, {**params, "seed": 3, "real_time": False, "camera_every": every})
    config = VLAActorConfig(learner=f"tcp://127.0.0.1:{free_tcp_port()}", actor_id="arm", run_dir=run_dir,
                            vla_path=vla, chunk_size=4, residual_scale=0.2, pace="fast",
                            durability="os-buffered", time_limit=episode)
    with make_robot(robot) as arm:
        env = getattr(arm, holder)
        render, spent = getattr(env, method), [0.0, 0]

        def timed_render():
            start = time.perf_counter()
            try:
                return render()
            finally:
                spent[0] += time.perf_counter() - start
                spent[1] += 1

        setattr(env, method, timed_render)
        actor = VLAActor(config, arm)
        try:
            start = time.perf_counter()
            actor.run(ticks=ticks)
            wall = time.perf_counter() - start
        finally:
            actor.close()
    return {"ticks_per_s": ticks / wall, "render_share": spent[0] / wall, "frames": spent[1],
            "render_ms": 1e3 * spent[0] / max(spent[1], 1)}


def measure(robot: str, ticks: int, rounds: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    runs: dict[int, list[dict]] = {every: [] for every in SETTINGS}
    with tempfile.TemporaryDirectory(prefix="rill-sim-camera-") as tmp:
        for r in range(rounds):
            for every in SETTINGS if r % 2 == 0 else reversed(SETTINGS):
                runs[every].append(run_actor(robot, every, ticks, Path(tmp) / f"{every}-{r}"))
    out: dict[str, Any] = {"robot": robot, "vla": ROBOTS[robot][2]}
    for every, results in runs.items():
        out[f"camera_every_{every}"] = {
            "ticks_per_s": round(statistics.median(x["ticks_per_s"] for x in results), 1),
            "ticks_per_s_runs": [round(x["ticks_per_s"], 1) for x in results],
            "render_share": round(statistics.median(x["render_share"] for x in results), 3),
            "render_ms_per_frame": round(statistics.median(x["render_ms"] for x in results), 2),
            "frames_per_run": results[0]["frames"],
        }
    slow, fast = out["camera_every_1"]["ticks_per_s"], out["camera_every_4"]["ticks_per_s"]
    out["speedup"] = round(fast / slow, 2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sim_camera", description=__doc__.splitlines()[0])
    parser.add_argument("--robot", choices=sorted(ROBOTS), default="metaworld",
                        help="the simulated robot and its VLA (default metaworld)")
    parser.add_argument("--ticks", type=int, help="timed ticks per run (default 1500; --quick: 200)")
    parser.add_argument("--rounds", type=int, help="rounds, the settings alternating (default 3; --quick: 1)")
    parser.add_argument("--quick", action="store_true", help="a short check (CI)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    ticks = args.ticks if args.ticks is not None else (200 if args.quick else 1500)
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    if ticks < 1 or rounds < 1:
        parser.error("--ticks and --rounds must be >= 1")
    os.environ.setdefault("MUJOCO_GL", "egl")
    report = measure(args.robot, ticks, rounds)
    rows = [[f"camera_every: {every}", report[f"camera_every_{every}"]["ticks_per_s"],
             f"{100 * report[f'camera_every_{every}']['render_share']:.0f} %",
             report[f"camera_every_{every}"]["render_ms_per_frame"]] for every in SETTINGS]
    title = (f"VLA actor on {ROBOTS[args.robot][0]}, {ticks} ticks x {rounds} rounds "
             f"(speed-up {report['speedup']}x)")
    print_table(title, ["camera", "ticks/s", "rendering", "ms per frame"], rows)
    meta = {**machine(), "quick": args.quick}
    write_json(args.json, {**report, "ticks": ticks, "rounds": rounds, "_meta": meta})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
