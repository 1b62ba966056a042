"""``rill demos record``: run an acting source on a robot through the control loop and keep whole
episodes as demonstrations (``agent.demos.episodes``) in a replay cache.

The source is a policy: a scripted expert (``tabletop-expert``, ``metaworld-expert``), a
teleoperation source (``teleop``: the newest command a leader arm or joystick node publishes on
a ROS 2 topic), or any ``policies.base.Policy`` subclass (``class``). A robot that advances only
when sent an action (a stepped simulator, ``Robot.stepped``) is driven tick by tick as fast as it
goes; any other robot in real time by the ``ControlLoop``, as a policy would drive it.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.demos.episodes import ACTOR_PREFIX, IMAGE_PREFIX, SOURCES, DemoEpisode, DemoFeatures, DemoSetError
from agent.demos.recorder import DemoRecorder, RecordStats
from agent.loop.config import LoopConfig
from agent.loop.episodes import drive_episodes
from agent.policy_registry import policy_kind
from hal.config import RobotConfig, check_number, check_type, construct, read_yaml_mapping, reject_unknown
from hal.errors import ConfigError
from hal.robot import Robot
from learners.cache import CacheConfig, ReplayCache
from policies.base import Policy

log = logging.getLogger(__name__)


@dataclass
class DemoPolicyConfig:
    """The acting source: ``type`` (a policy of ``agent.policy_registry`` available to ``demos``),
    constructor ``args``, and for ``class`` a ``class_path`` ``package.module:ClassName``."""

    type: str
    args: dict[str, Any] = field(default_factory=dict)
    class_path: str = ""

    def __post_init__(self) -> None:
        policy_kind(self.type, "demos", "policy.type")
        check_type("policy", "args", self.args, dict)
        if self.type == "class" and ":" not in self.class_path:
            raise ConfigError(f"policy.class_path must be 'package.module:ClassName', "
                              f"got {self.class_path!r}")


@dataclass
class RecordConfig:
    """What ``rill demos record`` does: drive ``robot`` with ``policy`` for ``episodes`` whole
    episodes, written as ``source`` demonstrations to the cache at ``out``."""

    robot: RobotConfig
    policy: DemoPolicyConfig
    out: Path
    episodes: int = 50
    source: str = "expert"
    loop: dict[str, Any] = field(default_factory=dict)  # LoopConfig fields for a real-time robot
    image_codec: str = "png"  # frames are most of a demonstration; PNG is lossless and ~10x smaller

    def __post_init__(self) -> None:
        check_type("record", "episodes", self.episodes, int)
        check_number("record", "episodes", self.episodes, 1)
        if self.source not in SOURCES:
            raise ConfigError(f"record.source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        self.out = Path(self.out)

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "demos config") -> RecordConfig:
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(values).__name__}")
        reject_unknown(where, values, cls)
        for key in ("robot", "policy", "out"):
            if key not in values:
                raise ConfigError(f"{where}: missing {key!r}")
        robot, policy = values["robot"], values["policy"]
        if not isinstance(robot, dict) or not isinstance(policy, dict):
            raise ConfigError(f"{where}: robot and policy must be mappings")
        reject_unknown(f"{where} policy", policy, DemoPolicyConfig)
        policy = construct(DemoPolicyConfig, policy, f"{where} policy")
        return construct(cls, {**values, "robot": RobotConfig(**robot), "policy": policy}, where)

    @classmethod
    def from_yaml(cls, path: str | Path) -> RecordConfig:
        return cls.from_dict(read_yaml_mapping(path, "demos config"), f"demos config {path}")


def build_demo_policy(config: DemoPolicyConfig, robot: Robot) -> Policy:
    """The acting source ``config`` names, for ``robot``'s action space."""
    args = dict(config.args)
    try:
        if config.type == "tabletop-expert":
            from agent.experts.tabletop import TabletopExpert

            return TabletopExpert(**args)
        if config.type == "metaworld-expert":
            from agent.experts.metaworld import MetaWorldExpert

            return MetaWorldExpert(**{"period_s": 1.0 / robot.control_hz, **args})
        if config.type == "vla":  # its own rollouts (source: policy): successes and failures alike
            from policies.vla import VLAPolicy, load_vla

            checkpoint = args.pop("checkpoint", None)
            if not checkpoint:
                raise ConfigError("policy 'vla' needs args.checkpoint: a saved VLA directory or "
                                  "pretrained:NAME")
            return VLAPolicy(load_vla(checkpoint), **args)
        if config.type == "teleop":
            from agent.ros.teleop import TeleopPolicy

            return TeleopPolicy(robot.action_spec, 1.0 / robot.control_hz, **args)
        module_name, _, qualname = config.class_path.partition(":")
        cls = getattr(importlib.import_module(module_name), qualname)
        if not (isinstance(cls, type) and issubclass(cls, Policy)):
            raise ConfigError(f"policy.class_path {config.class_path!r} is not a Policy subclass")
        return cls(**args)
    except ConfigError:
        raise
    except (TypeError, ValueError, ImportError, AttributeError) as e:  # (a bad argument's own words)
        raise ConfigError(f"policy {config.type!r}: cannot build it with args {args}: {e}") from e


