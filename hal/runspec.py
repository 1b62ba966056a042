"""The run spec: which robots a run may use, what its learner and actors need, how to restart.

In YAML (see ``config/sim_hopper.yaml``)::

    name: sim-hopper
    robots:                     # robots this run may use: name, type, params (see hal.registry)
      - {name: hopper-0, type: sim-mujoco, params: {env_id: Hopper-v5}}
    learner: {gpu_memory_gb: 2, allow_cpu: true, cpus: 1}
    actors:                     # one actor per robot of a type (or a named robot)
      - {name: actor, robot_type: sim-mujoco, count: 1}
    restart: {max_restarts: 5, backoff_s: 0.25}
    heartbeat: {interval_s: 0.25, timeout_s: 5}

The learner and actor ``command`` (an argv, with ``{name}``, ``{role}``, ``{run}``, ``{run_dir}``,
``{robot}`` and ``{python}`` filled in at launch) is what ``rill run`` sets; a spec without one can
be placed but not started. Placement turns the groups into ``WorkerSpec``\\ s, one per process.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from hal.config import (
    RobotConfig,
    build,
    check_name,
    check_number,
    check_type,
    check_unique_robots,
    nearest,
    read_yaml_mapping,
    robots_from_list,
)
from hal.errors import ConfigError

BACKENDS = ("embedded", "ray")
ROLES = ("learner", "actor")


def _check_command(owner: str, command: Any) -> None:
    check_type(owner, "command", command, list, optional=True)
    if command is not None and (not command or not all(isinstance(a, str) for a in command)):
        raise ConfigError(f"{owner}.command must be a non-empty list of strings, got {command!r}")


def _check_env(owner: str, env: Any) -> None:
    check_type(owner, "env", env, dict)
    bad = [k for k, v in env.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise ConfigError(f"{owner}.env must map strings to strings; bad entries: {bad}")


@dataclass
class RestartPolicy:
    """A crashed worker restarts after ``backoff_s``, doubling each time up to ``max_backoff_s``,
    at most ``max_restarts`` times; then it is failed."""

    max_restarts: int = 5
    backoff_s: float = 0.25
    max_backoff_s: float = 10.0

    def __post_init__(self) -> None:
        check_type("restart", "max_restarts", self.max_restarts, int)
        check_number("restart", "max_restarts", self.max_restarts, 0)
        check_number("restart", "backoff_s", self.backoff_s, 0)
        check_number("restart", "max_backoff_s", self.max_backoff_s, 0)

    def backoff(self, restarts: int) -> float:
        """The wait before restart number ``restarts`` (1-based)."""
        return min(self.backoff_s * 2 ** max(restarts - 1, 0), self.max_backoff_s)


@dataclass
class HeartbeatPolicy:
    """Workers beat every ``interval_s``; one silent for ``timeout_s`` (``startup_timeout_s`` before
    its first beat) is killed and restarted. Robot leases last ``lease_ttl_s``, renewed by beats.
    A worker asked to stop gets ``stop_grace_s`` before it is killed."""

    interval_s: float = 0.25
    timeout_s: float = 5.0
    startup_timeout_s: float = 60.0
    lease_ttl_s: float = 5.0
    stop_grace_s: float = 5.0

    def __post_init__(self) -> None:
        for f in fields(self):
            check_number("heartbeat", f.name, getattr(self, f.name), 0, strict=True)
        if self.timeout_s <= self.interval_s:
            raise ConfigError(
                f"heartbeat.timeout_s ({self.timeout_s}) must exceed heartbeat.interval_s ({self.interval_s})"
            )
        if self.lease_ttl_s <= self.interval_s:
            raise ConfigError(
                f"heartbeat.lease_ttl_s ({self.lease_ttl_s}) must exceed "
                f"heartbeat.interval_s ({self.interval_s})"
            )


@dataclass
class ResourceRequest:
    """What one worker needs. ``gpu_memory_gb > 0`` asks for one GPU with that much free memory;
    without one the worker runs on CPU if ``allow_cpu``, else the spec is refused. An actor names a
    ``robot`` or a ``robot_type``; it runs on the host its robot is attached to. ``hosts`` limits
    the hosts; ``colocate`` prefers the host that runs most of the run's other workers."""

    cpus: float = 1.0
    memory_gb: float = 0.0
    gpu_memory_gb: float = 0.0
    allow_cpu: bool = True
    robot: str | None = None
    robot_type: str | None = None
    hosts: list[str] | None = None
    colocate: bool = True


