"""The residual's privileged inputs (a simulation-only diagnostic): chosen entries of a simulator's
ground truth join the VLA's features before they are standardized, the learner's transitions carry
them, an evaluation rebuilt from the saved policy reads them too, and bad settings are refused."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import pytest

pytest.importorskip("metaworld")

import sim.robots  # noqa: F401  registers sim-metaworld
from agent.vla.features import NormalizedFeatures
from agent.vla.inputs import ResidualInputs
from hal.config import RobotConfig
from hal.errors import ConfigError
from hal.registry import make_robot
from policies.base import PolicyInputError
from tests.ports import free_port

VLA = "pretrained:metaworld-mt10"
GOAL = (36, 37, 38)  # Meta-World's goal position in its state vector
SAWYER = RobotConfig("sawyer", "sim-metaworld", {"tasks": ["reach-v3"], "episode_steps": 40,
                                                 "real_time": False, "reward": "progress", "seed": 3})


def test_the_goal_joins_the_features_before_they_are_standardized(vla):
    features = NormalizedFeatures(vla, vla.feature_dim, inputs=ResidualInputs(privileged=GOAL))
    assert features.out_dim == vla.feature_dim + 3
    goals = []
    with make_robot(SAWYER) as robot:
        for _ in range(4):  # four scenes, four goals
            robot.reset()
            obs = robot.observe()
            goals.append(obs["privileged"][list(GOAL)])
            chunk = features.act(obs)
            assert chunk.features.shape == (vla.feature_dim + 3,)
    stats = features.state_dict()
    assert stats["count"] == 4
    np.testing.assert_allclose(stats["mean"][-3:], np.mean(goals, axis=0), rtol=1e-6)
    assert np.ptp(np.array(goals)[:, 0]) > 0.01  # the scenes' goals differ, so the mean says something


def test_a_robot_without_ground_truth_and_bad_indices_are_refused(vla):
    features = NormalizedFeatures(vla, vla.feature_dim, inputs=ResidualInputs(privileged=GOAL))
    with make_robot(SAWYER) as robot:
        robot.reset()
        obs = robot.observe()
    no_truth = {k: v for k, v in obs.items() if k != "privileged"}
    with pytest.raises(PolicyInputError, match="no 'privileged' vector"):
        features.act(no_truth)
    with pytest.raises(PolicyInputError, match="index 39 is outside the observation's 39-entry"):
        NormalizedFeatures(vla, vla.feature_dim, inputs=ResidualInputs(privileged=(38, 39))).act(obs)
    for bad in [(-1,), (3, 3), ("36",)]:
        with pytest.raises(ValueError, match="privileged must be a list of distinct non-negative indices"):
            ResidualInputs(privileged=bad)
    from agent.job.config import RunTrainConfig

    with pytest.raises(ConfigError, match=r"train.privileged_inputs must be a list .* got \[36, 36\]"):
        RunTrainConfig(policy="vla-residual", vla=VLA, privileged_inputs=[36, 36])
    with pytest.raises(ConfigError, match=r"residual_sees_vla: false needs train\.privileged_inputs"):
        RunTrainConfig(policy="vla-residual", vla=VLA, residual_sees_vla=False)
    with pytest.raises(ValueError, match=r"vla_features: false needs privileged"):
        ResidualInputs(vla_features=False)


def test_without_the_vla_features_the_residual_sees_the_ground_truth_alone(vla):
    inputs = ResidualInputs(False, privileged=(0, 1, 2, *GOAL))
    features = NormalizedFeatures(vla, vla.feature_dim, inputs=inputs, time_limit=40)
    assert features.out_dim == 6 + 1
    with make_robot(SAWYER) as robot:
        robot.reset()
        obs = robot.observe()
        chunk = features.act({**obs, "episode_tick": 0})
    assert chunk.features.shape == (7,) and chunk.actions.shape == (4, 4)
    np.testing.assert_allclose(features.state_dict()["mean"], obs["privileged"][[0, 1, 2, *GOAL]], rtol=1e-6)


def test_the_learner_sees_the_goal_and_the_saved_policy_evaluates_with_it(tmp_path):
    from agent.vla.actor import VLAActor, VLAActorConfig
    from agent.vla.snapshot import POLICY_DIR, load_residual_policy
    from learners.cache import ReplayCache

    config = VLAActorConfig(learner=f"tcp://127.0.0.1:{free_port()}", actor_id="sawyer", run_dir=tmp_path,
                            vla_path=VLA, chunk_size=4, residual_scale=0.2, pace="fast", save_every_s=0.0,
                            durability="os-buffered", time_limit=40,
                            inputs=ResidualInputs(privileged=GOAL))
    with make_robot(SAWYER) as robot:
        actor = VLAActor(config, robot)
        try:
            dim = actor.vla.feature_dim + 3 + 1  # the features, the goal, the time
            assert actor.spec["obs_dim"] == dim
            actor.run(ticks=90)
        finally:
            actor.close()
    spool = ReplayCache(tmp_path / "actors" / "sawyer" / "spool")
    try:
        made = [t for _, t in spool.iter_transitions()]
    finally:
        spool.close()
    assert len(made) >= 15 and all(t.obs.shape == (dim,) for t in made)
    rebuilt = load_residual_policy(tmp_path / "actors" / "sawyer" / POLICY_DIR)
    assert rebuilt.feature_dim == dim
    with make_robot(SAWYER) as robot:
        robot.reset()
        obs = robot.observe()
        chunk = rebuilt.act({**obs, "episode_tick": 0})
        assert chunk.actions.shape == (4, 4) and np.all(np.isfinite(chunk.actions))
        with pytest.raises(PolicyInputError, match="privileged"):
            rebuilt.act({**{k: v for k, v in obs.items() if k != "privileged"}, "episode_tick": 0})


@pytest.mark.parametrize(("config", "extra"), [("sim_metaworld_vla.yaml", 0),
                                               ("sim_metaworld_vla_oracle.yaml", 3),
                                               ("sim_metaworld_vla_oracle_small.yaml", None)])
def test_rill_run_gives_the_learner_the_width_the_actor_sends(vla, config, extra):
    """The learner's observation width, worked out from the config alone, is the actor's: otherwise
    the learner refuses every hello and nothing is learned (an oracle run once went so for 40 min)."""
    from pathlib import Path

    from agent.job.prepare import prepare

    job = prepare(Path(__file__).resolve().parents[3] / "config" / config)
    t = job.train
    features = NormalizedFeatures(vla, vla.feature_dim, inputs=t.residual_inputs, time_limit=500)
    assert job.learner.obs_dim == features.out_dim
    assert features.out_dim == (7 if extra is None else vla.feature_dim + extra + 1)
