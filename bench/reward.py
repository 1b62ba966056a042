"""How well does the reward model tell success, and how well does a policy learn from it?

    MUJOCO_GL=egl python -m bench.reward [--quick] [--json OUT] [--model DIR] [--episodes N]
                                         [--runs RUN_MODEL RUN_TRUE] [--eval-episodes N]

**The classifier** (default: the one rill ships, ``pretrained:tabletop-reach``) on episodes it
never saw: the tabletop reach arm (proprioceptive state, one camera) driven from held-out seeds
(300,000 on) by the scripted expert (reaching and staying at the named block, with noise) and by
the shipped VLA (its own successes and failures), every frame labelled by the simulator
(``agent.reward.data``'s rules). Reported: frame precision and recall at the model's threshold,
the share right per kind of frame (success, early, failed episode, the same success frame under
another block's name), and per episode the ``SuccessDetector`` as a robot runs it (success after
three consecutive confident frames): declarations right or wrong, successes missed.

**Learning with it** (``--runs RUN_MODEL RUN_TRUE``: two finished ``rill run``s of the VLA main
job, one with ``config/sim_tabletop_vla_reward_model.yaml`` (reward and episode end from the
classifier), one with ``config/sim_tabletop_vla_success.yaml`` (the simulator's own success
reward, the same sparse bonus)): what each run's saved policy reaches on the same held-out scenes
(100 from seed 200,000, true success from the simulator), next to the VLA alone, and what each
run logged while it learned.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench.common import machine, print_table, write_json

SEED = 300_000
COLORS = ["red", "blue", "yellow"]


def _arm(seed: int, steps: int) -> dict:
    return {"name": "bench-arm", "type": "sim-tabletop",
            "params": {"task": "reach", "state": "proprio", "colors": COLORS, "cameras": ["front"],
                       "image_height": 96, "image_width": 96, "control_hz": 50, "max_delta": 1.0,
                       "terminate_on_success": False, "episode_steps": steps, "seed": seed}}


def record_held_out(root: Path, episodes: int, seed: int) -> list[Path]:
    """Held-out episodes by the noisy expert and by the shipped VLA; the caches' paths."""
    from agent.demos.record import RecordConfig, build_demo_policy, open_demo_cache, record_demos
    from hal.registry import make_robot

    expert = {"type": "tabletop-expert", "args": {"chunk_size": 2, "noise": 0.3, "seed": seed}}
    vla = {"type": "vla", "args": {"checkpoint": "pretrained:tabletop-reach"}}
    sources = [("expert", expert, seed, 70), ("policy", vla, seed + 10_000, 90)]
    paths = []
    for source, policy, first_seed, steps in sources:
        out = root / source
        config = RecordConfig.from_dict({"robot": _arm(first_seed, steps), "policy": policy, "out": str(out),
                                         "episodes": episodes, "source": source})
        robot = make_robot(config.robot)
        with robot, open_demo_cache(config) as cache:
            record_demos(robot, build_demo_policy(config.policy, robot), cache, episodes, source)
        paths.append(out)
    return paths


def classifier(model_path: str, episodes: int, seed: int) -> dict:
    from agent.reward.data import FrameRules
    from agent.reward.evaluate import evaluate_episodes, evaluate_frames
    from policies.reward import load_reward_model

    model = load_reward_model(model_path)
    with tempfile.TemporaryDirectory(prefix="bench-reward-") as tmp:
        start = time.perf_counter()
        paths = record_held_out(Path(tmp), episodes, seed)
        recorded = time.perf_counter() - start
        frames = evaluate_frames(model, paths, FrameRules(swap_words=COLORS))
        by_source = {p.name: evaluate_episodes(model, [p], consecutive=3) for p in paths}
        both = evaluate_episodes(model, paths, consecutive=3)
    return {"model": model_path, "threshold": model.threshold, "trained_held_out": model.info.get("held_out"),
            "episodes_per_source": episodes, "seeds": [seed, seed + 10_000], "frames": frames,
            "episodes": both, "episodes_by_source": by_source, "record_s": round(recorded, 1)}


