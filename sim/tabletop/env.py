"""``TabletopEnv``: the tabletop tasks as a gymnasium environment (ids in ``sim.tasks``).

Observation (``obs_mode="dict"``, a ``gymnasium.spaces.Dict``):

- ``state`` float32 ``[8 + 4n]`` for ``n`` blocks (``state_names()`` lists them): joint angles and
  velocities, pusher x/y, every block's x/y, the target's x/y, and every block relative to the
  pusher. Which block is the goal is *not* there: it is in the instruction and the image. For
  state-only learning ``goal_in_state`` appends it: ``"onehot"`` (or ``True``) a one-hot of the goal
  block (``[8 + 5n]``); ``"relative"`` that one-hot plus the goal block relative to the pusher,
  the target relative to the goal block and the task's approach point (``TabletopTask.
  approach_point``) relative to the pusher (``[14 + 5n]``), which a learner picks up far sooner
  than it learns to select a block by a one-hot.
- ``image.<camera>`` uint8 ``[H, W, 3]`` for each of ``cameras`` (default ``front`` at 96x96),
  rendered offscreen with one reused renderer.
- ``instruction`` str, e.g. "push the red block to the green target".

With ``obs_mode="state"`` the observation is the ``state`` vector alone (a flat ``Box``; nothing is
rendered), for plain state-only learners such as ``rill train``.

Action: float32 ``[2]`` in [-1, 1], the pusher's velocity in the table plane (x: right, y: away
from the arm), scaled to ``max_speed`` m/s; zero holds the arm still. Control runs at
``control_hz`` (default 50 Hz): each step integrates the physics for ``1 / control_hz`` s.

Reward (``sim.tabletop.task``): ``"progress"`` (default), how much closer the shaped distance got
this tick, or ``"distance"``, minus the shaped distance itself; plus a bonus on success.

``info``: ``success`` (bool), ``reach_distance`` (pusher to goal block), ``push_distance`` (goal
block to target), ``goal`` (colour) and ``instruction``. An episode terminates on success when
``terminate_on_success`` (default); the time limit comes from the registered ``max_episode_steps``.
``render_mode="rgb_array"`` renders the front camera at ``render_size`` for videos.
``camera_every > 1``: cameras slower than the control loop (``sim.camera_rate``); the frames they
hand out again are read-only (copy one to change it).

Everything an episode depends on lives in the MuJoCo state (the goal and phrasing in
``data.userdata``, the target on a mocap body, the arm's targets in ``data.ctrl``), so a
``mjSTATE_INTEGRATION`` snapshot resumes an episode exactly.
"""

from __future__ import annotations

import string
from typing import Any, ClassVar

import gymnasium as gym
import mujoco
import numpy as np

from sim.camera_rate import CameraRate
from sim.tabletop.arm import EndEffectorController, forward
from sim.tabletop.camera import CameraRenderer
from sim.tabletop.scene import CAMERAS, GEOMETRY, build_mjcf
from sim.tabletop.task import TabletopTask

DEFAULT_COLORS = ("red", "blue", "yellow")
INSTRUCTION_CHARSET = string.ascii_lowercase + " "
_GOAL, _PHRASING, _POTENTIAL = 0, 1, 2  # data.userdata slots


