"""Meta-World's 50 tasks as rill names them: each task's instruction, difficulty group and task sets.

A task is named as Meta-World does (``push-v3``); the bare name (``push``) is accepted too. The
instructions are LeRobot's task descriptions for Meta-World (``lerobot/envs/metaworld_config.json``),
word for word, so that a dataset recorded here and one recorded with LeRobot carry the same task
strings. Two tasks share one there, and so here: ``push-v3`` and ``push-back-v3`` are both "Push the
puck to a goal" (neither a VLA nor a dataset can tell them apart by the words; MT10 has only
``push-v3``). The difficulty groups are the ones SmolVLA's paper reports by (easy 28, medium 11,
hard 6, very hard 5; also from LeRobot's config).
"""

from __future__ import annotations

import difflib

from hal.errors import ConfigError

#: The reward signals a task can give (``sim.metaworld.env`` defines them).
REWARDS = ("dense", "progress", "success")

INSTRUCTIONS: dict[str, str] = {
    "assembly-v3": "Pick up a nut and place it onto a peg",
    "basketball-v3": "Dunk the basketball into the basket",
    "bin-picking-v3": "Grasp the puck from one bin and place it into another bin",
    "box-close-v3": "Grasp the cover and close the box with it",
    "button-press-topdown-v3": "Press a button from the top",
    "button-press-topdown-wall-v3": "Bypass a wall and press a button from the top",
    "button-press-v3": "Press a button",
    "button-press-wall-v3": "Bypass a wall and press a button",
    "coffee-button-v3": "Push a button on the coffee machine",
    "coffee-pull-v3": "Pull a mug from a coffee machine",
    "coffee-push-v3": "Push a mug under a coffee machine",
    "dial-turn-v3": "Rotate a dial 180 degrees",
    "disassemble-v3": "Pick a nut out of a peg",
    "door-close-v3": "Close a door with a revolving joint",
    "door-lock-v3": "Lock the door by rotating the lock clockwise",
    "door-open-v3": "Open a door with a revolving joint",
    "door-unlock-v3": "Unlock the door by rotating the lock counter-clockwise",
    "drawer-close-v3": "Push and close a drawer",
    "drawer-open-v3": "Open a drawer",
    "faucet-close-v3": "Rotate the faucet clockwise",
    "faucet-open-v3": "Rotate the faucet counter-clockwise",
    "hammer-v3": "Hammer a screw on the wall",
    "hand-insert-v3": "Insert the gripper into a hole",
    "handle-press-side-v3": "Press a handle down sideways",
    "handle-press-v3": "Press a handle down",
    "handle-pull-side-v3": "Pull a handle up sideways",
    "handle-pull-v3": "Pull a handle up",
    "lever-pull-v3": "Pull a lever down 90 degrees",
    "peg-insert-side-v3": "Insert a peg sideways",
    "peg-unplug-side-v3": "Unplug a peg sideways",
    "pick-out-of-hole-v3": "Pick up a puck from a hole",
    "pick-place-v3": "Pick and place a puck to a goal",
    "pick-place-wall-v3": "Pick a puck, bypass a wall and place the puck",
    "plate-slide-back-side-v3": "Get a plate from the cabinet sideways",
    "plate-slide-back-v3": "Get a plate from the cabinet",
    "plate-slide-side-v3": "Slide a plate into a cabinet sideways",
    "plate-slide-v3": "Slide a plate into a cabinet",
    "push-back-v3": "Push the puck to a goal",
    "push-v3": "Push the puck to a goal",
    "push-wall-v3": "Bypass a wall and push a puck to a goal",
    "reach-v3": "Reach a goal position",
    "reach-wall-v3": "Bypass a wall and reach a goal",
    "shelf-place-v3": "Pick and place a puck onto a shelf",
    "soccer-v3": "Kick a soccer into the goal",
    "stick-pull-v3": "Grasp a stick and pull a box with the stick",
    "stick-push-v3": "Grasp a stick and push a box using the stick",
    "sweep-into-v3": "Sweep a puck into a hole",
    "sweep-v3": "Sweep a puck off the table",
    "window-close-v3": "Push and close a window",
    "window-open-v3": "Push and open a window",
}