def record_demos(robot: Robot, policy: Policy, cache: ReplayCache, episodes: int, source: str, *,
                 loop_config: LoopConfig | None = None,
                 on_episode: Callable[[RecordStats], None] | None = None,
                 max_ticks: int | None = None) -> RecordStats:
    """Drive the connected ``robot`` with ``policy`` until ``episodes`` episodes are written to
    ``cache`` (or ``max_ticks`` ticks passed: a source that never finishes an episode must not hang
    the recorder). Returns what was recorded."""
    recorder = DemoRecorder(cache, source, control_hz=robot.control_hz, on_episode=on_episode)

    def on_tick(record) -> bool:
        recorder.on_tick(record)
        cut, recorder.want_reset = recorder.want_reset, False
        return cut  # an aborted episode: start the next one

    limit = episodes * 100_000 if max_ticks is None else max_ticks
    try:
        drive_episodes(robot, policy, lambda: recorder.stats.episodes >= episodes, on_tick=on_tick,
                       loop_config=loop_config, max_ticks=limit)
    finally:
        recorder.close()
    if recorder.stats.episodes < episodes:
        log.warning("recorded %d of %d episodes before the tick limit", recorder.stats.episodes, episodes)
    return recorder.stats


def check_destination(out: Path, robot: Robot, append: bool) -> None:
    """Refuse to record into ``out`` when it holds demonstration episodes and ``append`` is not set,
    or when its steps carry other shapes than ``robot``'s (state, cameras, action): the set could
    not be read as one afterwards. Nothing is written."""
    out = Path(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise DemoSetError(f"demonstrations {out}: a file is there, not a cache directory")
    if not any(out.iterdir()):
        return
    with ReplayCache(out, CacheConfig(read_only=True)) as cache:  # its first episode tells (not all)
        first = next((e for e in cache.iter_episodes() if e.actor_id.startswith(ACTOR_PREFIX) and e.complete),
                     None)
    if first is None:
        return
    if not append:
        raise DemoSetError(f"demonstrations {out}: it holds episodes already; pass --append to add to them "
                           "(with another robot seed, or the episodes repeat), or choose another out")
    spec = robot.observation_spec
    mine = DemoFeatures(int(spec["state"].shape[0]),
                        {k.removeprefix(IMAGE_PREFIX): tuple(v.shape) for k, v in spec.items()
                         if k.startswith(IMAGE_PREFIX)}, robot.action_spec.dim)
    there = DemoEpisode(first.actor_id, first.episode, first.transitions).features()
    problems = mine.mismatches(there)
    if problems:
        raise DemoSetError(f"demonstrations {out}: robot {robot.name!r} records other steps than the set "
                           f"holds ({'; '.join(problems)}): the set could not be read as one")


def open_demo_cache(config: RecordConfig) -> ReplayCache:
    return ReplayCache(config.out, CacheConfig(durability="fsync", image_codec=config.image_codec))
