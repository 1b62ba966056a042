"""The robot registry: ``type:`` in a config names a robot class; discovery plugins find robots.

Robot types come from two places:

- ``register_robot(cls)``: an explicit call (rill's own ``sim.robots`` calls it when imported);
- the entry-point group ``rill.robots`` (``name = package.module:RobotClass``): a third-party
  robot package declares it in its own packaging metadata and plugs in without editing rill.

Discovery plugins (``register_discovery(name, fn)`` or the entry-point group ``rill.discovery``,
``name = package.module:function``) return ``RobotConfig``\\ s of robots they find: simulated robots
always; ROS 2 robots when that plugin is installed.

``hal`` imports none of rill's robot packages: they register themselves, or are found by name.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from hal.config import RobotConfig, nearest
from hal.errors import ConfigError, UnknownRobotTypeError
from hal.robot import Robot, RobotHealth

log = logging.getLogger(__name__)

ROBOTS_GROUP = "rill.robots"
DISCOVERY_GROUP = "rill.discovery"

_types: dict[str, type[Robot]] = {}
_type_entry_points: dict[str, EntryPoint] = {}
_discoverers: dict[str, Callable[[], list[RobotConfig]]] = {}
_discovery_entry_points: dict[str, EntryPoint] = {}
_scanned = False


def register_robot(cls: type[Robot]) -> type[Robot]:
    """Register ``cls`` under ``cls.type_name`` (usable as a class decorator)."""
    name = getattr(cls, "type_name", "")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{cls.__qualname__} cannot be registered: it sets no type_name")
    known = _types.get(name)
    if known is not None and class_path(known) != class_path(cls):
        raise ConfigError(
            f"robot type {name!r} is already registered by {class_path(known)}; "
            f"{class_path(cls)} cannot take it"
        )
    _types[name] = cls
    return cls


def register_discovery(name: str, discover: Callable[[], list[RobotConfig]]) -> None:
    """Register a function that returns the robots it finds (called by ``discover_robots``)."""
    _discoverers[name] = discover


def class_path(cls: type) -> str:
    """``module:QualName``, the form an entry point (and a worker's robot env) names a class by."""
    return f"{cls.__module__}:{cls.__qualname__}"


def load_class_path(path: str) -> type[Robot]:
    """Import ``module:QualName`` and register the robot class found there."""
    module, _, qualname = path.partition(":")
    if not module or not qualname:
        raise ConfigError(f"robot class path {path!r} must read 'package.module:ClassName'")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and issubclass(obj, Robot)):
        raise ConfigError(f"{path} is not a hal.Robot subclass")
    return register_robot(obj)


def _scan_entry_points() -> None:
    global _scanned
    if _scanned:
        return
    _scanned = True
    for ep in entry_points(group=ROBOTS_GROUP):
        _type_entry_points.setdefault(ep.name, ep)
    for ep in entry_points(group=DISCOVERY_GROUP):
        _discovery_entry_points.setdefault(ep.name, ep)


def rescan_entry_points() -> None:
    """Read the entry-point groups again (after installing a plugin into a running process)."""
    global _scanned
    _scanned = False
    _type_entry_points.clear()
    _discovery_entry_points.clear()
    _scan_entry_points()


def robot_types() -> list[str]:
    """Every registered robot type name, explicit and from entry points, sorted."""
    _scan_entry_points()
    return sorted(set(_types) | set(_type_entry_points))


def robot_class(type_name: str) -> type[Robot]:
    """The class registered for ``type_name``; an unknown type's error lists the registered ones."""
    if type_name in _types:
        return _types[type_name]
    _scan_entry_points()
    ep = _type_entry_points.get(type_name)
    if ep is None:
        known = robot_types()
        near = nearest(type_name, known)
        hint = f" (did you mean {near!r}?)" if near else ""
        raise UnknownRobotTypeError(
            f"unknown robot type {type_name!r}{hint}; registered types: "
            f"{', '.join(known) if known else 'none'}"
        )
    try:
        cls = ep.load()
    except Exception as e:  # a broken plugin must say which one it is
        raise ConfigError(f"robot type {type_name!r}: plugin {ep.value} failed to load: {e}") from e
    if not (isinstance(cls, type) and issubclass(cls, Robot)):
        raise ConfigError(f"robot type {type_name!r}: plugin {ep.value} is not a hal.Robot subclass")
    if cls.type_name != type_name:
        raise ConfigError(f"robot type {type_name!r}: plugin {ep.value} declares type_name {cls.type_name!r}")
    return register_robot(cls)


def validate_robot(config: RobotConfig) -> type[Robot]:
    """Check ``config.type`` and ``config.params`` without building the robot; return its class."""
    cls = robot_class(config.type)
    if cls.config_class is not None:
        from hal.config import build

        build(cls.config_class, config.params, f"robot {config.name!r} ({config.type}) params")
    elif config.params:
        raise ConfigError(
            f"robot {config.name!r} ({config.type}) params: the type takes no params, "
            f"got {sorted(config.params)}"
        )
    return cls


def make_robot(config: RobotConfig) -> Robot:
    """Build (not connect) the robot ``config`` describes."""
    return robot_class(config.type).from_config(config.name, config.params)


def probe_robot(config: RobotConfig) -> RobotHealth:
    """Health of a robot that nobody is driving, as its type can tell without connecting."""
    try:
        cls = robot_class(config.type)
    except ConfigError as e:
        return RobotHealth(False, "unknown-type", str(e))
    try:
        return cls.probe(config.name, config.params)
    except Exception as e:  # a probe that breaks means the robot cannot be trusted
        return RobotHealth(False, "fault", f"probe failed: {e}")


def discover_robots() -> list[RobotConfig]:
    """Robots found by every discovery plugin; a plugin that fails is logged and skipped."""
    _scan_entry_points()
    found: list[RobotConfig] = []
    plugins: dict[str, Callable[[], list[RobotConfig]]] = dict(_discoverers)
    for name, ep in _discovery_entry_points.items():
        if name not in plugins:
            try:
                plugins[name] = ep.load()
            except Exception as e:
                log.warning("robot discovery plugin %s (%s) failed to load: %s", name, ep.value, e)
    for name in sorted(plugins):
        try:
            found.extend(plugins[name]())
        except Exception as e:
            log.warning("robot discovery plugin %s failed: %s", name, e)
    return found
