"""The reward model, for real: episodes recorded on the MuJoCo tabletop arm (the scripted expert
reaching and staying at the named block, the shipped VLA's own rollouts), a CI-sized
``rill reward train`` on them, and the trained classifier judging held-out episodes and a live
robot. It must tell success from failure in frames it never saw, refuse the same frame under
another block's name, and declare success on the robot only after consecutive confident frames.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import json

import numpy as np
import pytest
import torch

from agent.demos.record import RecordConfig, build_demo_policy, open_demo_cache, record_demos
from agent.reward.config import RewardSignalConfig, RewardTrainConfig
from agent.reward.data import (
    EARLY,
    FAILED_EPISODE,
    HARD,
    SUCCESS,
    FrameRules,
    labelled_frames,
    swap_instruction,
)
from agent.reward.evaluate import evaluate_episodes, evaluate_frames
from agent.reward.robot import RewardedRobot, with_reward_model
from agent.reward.trainer import train_reward_model
from hal.config import RobotConfig
from hal.errors import ConfigError
from hal.registry import make_robot
from policies.reward import RewardModelError, load_reward_model

COLORS = ["red", "blue", "yellow"]
RULES = {"swap_words": COLORS}
SIZE = 48  # frames small enough for a CI-sized training (the shipped model reads 96x96)


def arm(seed: int, steps: int, **params) -> dict:
    return {"name": "arm", "type": "sim-tabletop",
            "params": {"task": "reach", "state": "proprio", "colors": COLORS, "cameras": ["front"],
                       "image_height": SIZE, "image_width": SIZE, "max_delta": 1.0,
                       "terminate_on_success": False, "episode_steps": steps, "seed": seed, **params}}


def record(path, episodes: int, seed: int, policy: dict, source: str, steps: int):
    config = RecordConfig.from_dict({"robot": arm(seed, steps), "policy": policy, "out": path,
                                     "episodes": episodes, "source": source})
    robot = make_robot(config.robot)
    with robot, open_demo_cache(config) as cache:
        return record_demos(robot, build_demo_policy(config.policy, robot), cache, episodes, source)


def expert(seed: int) -> dict:
    return {"type": "tabletop-expert", "args": {"chunk_size": 2, "noise": 0.3, "seed": seed}}


VLA = {"type": "vla", "args": {"checkpoint": "pretrained:tabletop-reach"}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(2)  # the CI machine's two cores (training is 35-41 s on 2, 53 s on 1)
    root = tmp_path_factory.mktemp("reward")
    record(root / "expert", 200, 11_000, expert(11_000), "expert", 60)
    record(root / "vla", 50, 12_000, VLA, "policy", 70)
    record(root / "held-expert", 16, 13_000, expert(13_000), "expert", 60)
    record(root / "held-vla", 10, 14_000, VLA, "policy", 70)
    config = RewardTrainConfig.from_dict({"episodes": [str(root / "expert"), str(root / "vla")],
                                          "out": str(root / "model"), "steps": 3000, "batch_size": 64,
                                          "lr": 0.002, "shift": 2, "threads": 2, "log_every": 500,
                                          "rules": RULES, "target_precision": 0.95})
    # Batches of 64: with 32, the threshold chosen for precision 0.95 swung between 0.75 and 0.999
    # across training seeds on the same recordings (held-out frame recall 0.09-0.70); with 64 it
    # held for seeds 0-3 (frames: precision 0.91-0.99, recall 0.79-0.96; episodes: 0.74-0.94 /
    # 0.73-0.82).
    model, metrics = train_reward_model(config)
    return root, model, metrics


def test_episodes_are_labelled_by_what_the_robot_reported(trained):
    root = trained[0]
    data = labelled_frames([root / "held-expert"], "front", FrameRules(**RULES))
    counts = data.counts()
    assert counts["success"] > 0 and counts["early"] > 0 and counts["other goal"] == 2 * counts["success"]
    assert set(np.unique(data.labels[data.kinds == SUCCESS])) == {1.0}
    assert set(np.unique(data.labels[np.isin(data.kinds, [EARLY, FAILED_EPISODE, HARD])])) == {0.0}
    hard = [data.instructions[i] for i in np.flatnonzero(data.kinds == HARD)[:2]]
    own = data.instructions[int(np.flatnonzero(data.kinds == SUCCESS)[0])]
    assert all(h != own and h in swap_instruction(own, COLORS) for h in hard)
    assert swap_instruction("reach the red block", COLORS) == ["reach the blue block",
                                                               "reach the yellow block"]
    assert swap_instruction("put red on blue", COLORS) == []  # two goal words: no safe swap


def test_the_classifier_tells_success_in_episodes_it_never_saw(trained):
    root, model, metrics = trained
    held = [root / "held-expert", root / "held-vla"]
    frames = evaluate_frames(model, held, FrameRules(**RULES))
    # measured here: frames 0.92 / 0.74, other goal 1.0; episodes 0.86 / 0.75 (the shipped model,
    # trained on 700 episodes at 96x96: see bench.reward). Since the loop resets the arm once an
    # episode (2026-12-06) the same seeds record other scenes; on them training seeds 0-3 gave
    # frames 0.98-0.99 / 0.59-0.87 and episodes 0.94-1.0 / 0.68-0.91 on one thread, and on two
    # (2026-12-06) frames 0.96-0.99 / 0.67-0.87, episodes 0.91-1.0 / 0.77-0.95, other goal
    # 0.997-1.0: the threshold chosen for
    # precision 0.95 trades recall, so the floor is 0.5 (at precision >= 0.8: a quarter of the
    # held-out frames are successes, so guessing would be precise a quarter of the time).
    assert frames["precision"] >= 0.8 and frames["recall"] >= 0.5, frames
    assert frames["by_kind"]["other goal"] >= 0.9, frames  # it reads which block is meant
    episodes = evaluate_episodes(model, held, consecutive=3)
    assert episodes["precision"] >= 0.7 and episodes["recall"] >= 0.6, episodes
    saved = json.loads((root / "model" / "metrics.json").read_text())
    assert saved["held_out"]["threshold"] == pytest.approx(model.threshold)
    assert metrics["held_out"]["frames"] > 0


def test_a_saved_model_loads_exactly_and_damage_is_named(trained, tmp_path):
    root, model, _ = trained
    loaded = load_reward_model(root / "model")
    frame = np.random.default_rng(0).integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)
    assert loaded.probability(frame, ["reach the red block"]) == pytest.approx(
        model.probability(frame, ["reach the red block"]))
    assert loaded.threshold == pytest.approx(model.threshold)
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("reward_model.json", "model.safetensors"):
        (bad / name).write_bytes((root / "model" / name).read_bytes())
    blob = bytearray((bad / "model.safetensors").read_bytes())
    blob[-5] ^= 0xFF
    (bad / "model.safetensors").write_bytes(bytes(blob))
    with pytest.raises(RewardModelError, match="checksum mismatch"):
        load_reward_model(bad)
    (bad / "model.safetensors").write_bytes((root / "model" / "model.safetensors").read_bytes())
    meta = json.loads((bad / "reward_model.json").read_text())
    meta["config"]["hidden"] = 64
    (bad / "reward_model.json").write_text(json.dumps(meta))
    with pytest.raises(RewardModelError, match=r"head\.0\.weight.*shape"):
        load_reward_model(bad)
    (bad / "reward_model.json").write_text('{"format": "rill-reward-model", "vers')
    with pytest.raises(RewardModelError, match="not readable JSON"):
        load_reward_model(bad)
    with pytest.raises(RewardModelError, match="no such directory"):
        load_reward_model(tmp_path / "missing")
    with pytest.raises(RewardModelError, match=r"frames must be uint8 \(48, 48, 3\)"):
        model.probability(frame[:40], ["reach the red block"])


def test_a_robot_whose_camera_does_not_fit_is_refused_by_name(trained):
    model = trained[1]
    small = make_robot(RobotConfig(**{**arm(0, 60), "params": {**arm(0, 60)["params"], "image_height": 64,
                                                                "image_width": 64}}))
    with pytest.raises(RewardModelError, match=r"frames of \(48, 48, 3\), the robot's are \(64, 64, 3\)"):
        RewardedRobot(small, model, RewardSignalConfig(model="x"))
    blind = make_robot(RobotConfig(**arm(0, 60, cameras=[])))
    with pytest.raises(RewardModelError, match=r"no camera 'image\.front'.*its cameras: none"):
        RewardedRobot(blind, model, RewardSignalConfig(model="x"))


def test_on_a_live_robot_success_is_declared_once_after_consecutive_confident_frames(tmp_path):
    # The shipped model at its own 96x96: the CI-sized one trained above (48x48) tells held-out frames
    # apart, but on a live arm it declared success a few ticks early in 5 of 6 episodes on one CPU
    # and passed on another; what this test checks is the declaring, and the shipped model's quality.
    config = RewardSignalConfig(model="pretrained:tabletop-reach", consecutive=3, success_reward=5.0)
    robot = with_reward_model(make_robot(RobotConfig(**arm(15_000, 80, image_height=96, image_width=96))),
                              config)
    policy = build_demo_policy(RecordConfig.from_dict({"robot": arm(0, 80), "policy": expert(1),
                                                       "out": str(tmp_path / "unused")}).policy, robot)
    assert {"reward_confidence", "task_success"} <= set(robot.observation_spec)
    declared_on, right, rewards = [], 0, []
    with robot:
        for episode in range(6):
            robot.reset()
            confident_run, truth = 0, []
            for tick in range(80):
                obs = robot.observe()
                rewards.append(float(obs["reward"]))
                truth.append(bool(obs["task_success"]))
                confident = obs["reward_confidence"] >= robot.detector.threshold
                confident_run = confident_run + 1 if confident else 0
                if obs["reward"] > 0:
                    declared_on.append((episode, tick))
                    assert confident_run >= 3 and obs["terminated"] and obs["success"]
                    right += any(truth[-6:])  # the simulator saw success within the last few ticks
                    break
                assert not obs["terminated"] and not obs["success"]
                robot.act(policy.act(obs).actions[0])
    # the expert reaches the block in nearly every episode; the shipped model is right in most
    assert len(declared_on) >= 4 and right >= len(declared_on) - 2, (declared_on, right)
    assert sorted(set(rewards)) == [0.0, 5.0] and rewards.count(5.0) == len(declared_on)


def test_bad_settings_are_refused_by_name(tmp_path):
    with pytest.raises(ConfigError, match=r"reward\.consecutive"):
        RewardSignalConfig(model="m", consecutive=0)
    with pytest.raises(ConfigError, match=r"reward\.threshold must be below 1"):
        RewardSignalConfig(model="m", threshold=1.5)
    with pytest.raises(ConfigError, match="held_out"):
        RewardTrainConfig(episodes=["a"], out="b", held_out=0.0)
    with pytest.raises(ConfigError, match=r"reward\.rules.*margn"):
        RewardTrainConfig.from_dict({"episodes": ["a"], "out": "b", "rules": {"margn": 2}})
    with pytest.raises(ConfigError, match="come from the episodes"):
        RewardTrainConfig(episodes=["a"], out="b", model={"image_height": 64})
    from agent.job.config import RunTrainConfig

    with pytest.raises(ConfigError, match=r"train\.reward\.model must name"):
        RunTrainConfig.from_dict({"reward": {"consecutive": 2}})
    from agent.reward.robot import SuccessDetector

    for consecutive in (0, -2):  # rill reward eval --consecutive 0 declared success on every episode
        with pytest.raises(ConfigError, match=rf"consecutive must be an integer >= 1, got {consecutive}"):
            SuccessDetector(None, 0.5, consecutive)


def test_an_operators_verdicts_in_a_learners_cache_label_frames(tmp_path):
    """Episodes a learning actor kept with its frames (``learner.keep_images``): the operator's
    success labels the final frame (and, under another block's name, a failure), the operator's
    failure the final frame and every third frame; an episode the reward model ended is not used."""
    from learners.cache import ReplayCache
    from learners.transition import Transition

    robot = make_robot(RobotConfig(**arm(21_000, 60)))
    with robot:
        frames = []
        for _ in range(12):
            frames.append(np.array(robot.observe()["image.front"]))
            robot.act(np.array([0.5, 0.2], np.float32))
    text, seq = "reach the red block", 0
    episodes = [(5, {"success": True, "label_source": "operator"}),
                (7, {"success": False, "label_source": "operator"}),
                (4, {"success": True})]  # ended by the reward model: its own word, not a label
    cache = ReplayCache(tmp_path / "learner-cache")
    for episode, (length, end) in enumerate(episodes):
        steps = []
        for step in range(length):
            seq += 1
            last = step == length - 1
            steps.append(Transition(
                {"state": np.zeros(4, np.float32), "image.front": frames[step]}, np.zeros(2, np.float32), 0.0,
                {"state": np.zeros(4, np.float32), **({"image.front": frames[11]} if last else {})},
                last and end.get("success", False), last and not end.get("success", False),
                actor_id="agent", seq=seq, episode=episode, step=step,
                extras={"instruction": text, **(end if last else {})}))
        cache.append_many(steps)
    cache.flush()
    cache.close()
    data = labelled_frames([tmp_path / "learner-cache"], "front", FrameRules(**RULES, failure_stride=3))
    assert data.counts() == {"success": 1, "early": 0, "failed episode": 1 + 3, "other goal": 2}
    success = int(np.flatnonzero(data.kinds == SUCCESS)[0])
    assert np.array_equal(data.frames[success], frames[11]) and data.instructions[success] == text
    assert sorted(data.instructions[i] for i in np.flatnonzero(data.kinds == HARD)) == [
        "reach the blue block", "reach the yellow block"]
