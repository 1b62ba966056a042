"""rill's own gymnasium tasks, registered under the ``rill/`` namespace on import.

The tabletop tasks (``sim.tabletop``), 50 Hz control:

========================== ============================================== =========
id                         observation                                    max steps
========================== ============================================== =========
rill/TabletopPush-v0       Dict: state [20], image.front [96, 96, 3],     250
                           instruction
rill/TabletopReach-v0      the same                                       150
rill/TabletopPushState-v0  flat state [29]: the state, the goal block     250
                           one-hot and goal-relative vectors; no images
rill/TabletopReachState-v0 the same                                       150
========================== ============================================== =========

The ``*State`` ids are for state-only learners (``rill train``) and fast tests (the goal is in
their state as ``goal_in_state="relative"``); every keyword of ``sim.tabletop.env.TabletopEnv`` can
be passed to ``gymnasium.make`` to vary a task.
"""

from __future__ import annotations

import gymnasium as gym

TABLETOP_ENTRY = "sim.tabletop.env:TabletopEnv"
TABLETOP_STEPS = {"push": 250, "reach": 150}


def _register(env_id: str, max_episode_steps: int, **kwargs) -> None:
    if env_id not in gym.registry:
        gym.register(env_id, entry_point=TABLETOP_ENTRY, max_episode_steps=max_episode_steps, kwargs=kwargs)


for _task, _steps in TABLETOP_STEPS.items():
    _name = _task.capitalize()
    _register(f"rill/Tabletop{_name}-v0", _steps, task=_task)
    _register(f"rill/Tabletop{_name}State-v0", _steps, task=_task, obs_mode="state",
              goal_in_state="relative")
