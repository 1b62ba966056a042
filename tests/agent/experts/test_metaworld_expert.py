"""Meta-World's scripted experts as a rill Policy: they solve the MT10 tasks from the observation
(the task read from the instruction), act with smooth noise while keeping the clean label, and
refuse what they cannot act on."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import pytest

pytest.importorskip("metaworld")

from agent.experts.metaworld import MetaWorldExpert
from agent.policy_registry import policy_kind
from policies.base import PolicyInputError
from sim.metaworld.env import MetaWorldEnv
from sim.metaworld.tasks import INSTRUCTIONS, MT10, UnknownTaskError

SEEDS = (50_000, 50_001)  # held out from the demonstrations (0..) and the benchmark (100,000..)


def _episode(env: MetaWorldEnv, expert, seed: int | None) -> tuple[bool, int]:
    obs, _ = env.reset(seed=seed)
    for t in range(env.episode_steps):
        obs, _, terminated, truncated, info = env.step(expert(obs))
        if terminated or truncated:
            return info["success"], t + 1
    return False, env.episode_steps


def test_the_expert_solves_every_mt10_task_from_the_observation():
    env = MetaWorldEnv(list(MT10), render_mode=None)
    expert = MetaWorldExpert("MT10")
    outcomes = {}
    for seed in SEEDS:
        for k, task in enumerate(MT10):
            outcomes[task, seed] = _episode(env, expert, seed if k == 0 else None)
            assert env.task == task
    env.close()
    failed = [key for key, (success, _) in outcomes.items() if not success]
    assert not failed, failed
    assert max(steps for _, steps in outcomes.values()) < 250  # the experts are quick (mean ~70 steps)


def test_noise_moves_the_hand_but_the_label_stays_clean():
    env = MetaWorldEnv(["drawer-open-v3"], render_mode=None)
    obs, _ = env.reset(seed=7)
    expert = MetaWorldExpert(["drawer-open-v3"], noise=0.3, seed=1, chunk_size=3)
    chunk = expert.act(obs)
    clean = chunk.extras["expert_action"]
    np.testing.assert_array_equal(clean, MetaWorldExpert(["drawer-open-v3"]).action(obs))
    assert chunk.actions.shape == (3, 4) and np.all(np.abs(chunk.actions) <= 1.0)
    assert not np.allclose(chunk.actions[:, :3], clean[:3])  # the hand's motion is noisy
    np.testing.assert_array_equal(chunk.actions[:, 3], np.full(3, clean[3]))  # the gripper never is
    # Noise does not stop it: the clean labels still describe a successful demonstration.
    assert _episode(env, expert, 8)[0]
    env.close()


def test_what_the_expert_cannot_act_on_is_refused_by_name():
    expert = MetaWorldExpert(["push-v3", "push-back-v3", "reach-v3"])
    obs = {"privileged": np.zeros(39, np.float32), "instruction": INSTRUCTIONS["push-v3"]}
    with pytest.raises(PolicyInputError, match="shared by push-v3 and push-back-v3"):
        expert.act(obs)
    with pytest.raises(PolicyInputError, match="no instruction of the expert's tasks"):
        expert.act({**obs, "instruction": "Open a drawer"})
    with pytest.raises(PolicyInputError, match="'privileged'"):
        expert.act({"state": np.zeros(4), "instruction": INSTRUCTIONS["reach-v3"]})
    with pytest.raises(UnknownTaskError, match="close matches: reach-v3"):
        MetaWorldExpert(["reach-v2"])
    assert policy_kind("metaworld-expert", "demos", "policy.type").learns is False
