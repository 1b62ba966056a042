"""Typed config dataclasses built from YAML mappings, with errors that name the field.

``build(cls, values, where)`` turns a mapping into ``cls``: it rejects an unknown key with the
nearest valid one (``run spec actors[0]: unknown field 'robot_typ'; did you mean 'robot_type'?``)
and a value of another type than its field declares (``train: seed must be an integer, got
'banana'``). The dataclasses check their own values in ``__post_init__`` with the helpers below.
"""

from __future__ import annotations

import collections.abc
import difflib
import numbers
import re
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
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


def check_types(where: str, values: Mapping[str, Any], cls: type) -> None:
    """Raise ``ConfigError`` for a value of ``values`` whose type is not the one its field of
    dataclass ``cls`` declares (``stream-ac.lamda must be a number, got 'abc'``; without ``where``,
    the field's name alone)."""
    hints = _field_types(cls)
    for key, value in values.items():
        kind = hints.get(key)
        if kind is not None and not _fits(value, kind):
            name = key if not where else f"{where}: {key}" if " " in where else f"{where}.{key}"
            raise ConfigError(f"{name} must be {_describe(kind)}, got {value!r}")


def construct(cls: type[T], values: Mapping[str, Any], where: str) -> T:
    """``cls(**values)``, for a mapping whose keys ``reject_unknown`` passed. The class's own checks
    speak first; a value whose type they do not check (it would fail later, deep in a worker, or
    be taken as something else: ``adaptive: maybe``) is then named by ``check_types``."""
    try:
        made = cls(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError, AttributeError):
        check_types(where, values, cls)  # names the value when its type is the cause
        raise
    check_types(where, values, cls)
    return made


_HINTS: dict[type, dict[str, Any]] = {}


def _field_types(cls: type) -> dict[str, Any]:
    """The declared types of ``cls``'s init fields that can be resolved (others are not checked)."""
    if cls not in _HINTS:
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # an annotation naming something imported only for type checkers
            hints = {}
        _HINTS[cls] = {f.name: hints[f.name] for f in fields(cls) if f.init and f.name in hints}
    return _HINTS[cls]


def _fits(value: Any, kind: Any) -> bool:
    """Whether ``value`` (as YAML, a command line or a caller gives it) has type ``kind``; a kind
    this does not know passes."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any or isinstance(kind, typing.TypeVar):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if kind is type(None):
        return value is None
    if kind is bool:
        return isinstance(value, (bool, _np_bool()))
    if kind is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    if kind is Path:
        return isinstance(value, (str, Path))
    if origin is typing.Literal:
        return value in args
    if origin in (list, tuple, set, frozenset, collections.abc.Sequence):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(_fits(v, a) for v, a in zip(value, args))
        return not args or all(_fits(v, args[0]) for v in value)
    if origin in (dict, collections.abc.Mapping) or kind in (dict, Mapping):
        return isinstance(value, Mapping)
    if kind in (list, tuple):
        return isinstance(value, (list, tuple))
    if is_dataclass(kind):
        return isinstance(value, (kind, Mapping))
    return True


def _np_bool() -> type:
    """numpy's bool scalar type when numpy is loaded (a config built in code may hold one)."""
    numpy = sys.modules.get("numpy")
    return numpy.bool_ if numpy is not None else bool


def _describe(kind: Any) -> str:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        named = [_describe(a) for a in args if a is not type(None)]
        return " or ".join(named) + (" or null" if type(None) in args else "")
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (list, tuple, set, frozenset, collections.abc.Sequence) or kind in (list, tuple):
        inner = [a for a in args if a is not Ellipsis]
        return f"a list of {_plural(inner[0])}" if len(inner) == 1 else "a list"
    if origin in (dict, collections.abc.Mapping) or kind in (dict, Mapping) or is_dataclass(kind):
        return "a mapping"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string",
            Path: "a path"}.get(kind, getattr(kind, "__name__", str(kind)))


def _plural(kind: Any) -> str:
    return {bool: "true/false values", int: "integers", float: "numbers", str: "strings",
            Path: "paths"}.get(kind, _describe(kind))


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
        return construct(cls, values, "")  # its errors get ``where`` below
    except ConfigError as e:
        said = str(e)  # a class's own check may have named the section already ("train.seed ...")
        named = said.startswith((f"{where}.", f"{where}:"))
        raise ConfigError(said if named else f"{where}: {said}") from None


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
