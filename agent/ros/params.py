"""ROS 2 parameters <-> rill's typed config dataclasses.

Each field of a config dataclass becomes one ROS parameter, nested dataclasses and a prefix giving
dotted names (``robot.control_hz``, ``loop.blend_ticks``), which is also how a node's YAML
parameter file nests them. Parameters are declared with dynamic typing and checked here against
the field's type hint, so a wrong type gets an error naming the parameter (``parameter
'robot.control_hz' must be a number, got string 'fast'``) and an integer is accepted where a float
is meant (YAML ``control_hz: 20``). The dataclass's own ``__post_init__`` then validates values.
A parameter given to the node that no config declares is an error with the nearest valid name.

``param_fields`` and ``build_config`` need no ROS; ``declare_config`` / ``read_config`` take a node.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import Any

import yaml

from hal.config import nearest
from hal.errors import ConfigError

#: Parameters rclpy itself declares or accepts on every node.
ROS_BUILTIN_PARAMETERS = ("use_sim_time", "start_type_description_service")


class ParameterError(ConfigError):
    """A ROS parameter of the wrong type, a bad value, or one that no config knows."""


@dataclass(frozen=True)
class ParamField:
    """One ROS parameter made from a dataclass field."""

    name: str  # the full parameter name, prefix included
    kind: str  # bool | int | float | str | path | list[str] | list[float] | list[int] | mapping
    optional: bool
    default: Any  # MISSING: required

    @property
    def required(self) -> bool:
        return self.default is MISSING


_SCALARS = {bool: "bool", int: "int", float: "float", str: "str", Path: "path"}
_LISTS = {str: "list[str]", float: "list[float]", int: "list[int]"}


def _kind(hint: Any, where: str) -> tuple[str, bool]:
    optional = False
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        if len(args) != 1:
            raise TypeError(f"{where}: a parameter cannot be of type {hint}")
        hint, origin = args[0], typing.get_origin(args[0])
    if hint in _SCALARS:
        return _SCALARS[hint], optional
    if origin in (list, tuple) and typing.get_args(hint) and typing.get_args(hint)[0] in _LISTS:
        return _LISTS[typing.get_args(hint)[0]], optional
    if hint is dict or origin is dict:
        return "mapping", optional
    raise TypeError(f"{where}: a parameter cannot be of type {hint}")


def param_fields(cls: type, prefix: str = "", exclude: tuple[str, ...] = ()) -> list[ParamField]:
    """The parameters of dataclass ``cls`` (nested dataclasses flattened), minus ``exclude``."""
    hints = typing.get_type_hints(cls)
    out: list[ParamField] = []
    for f in dataclasses.fields(cls):
        name = prefix + f.name
        if not f.init or name in exclude:
            continue
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            out.extend(param_fields(hint, name + ".", exclude))
            continue
        kind, optional = _kind(hint, name)
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            default = MISSING
        out.append(ParamField(name, kind, optional, default))
    return out


def _describe(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string"}
    if isinstance(value, (list, tuple)):
        return f"list {list(value)!r}"
    return f"{names.get(type(value), type(value).__name__)} {value!r}"


def _fail(field: ParamField, want: str, value: Any) -> ParameterError:
    return ParameterError(f"parameter {field.name!r} must be {want}, got {_describe(value)}")


def coerce(field: ParamField, value: Any) -> Any:
    """``value`` (as rclpy or a YAML file gives it) as the field's type, or ``ParameterError``."""
    kind = field.kind
    if isinstance(value, (bytes, bytearray)) and not value:
        value = []  # rclpy reports an empty list declared without a type as an empty byte array
    if value is None or (field.optional and value == "" and kind in ("str", "path", "mapping")):
        if field.optional:
            return None
        if field.required:
            raise ParameterError(f"parameter {field.name!r} is required")
        return field.default
    if kind == "bool":
        if not isinstance(value, bool):
            raise _fail(field, "true or false", value)
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(field, "an integer", value)
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(field, "a number", value)
        return float(value)
    if kind in ("str", "path"):
        if not isinstance(value, str):
            raise _fail(field, "a string", value)
        return value
    if kind.startswith("list["):
        item = kind[5:-1]
        want = "a list of " + {"str": "strings", "int": "integers", "float": "numbers"}[item]
        if not isinstance(value, (list, tuple)):
            raise _fail(field, want, value)
        if item == "str":
            ok = all(isinstance(v, str) for v in value)
        elif item == "int":
            ok = all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        else:
            ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        if not ok:
            raise _fail(field, want, value)
        return [float(v) for v in value] if item == "float" else list(value)
    if kind == "mapping":
        if isinstance(value, dict):
            return value
        if isinstance(value, str):
            try:
                loaded = yaml.safe_load(value) if value.strip() else {}
            except yaml.YAMLError as e:
                raise ParameterError(f"parameter {field.name!r} is not valid YAML: {e}") from None
            if isinstance(loaded, dict):
                return loaded
        raise _fail(field, "a mapping written as YAML, e.g. '{key: value}'", value)
    raise TypeError(f"unknown parameter kind {kind}")