def learning(runs: list[str], eval_episodes: int) -> dict:
    from agent.pretrain.evaluate import evaluate_policy
    from bench.vla import SEED as VLA_SEED
    from bench.vla import _robot, online_policy, run_summary
    from policies.vla.build import load_vla, pretrained_vla_path
    from policies.vla.policy import VLAPolicy

    out = {"eval_episodes": eval_episodes, "seeds": [VLA_SEED, VLA_SEED + eval_episodes - 1]}
    vla = VLAPolicy(load_vla(pretrained_vla_path("tabletop-reach")))
    base = evaluate_policy(vla, _robot(), eval_episodes, VLA_SEED)
    out["vla"] = base.to_dict()
    for name, run in zip(("reward_model", "true_reward"), runs):
        policy, saved = online_policy(run)
        r = evaluate_policy(policy, _robot(), eval_episodes, VLA_SEED)
        out[name] = {"run": run, "policy": saved, "held_out": r.to_dict(), "during_run": run_summary(run),
                     **true_success_during(run)}
    return out


def true_success_during(run: str) -> dict:
    """Where a reward model judged a run's episodes: the simulator's own success over the same
    episodes (``task_success``), and how often the model's word agreed with it."""
    import dataclasses

    from agent.actor.episodes import read_run_episodes
    from agent.job.summary import success_summary, success_text

    episodes = [e for e in read_run_episodes(Path(run)) if e.task_success is not None]
    if not episodes:
        return {}
    truth = success_summary([dataclasses.replace(e, success=e.task_success) for e in episodes])
    declared = [e for e in episodes if e.success]
    right = sum(bool(e.task_success) for e in declared)
    succeeded = sum(bool(e.task_success) for e in episodes)
    return {"true_success_during_run": {**dataclasses.asdict(truth), "text": success_text(truth)},
            "declared_vs_simulator": {"episodes": len(episodes), "declared": len(declared), "right": right,
                                      "precision": right / len(declared) if declared else None,
                                      "simulator_successes": succeeded,
                                      "recall": right / succeeded if succeeded else None}}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 episodes per source (CI)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--model", default="pretrained:tabletop-reach", help="a saved reward model")
    parser.add_argument("--episodes", type=int, help="held-out episodes per source (default 60; --quick: 4)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"first seed (default {SEED:,})")
    parser.add_argument("--runs", nargs=2, metavar=("RUN_MODEL", "RUN_TRUE"),
                        help="two finished VLA main-job runs: reward from the model, and the simulator's")
    parser.add_argument("--eval-episodes", type=int, default=100, help="held-out scenes per policy (--runs)")
    args = parser.parse_args(argv)
    os.environ.setdefault("MUJOCO_GL", "egl")
    import torch

    torch.set_num_threads(1)
    episodes = args.episodes or (4 if args.quick else 60)
    report = {"classifier": classifier(args.model, episodes, args.seed)}
    c = report["classifier"]
    f, e = c["frames"], c["episodes"]
    rows = [["frames", f["frames"], f["positives"], f"{f['precision']:.3f}", f"{f['recall']:.3f}",
             ", ".join(f"{k} {100 * v:.0f}%" for k, v in f["by_kind"].items())]]
    for name, ep in [("episodes", e), *c["episodes_by_source"].items()]:
        rows.append([name if name == "episodes" else f"  {name}", ep["episodes"], ep["successful"],
                     f"{ep['precision']:.3f}", f"{ep['recall']:.3f}",
                     f"{ep['right']} right, {ep['wrong']} wrong, {ep['missed']} missed"])
    print_table(f"reward model {args.model} (threshold {c['threshold']:.3f}) on held-out episodes from seed "
                f"{args.seed:,}", ["what", "n", "successes", "precision", "recall", ""], rows)
    if args.runs:
        report["learning"] = learn = learning(args.runs, args.eval_episodes)
        v = learn["vla"]
        rows = [["VLA alone", "", f"{100 * v['success_rate']:.0f}", f"{v['mean_ticks']:.0f}", ""]]
        for name in ("reward_model", "true_reward"):
            r = learn[name]
            rows.append([name.replace("_", " "), r["run"], f"{100 * r['held_out']['success_rate']:.0f}",
                         f"{r['held_out']['mean_ticks']:.0f}", r["during_run"]["success_text"]])
        print_table(f"learning on held-out scenes ({args.eval_episodes} from seed {learn['seeds'][0]:,})",
                    ["reward", "run", "success %", "mean ticks", "during the run"], rows)
        judged = learn["reward_model"].get("declared_vs_simulator")
        if judged:
            print(f"during the reward-model run the simulator saw: "
                  f"{learn['reward_model']['true_success_during_run']['text']}; the model declared "
                  f"{judged['declared']} successes, {judged['right']} of them real (precision "
                  f"{judged['precision']:.3f}, recall {judged['recall']:.3f} of the simulator's)")
    payload = {**report, "_meta": {**machine(), "quick": args.quick, "mujoco_gl": os.environ["MUJOCO_GL"]}}
    write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main()
