"""``MetaWorldExpert``: Meta-World's scripted policies (one per task, shipped with the ``metaworld``
package) as a rill ``Policy``, for demonstrations and as the success ceiling of ``bench.metaworld``.

It acts from the robot's observation: the task is the one of ``tasks`` whose instruction the
observation carries (``sim.metaworld.tasks.INSTRUCTIONS``), and the task's scripted policy reads
the simulator's ``privileged`` view (Meta-World's full 39-D observation, goal included). Two tasks
share an instruction (``push-v3`` and ``push-back-v3``); an expert whose ``tasks`` hold both cannot
tell them apart and refuses such an observation.

The action is the scripted one, clipped to the action space ([-1, 1]^4). ``noise`` (default 0)
adds temporally correlated Gaussian noise (AR(1), seeded by ``seed``) to the end-effector motion
only, never to the gripper (a twitching gripper drops what it holds); the clean action is in
``ActionChunk.extras["expert_action"]``, which a recorder keeps as the step's label. A chunk
holds the action for ``chunk_size`` ticks (1, the default, is exact for a stepped robot). No
weights: ``state_dict()`` is empty and ``version`` 0.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

from policies.base import ActionChunk, Observation, Policy, PolicyInputError
from sim.metaworld.tasks import INSTRUCTIONS, task_names

NOISE_CORRELATION = 0.9  # AR(1) coefficient per tick: smooth noise, a few ticks long
MOTION = slice(0, 3)  # the end-effector displacement; index 3 is the gripper


class MetaWorldExpert(Policy):
    """Meta-World's scripted experts; see the module docstring."""

    action_dim = 4

    def __init__(self, tasks: str | Sequence[str] = "MT50", period_s: float = 1.0 / 80.0, chunk_size: int = 1,
                 noise: float = 0.0, seed: int | None = None) -> None:
        # Several scripted policies use gains that saturate; Meta-World warns of it on every call.
        warnings.filterwarnings("ignore", message="Constant.*may be too high", category=UserWarning)
        try:
            from metaworld.policies import ENV_POLICY_MAP
        except ImportError as e:
            raise ImportError(f"the Meta-World expert needs the metaworld package ({e}); "
                              "scripts/setup.sh installs it") from e
        self.tasks = task_names(tasks if isinstance(tasks, str) else list(tasks), "expert tasks")
        if type(chunk_size) is not int or chunk_size < 1:
            raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
        if not noise >= 0.0:
            raise ValueError(f"noise must be >= 0, got {noise!r}")
        self.period_s, self.chunk_size, self.noise = float(period_s), chunk_size, float(noise)
        self._scripts = {task: ENV_POLICY_MAP[task]() for task in self.tasks}
        self._by_instruction: dict[str, list[str]] = {}
        for task in self.tasks:
            self._by_instruction.setdefault(INSTRUCTIONS[task], []).append(task)
        self._rng = np.random.default_rng(seed)
        self._noise = np.zeros(3)

    def task_of(self, instruction: str) -> str:
        """The task whose instruction ``instruction`` is."""
        found = self._by_instruction.get(str(instruction), [])
        if len(found) == 1:
            return found[0]
        if not found:
            raise PolicyInputError(f"instruction {instruction!r} is no instruction of the expert's tasks "
                                   f"({', '.join(self.tasks)})")
        raise PolicyInputError(f"instruction {instruction!r} is shared by {' and '.join(found)}; give the "
                               f"expert only one of them in its tasks")

    def action(self, observation: Observation) -> np.ndarray:
        """The clean scripted action for ``observation``."""
        if "privileged" not in observation:
            raise PolicyInputError("the Meta-World expert reads the simulator's 'privileged' view; the "
                                   "observation has none (is this a sim-metaworld robot?)")
        task = self.task_of(str(observation.get("instruction", "")))
        privileged = np.asarray(observation["privileged"], np.float64).reshape(-1)
        action = self._scripts[task].get_action(privileged)
        return np.clip(np.asarray(action, np.float32), -1.0, 1.0)

    def act(self, observation: Observation) -> ActionChunk:
        clean = self.action(observation)
        actions = np.repeat(clean[None, :], self.chunk_size, axis=0)
        if self.noise > 0.0:
            actions = actions.copy()
            fresh = math.sqrt(1.0 - NOISE_CORRELATION**2) * self.noise  # stationary std: noise
            for h in range(self.chunk_size):
                self._noise = NOISE_CORRELATION * self._noise + fresh * self._rng.standard_normal(3)
                actions[h, MOTION] = np.clip(clean[MOTION] + self._noise, -1.0, 1.0)
        return ActionChunk(actions, self.period_s, version=0,
                           observed_at=float(observation.get("timestamp", 0.0)),
                           extras={"expert_action": clean})

    def __call__(self, observation: Observation) -> np.ndarray:
        """The first action for ``observation`` (a gymnasium-style controller)."""
        return self.act(observation).actions[0]
