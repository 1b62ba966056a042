"""The residual's deployable inputs: chosen entries of the robot's ``state`` and a ``MarkerLocator``'s
answer (the marker's pixel in the frame) join what the residual heads see, the learner gets the
same width from the run's config, a saved policy rebuilds its locator for evaluation, and bad
settings are refused by name."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("metaworld")

import sim.robots  # noqa: F401  registers sim-metaworld
from agent.vla.features import NormalizedFeatures
from agent.vla.inputs import ResidualInputs
from hal.config import RobotConfig
from hal.errors import ConfigError
from hal.registry import make_robot
from policies.base import PolicyInputError
from policies.vla.locator import LocatorConfig, MarkerLocator, load_locator
from tests.ports import free_port

VLA = "pretrained:metaworld-mt10"
HAND = (0, 1, 2)  # the end effector's x, y, z in LeRobot's Meta-World state
SAWYER = RobotConfig("sawyer", "sim-metaworld", {"tasks": ["reach-v3"], "episode_steps": 40,
                                                 "real_time": False, "reward": "progress", "seed": 3})
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def locator(tmp_path_factory):
    """An untrained locator, saved and loaded back: where it looks does not matter here."""
    import torch

    torch.manual_seed(0)
    path = MarkerLocator(LocatorConfig(tasks=("reach-v3",))).save(tmp_path_factory.mktemp("locator"))
    return path, load_locator(path)


def test_the_hand_and_the_located_goal_are_what_the_residual_sees(vla, locator):
    path, loc = locator
    inputs = ResidualInputs(False, state=HAND, locator=path)
    features = NormalizedFeatures(vla, vla.feature_dim, inputs=inputs, locator=loc, time_limit=40)
    assert features.out_dim == 3 + 2 + 1
    with make_robot(SAWYER) as robot:
        robot.reset()
        obs = robot.observe()
    chunk = features.act({**obs, "episode_tick": 0})
    assert chunk.features.shape == (6,) and chunk.actions.shape == (4, 4)
    seen = np.concatenate([obs["state"][list(HAND)], loc.locate(obs["image.corner2"])])
    np.testing.assert_allclose(features.state_dict()["mean"], seen, rtol=1e-5)
    with pytest.raises(PolicyInputError, match=r"'image\.corner2', which the observation lacks"):
        features.located({k: v for k, v in obs.items() if k != "image.corner2"})
    with pytest.raises(PolicyInputError, match=r"MarkerLocator expects a \(96, 96\) RGB uint8 frame"):
        features.act({**obs, "image.corner2": obs["image.corner2"][:48], "episode_tick": 0})
    with pytest.raises(PolicyInputError, match="state index 7 is outside the observation's 4-entry 'state'"):
        beyond = NormalizedFeatures(vla, vla.feature_dim, inputs=ResidualInputs(state=(0, 7)))
        beyond.act({**obs, "episode_tick": 0})
    with pytest.raises(ValueError, match="state must be a list of distinct non-negative indices"):
        ResidualInputs(state=(1, 1))
    with pytest.raises(ValueError, match="a locator was given, but the inputs name none"):
        NormalizedFeatures(vla, vla.feature_dim, inputs=ResidualInputs(state=HAND), locator=loc)
    # given the path alone, the features load the locator themselves
    own = NormalizedFeatures(vla, vla.feature_dim, inputs=inputs)
    np.testing.assert_array_equal(own.located(obs), loc.locate(obs["image.corner2"]))


def test_the_run_config_checks_the_inputs_and_gives_the_learner_their_width(vla, locator, tmp_path):
    from agent.job.config import RunTrainConfig
    from agent.job.prepare import prepare

    path, _ = locator
    with pytest.raises(ConfigError, match=r"train\.locator: .*nowhere holds no locator\.json"):
        RunTrainConfig(policy="vla-residual", vla=VLA, locator=str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=r"train.state_inputs must be a list of distinct .* got \[0, 0\]"):
        RunTrainConfig(policy="vla-residual", vla=VLA, state_inputs=[0, 0])
    with pytest.raises(ConfigError, match=r"train\.residual_sees_vla: false needs .*train\.state_inputs or "
                                          r"train\.locator"):
        RunTrainConfig(policy="vla-residual", vla=VLA, residual_sees_vla=False)
    raw = yaml.safe_load((REPO / "config" / "sim_metaworld_vla_locator.yaml").read_text())
    raw["train"]["locator"] = str(path)
    raw["run_dir"] = str(tmp_path / "run")
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(raw))
    job = prepare(config)
    t = job.train
    features = NormalizedFeatures(vla, vla.feature_dim, inputs=t.residual_inputs, time_limit=500)
    assert job.learner.obs_dim == features.out_dim == 6

    def refused(message: str, **train) -> None:
        config.write_text(yaml.safe_dump({**raw, "train": {**raw["train"], **train}}))
        with pytest.raises(ConfigError, match=message):
            prepare(config)

    refused(r"train\.state_inputs: index 4 is outside the robots' 4-entry state", state_inputs=[0, 4])
    refused(r"train\.privileged_inputs: index 50 is outside the 39-entry 'privileged' vector of robot "
            r"'sawyer-1'", privileged_inputs=[36, 50])
    small = MarkerLocator(LocatorConfig(image_size=(64, 64))).save(tmp_path / "small")
    refused(r"reads 64x64 frames of 'image\.corner2'; robot 'sawyer-1' gives \(96, 96, 3\)",
            locator=str(small))
    (small / "locator.safetensors").write_bytes(b"damaged")
    refused(r"train\.locator: .*locator\.safetensors: corrupt or truncated", locator=str(small))


def test_the_saved_policy_rebuilds_its_locator(tmp_path):
    from agent.vla.actor import VLAActor, VLAActorConfig
    from agent.vla.snapshot import POLICY_DIR, load_residual_policy
    from learners.checkpoint import CheckpointError

    path = MarkerLocator(LocatorConfig()).save(tmp_path / "locator")  # this test damages it below
    config = VLAActorConfig(learner=f"tcp://127.0.0.1:{free_port()}", actor_id="sawyer", run_dir=tmp_path,
                            vla_path=VLA, chunk_size=4, residual_scale=0.2, pace="fast", save_every_s=0.0,
                            durability="os-buffered", time_limit=40,
                            inputs=ResidualInputs(False, state=HAND, locator=str(path)))
    with make_robot(SAWYER) as robot:
        actor = VLAActor(config, robot)
        try:
            assert actor.spec["obs_dim"] == 6
            actor.run(ticks=20)
        finally:
            actor.close()
    saved = tmp_path / "actors" / "sawyer" / POLICY_DIR
    rebuilt = load_residual_policy(saved)
    with make_robot(SAWYER) as robot:
        robot.reset()
        obs = robot.observe()
    chunk = rebuilt.act({**obs, "episode_tick": 0})
    assert chunk.features.shape == (6,) and np.all(np.isfinite(chunk.actions))
    # the rebuilt residual reads the frame with the very locator the actor used
    np.testing.assert_array_equal(rebuilt.base.locator.locate(obs["image.corner2"]),
                                  load_locator(path).locate(obs["image.corner2"]))
    assert rebuilt.base.state_inputs == HAND
    # bench.metaworld evaluates it on the run's own camera, and refuses a robot whose frames it cannot read
    from bench.metaworld import check_frames, run_camera, task_robot

    for size, refused in ((96, False), (64, True)):
        (tmp_path / "config.yaml").write_text(yaml.safe_dump({"robots": [{
            "name": "sawyer", "type": "sim-metaworld",
            "params": {"tasks": ["reach-v3"], "image_height": size, "image_width": size}}]}))
        robot = task_robot("reach-v3", 40, run_camera(tmp_path))
        assert robot.params["image_height"] == size
        if refused:
            with pytest.raises(SystemExit, match=r"reads 96x96 frames of 'image\.corner2'; robot "
                                                 r"'metaworld-reach-v3' gives \(64, 64, 3\)"):
                check_frames(rebuilt, robot, str(tmp_path))
        else:
            check_frames(rebuilt, robot, str(tmp_path))
    # a locator retrained in the same place is not the one the policy learned with
    other = MarkerLocator(LocatorConfig()).save(tmp_path / "other")
    (path / "locator.safetensors").write_bytes((other / "locator.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="is not the one this policy was trained with"):
        load_residual_policy(saved)
    # ... nor does a restarted actor take statistics learned through the other locator
    from agent.vla.snapshot import restore_actor_policy
    from policies.streamx.normalization import RewardScaler
    from policies.vla import ResidualPolicy, VLAPolicy, load_vla

    vla = VLAPolicy(load_vla(VLA))
    features = NormalizedFeatures(vla, vla.feature_dim, time_limit=40, inputs=config.inputs)
    with pytest.raises(CheckpointError, match="saved with another locator than"):
        restore_actor_policy(saved, ResidualPolicy(features, features.out_dim, scale=0.2), features,
                             RewardScaler(0.99))
    (path / "locator.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match=r"the policy's locator cannot be loaded: "
                                              r".*locator\.safetensors: corrupt or truncated"):
        load_residual_policy(saved)


def test_a_locator_for_another_camera_size_is_refused(tmp_path):
    from agent.vla.actor import VLAActor, VLAActorConfig

    path = MarkerLocator(LocatorConfig(image_size=(64, 64))).save(tmp_path / "small")
    config = VLAActorConfig(learner=f"tcp://127.0.0.1:{free_port()}", actor_id="sawyer", run_dir=tmp_path,
                            vla_path=VLA, chunk_size=4, pace="fast", durability="os-buffered",
                            inputs=ResidualInputs(False, state=HAND, locator=str(path)))
    refused = pytest.raises(ValueError, match=r"reads 64x64 frames of 'image\.corner2'")
    with make_robot(SAWYER) as robot, refused:
        VLAActor(config, robot)