@dataclass
class WorkerSpec:
    """One worker process: its name, role, resource request, and how to start it."""

    name: str
    role: str
    request: ResourceRequest
    argv: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    group: str = ""

    def command(self, run: str, run_dir: str, robot: str | None) -> list[str]:
        """``argv`` with its placeholders filled for one launch."""
        if not self.argv:
            raise ConfigError(f"worker {self.name!r} has no command to start it")
        values = {
            "name": self.name,
            "role": self.role,
            "run": run,
            "run_dir": run_dir,
            "robot": robot or "",
            "python": sys.executable,
        }
        try:
            return [a.format(**values) for a in self.argv]
        except (KeyError, IndexError, ValueError) as e:
            raise ConfigError(
                f"worker {self.name!r}: bad placeholder in command {self.argv!r}: {e}; "
                f"known: {', '.join('{' + k + '}' for k in values)}"
            ) from None


@dataclass
class LearnerSpec:
    """The learner: a GPU with ``gpu_memory_gb`` free if there is one (0: CPU), else CPU if allowed."""

    gpu_memory_gb: float = 0.0
    allow_cpu: bool = True
    cpus: float = 1.0
    memory_gb: float = 0.0
    host: str | None = None
    colocate: bool = True
    command: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_number("learner", "gpu_memory_gb", self.gpu_memory_gb)
        check_type("learner", "allow_cpu", self.allow_cpu, bool)
        check_number("learner", "cpus", self.cpus)
        check_number("learner", "memory_gb", self.memory_gb)
        check_type("learner", "host", self.host, str, optional=True)
        check_type("learner", "colocate", self.colocate, bool)
        _check_command("learner", self.command)
        _check_env("learner", self.env)

    def worker(self) -> WorkerSpec:
        request = ResourceRequest(
            cpus=self.cpus,
            memory_gb=self.memory_gb,
            gpu_memory_gb=self.gpu_memory_gb,
            allow_cpu=self.allow_cpu,
            hosts=[self.host] if self.host else None,
            colocate=self.colocate,
        )
        return WorkerSpec("learner", "learner", request, self.command, dict(self.env), group="learner")


@dataclass
class ActorsSpec:
    """A group of actors, one per robot: ``count`` robots of ``robot_type`` (``None``: every
    available one), or the one robot named ``robot``. Workers are named ``{name}-0``, ``{name}-1``…"""

    name: str = "actor"
    robot_type: str | None = None
    robot: str | None = None
    count: int | None = None
    hosts: list[str] | None = None
    cpus: float = 0.5
    memory_gb: float = 0.0
    command: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_name("actors", "name", self.name)
        owner = f"actors {self.name!r}"
        check_type(owner, "robot_type", self.robot_type, str, optional=True)
        check_type(owner, "robot", self.robot, str, optional=True)
        if (self.robot is None) == (self.robot_type is None):
            raise ConfigError(
                f"{owner}: set exactly one of robot_type (one actor per robot of that type) "
                f"or robot (one actor on that robot)"
            )
        check_type(owner, "count", self.count, int, optional=True)
        if self.count is not None and self.count < 1:
            raise ConfigError(
                f"{owner}.count must be >= 1 (or null for every available robot), got {self.count}"
            )
        if self.robot is not None and self.count not in (None, 1):
            raise ConfigError(f"{owner}.count must be 1 with a named robot, got {self.count}")
        check_type(owner, "hosts", self.hosts, list, optional=True)
        check_number(owner, "cpus", self.cpus)
        check_number(owner, "memory_gb", self.memory_gb)
        _check_command(owner, self.command)
        _check_env(owner, self.env)

    def request(self) -> ResourceRequest:
        return ResourceRequest(
            cpus=self.cpus,
            memory_gb=self.memory_gb,
            robot=self.robot,
            robot_type=self.robot_type,
            hosts=self.hosts,
        )

    def worker(self, index: int) -> WorkerSpec:
        return WorkerSpec(
            f"{self.name}-{index}", "actor", self.request(), self.command, dict(self.env), group=self.name
        )


