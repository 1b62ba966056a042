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

Meta-World (``sim.metaworld``; needs the ``metaworld`` package), 80 Hz, 500 steps: one id per task,
``rill/MetaWorld-<task>`` (``rill/MetaWorld-push-v3``), and one per task set whose episodes take its
tasks in turn (``rill/MetaWorld-MT10-v3``, ``rill/MetaWorld-MT50-v3``). Observation: Dict of
``state`` [4] (end effector + gripper), ``image.corner2`` [96, 96, 3], ``instruction`` and the
experts' ``privileged`` [39]; action [4]. Keywords of ``sim.metaworld.env.MetaWorldEnv`` vary them.
``rill/MetaWorldState-<task>`` is the same task for state-only learners (``rill train``): the
observation is Meta-World's own flat state [39] (goal and objects included), no camera, and the
reward is ``progress`` (the dense reward's rise plus 10 on success; the episode ends on success).
"""

from __future__ import annotations

import gymnasium as gym

from sim.metaworld.tasks import INSTRUCTIONS

TABLETOP_ENTRY = "sim.tabletop.env:TabletopEnv"
TABLETOP_STEPS = {"push": 250, "reach": 150}
METAWORLD_ENTRY = "sim.metaworld.env:MetaWorldEnv"
METAWORLD_STEPS = 500


def _register(env_id: str, max_episode_steps: int, entry_point: str = TABLETOP_ENTRY, **kwargs) -> None:
    if env_id not in gym.registry:
        gym.register(env_id, entry_point=entry_point, max_episode_steps=max_episode_steps, kwargs=kwargs)


for _task, _steps in TABLETOP_STEPS.items():
    _name = _task.capitalize()
    _register(f"rill/Tabletop{_name}-v0", _steps, task=_task)
    _register(f"rill/Tabletop{_name}State-v0", _steps, task=_task, obs_mode="state",
              goal_in_state="relative")

for _task in INSTRUCTIONS:
    _register(f"rill/MetaWorld-{_task}", METAWORLD_STEPS, METAWORLD_ENTRY, tasks=_task)
    _register(f"rill/MetaWorldState-{_task}", METAWORLD_STEPS, METAWORLD_ENTRY, tasks=_task,
              observation="privileged", reward="progress")
for _set in ("MT10", "MT50"):
    _register(f"rill/MetaWorld-{_set}-v3", METAWORLD_STEPS, METAWORLD_ENTRY, tasks=_set)
