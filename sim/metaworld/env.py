"""``MetaWorldEnv``: one or more Meta-World tasks (Sawyer arm, MuJoCo) as a gymnasium env with the
observations a VLA and LeRobot use.

Observation (a dict):

- ``state`` (float32 [4]): the end effector's x, y, z and the gripper's opening (0 closed .. 1
  open), LeRobot's ``observation.state`` for Meta-World (the first four numbers of Meta-World's own
  observation);
- ``image.<camera>`` (uint8 HxWx3): the camera (default ``corner2``, placed where LeRobot places it)
  rendered offscreen, upright (none with ``render_mode=None``);
- ``instruction`` (str): the task's description (``sim.metaworld.tasks.INSTRUCTIONS``);
- ``privileged`` (float32 [39]): Meta-World's full observation, goal included: for the scripted
  experts and evaluation only; a policy that uses it is not a VLA.

With ``observation="privileged"`` the observation is instead that [39] vector alone, flat (no
camera, no instruction): Meta-World's own state observation, for state-only learners such as
``rill train`` (the ``rill/MetaWorldState-*`` ids).

Action: float32 [4] in [-1, 1], the end effector's x, y, z displacement (Meta-World scales 1 to
1 cm per step) and the gripper (-1 open, +1 close). Meta-World steps at 80 Hz (5 substeps of
2.5 ms). ``info["success"]`` is Meta-World's success; the reward (``reward``):

- ``"dense"`` (default): Meta-World's dense task reward, a level of 0..10 per step that is highest
  at the goal. With ``terminate_on_success`` the episode's reward stream stops at success, so to a
  learner maximizing its return succeeding *costs* the rewards it would have earned near the goal
  until the time limit: it learns to hover short of success. Use it to compare with Meta-World's
  literature, not to learn online with episodes that end on success.
- ``"progress"``: how much the dense reward rose since the previous step (0 on an episode's first
  step), plus ``success_bonus`` on each step that succeeds. The rises telescope: an episode's
  undiscounted return is the dense reward it climbed plus the bonus, so an episode that ends on
  success forgoes nothing (with ``terminate_on_success=False`` the bonus is paid on every
  successful step instead). Meta-World's dense reward reads the action too on some tasks (the
  gripper command on pick-place), so this is not strictly potential-based shaping.
- ``"success"``: ``success_bonus`` on a step that succeeds, else 0 (what a success detector gives).

Episodes: each ``reset`` draws the objects' and goal's positions from the task's own random reset
space with the env's seeded generator (``reset(seed=...)``), so a seed gives the same scenes
whatever a policy does (Meta-World's benchmarks instead fix 50 positions per task). With several
``tasks`` the episodes take them in turn: the next task after an episode that ended (success or
time limit); an episode reset before it ended (a control loop that resets again, an aborted one)
is drawn anew on the same task, so no task is skipped. ``reset(seed=...)`` starts from the first.
An episode ends (``terminated``) on success when ``terminate_on_success``, and is truncated after
``episode_steps`` (Meta-World's 500 by default). ``camera_every > 1``: a camera slower than the
control loop (``sim.camera_rate``); the frames it hands out again are read-only (copy one to change
it).

Meta-World 3.1.1 pins MuJoCo 3.3.0; rill runs it on its own MuJoCo, installed with ``--no-deps``
(docs/results/metaworld.md says why), with the one change that needs (``_mocap_welds``), and one
fix of its reset: a forward pass after it, without which the first frame of an episode draws the
goal marker where a discarded draw put it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import mujoco
import numpy as np

from hal.errors import HalError
from sim import RenderingUnavailable, gl_hint
from sim.camera_rate import CameraRate
from sim.metaworld.pinhole import PinholeCamera
from sim.metaworld.tasks import INSTRUCTIONS, REWARDS, task_names
from sim.tabletop.camera import CameraRenderer

#: Meta-World's own episode limit (``SawyerXYZEnv.max_path_length``).
MAX_PATH_LENGTH = 500
CAMERAS = ("corner2", "corner", "corner3", "topview", "behindGripper", "gripperPOV")
#: Where LeRobot's Meta-World env puts ``corner2`` (nearer the table than Meta-World's default).
CORNER2_POS = (0.75, 0.075, 0.7)
STATE_DIM, PRIVILEGED_DIM, ACTION_DIM = 4, 39, 4
#: ``lerobot``: the dict above; ``privileged``: Meta-World's [39] state vector alone.
OBSERVATIONS = ("lerobot", "privileged")
# Offscreen rendering on a CPU (llvmpipe): shadows, reflections and 4x multisampling cost 7x.
# Without them a 96x96 frame of a Meta-World scene takes about 9 ms instead of 68.
RENDER_FLAGS = {mujoco.mjtRndFlag.mjRND_SHADOW: False, mujoco.mjtRndFlag.mjRND_REFLECTION: False}


class MetaWorldUnavailable(HalError):
    """Meta-World is not installed."""


def _metaworld_envs() -> dict[str, type]:
    try:
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS
    except ImportError as e:
        raise MetaWorldUnavailable(
            f"Meta-World is not installed ({e}); rill runs it on its own MuJoCo: "
            "pip install --no-deps metaworld==3.1.1 scipy (scripts/setup.sh does)") from e
    return ALL_V3_ENVIRONMENTS


def _mocap_welds(self) -> None:
    """Meta-World's ``reset_mocap_welds`` for any MuJoCo: it writes its 11 weld numbers (anchor,
    relative pose, torque scale) over the whole row, which MuJoCo 4 made 12 long; here they go into
    the first 11 and the rest keeps the compiled value."""
    model = self.model
    for i in range(model.neq):
        if model.eq_type[i] == mujoco.mjtEq.mjEQ_WELD:
            model.eq_data[i][:11] = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 5.0)


def make_sawyer(task: str):
    """A Meta-World env of ``task`` with the goal observable and positions drawn from its
    ``np_random``."""
    cls = _metaworld_envs()[task]
    env = type(cls.__name__, (cls,), {"reset_mocap_welds": _mocap_welds})()
    if env._partially_observable:  # the experts need the goal; the policy never sees it
        env._partially_observable = False
        del env.sawyer_observation_space  # a cached property of the observability
    env._set_task_called = True
    # Positions are drawn from env.np_random, which MetaWorldEnv shares with its own seeded one.
    # (Frozen positions would not do: several tasks redraw in a loop until goal and object are
    # apart, and a frozen draw never changes.)
    env._freeze_rand_vec, env.seeded_rand_vec = False, True
    return env


class MetaWorldEnv(gym.Env):
    """Meta-World ``tasks`` as one env; see the module docstring."""

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 80}

    def __init__(self, tasks: str | list[str] = "reach-v3", camera: str = "corner2",
                 image_size: tuple[int, int] = (96, 96), episode_steps: int = MAX_PATH_LENGTH,
                 terminate_on_success: bool = True, render_mode: str | None = "rgb_array",
                 reward: str = "dense", success_bonus: float = 10.0, observation: str = "lerobot",
                 camera_every: int = 1) -> None:
        self.tasks = task_names(tasks)
        self.camera_rate = CameraRate(camera_every)  # a camera slower than the control loop
        if observation not in OBSERVATIONS:
            raise ValueError(f"observation must be one of {', '.join(OBSERVATIONS)}, got {observation!r}")
        self.observation = observation
        if observation == "privileged":
            render_mode = None  # a flat state: nothing to render
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {', '.join(REWARDS)}, got {reward!r}")
        if not (np.isfinite(success_bonus) and success_bonus >= 0):
            raise ValueError(f"success_bonus must be a finite number >= 0, got {success_bonus!r}")
        self.reward, self.success_bonus = reward, float(success_bonus)
        self._last_dense: float | None = None  # the dense reward of the episode's previous step
        if camera not in CAMERAS:
            raise ValueError(f"camera must be one of {', '.join(CAMERAS)}, got {camera!r}")
        if not 1 <= episode_steps <= MAX_PATH_LENGTH:
            raise ValueError(f"episode_steps must be within 1..{MAX_PATH_LENGTH}, got {episode_steps!r}")
        self.camera, self.image_size = camera, tuple(image_size)
        self.episode_steps, self.terminate_on_success = episode_steps, terminate_on_success
        self.render_mode = render_mode
        self._sims = {task: make_sawyer(task) for task in self.tasks}
        for sim in self._sims.values():
            sim.max_path_length = episode_steps
            if camera == "corner2":
                sim.model.cam_pos[sim.model.camera(camera).id] = CORNER2_POS
        self._renderers: dict[str, CameraRenderer] = {}
        self._index, self._ended = 0, False  # the current task's index; whether its episode ended
        self.task = self.tasks[0]
        h, w = self.image_size
        spaces = {
            "state": gym.spaces.Box(-np.inf, np.inf, (STATE_DIM,), np.float32),
            "privileged": gym.spaces.Box(-np.inf, np.inf, (PRIVILEGED_DIM,), np.float32),
            f"image.{camera}": gym.spaces.Box(0, 255, (h, w, 3), np.uint8),
            "instruction": gym.spaces.Text(256, charset=_CHARSET),
        }
        if render_mode is None:  # no camera: state, privileged view and instruction only
            del spaces[f"image.{camera}"]
        self.observation_space = gym.spaces.Dict(spaces)
        if observation == "privileged":
            self.observation_space = spaces["privileged"]
        self.action_space = gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
        self.dt = float(self._sims[self.task].dt)

    @property
    def sim(self):
        """The Meta-World env of the current episode's task."""
        return self._sims[self.task]

    @property
    def instruction(self) -> str:
        return INSTRUCTIONS[self.task]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._index, self._ended = 0, False
        elif self._ended:  # the last episode ended: the next task's turn
            self._index = (self._index + 1) % len(self.tasks)
        self._ended = False
        self.task = self.tasks[self._index]
        sim = self.sim
        sim.np_random = self.np_random  # the objects' and goal's positions come from our seed
        obs, _ = sim.reset()
        # Meta-World places the goal by writing the model's site position after its last forward
        # pass (and gymnasium runs its reset_model twice), so until the first step the data, and
        # any frame rendered from it, still show a discarded goal. Recompute the derived
        # quantities so the first frame shows the goal the observation reports.
        mujoco.mj_forward(sim.model, sim.data)
        self._last_dense = None
        self.camera_rate.reset()  # a new episode, a new frame
        return self._observation(obs), {"success": False, "task": self.task}

    def step(self, action):
        action = np.clip(np.asarray(action, np.float64).reshape(ACTION_DIM), -1.0, 1.0)
        obs, dense, _, truncated, info = self.sim.step(action)
        success = bool(info.get("success", 0.0))
        terminated = success and self.terminate_on_success
        self._ended = self._ended or terminated or bool(truncated)
        return (self._observation(obs), self._reward(float(dense), success), terminated, bool(truncated),
                {"success": success, "task": self.task, "dense_reward": float(dense)})

    def _reward(self, dense: float, success: bool) -> float:
        if self.reward == "dense":
            return dense
        bonus = self.success_bonus if success else 0.0
        if self.reward == "success":
            return bonus
        rise = 0.0 if self._last_dense is None else dense - self._last_dense
        self._last_dense = dense
        return rise + bonus

    def _observation(self, obs: np.ndarray) -> dict[str, Any] | np.ndarray:
        if self.observation == "privileged":
            return obs.astype(np.float32)
        out: dict[str, Any] = {"state": obs[:STATE_DIM].astype(np.float32),
                               "privileged": obs.astype(np.float32)}
        if self.render_mode is not None:
            key = f"image.{self.camera}"
            out.update(self.camera_rate.frames(lambda: {key: self.render()}))
        out["instruction"] = self.instruction
        return out

    def pinhole(self) -> PinholeCamera:
        """The camera as it is now (its pose, focal length and frame size): where a world point lands
        in the frames ``render`` returns."""
        h, w = self.image_size
        return PinholeCamera.of(self.sim.model, self.sim.data, self.camera, h, w)

    def render(self) -> np.ndarray:
        """The camera's frame now, upright (Meta-World's cameras see the scene upside down)."""
        h, w = self.image_size
        try:
            renderer = self._renderers.get(self.task)
            if renderer is None:
                renderer = CameraRenderer(self.sim.model, RENDER_FLAGS, samples=0)
                self._renderers[self.task] = renderer
            frame = renderer.render(self.sim.data, self.camera, h, w)
        except Exception as e:  # no EGL / no display: mujoco and PyOpenGL raise several kinds
            raise RenderingUnavailable(f"cannot render Meta-World's {self.camera!r} camera offscreen: "
                                       f"{type(e).__name__}: {e}; {gl_hint()}") from e
        return np.ascontiguousarray(frame[::-1, ::-1])

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
        for sim in self._sims.values():
            sim.close()


_CHARSET = "".join(chr(c) for c in range(32, 127))