@dataclass
class RunSpec:
    """A whole run: robots, learner, actor groups, restart and heartbeat policies, backend."""

    name: str
    robots: list[RobotConfig] = field(default_factory=list)
    discover: bool = False
    learner: LearnerSpec | None = None
    actors: list[ActorsSpec] = field(default_factory=list)
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    heartbeat: HeartbeatPolicy = field(default_factory=HeartbeatPolicy)
    backend: str = "embedded"
    ray_address: str | None = None
    run_dir: str | None = None

    def __post_init__(self) -> None:
        check_name("run", "name", self.name)
        check_type("run", "discover", self.discover, bool)
        check_unique_robots(self.robots)
        if self.backend not in BACKENDS:
            near = nearest(str(self.backend), list(BACKENDS))
            hint = f"; did you mean {near!r}?" if near else ""
            raise ConfigError(f"run.backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}{hint}")
        check_type("run", "ray_address", self.ray_address, str, optional=True)
        check_type("run", "run_dir", self.run_dir, str, optional=True)
        groups = [a.name for a in self.actors]
        dup = sorted({g for g in groups if groups.count(g) > 1})
        if dup:
            raise ConfigError(f"actors: two groups named {dup[0]!r}; group names must be unique")
        if "learner" in groups:
            raise ConfigError("actors: a group cannot be named 'learner'")
        if self.learner is None and not self.actors:
            raise ConfigError(f"run {self.name!r} has neither a learner nor actors")

    @property
    def directory(self) -> Path:
        return Path(self.run_dir or f"runs/{self.name}")

    def validate_robots(self) -> None:
        """Check every robot's type is registered and its params are valid for that type."""
        from hal.registry import validate_robot

        for robot in self.robots:
            validate_robot(robot)

    @classmethod
    def from_dict(
        cls, values: Any, ignore: tuple[str, ...] = (), where: str = "run spec", check_robots: bool = True
    ) -> RunSpec:
        """Build from a YAML mapping. Keys in ``ignore`` belong to someone else (e.g. the learner's
        own settings) and are skipped; any other unknown key is an error naming the nearest field."""
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(values).__name__}")
        known = [f.name for f in fields(cls) if f.init] + list(ignore)
        for key in values:
            if key not in known:  # the others' keys are valid here too, and may be what was meant
                near = nearest(str(key), known)
                hint = f"; did you mean {near!r}?" if near else f"; valid fields: {', '.join(known)}"
                raise ConfigError(f"{where}: unknown field {key!r}{hint}")
        values = {k: v for k, v in values.items() if k not in ignore}
        nested = {
            "robots": lambda v: robots_from_list(v, "robots"),
            "learner": lambda v: None if v is None else build(LearnerSpec, v, f"{where} learner"),
            "actors": lambda v: [build(ActorsSpec, a, f"{where} actors[{i}]") for i, a in enumerate(v or [])],
            "restart": lambda v: build(RestartPolicy, v, f"{where} restart"),
            "heartbeat": lambda v: build(HeartbeatPolicy, v, f"{where} heartbeat"),
        }
        if isinstance(values.get("actors"), dict):
            values["actors"] = [values["actors"]]
        if "actors" in values and not isinstance(values["actors"], list):
            raise ConfigError(f"{where} actors: expected a list of actor groups")
        for key, convert in nested.items():
            if key in values:
                values[key] = convert(values[key])
        spec = build(cls, values, where)
        if check_robots:
            spec.validate_robots()
        return spec

    @classmethod
    def from_yaml(cls, path: str | Path, ignore: tuple[str, ...] = (), check_robots: bool = True) -> RunSpec:
        values = read_yaml_mapping(path, "run config")
        return cls.from_dict(values, ignore=ignore, where=str(path), check_robots=check_robots)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        out = asdict(self)
        out["robots"] = [r.to_dict() for r in self.robots]
        return out
