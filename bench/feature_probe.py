"""What a Meta-World VLA's features know about the scene: linear probes of the goal and the object.

    MUJOCO_GL=egl python -m bench.feature_probe [--quick] [--vla pretrained:metaworld-mt10]
                                                [--tasks reach-v3,push-v3,pick-place-v3]
                                                [--scenes 400] [--json OUT]

Online residual RL acts on the VLA's features (``ResidualPolicy``), so it can only correct toward
what those features encode. For each task, ``--scenes`` scenes are drawn (the k-th task's from seed
300,000 + 1,000 k, apart from the demonstrations' and the evaluations' seeds and from each other's
scenes); the VLA sees each scene's first frame, and a ridge
regression from its feature vector to the goal's and the object's positions (Meta-World's
privileged view, metres) is fitted on three quarters of the scenes and scored on the rest as R²
per axis (1: located; 0 or below: no better than the mean position). An axis along which a task
never moves its goal or object has no R² (``null``).
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from bench.common import machine, print_table, write_json

SEED = 300_000
TASK_SEED_STRIDE = 1_000  # each task its own scenes
TASKS = ("reach-v3", "push-v3", "pick-place-v3")
#: Slices of Meta-World's 39-D observation: the first object's position and the goal's.
QUANTITIES = {"object": slice(4, 7), "goal": slice(36, 39)}
RIDGE = 10.0  # penalty on standardized features; the R² hardly moves between 1 and 100 here


def probe_r2(x: np.ndarray, y: np.ndarray, train: int, ridge: float = RIDGE) -> list[float | None]:
    """Held-out R² per column of ``y`` of a ridge regression on standardized ``x`` fitted on the
    first ``train`` rows and scored on the others. ``None`` where the held-out column is constant."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if not 2 <= train < len(x):
        raise ValueError(f"probe_r2: need 2 <= train < {len(x)} rows, got train={train}")
    mu, sd = x[:train].mean(0), x[:train].std(0) + 1e-8
    xs, y0 = (x - mu) / sd, y[:train].mean(0)  # centred on the fitted rows: the intercept is y0, unpenalized
    a = xs[:train]
    w = np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T @ (y[:train] - y0))
    err = y[train:] - (y0 + xs[train:] @ w)
    spread = ((y[train:] - y[train:].mean(0)) ** 2).sum(0)
    return [None if s < 1e-12 else round(float(1.0 - e / s), 3) for e, s in zip((err**2).sum(0), spread)]


def probe_task(vla, task: str, scenes: int, seed: int) -> dict:
    from sim.metaworld.env import MetaWorldEnv

    env = MetaWorldEnv([task])
    features, scene = [], []
    try:
        for i in range(scenes):
            obs, _ = env.reset(seed=seed if i == 0 else None)
            chunk = vla.act({**obs, "timestamp": 0.0})
            features.append(chunk.features)
            scene.append(obs["privileged"])
    finally:
        env.close()
    x, p = np.stack(features), np.stack(scene).astype(np.float64)
    train = (3 * scenes) // 4
    out: dict = {"scenes": scenes, "train": train, "feature_dim": int(x.shape[1])}
    for name, cols in QUANTITIES.items():
        out[name] = {"r2": probe_r2(x, p[:, cols], train), "std_m": np.round(p[:, cols].std(0), 4).tolist()}
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="reach-v3 only, 40 scenes (CI)")
    parser.add_argument("--vla", default="pretrained:metaworld-mt10", help="a saved VLA or pretrained:NAME")
    parser.add_argument("--tasks", default=None, help=f"comma-separated tasks (default {','.join(TASKS)})")
    parser.add_argument("--scenes", type=int, help="scenes per task (default 400; --quick: 40)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"first scene's seed (default {SEED:,})")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    os.environ.setdefault("MUJOCO_GL", "egl")
    import torch

    from policies.vla.build import load_vla
    from policies.vla.policy import VLAPolicy
    from sim.metaworld.tasks import task_names

    torch.set_num_threads(1)
    if args.tasks:
        tasks = list(task_names(args.tasks.split(",")))
    else:
        tasks = ["reach-v3"] if args.quick else list(TASKS)
    scenes = args.scenes or (40 if args.quick else 400)
    if scenes < 8:
        parser.error("--scenes must be at least 8")
    vla = VLAPolicy(load_vla(args.vla))
    results = {task: probe_task(vla, task, scenes, args.seed + TASK_SEED_STRIDE * k)
               for k, task in enumerate(tasks)}

    def cell(r2: list) -> str:
        return " / ".join("-" if v is None else f"{v:.2f}" for v in r2)

    print_table(f"R² (x / y / z) of a ridge probe from the VLA's features, first frames of {scenes} scenes "
                f"({(3 * scenes) // 4} to fit)", ["task", "goal", "object"],
                [[t, cell(r["goal"]["r2"]), cell(r["object"]["r2"])] for t, r in results.items()])
    payload = {"vla": args.vla, "seed": args.seed, "ridge": RIDGE, "tasks": results,
               "_meta": {**machine(), "quick": args.quick, "mujoco_gl": os.environ["MUJOCO_GL"]}}
    write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main()