class TabletopEnv(gym.Env):
    """A two-link arm pushing coloured blocks on a table; see the module docstring."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(self, task: str = "push", colors: tuple[str, ...] = DEFAULT_COLORS, obs_mode: str = "dict",
                 cameras: tuple[str, ...] = ("front",), image_size: tuple[int, int] = (96, 96),
                 goal_in_state: bool | str = False, control_hz: float = 50.0,
                 terminate_on_success: bool = True, phrasing: str = "random", max_speed: float = 0.3,
                 success_bonus: float = 5.0, reward: str = "progress",
                 render_mode: str | None = None, render_size: tuple[int, int] = (240, 320),
                 camera_every: int = 1) -> None:
        if obs_mode not in ("dict", "state"):
            raise ValueError(f"obs_mode must be 'dict' or 'state', got {obs_mode!r}")
        unknown = [c for c in cameras if c not in CAMERAS]
        if unknown:
            raise ValueError(f"unknown cameras {unknown}; the scene has {list(CAMERAS)}")
        height, width = (int(v) for v in image_size)
        if not (8 <= height <= 480 and 8 <= width <= 640):
            raise ValueError(f"image_size must be within 8..480 x 8..640 pixels, got {tuple(image_size)}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if not control_hz > 0:
            raise ValueError(f"control_hz must be > 0, got {control_hz!r}")
        self.task = TabletopTask(task, tuple(colors), GEOMETRY.target_radius, success_bonus=success_bonus,
                                 phrasing=phrasing, reward=reward)
        self.colors = self.task.colors
        self.obs_mode = obs_mode
        self.cameras = tuple(cameras) if obs_mode == "dict" else ()
        self.camera_rate = CameraRate(camera_every)  # a camera slower than the control loop
        self.image_size = (height, width)
        if goal_in_state is True:
            goal_in_state = "onehot"
        if goal_in_state not in (False, None, "none", "onehot", "relative"):
            raise ValueError(f"goal_in_state must be false, 'onehot' or 'relative', got {goal_in_state!r}")
        self.goal_in_state = goal_in_state if goal_in_state in ("onehot", "relative") else None
        self.terminate_on_success = terminate_on_success
        self.render_mode = render_mode
        self.render_size = tuple(int(v) for v in render_size)

        # The control period is an exact number of physics steps of at most 2 ms.
        self.frame_skip = max(1, round(1.0 / (control_hz * GEOMETRY.timestep)))
        self.model = mujoco.MjModel.from_xml_string(
            build_mjcf(self.colors, timestep=1.0 / (control_hz * self.frame_skip)))
        self.data = mujoco.MjData(self.model)
        self.dt = self.model.opt.timestep * self.frame_skip
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.dt)}
        self.controller = EndEffectorController(self.dt, max_speed)
        joint = self.model.joint
        self._block_qpos = np.array([[joint(f"block_{c}_{a}").qposadr[0] for a in ("x", "y", "yaw")]
                                     for c in self.colors])
        self._block_xy = self._block_qpos[:, :2].reshape(-1)
        self._arm_qpos = np.array([joint("shoulder").qposadr[0], joint("elbow").qposadr[0]])
        self._arm_dof = np.array([joint("shoulder").dofadr[0], joint("elbow").dofadr[0]])
        self._camera = CameraRenderer(self.model)
        self._camera_ids = {name: self._camera.camera_id(name) for name in CAMERAS}

        self.state_dim = len(self.state_names())
        state_space = gym.spaces.Box(-np.inf, np.inf, (self.state_dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        if obs_mode == "state":
            self.observation_space = state_space
        else:
            spaces: dict[str, gym.Space] = {"state": state_space}
            for cam in self.cameras:
                spaces[f"image.{cam}"] = gym.spaces.Box(0, 255, (height, width, 3), np.uint8)
            spaces["instruction"] = gym.spaces.Text(96, min_length=1, charset=INSTRUCTION_CHARSET)
            self.observation_space = gym.spaces.Dict(spaces)

    # -- what the state holds ------------------------------------------------------------------
    def state_names(self) -> list[str]:
        """The meaning of each entry of ``state``, in order."""
        names = ["shoulder", "elbow", "shoulder_vel", "elbow_vel", "pusher_x", "pusher_y"]
        names += [f"{c}_{a}" for c in self.colors for a in ("x", "y")]
        names += ["target_x", "target_y"]
        names += [f"{c}_d{a}" for c in self.colors for a in ("x", "y")]
        if self.goal_in_state:
            names += [f"goal_{c}" for c in self.colors]
        if self.goal_in_state == "relative":
            names += ["goal_dx", "goal_dy", "goal_to_target_dx", "goal_to_target_dy",
                      "approach_dx", "approach_dy"]
        return names

    @property
    def goal(self) -> int:
        return int(self.data.userdata[_GOAL])

    @property
    def instruction(self) -> str:
        return self.task.instruction(self.goal, int(self.data.userdata[_PHRASING]))

    def pusher_xy(self) -> tuple[float, float]:
        q = self.data.qpos[self._arm_qpos]
        return forward(float(q[0]), float(q[1]))

    # -- gymnasium -----------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        goal, phrasing = self.task.sample_goal(self.np_random)
        if options and "goal" in options:  # a caller (a test, a demo) may pick the goal by colour
            wanted = options["goal"]
            if wanted not in self.colors:
                raise ValueError(f"options['goal'] must be one of {list(self.colors)}, got {wanted!r}")
            goal = self.colors.index(wanted)
        layout = self.task.sample_layout(self.np_random)
        d.userdata[_GOAL], d.userdata[_PHRASING] = goal, phrasing
        self.controller.place(d, *layout.pusher)
        d.qpos[self._block_qpos.reshape(-1)] = layout.blocks.reshape(-1)
        d.mocap_pos[0, :2] = layout.target
        mujoco.mj_forward(m, d)
        outcome = self._outcome(first=True)
        self.camera_rate.reset()  # a new episode, new frames
        return self._observation(), self._info(outcome)

    def step(self, action):
        action = np.asarray(action, np.float32).reshape(-1)
        if action.shape != (2,):
            raise ValueError(f"action of shape {action.shape}, expected (2,)")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action has NaN/inf: {action.tolist()}")
        self.controller.command(self.data, np.clip(action, -1.0, 1.0))
        mujoco.mj_step(self.model, self.data, nstep=self.frame_skip)
        outcome = self._outcome()
        terminated = bool(outcome.success and self.terminate_on_success)
        return self._observation(), float(outcome.reward), terminated, False, self._info(outcome)

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        mujoco.mj_kinematics(self.model, self.data)
        return self._camera.render(self.data, self._camera_ids["front"], *self.render_size)

    def close(self) -> None:
        self._camera.close()

    # -- pieces ---------------------------------------------------------------------------------
    def _outcome(self, first: bool = False):
        d = self.data
        block = d.qpos[self._block_qpos[self.goal, :2]]
        previous = None if first else float(d.userdata[_POTENTIAL])
        outcome = self.task.evaluate(self.pusher_xy(), block, d.mocap_pos[0], previous)
        d.userdata[_POTENTIAL] = outcome.potential
        return outcome

    def _state(self) -> np.ndarray:
        d = self.data
        pusher = np.array(self.pusher_xy())
        blocks = d.qpos[self._block_xy]
        parts = [d.qpos[self._arm_qpos], d.qvel[self._arm_dof], pusher, blocks, d.mocap_pos[0, :2],
                 blocks - np.tile(pusher, len(self.colors))]
        if self.goal_in_state:
            parts.append(np.eye(len(self.colors))[self.goal])
        if self.goal_in_state == "relative":
            goal = blocks[2 * self.goal: 2 * self.goal + 2]
            target = d.mocap_pos[0, :2]
            parts += [goal - pusher, target - goal, np.array(self.task.approach_point(goal, target)) - pusher]
        return np.concatenate(parts).astype(np.float32)

    def _observation(self):
        state = self._state()
        if self.obs_mode == "state":
            return state
        obs: dict[str, Any] = {"state": state}
        if self.cameras:
            obs.update(self.camera_rate.frames(self._frames))
        obs["instruction"] = self.instruction
        return obs

    def _frames(self) -> dict[str, np.ndarray]:
        mujoco.mj_kinematics(self.model, self.data)  # mj_step leaves poses one substep behind
        h, w = self.image_size
        return {f"image.{cam}": self._camera.render(self.data, self._camera_ids[cam], h, w)
                for cam in self.cameras}

    def _info(self, outcome) -> dict[str, Any]:
        return {"success": bool(outcome.success), "reach_distance": outcome.reach_distance,
                "push_distance": outcome.push_distance, "goal": self.colors[self.goal],
                "instruction": self.instruction}

