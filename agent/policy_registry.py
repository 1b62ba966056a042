"""The policies rill can act with, by name: one table for ``rill run``, ``rill actor`` and ``agent_node``.

Each entry says what the policy is, whether it learns online (its actor streams transitions to a
learner, and which transition builder makes them: one per step or one per executed chunk), and
where it can be chosen: ``run`` (``rill run``'s ``train.policy``), ``actor`` (``rill actor
--policy``), ``ros`` (``agent_node``'s ``policy.type``) and ``demos`` (``rill demos record``'s
``policy.type``). A name means the same policy everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from hal.config import nearest
from hal.errors import ConfigError


@dataclass(frozen=True)
class PolicyKind:
    name: str
    summary: str
    learns: bool  # its actor streams transitions to a learner
    transitions: str | None  # "step" (one per control step) | "chunk" (one per executed chunk)
    where: tuple[str, ...]  # "run", "actor", "ros", "demos"


POLICIES: dict[str, PolicyKind] = {
    p.name: p
    for p in (
        PolicyKind("streamx", "a stream-x actor on the robot's state, acting with the learner's newest "
                   "weights", learns=True, transitions="step", where=("run", "actor", "ros")),
        PolicyKind("vla-residual", "a frozen VLA (camera + instruction + state) plus stream-x residual "
                   "heads that learn online", learns=True, transitions="chunk", where=("run",)),
        PolicyKind("vla", "a vision-language-action policy (policies.vla), acting as loaded", learns=False,
                   transitions=None, where=("ros", "demos")),
        PolicyKind("replan", "a smooth reference with per-chunk offsets, for exercising the loop and the "
                   "ROS path", learns=False, transitions=None, where=("ros",)),
        PolicyKind("reach", "the scripted reaching demo of the simulated arm", learns=False, transitions=None,
                   where=("ros",)),
        PolicyKind("class", "any policies.base.Policy subclass named by policy.class_path", learns=False,
                   transitions=None, where=("ros", "demos")),
        PolicyKind("tabletop-expert", "the scripted expert of the tabletop reach and push tasks "
                   "(agent.experts.tabletop), acting from state and instruction; for demonstrations and "
                   "as the success ceiling", learns=False, transitions=None, where=("demos",)),
        PolicyKind("metaworld-expert", "Meta-World's scripted policies (agent.experts.metaworld), the task "
                   "read from the instruction, acting from the simulator's privileged view; for "
                   "demonstrations and as the success ceiling", learns=False, transitions=None,
                   where=("demos",)),
        PolicyKind("teleop", "a person's commands from a ROS 2 topic (a leader arm's joint states or a "
                   "joystick's command vector), agent.ros.teleop", learns=False, transitions=None,
                   where=("demos",)),
    )
}

_WHERE = {"run": "rill run (train.policy)", "actor": "rill actor (--policy)",
          "ros": "agent_node (policy.type)", "demos": "rill demos record (policy.type)"}


def policy_names(where: str) -> list[str]:
    """The policies that can be chosen in ``where`` (``run``, ``actor`` or ``ros``)."""
    return [p.name for p in POLICIES.values() if where in p.where]


def policy_kind(name: str, where: str, field: str) -> PolicyKind:
    """The entry for ``name``, refused with a clear error when unknown or not available in ``where``."""
    kind = POLICIES.get(name)
    names = policy_names(where)
    if kind is None:
        near = nearest(str(name), list(POLICIES))
        hint = f" (did you mean {near!r}?)" if near else ""
        raise ConfigError(f"{field} {name!r} is unknown{hint}; one of {', '.join(names)}")
    if where not in kind.where:
        elsewhere = ", ".join(_WHERE[w] for w in kind.where)
        raise ConfigError(f"{field} {name!r} is not available in {_WHERE[where]} (only in {elsewhere}); "
                          f"one of {', '.join(names)}")
    return kind
