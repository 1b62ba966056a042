"""Meta-World end to end, CI-sized: the scripted expert's demonstrations through ``rill demos
record``, exported as a LeRobotDataset v3, a short ``rill pretrain`` whose VLA opens the drawer on
held-out scenes where random actions never do, a dataset from another task set refused by name,
and the pretrained VLA driving the Sawyer through ``rill run``.

``drawer-open-v3`` at 32x32 (the smallest frame the tiny VLA takes): the drawer's place varies from
scene to scene, so the policy must see it. Measured while writing this test: 16 demonstrations,
300 steps (about 10 s on one thread), 7 of 10 held-out scenes opened; random actions 0 of 10.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest
import torch
import yaml

pytest.importorskip("metaworld")

from agent.demos.episodes import DemoSetError, read_demos
from agent.experts.baselines import RandomPolicy
from agent.pretrain.config import PretrainConfig
from agent.pretrain.evaluate import evaluate_policy
from agent.pretrain.trainer import Pretrainer
from hal.config import RobotConfig
from policies.vla.build import load_vla
from policies.vla.policy import VLAPolicy

REPO = Path(__file__).resolve().parents[3]
TASK, SIZE, DEMOS, STEPS = "drawer-open-v3", 32, 16, 300
EVAL_EPISODES, EVAL_SEED = 10, 400_000  # held out: the demonstrations use seeds from 1,000
PARAMS = {"tasks": [TASK], "image_height": SIZE, "image_width": SIZE, "episode_steps": 200}


def _env(tmp: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "RILL_HOME": str(tmp / "home"), "MUJOCO_GL": "egl"}


def _cli(tmp: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], cwd=REPO, env=_env(tmp),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("metaworld")
    config = {"robot": {"name": "sawyer", "type": "sim-metaworld", "params": {**PARAMS, "seed": 1000}},
              "policy": {"type": "metaworld-expert", "args": {"tasks": [TASK], "noise": 0.1, "seed": 0}},
              "episodes": DEMOS, "out": str(root / "demos")}
    (root / "demos.yaml").write_text(yaml.safe_dump(config))
    recorded = _cli(root, "demos", "record", str(root / "demos.yaml"))
    assert recorded.returncode == 0, (recorded.stdout + recorded.stderr)[-3000:]
    torch.set_num_threads(1)
    pretrain = PretrainConfig.from_dict({
        "demos": str(root / "demos"), "out": str(root / "run"), "chunk_size": 4, "steps": STEPS,
        "batch_size": 32, "lr": 1e-3, "warmup_steps": 20, "val_episodes": 2, "checkpoint_every": STEPS,
        "log_every": 100, "seed": 0, "only_successful": True, "counterfactual": False,
        "extra": {"instruction_first": True}})
    Pretrainer(pretrain).run()
    return root


def test_expert_demonstrations_are_recorded_and_export_to_lerobot(pipeline):
    demos = read_demos(pipeline / "demos")
    assert len(demos.episodes) == DEMOS and len(demos.successful) >= DEMOS - 2
    assert demos.instructions == {"Open a drawer"}
    assert demos.features.state_dim == 4 and demos.features.action_dim == 4
    assert demos.features.cameras == {"corner2": (SIZE, SIZE, 3)}
    step = demos.episodes[0].steps[0]
    assert step.extras["control_hz"] == 80.0 and "label" in step.extras  # noisy expert, clean label
    out = pipeline / "lerobot"
    exported = _cli(pipeline, "cache", "export", str(pipeline / "demos"), "--format", "lerobot",
                    "--out", str(out))
    assert exported.returncode == 0, (exported.stdout + exported.stderr)[-3000:]
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["fps"] == 80 and info["total_episodes"] == DEMOS
    assert info["features"]["observation.state"]["shape"] == [4]
    assert info["features"]["action"]["shape"] == [4]
    assert info["features"]["observation.images.corner2"]["shape"][:2] == [SIZE, SIZE]
    tasks = (out / "meta" / "tasks.parquet").read_bytes()
    assert b"Open a drawer" in tasks


def test_a_short_pretraining_beats_random_actions_on_held_out_scenes(pipeline):
    # A frame per chunk of four: the VLA plans from the very frames it would have at every tick.
    robot = RobotConfig("sawyer-eval", "sim-metaworld", {**PARAMS, "camera_every": 4})
    vla = VLAPolicy(load_vla(pipeline / "run" / "model"))
    assert vla.period_s == pytest.approx(1 / 80)  # the rate the demonstrations were recorded at
    learned = evaluate_policy(vla, robot, EVAL_EPISODES, EVAL_SEED)
    random = evaluate_policy(RandomPolicy(seed=1, action_dim=4), robot, EVAL_EPISODES, EVAL_SEED)
    assert random.successes == 0  # the drawer does not open by chance
    assert learned.success_rate >= 0.4, learned.to_dict()


def test_demonstrations_of_another_task_set_are_refused_by_name(pipeline, tmp_path):
    config = PretrainConfig.from_dict({
        "demos": str(pipeline / "demos"), "out": str(tmp_path / "run"), "steps": 1,
        "eval_robot": {"name": "mt10", "type": "sim-metaworld", "params": {"tasks": [TASK, "door-open-v3"]}}})
    with pytest.raises(DemoSetError, match=r"another task set.*1 of its 2 tasks never appear in them "
                                           r"\(door-open-v3\).*Open a drawer"):
        Pretrainer(config)
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_the_pretrained_vla_drives_the_sawyer_through_rill_run(pipeline, tmp_path):
    from agent.actor.episodes import read_run_episodes

    spec = yaml.safe_load((REPO / "config" / "sim_metaworld_vla.yaml").read_text())
    spec["run_dir"] = str(tmp_path / "run")
    spec["robots"][0]["params"].update(PARAMS)
    spec["train"].update(vla=str(pipeline / "run" / "model"), steps_per_actor=260)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump(spec))
    out = _cli(tmp_path, "run", str(cfg), timeout=400)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    summary = json.loads((tmp_path / "run" / "actors" / "actor-0" / "summary.json").read_text())
    assert summary["ticks"] == 260 and summary["loop"]["policy_failures"] == 0, summary
    assert summary["acked_seq"] == summary["seq"] > 0 and summary["backlog"] == 0, summary
    episodes = read_run_episodes(tmp_path / "run")
    # Whole episodes, each ended by the robot: success or its 200-step limit (the tick that sees
    # the end is counted too).
    assert len(episodes) >= 1, episodes
    assert all(e.ended_by == "robot" and e.length <= 201 for e in episodes), episodes
