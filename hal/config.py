"""Typed config dataclasses built from YAML mappings, with errors that name the field.

``build(cls, values, where)`` turns a mapping into ``cls`` and rejects an unknown key with the
nearest valid one (``run spec actors[0]: unknown field 'robot_typ'; did you mean 'robot_type'?``).
The dataclasses check their own values in ``__post_init__`` with the helpers below.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from hal.errors import ConfigError, DuplicateRobotError

T = TypeVar("T")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


def nearest(word: str, choices: list[str]) -> str | None:
    """The closest of ``choices`` to ``word``, or ``None`` if none is close."""
    near = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return near[0] if near else None


def read_yaml_mapping(path: str | Path, what: str) -> dict[str, Any]:
    """The mapping a YAML config file holds; ``ConfigError`` naming ``what`` and the file when it
    cannot be read, is not YAML, or is not a mapping (an empty file is an empty mapping)."""
    import yaml

    try:
        values = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise ConfigError(f"{what} {path}: cannot read it: {e}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{what} {path}: not valid YAML: {e}") from e
    values = {} if values is None else values
    if not isinstance(values, dict):
        raise ConfigError(f"{what} {path}: expected a mapping of config keys, got {type(values).__name__}")
    return values


def reject_unknown(where: str, values: Mapping[str, Any], cls: type, what: str = "field") -> None:
    """Raise ``ConfigError`` for a key of ``values`` that is not an init field of dataclass ``cls``,
    naming the closest valid one (a typo'd field is the commonest config error). The one check of
    unknown keys, for every config in rill."""
    names = [f.name for f in fields(cls) if f.init]
    for key in values:
        if key not in names:
            near = nearest(str(key), names)
            hint = f"; did you mean {near!r}?" if near else f"; valid {what}s: {', '.join(names)}"
            raise ConfigError(f"{where}: unknown {what} {key!r}{hint}")


def build(cls: type[T], values: Any, where: str) -> T:
    """``cls(**values)`` after checking that ``values`` is a mapping of known, present fields."""
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected a mapping of fields, got {type(values).__name__}")
    reject_unknown(where, values, cls)
    for f in fields(cls):
        if f.init and f.default is MISSING and f.default_factory is MISSING and f.name not in values:
            raise ConfigError(f"{where}: missing required field {f.name!r}")
    try:
        return cls(**values)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def check_type(
    owner: str, name: str, value: Any, types: type | tuple[type, ...], optional: bool = False
) -> None:
    """Raise ``ConfigError`` naming ``owner.name`` unless ``value`` is one of ``types``."""
    if value is None and optional:
        return
    types = types if isinstance(types, tuple) else (types,)
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok:
        want = " or ".join(t.__name__ for t in types) + (" or null" if optional else "")
        raise ConfigError(f"{owner}.{name} must be {want}, got {value!r}")


def check_number(
    owner: str, name: str, value: Any, minimum: float = 0.0, strict: bool = False, optional: bool = False
) -> None:
    """A real number ``>= minimum`` (``> minimum`` if ``strict``)."""
    check_type(owner, name, value, (int, float), optional)
    if value is None:
        return
    if value < minimum or (strict and value == minimum):
        raise ConfigError(f"{owner}.{name} must be {'>' if strict else '>='} {minimum:g}, got {value!r}")


def check_name(owner: str, name: str, value: Any) -> None:
    """A name usable as a file name and a Ray resource: letters, digits, ``_ . : -``."""
    check_type(owner, name, value, str)
    if not _NAME.match(value):
        raise ConfigError(
            f"{owner}.{name} {value!r} must start with a letter or digit and hold only "
            "letters, digits and '_.:-'"
        )


@dataclass
class RobotConfig:
    """One robot as a config names it: ``name``, registered ``type``, the type's ``params``.

    ``host`` is the machine the robot is attached to; ``None`` means this machine (every simulated
    robot, and a robot on the machine that runs the scheduler).
    """

    name: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    host: str | None = None

    def __post_init__(self) -> None:
        check_name("robot", "name", self.name)
        check_type(f"robot {self.name!r}", "type", self.type, str)
        if self.params is None:
            self.params = {}
        check_type(f"robot {self.name!r}", "params", self.params, dict)
        check_type(f"robot {self.name!r}", "host", self.host, str, optional=True)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "params": dict(self.params), "host": self.host}


def robots_from_list(values: Any, where: str = "robots") -> list[RobotConfig]:
    """Robot configs from a YAML list; two robots with one name are an error."""
    if values is None:
        return []
    if not isinstance(values, list):
        raise ConfigError(f"{where}: expected a list of robots, got {type(values).__name__}")
    robots = [
        values[i] if isinstance(values[i], RobotConfig) else build(RobotConfig, values[i], f"{where}[{i}]")
        for i in range(len(values))
    ]
    check_unique_robots(robots, where)
    return robots


def check_unique_robots(robots: list[RobotConfig], where: str = "robots") -> None:
    seen: dict[str, int] = {}
    for i, robot in enumerate(robots):
        if robot.name in seen:
            raise DuplicateRobotError(
                f"{where}: two robots named {robot.name!r} ({where}[{seen[robot.name]}] "
                f"and {where}[{i}]); robot names must be unique"
            )
        seen[robot.name] = i
