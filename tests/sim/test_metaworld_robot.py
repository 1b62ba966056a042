"""Meta-World's Sawyer keeps the hal.Robot contract (specs, guards, clamping, watchdog, faults, real
time), draws seeded scenes, names its tasks, and refuses bad input by name."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("metaworld")

import sim.robots
import sim.tasks  # noqa: F401  the rill/MetaWorld-* gymnasium ids
from hal.config import RobotConfig
from hal.errors import ConfigError
from hal.registry import make_robot, probe_robot, robot_class, validate_robot
from hal.robot import RobotError
from sim.metaworld.robot import MetaWorldRobot
from sim.metaworld.tasks import INSTRUCTIONS, MT10, UnknownTaskError, task_name

REPO = Path(__file__).resolve().parents[2]
KEYS = {
    "state",
    "privileged",
    "image.corner2",
    "instruction",
    "reward",
    "terminated",
    "truncated",
    "success",
    "timestamp",
}


def _robot(**params) -> MetaWorldRobot:
    return make_robot(RobotConfig("sawyer-t", "sim-metaworld", params))


def _wait_for(condition, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_robot_declares_specs_before_connecting():
    robot = _robot(tasks=["push-v3"], image_height=64, image_width=80, max_delta=0.5)
    assert robot_class("sim-metaworld") is MetaWorldRobot
    assert not robot.is_connected and robot.control_hz == 80.0 and robot.episode_steps == 500
    action = robot.action_spec
    assert action.names == ("dx", "dy", "dz", "gripper") and action.shape == (4,)
    np.testing.assert_array_equal(action.low, -np.ones(4))
    np.testing.assert_array_equal(action.max_delta, np.full(4, 0.5))
    spec = {k: (v.shape, v.dtype) for k, v in robot.observation_spec.items()}
    assert spec == {
        "state": ((4,), "float32"),
        "privileged": ((39,), "float32"),
        "image.corner2": ((64, 80, 3), "uint8"),
        "instruction": ((), "str"),
        "reward": ((), "float32"),
        "terminated": ((), "bool"),
        "truncated": ((), "bool"),
        "success": ((), "bool"),
    }
    with pytest.raises(RobotError, match="not connected"):
        robot.observe()
    assert MetaWorldRobot.task_instructions({"tasks": "MT10"}) == {t: INSTRUCTIONS[t] for t in MT10}


def test_robot_observes_the_task_and_clamps_actions():
    with _robot(tasks=["reach"], max_delta=0.5) as robot:
        obs = robot.observe()
        assert set(obs) == KEYS
        assert obs["instruction"] == "Reach a goal position" and obs["image.corner2"].shape == (96, 96, 3)
        assert obs["image.corner2"].std() > 5  # a rendered scene, not a blank frame
        np.testing.assert_array_equal(obs["state"], obs["privileged"][:4])  # LeRobot's state: hand + gripper
        assert obs["reward"] == 0.0 and not obs["terminated"] and not obs["success"]
        hand = obs["state"][:3].copy()
        sent = robot.act(np.array([3.0, 0.0, 0.0, 0.0]))
        np.testing.assert_allclose(sent, [0.5, 0.0, 0.0, 0.0])  # per-tick delta from the held command
        for _ in range(10):
            sent = robot.act(np.array([3.0, 0.0, 0.0, 0.0]))
        np.testing.assert_allclose(sent, [1.0, 0.0, 0.0, 0.0])  # then the limits
        assert robot.health().clamped_actions == 11 and robot.steps == 11
        obs = robot.observe()
        assert obs["state"][0] - hand[0] > 0.03 and obs["reward"] > 0.0  # the hand moved +x, reward reported
        with pytest.raises(ValueError, match="shape"):
            robot.act(np.zeros(3))
    assert not robot.is_connected


def test_nonfinite_action_holds_and_refuses():
    with _robot() as robot:
        robot.act(np.zeros(4))
        steps = robot.steps
        with pytest.raises(ValueError, match="NaN"):
            robot.act(np.array([np.nan, 0.0, 0.0, 0.0]))
        assert robot.health().status == "holding" and robot.steps == steps


def test_watchdog_holds_position_and_keeps_the_grip():
    with _robot(watchdog_timeout_s=0.05) as robot:
        robot.act(np.array([0.5, 0.2, 0.0, 1.0]))  # moving, gripper closing
        state = robot.observe()["state"].copy()
        assert _wait_for(lambda: robot.health().watchdog_trips > 0)
        health = robot.health()
        assert health.watchdog_trips == 1 and health.status == "holding" and health.ok
        np.testing.assert_array_equal(robot.observe()["state"], state)  # the simulation stood still
        np.testing.assert_array_equal(robot._hold_command(), [0.0, 0.0, 0.0, 1.0])  # the grip is kept
        robot.act(np.zeros(4))
        assert robot.health().status == "ok"


def test_fault_file_is_a_latched_device_fault(tmp_path):
    fault = tmp_path / "estop"
    params = {"fault_file": str(fault)}
    assert probe_robot(RobotConfig("t", "sim-metaworld", params)).ok
    with _robot(**params) as robot:
        robot.act(np.zeros(4))
        fault.touch()
        health = robot.health()
        assert not health.ok and health.status == "fault" and str(fault) in health.detail
        with pytest.raises(RobotError, match="faulted"):
            robot.act(np.zeros(4))
        fault.unlink()
        assert robot.health().status == "fault"  # latched until the robot is reconnected
    fault.touch()
    assert probe_robot(RobotConfig("t", "sim-metaworld", params)).status == "fault"


def test_episodes_take_the_tasks_in_turn_and_restart_on_act():
    with _robot(tasks=["reach-v3", "drawer-open-v3"], episode_steps=3) as robot:
        seen = [robot.observe()["instruction"]]
        for _ in range(3):
            robot.act(np.zeros(4))
        assert robot.observe()["truncated"]
        robot.act(np.zeros(4))  # the next action begins the next episode: the next task
        assert robot.episode == 1 and not robot.observe()["truncated"]
        seen.append(robot.observe()["instruction"])
        # Reset before it ended: the same task again (a new scene), so no task is ever skipped.
        before = robot.observe()["privileged"].copy()
        obs = robot.reset()
        seen.append(obs["instruction"])
        assert not np.allclose(obs["privileged"][4:7], before[4:7])
        for _ in range(3):
            robot.act(np.zeros(4))
        seen.append(robot.reset()["instruction"])  # that one ended: back to the first task
        assert seen == ["Reach a goal position", "Open a drawer", "Open a drawer", "Reach a goal position"]
        assert robot.health().extra["current_task"] == "reach-v3"


def _scenes(seed: int, n: int = 3) -> list[np.ndarray]:
    with _robot(tasks=["push-v3"], seed=seed) as robot:
        out = [robot.observe()["privileged"].copy()]
        for _ in range(n - 1):
            out.append(robot.reset()["privileged"].copy())
    return out


def test_a_seed_gives_the_same_scenes_and_another_seed_others():
    first, again, other = _scenes(0), _scenes(0), _scenes(100_000)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    puck = [s[4:7] for s in first]
    assert not np.allclose(puck[0], puck[1])  # each episode draws a new position
    assert all(not np.allclose(a[4:7], b[4:7]) for a, b in zip(first, other, strict=True))


def test_real_time_keeps_moving_between_commands_and_stops_on_hold():
    with _robot(
        real_time=True, control_hz=200.0, watchdog_timeout_s=None, image_height=32, image_width=32
    ) as robot:
        start = robot.steps
        robot.act(np.array([0.0, 1.0, 0.0, 0.0]))  # one command, then none
        y0 = float(robot.observe()["state"][1])
        assert _wait_for(lambda: robot.steps >= start + 15)  # ticks go on without actions
        assert float(robot.observe()["state"][1]) - y0 > 0.02
        robot.hold("test")  # no displacement: the hand settles onto its target and stays there
        # How far it coasts before settling depends on how many ticks the command had (a loaded
        # machine lets more pass before the hold), so look for the settled hand within a bound.
        # The hand rings as it settles onto the mocap (10-tick moves measured: 33, 6, 4, 3, 0.07,
        # 0.37, 0.24, 0.07 mm, ...): one quiet window can be a turning point, so two in a row
        # under 1 mm count as settled (one under 3 mm once let a hand still moving 3.4 mm through).
        held, settled, quiet = robot.steps, None, 0
        while settled is None and robot.steps < held + 400:
            y1, at = float(robot.observe()["state"][1]), robot.steps
            assert _wait_for(lambda: robot.steps >= at + 10)  # noqa: B023 (at is read at once)
            quiet = quiet + 1 if abs(float(robot.observe()["state"][1]) - y1) < 1e-3 else 0
            if quiet == 2:
                settled = float(robot.observe()["state"][1])
        assert settled is not None, "the hand never settled after the hold"
        at = robot.steps
        assert _wait_for(lambda: robot.steps >= at + 20)
        assert abs(float(robot.observe()["state"][1]) - settled) < 3e-3  # and it stays there
    assert robot._sim is None


def test_params_are_validated_by_name():
    with pytest.raises(ConfigError, match=r"unknown field 'task'; did you mean 'tasks'"):
        validate_robot(RobotConfig("t", "sim-metaworld", {"task": "push-v3"}))
    with pytest.raises(ConfigError, match=r"params.camera must be one of corner2"):
        validate_robot(RobotConfig("t", "sim-metaworld", {"camera": "front"}))
    with pytest.raises(ConfigError, match=r"params.episode_steps must be within 1..500"):
        validate_robot(RobotConfig("t", "sim-metaworld", {"episode_steps": 501}))
    with pytest.raises(ConfigError, match=r"params.reward must be one of dense, progress, success"):
        validate_robot(RobotConfig("t", "sim-metaworld", {"reward": "shaped"}))
    with pytest.raises(ConfigError, match=r"params.success_bonus must be finite, got nan"):
        validate_robot(RobotConfig("t", "sim-metaworld", {"success_bonus": float("nan")}))
    with pytest.raises(ConfigError, match=r"params.success_bonus must be >= 0, got -1"):
        validate_robot(RobotConfig("t", "sim-metaworld", {"success_bonus": -1}))
    with pytest.raises(ConfigError, match=r"params.camera_every must be a positive integer, got 0"):
        validate_robot(RobotConfig("t", "sim-metaworld", {"camera_every": 0}))
    with pytest.raises(ConfigError, match=r"params.camera_every must be int, got '4'"):
        validate_robot(RobotConfig("t", "sim-metaworld", {"camera_every": "4"}))


def test_a_slower_camera_gives_a_new_frame_every_few_steps_and_the_last_one_between():
    from sim.metaworld.env import MetaWorldEnv

    def run(every: int) -> tuple[list[np.ndarray], int]:
        env = MetaWorldEnv(["reach-v3"], camera_every=every)
        rendered = 0
        render = env.render

        def counted() -> np.ndarray:
            nonlocal rendered
            rendered += 1
            return render()

        env.render = counted
        try:
            frames = []
            for seed in (3, 4):  # two episodes: a reset always brings a new frame
                obs, _ = env.reset(seed=seed)
                frames.append(obs["image.corner2"])
                for t in range(9):
                    obs, *_ = env.step(np.array([0.5, -0.5, 0.3 * (-1) ** t, 0.0]))
                    frames.append(obs["image.corner2"])
            return frames, rendered
        finally:
            env.close()

    every_tick, renders_1 = run(1)
    slow, renders_4 = run(4)
    assert renders_1 == 20 and renders_4 == 2 * 3  # steps 0, 4 and 8 of each episode
    for i, frame in enumerate(slow):
        due = i % 10 - i % 10 % 4  # the step of the newest frame the camera has given
        np.testing.assert_array_equal(frame, every_tick[i - i % 10 + due])
        assert not frame.flags.writeable
    assert not np.array_equal(every_tick[4], every_tick[3])  # the arm moved: frames do change


def _episode(env, expert, seed: int | None = None, steps: int = 500) -> tuple[list, list, bool]:
    """Up to ``steps`` scripted steps of ``env``'s next episode: its rewards, Meta-World's dense
    rewards, and whether it succeeded."""
    obs, _ = env.reset(seed=seed)
    rewards, dense, success = [], [], False
    for _ in range(steps):
        obs, r, terminated, truncated, info = env.step(expert.action(obs))
        rewards.append(r)
        dense.append(info["dense_reward"])
        success = info["success"]
        if terminated or truncated:
            break
    return rewards, dense, success


def _rewards(reward: str) -> tuple[list, list, bool]:
    from agent.experts.metaworld import MetaWorldExpert
    from sim.metaworld.env import MetaWorldEnv

    env = MetaWorldEnv(["pick-place-v3"], render_mode=None, reward=reward, success_bonus=7.0)
    try:
        return _episode(env, MetaWorldExpert(["pick-place-v3"]), seed=5)
    finally:
        env.close()


def test_a_reward_to_learn_from_ends_at_success_without_a_loss():
    # Meta-World's own reward is a level that peaks at the goal: an episode that ends on success
    # forgoes the rewards of staying near it. Progress pays the climb, then the bonus on success.
    dense_r, dense, success = _rewards("dense")
    assert success and dense_r == dense and len(dense) > 20
    progress, dense_again, _ = _rewards("progress")
    assert dense_again == dense  # the same episode: the reward is not fed back into the scene
    assert progress[0] == 0.0
    np.testing.assert_allclose(np.diff(dense), [*progress[1:-1], progress[-1] - 7.0], atol=1e-9)
    assert sum(progress) == pytest.approx(dense[-1] - dense[0] + 7.0)
    sparse, _, _ = _rewards("success")
    assert sparse == [0.0] * (len(dense) - 1) + [7.0]


def test_progress_starts_afresh_with_every_episode_and_task():
    from agent.experts.metaworld import MetaWorldExpert
    from sim.metaworld.env import MetaWorldEnv

    tasks = ["reach-v3", "pick-place-v3"]
    env = MetaWorldEnv(tasks, render_mode=None, reward="progress", success_bonus=7.0)
    expert = MetaWorldExpert(tasks)
    episodes = [_episode(env, expert, seed=11), _episode(env, expert, steps=5),  # cut short: drawn anew
                _episode(env, expert), _episode(env, expert)]  # pick-place, then reach again
    env.close()
    assert [len(e[0]) for e in episodes][1] == 5 and not episodes[1][2]
    assert episodes[0][2] and episodes[2][2] and episodes[3][2]
    for rewards, dense, success in episodes:
        assert rewards[0] == 0.0  # nothing carried over from the last episode or the other task
        assert sum(rewards) == pytest.approx(dense[-1] - dense[0] + (7.0 if success else 0.0))


@pytest.mark.parametrize(
    ("name", "close"),
    [
        ("pick-plce-v3", "pick-place-v3"),
        ("drawer-opn", "drawer-open-v3"),
        ("button-press-top", "button-press-topdown"),
    ],
)
def test_an_unknown_task_is_refused_with_close_matches(name, close):
    with pytest.raises(
        ConfigError, match=rf"robot 't'.*unknown Meta-World task '{name}'; close matches: .*{close}"
    ):
        validate_robot(RobotConfig("t", "sim-metaworld", {"tasks": [name]}))
    with pytest.raises(UnknownTaskError, match="close matches"):
        gym.make("rill/MetaWorld-push-v3", tasks=[name])
    assert task_name("push") == "push-v3" and task_name("PUSH-V3") == "push-v3"
    with pytest.raises(ConfigError, match="MT10"):
        validate_robot(RobotConfig("t", "sim-metaworld", {"tasks": "MT11"}))


def test_gymnasium_ids_make_the_tasks():
    env = gym.make("rill/MetaWorld-drawer-close-v3")
    obs, info = env.reset(seed=3)
    assert env.spec.max_episode_steps == 500 and obs["instruction"] == "Push and close a drawer"
    assert obs["image.corner2"].shape == (96, 96, 3) and obs["state"].dtype == np.float32
    obs, reward, _, _, info = env.step(env.action_space.sample())
    assert np.isfinite(reward) and "success" in info
    env.close()
    mt10 = gym.make("rill/MetaWorld-MT10-v3", render_mode=None, episode_steps=1)
    texts = []
    for i in range(10):
        obs, _ = mt10.reset(seed=0 if i == 0 else None)
        texts.append(obs["instruction"])
        assert mt10.step(np.zeros(4))[3]  # truncated after its one step: the next task's turn
    assert texts == [INSTRUCTIONS[t] for t in MT10] and "image.corner2" not in obs
    mt10.close()


def test_the_state_ids_give_state_learners_meta_worlds_own_observation(tmp_path):
    from agent.actor.episodes import read_episodes
    from agent.experts.metaworld import MetaWorldExpert
    from agent.train import Trainer
    from agent.train_config import TrainConfig
    from sim.envs import make_env

    env = make_env("rill/MetaWorldState-reach-v3")
    obs, _ = env.reset(seed=4)
    assert obs.shape == (39,) and obs.dtype == np.float32 and env.observation_space.shape == (39,)
    base = env.unwrapped
    assert base.render_mode is None and base.reward == "progress"
    expert, rewards = MetaWorldExpert(["reach-v3"]), []
    for _ in range(500):  # Meta-World's expert reads the same vector, and succeeds from it
        action = expert.action({"privileged": obs, "instruction": INSTRUCTIONS["reach-v3"]})
        obs, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
        if terminated or truncated:
            break
    assert terminated and info["success"] and rewards[-1] >= 10.0
    env.close()
    with pytest.raises(ValueError, match="observation must be one of lerobot, privileged, got 'pixels'"):
        gym.make("rill/MetaWorld-reach-v3", observation="pixels")
    with pytest.raises(ValueError, match="use rill/MetaWorldState-reach-v3 for state-only learning"):
        make_env("rill/MetaWorld-reach-v3")
    # rill train logs Meta-World's success with every episode (its success rate is the measure)
    run = tmp_path / "train"
    Trainer(TrainConfig(env="rill/MetaWorldState-reach-v3", steps=1200, run=str(run))).run()
    episodes = read_episodes(run / "metrics" / "episodes.csv")
    assert len(episodes) >= 2 and all(e.success in (True, False) for e in episodes)
    assert all(e.success == (e.length < 500) for e in episodes)  # an episode ends early on success


@pytest.mark.parametrize("backend", ["disable", "bogus"])
def test_no_offscreen_rendering_names_mujoco_gl(backend, tmp_path):
    code = (
        "import sim.robots\nfrom hal.config import RobotConfig\nfrom hal.registry import make_robot\n"
        "with make_robot(RobotConfig('m', 'sim-metaworld', {})) as r:\n    r.observe()\n"
    )
    env = {**os.environ, "MUJOCO_GL": backend}
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("sim.RenderingUnavailable") and f"MUJOCO_GL is '{backend}'" in last, run.stderr[
        -2000:
    ]
    # The CLI says the same in one line, and records nothing.
    config = tmp_path / "demos.yaml"
    config.write_text(
        f"robot: {{name: m, type: sim-metaworld, params: {{tasks: [reach-v3]}}}}\n"
        f"policy: {{type: metaworld-expert, args: {{tasks: [reach-v3]}}}}\n"
        f"episodes: 1\nout: {tmp_path / 'demos'}\n"
    )
    cli = subprocess.run(
        [sys.executable, "-m", "agent.cli", "demos", "record", str(config)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    said = " ".join((cli.stdout + cli.stderr).split())
    assert cli.returncode == 2 and "MUJOCO_GL" in said and "Traceback" not in said, said[-2000:]


@pytest.mark.parametrize("task", ["reach-v3", "push-v3", "pick-place-v3"])
def test_the_first_frame_shows_the_goal_the_observation_reports(task):
    """Meta-World writes the goal's site after its last forward pass: without a forward pass in
    reset, an episode's first frame drew the marker where a discarded draw had put it, so no
    policy or probe could find the goal in it."""
    import mujoco

    from sim.metaworld.env import MetaWorldEnv

    env = MetaWorldEnv([task], image_size=(64, 64))
    try:
        for i in range(3):
            obs, _ = env.reset(seed=7 if i == 0 else None)
            np.testing.assert_allclose(env.sim.data.site("goal").xpos, obs["privileged"][36:39], atol=1e-6)
            mujoco.mj_forward(env.sim.model, env.sim.data)  # what a step would show
            np.testing.assert_array_equal(obs["image.corner2"], env.render())
    finally:
        env.close()