def build_config(cls: type, values: dict[str, Any], prefix: str = "", exclude: tuple[str, ...] = (),
                 fixed: dict[str, Any] | None = None) -> Any:
    """``cls`` built from ``values`` (full parameter name -> value; absent or None: the default).

    ``fixed`` sets fields by full name that are not parameters (those in ``exclude``).
    """
    fixed = fixed or {}
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        name = prefix + f.name
        if not f.init:
            continue
        if name in fixed:
            kwargs[f.name] = fixed[name]
            continue
        if name in exclude:
            continue
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            kwargs[f.name] = build_config(hint, values, name + ".", exclude, fixed)
            continue
        field = ParamField(name, *_kind(hint, name), default=f.default if f.default is not MISSING
                           else (f.default_factory() if f.default_factory is not MISSING else MISSING))
        value = values.get(name)
        if value is None and not field.optional:
            if field.required:
                raise ParameterError(f"parameter {name!r} is required")
            continue  # the dataclass default
        kwargs[f.name] = coerce(field, value)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:  # the dataclass's own validation, named by its field
        where = prefix.rstrip(".") or cls.__name__
        raise ParameterError(f"parameters {where}: {e}") from None


def ros_default(field: ParamField) -> Any:
    """The value to declare ``field`` with (``None``: declared unset)."""
    if field.required or field.default is None:
        return None
    if field.kind == "mapping":
        return yaml.safe_dump(field.default, default_flow_style=True).strip() if field.default else ""
    if field.kind == "path":
        return str(field.default)
    if field.kind.startswith("list["):
        return list(field.default)
    return field.default


def _overrides(node) -> dict[str, Any]:
    """The parameters given to ``node`` on its command line or in its YAML files, by name."""
    return dict(getattr(node, "_parameter_overrides", {}))  # where rclpy keeps them (Humble..Kilted)


def _sub_keys(node, field: ParamField) -> list[str]:
    """Names under a mapping parameter (``policy.args.gain``): a YAML file nesting a mapping
    flattens it into such names."""
    return sorted(n for n in _overrides(node) if n.startswith(field.name + "."))


def declare_config(node, cls: type, prefix: str = "", exclude: tuple[str, ...] = ()) -> list[ParamField]:
    """Declare every parameter of ``cls`` on ``node`` (dynamically typed: checked by ``coerce``).

    A mapping parameter also declares the flattened names a YAML file gave under it.
    """
    from rcl_interfaces.msg import ParameterDescriptor

    fields = param_fields(cls, prefix, exclude)
    for field in fields:
        descriptor = ParameterDescriptor(dynamic_typing=True, description=f"{cls.__name__} {field.kind}")
        node.declare_parameter(field.name, ros_default(field), descriptor)
        if field.kind == "mapping":
            for name in _sub_keys(node, field):
                node.declare_parameter(name, None, ParameterDescriptor(dynamic_typing=True))
    return fields


def read_config(node, cls: type, prefix: str = "", exclude: tuple[str, ...] = (),
                fixed: dict[str, Any] | None = None) -> Any:
    """``cls`` built from the parameters ``declare_config`` declared on ``node``."""
    values: dict[str, Any] = {}
    for field in param_fields(cls, prefix, exclude):
        value = node.get_parameter(field.name).value
        if field.kind == "mapping":
            nested = coerce(field, value) if value not in (None, "") else {}
            for name in _sub_keys(node, field):
                *path, leaf = name[len(field.name) + 1:].split(".")
                where = nested
                for part in path:
                    where = where.setdefault(part, {})
                where[leaf] = node.get_parameter(name).value
            value = nested
        values[field.name] = value
    return build_config(cls, values, prefix, exclude, fixed)


def check_unknown_parameters(node, known: list[ParamField]) -> None:
    """Refuse a parameter given to ``node`` (command line, YAML file) that no config declares."""
    names = {f.name for f in known}
    mappings = tuple(f.name + "." for f in known if f.kind == "mapping")
    for name in sorted(_overrides(node)):
        if (name in names or name in ROS_BUILTIN_PARAMETERS or name.startswith("qos_overrides.")
                or name.startswith(mappings)):
            continue
        near = nearest(name, sorted(names))
        hint = f"; did you mean {near!r}?" if near else ""
        raise ParameterError(f"unknown parameter {name!r} for node {node.get_name()!r}{hint}")
