"""The MuJoCo tabletop tasks: real simulation, real offscreen rendering (MUJOCO_GL=egl)."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sim.tasks  # noqa: F401  registers the rill/ ids
from sim import snapshot
from sim.envs import make_env
from sim.tabletop.env import TabletopEnv
from sim.tabletop.task import PHRASINGS


def _unwrapped(env_id: str, **kwargs) -> TabletopEnv:
    return gym.make(env_id, disable_env_checker=True, **kwargs).unwrapped


def scripted_push(env: TabletopEnv) -> np.ndarray:
    """Velocity toward a point behind the goal block, then through the block toward the target."""
    block = env.data.qpos[env._block_qpos[env.goal, :2]].copy()
    target = env.data.mocap_pos[0, :2].copy()
    pusher = np.array(env.pusher_xy())
    u = (target - block) / max(np.linalg.norm(target - block), 1e-6)
    along = float(np.dot(pusher - block, u))
    lateral = float(np.dot(pusher - block, [-u[1], u[0]]))
    if along > -0.03 or abs(lateral) > 0.015:  # not lined up behind the block yet
        aim = block - (0.085 if along > -0.03 else 0.055) * u
        v = (aim - pusher) / 0.03
    else:
        v = u + (block - pusher - along * u) / 0.02
    return (v / max(np.linalg.norm(v), 1.0)).astype(np.float32)


def test_env_steps_and_renders_the_front_camera():
    env = gym.make("rill/TabletopPush-v0")
    obs, info = env.reset(seed=0)
    assert set(obs) == {"state", "image.front", "instruction"}
    image = obs["image.front"]
    assert image.shape == (96, 96, 3) and image.dtype == np.uint8
    assert image.reshape(-1, 3).std(axis=0).max() > 10  # a scene, not a blank frame
    assert obs["state"].dtype == np.float32 and obs["state"].shape == (20,)
    for _ in range(15):  # the arm sweeps sideways
        obs, reward, terminated, truncated, info = env.step(np.array([1.0, 0.5], np.float32))
    assert np.abs(obs["image.front"].astype(int) - image).sum() > 1000
    assert not terminated and not truncated and np.isfinite(reward)
    assert {"success", "reach_distance", "push_distance", "goal", "instruction"} <= set(info)
    env.close()


def test_image_size_and_cameras_are_configurable_and_video_frames_render():
    env = gym.make("rill/TabletopReach-v0", image_size=(64, 80), cameras=("front", "top"),
                   render_mode="rgb_array")
    obs, _ = env.reset(seed=1)
    assert obs["image.front"].shape == (64, 80, 3) and obs["image.top"].shape == (64, 80, 3)
    assert not np.array_equal(obs["image.front"][:, :, 0].mean(), obs["image.top"][:, :, 0].mean())
    assert env.render().shape == (240, 320, 3)
    env.close()
    with pytest.raises(ValueError, match=r"unknown cameras \['wrist'\]"):
        TabletopEnv(cameras=("wrist",))


def test_the_arm_follows_the_velocity_command_and_holds_at_zero():
    env = _unwrapped("rill/TabletopReachState-v0")
    env.reset(seed=3)
    x0, y0 = env.pusher_xy()
    for _ in range(25):  # 0.5 s at 0.3 m/s toward +x
        env.step(np.array([1.0, 0.0], np.float32))
    x1, y1 = env.pusher_xy()
    assert 0.12 < x1 - x0 < 0.16 and abs(y1 - y0) < 0.02
    for _ in range(10):
        env.step(np.zeros(2, np.float32))
    held = env.pusher_xy()
    for _ in range(20):
        env.step(np.zeros(2, np.float32))
    np.testing.assert_allclose(env.pusher_xy(), held, atol=1e-3)


def test_instruction_names_the_sampled_goal():
    env = _unwrapped("rill/TabletopPush-v0", cameras=())
    goals, phrasings = set(), set()
    for seed in range(24):
        obs, info = env.reset(seed=seed)
        goal = info["goal"]
        goals.add(goal)
        text = obs["instruction"]
        assert text == info["instruction"]
        assert f"{goal} block" in text and "green" in text
        assert not any(f"{c} block" in text for c in env.colors if c != goal)
        phrasings.add(next(i for i, p in enumerate(PHRASINGS["push"]) if p.format(color=goal) == text))
    assert goals == {"red", "blue", "yellow"} and len(phrasings) > 1
    obs, info = env.reset(seed=0, options={"goal": "blue"})
    assert info["goal"] == "blue" and "blue block" in obs["instruction"]
    reach = _unwrapped("rill/TabletopReach-v0", cameras=(), phrasing="first")
    assert reach.reset(seed=0, options={"goal": "red"})[0]["instruction"] == "move to the red block"


def test_state_carries_no_goal_unless_asked():
    env = _unwrapped("rill/TabletopPush-v0", cameras=())
    red = env.reset(seed=5, options={"goal": "red"})[0]
    blue = env.reset(seed=5, options={"goal": "blue"})[0]
    np.testing.assert_array_equal(red["state"], blue["state"])  # only the instruction differs
    assert red["instruction"] != blue["instruction"]
    onehot = _unwrapped("rill/TabletopPushState-v0", goal_in_state="onehot")
    state, _ = onehot.reset(seed=5, options={"goal": "blue"})
    assert state.shape == (23,) and onehot.state_names()[-3:] == ["goal_red", "goal_blue", "goal_yellow"]
    np.testing.assert_array_equal(state[:20], blue["state"])
    np.testing.assert_array_equal(state[-3:], [0, 1, 0])
    relative = _unwrapped("rill/TabletopPushState-v0")  # the default of the state ids
    state, _ = relative.reset(seed=5, options={"goal": "blue"})
    names = relative.state_names()
    assert state.shape == (29,) and names[20:23] == ["goal_red", "goal_blue", "goal_yellow"]
    np.testing.assert_allclose(state[23:25], state[names.index("blue_dx"):names.index("blue_dy") + 1])
    np.testing.assert_allclose(state[25:27], state[12:14] - state[8:10], atol=1e-6)  # target - blue
    u = state[25:27] / np.linalg.norm(state[25:27])  # push from behind blue, away from the target
    np.testing.assert_allclose(state[27:29], state[23:25] - relative.task.PUSH_STANDOFF * u, atol=1e-6)


def _scripted_episode(env: TabletopEnv) -> tuple[list[float], list[float], dict, bool]:
    rewards, distances = [], []
    for _ in range(250):
        _, reward, terminated, truncated, info = env.step(scripted_push(env))
        rewards.append(reward)
        distances.append(info["push_distance"])
        if terminated or truncated:
            break
    return rewards, distances, info, terminated


def test_scripted_push_earns_reward_as_the_block_nears_the_target():
    env = _unwrapped("rill/TabletopPushState-v0")  # progress reward
    env.reset(seed=0)
    start = env.data.userdata[2]  # the shaped potential at the start
    rewards, distances, info, terminated = _scripted_episode(env)
    assert terminated and info["success"] and distances[-1] < env.task.target_radius
    assert distances[0] > 0.12  # the goal block started well outside the target
    bonus = env.task.success_bonus
    assert rewards[-1] > bonus  # the bonus, and the last bit of progress
    pushing = rewards[-15:-1]  # the last ticks of the push: the block nears the target
    assert all(r > 0 for r in pushing) and np.all(np.diff(distances[-15:]) < 0)
    # Progress telescopes: the return is the shaped distance closed (times the scale) plus the bonus.
    closed = env.data.userdata[2] - start
    assert sum(rewards) == pytest.approx(10.0 * closed + bonus, abs=1e-6)

    plain = _unwrapped("rill/TabletopPushState-v0", reward="distance")
    plain.reset(seed=0)
    rewards, distances, info, terminated = _scripted_episode(plain)
    assert terminated and rewards[-2] > rewards[0] and rewards[-1] > bonus - 0.1
    assert np.corrcoef(rewards[:-1], distances[:-1])[0, 1] < -0.5  # nearer: more reward


def test_success_fires_when_the_block_is_in_the_target():
    env = _unwrapped("rill/TabletopPushState-v0")
    env.reset(seed=2)
    qx, qy, _ = env._block_qpos[env.goal]
    target = env.data.mocap_pos[0, :2].copy()
    env.data.qpos[[qx, qy]] = target + np.array([0.07, 0.0])  # outside the 5 cm disc
    _, _, terminated, _, info = env.step(np.zeros(2, np.float32))
    assert not info["success"] and not terminated
    env.data.qpos[[qx, qy]] = target + np.array([0.02, 0.0])  # inside
    _, reward_in, terminated, _, info = env.step(np.zeros(2, np.float32))
    assert info["success"] and terminated and reward_in > env.task.success_bonus  # bonus and progress
    stay = _unwrapped("rill/TabletopPushState-v0", terminate_on_success=False)
    stay.reset(seed=2)
    qx, qy, _ = stay._block_qpos[stay.goal]
    stay.data.qpos[[qx, qy]] = stay.data.mocap_pos[0, :2]
    _, _, terminated, _, info = stay.step(np.zeros(2, np.float32))
    assert info["success"] and not terminated


def test_reach_succeeds_at_the_goal_block():
    env = _unwrapped("rill/TabletopReachState-v0")
    env.reset(seed=4)
    for _ in range(150):
        block = env.data.qpos[env._block_qpos[env.goal, :2]]
        v = (block - np.array(env.pusher_xy())) / 0.02
        _, reward, terminated, _, info = env.step((v / max(np.linalg.norm(v), 1.0)).astype(np.float32))
        if terminated:
            break
    assert terminated and info["success"] and info["reach_distance"] < 0.05 and reward > 4.5


@pytest.mark.filterwarnings("ignore:.*Box observation space m")  # state is unbounded on purpose
@pytest.mark.parametrize("env_id", ["rill/TabletopPush-v0", "rill/TabletopReachState-v0"])
def test_gymnasium_env_checker_passes(env_id):
    env = _unwrapped(env_id)
    check_env(env, skip_render_check=True)
    env.close()


def test_state_learners_are_pointed_at_the_state_ids():
    assert make_env("rill/TabletopReachState-v0").observation_space.shape == (29,)
    with pytest.raises(ValueError, match=r"\['image.front', 'instruction'\].*rill/TabletopPushState-v0"):
        make_env("rill/TabletopPush-v0")


def test_a_snapshot_resumes_an_episode_exactly():
    env = make_env("rill/TabletopPushState-v0")
    env.reset(seed=7)
    rng = np.random.default_rng(0)
    for _ in range(20):
        env.step(rng.uniform(-1, 1, 2).astype(np.float32))
    state, arrays = snapshot.capture(env, mid_episode=True)
    actions = rng.uniform(-1, 1, (30, 2)).astype(np.float32)
    first = [env.step(a)[:2] for a in actions]
    other = make_env("rill/TabletopPushState-v0")
    other.reset(seed=123)  # another layout and goal: all of it must come from the snapshot
    snapshot.restore(other, state, arrays)
    again = [other.step(a)[:2] for a in actions]
    for (o1, r1), (o2, r2) in zip(first, again):
        np.testing.assert_array_equal(o1, o2)
        assert r1 == r2