DIFFICULTY: dict[str, tuple[str, ...]] = {
    "easy": (
        "button-press-v3", "button-press-topdown-v3", "button-press-topdown-wall-v3",
        "button-press-wall-v3", "coffee-button-v3", "dial-turn-v3", "door-close-v3", "door-lock-v3",
        "door-open-v3", "door-unlock-v3", "drawer-close-v3", "drawer-open-v3", "faucet-close-v3",
        "faucet-open-v3", "handle-press-v3", "handle-press-side-v3", "handle-pull-v3",
        "handle-pull-side-v3", "lever-pull-v3", "plate-slide-v3", "plate-slide-back-v3",
        "plate-slide-back-side-v3", "plate-slide-side-v3", "reach-v3", "reach-wall-v3",
        "window-close-v3", "window-open-v3", "peg-unplug-side-v3",
    ),
    "medium": (
        "basketball-v3", "bin-picking-v3", "box-close-v3", "coffee-pull-v3", "coffee-push-v3",
        "hammer-v3", "peg-insert-side-v3", "push-wall-v3", "soccer-v3", "sweep-v3", "sweep-into-v3",
    ),
    "hard": ("assembly-v3", "hand-insert-v3", "pick-out-of-hole-v3", "pick-place-v3", "push-v3",
             "push-back-v3"),
    "very_hard": ("shelf-place-v3", "disassemble-v3", "stick-pull-v3", "stick-push-v3",
                  "pick-place-wall-v3"),
}

#: Meta-World's MT10 (``metaworld.env_dict.MT10_V3_ENV_NAMES``), in its order.
MT10: tuple[str, ...] = (
    "reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3", "drawer-close-v3",
    "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3", "window-close-v3",
)
TASK_SETS: dict[str, tuple[str, ...]] = {"MT10": MT10, "MT50": tuple(sorted(INSTRUCTIONS)), **DIFFICULTY}


class UnknownTaskError(ConfigError):
    """A name that is no Meta-World task (or task set)."""


def task_name(name: str, where: str = "task") -> str:
    """The canonical name (``push-v3``) of ``name`` (``push-v3`` or ``push``); an unknown one is
    refused with the close matches."""
    if not isinstance(name, str):
        raise UnknownTaskError(f"{where} must be a Meta-World task name, got {name!r}")
    key = name.strip().lower()
    if key in INSTRUCTIONS:
        return key
    if f"{key}-v3" in INSTRUCTIONS:
        return f"{key}-v3"
    near = difflib.get_close_matches(key if key.endswith("-v3") else f"{key}-v3", INSTRUCTIONS, n=4,
                                     cutoff=0.6)
    hint = f"; close matches: {', '.join(near)}" if near else f"; known: {', '.join(sorted(INSTRUCTIONS))}"
    raise UnknownTaskError(f"{where}: unknown Meta-World task {name!r}{hint}")


def task_names(names: str | list[str] | tuple[str, ...], where: str = "tasks") -> tuple[str, ...]:
    """Canonical task names from a list of names or a task set (``MT10``, ``MT50``, ``easy``, ...)."""
    if isinstance(names, str):
        if names in TASK_SETS:
            return TASK_SETS[names]
        sets = difflib.get_close_matches(names, TASK_SETS, n=2, cutoff=0.6)
        if sets:
            try:
                task_name(names)
            except UnknownTaskError:
                raise UnknownTaskError(f"{where}: unknown Meta-World task or task set {names!r}; close "
                                       f"matches: {', '.join(sets)} (sets: {', '.join(TASK_SETS)})") from None
        names = [names]
    if not isinstance(names, (list, tuple)) or not names:
        raise UnknownTaskError(f"{where} must be a task set ({', '.join(TASK_SETS)}) or a non-empty "
                               f"list of task names, got {names!r}")
    out = tuple(task_name(n, f"{where}[{i}]") for i, n in enumerate(names))
    if len(set(out)) != len(out):
        raise UnknownTaskError(f"{where} names a task twice: {list(names)!r}")
    return out


def difficulty(task: str) -> str:
    return next(group for group, tasks in DIFFICULTY.items() if task in tasks)
