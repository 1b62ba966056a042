"""The Ray backend: robots as Ray custom resources, GPUs as Ray GPUs; for a lab past one machine.

Each robot is a custom resource ``robot:<name>`` of amount 1 on the node it is attached to
(``ray start --resources='{"robot:arm-1": 1}'`` there; when this backend starts a local Ray itself,
it advertises the spec's local robots). Ray then guarantees that one task at a time holds a robot
anywhere in the cluster, beside the node-local lease files that every worker also takes.

Placement is the same code as the embedded backend's (``hal.placement``) over an inventory read
from Ray (nodes, logical CPUs and memory, GPUs, robot resources) and probed on each node (GPU memory,
robot health, leases). Each worker is then a Ray actor pinned to its node, holding its robot's
resource and its GPU, that runs the worker's command as a child process and relays its heartbeat
file (``hal.process.WorkerProcess``), so heartbeats stay node-local.

``ray`` is an optional extra (``pip install rill[ray]``); only this module imports it.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from hal.backends import Backend, PollResult
from hal.config import RobotConfig
from hal.errors import ConfigError
from hal.host import GIB, Host, Inventory, RobotState, local_host_name
from hal.leases import Lease, LeaseStore
from hal.placement import Assignment
from hal.process import WorkerProcess
from hal.registry import class_path, load_class_path, robot_class, robot_types

log = logging.getLogger(__name__)

RESOURCE_PREFIX = "robot:"


def robot_resource(name: str) -> str:
    return RESOURCE_PREFIX + name


def _probe_node(robots: list[dict], lease_dir: str | None) -> dict:
    """Runs on one node: its GPUs and the health and leases of the robots it hosts.

    Each robot dict is a ``RobotConfig`` plus the ``class`` path of its type, so that a node whose
    packaging metadata lacks a plugin's entry point can still load it.
    """
    configs = []
    for data in robots:
        data = dict(data)
        path = data.pop("class", None)
        if path and data["type"] not in robot_types():
            load_class_path(path)
        configs.append(RobotConfig(**{**data, "host": None}))
    host = Host.local(configs, LeaseStore(lease_dir))
    return {"accelerators": host.accelerators, "robots": {r.name: (r.health, r.lease) for r in host.robots}}


def _with_class(config: RobotConfig) -> dict:
    try:
        return {**config.to_dict(), "class": class_path(robot_class(config.type))}
    except ConfigError:
        return config.to_dict()  # an unknown type: the probe reports it


class _NodeWorker:
    """A Ray actor that owns one worker process on its node."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        heartbeat_file: str,
        log_file: str,
        lease_dir: str | None,
        holder: str,
        robot: str | None,
    ) -> None:
        # This process's environment carries what Ray set for it (CUDA_VISIBLE_DEVICES for its GPU).
        self.process = WorkerProcess(
            argv, {**os.environ, **env}, heartbeat_file, log_file, lease_dir, holder, robot
        )

    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> PollResult:
        return self.process.poll()

    def terminate(self) -> None:
        self.process.terminate()

    def kill(self) -> None:
        self.process.kill()

    def release(self) -> int:
        return self.process.release()


@dataclass
class RayHandle:
    """A worker under Ray: the Ray actor that owns its process, and that process's pid (fetched once)."""

    actor: Any
    node_id: str
    pid_ref: Any
    _pid: int | None = None

    def pid(self) -> int | None:
        if self._pid is None:
            try:
                self._pid = ray.get(self.pid_ref)
            except ray.exceptions.RayError:
                return None
        return self._pid


class RayBackend(Backend):
    """Runs workers as Ray actors; connects to ``address`` or starts a local Ray with the robots."""

    name = "ray"

    def __init__(
        self,
        robots: Sequence[RobotConfig] = (),
        address: str | None = None,
        leases: LeaseStore | None = None,
        num_cpus: float | None = None,
    ) -> None:
        super().__init__(leases)
        self.started_ray = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "configure_logging": False,
            }
            if address is None:
                # A local Ray: this machine's robots become its custom resources, and the workers
                # import the same hal as this process.
                here = local_host_name()
                kwargs["resources"] = {robot_resource(r.name): 1 for r in robots if r.host in (None, here)}
                kwargs["num_cpus"] = num_cpus
                path = os.pathsep.join(
                    p
                    for p in [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]
                    if p
                )
                kwargs["runtime_env"] = {"env_vars": {"PYTHONPATH": path}}
            ray.init(address=address, **kwargs)
            self.started_ray = True
        self._worker_cls = ray.remote(max_restarts=0)(_NodeWorker)
        self._probe = ray.remote(_probe_node)

    def _nodes(self) -> list[tuple[str, str, dict]]:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        counts = Counter(n["NodeManagerHostname"] for n in nodes)
        out = []
        for n in sorted(nodes, key=lambda n: (n["NodeManagerHostname"], n["NodeID"])):
            host = n["NodeManagerHostname"]
            if counts[host] > 1:  # several Ray nodes on one machine: tell them apart
                host = f"{host}/{n['NodeID'][:8]}"
            out.append((host, n["NodeID"], n["Resources"]))
        return out

    def inventory(self, robots: Sequence[RobotConfig]) -> Inventory:
        configs = {r.name: r for r in robots}
        try:
            from ray._private.state import available_resources_per_node

            available = available_resources_per_node()
        except Exception:  # a private API: without it, assume what is there is free
            available = {}
        hosts, located = [], set()
        self._node_of: dict[str, str] = {}
        for host, node_id, total in self._nodes():
            free = available.get(node_id, total)
            here = [
                configs[k[len(RESOURCE_PREFIX) :]]
                for k in sorted(total)
                if k.startswith(RESOURCE_PREFIX) and k[len(RESOURCE_PREFIX) :] in configs
            ]
            probe = ray.get(
                self._probe.options(
                    num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)
                ).remote([_with_class(r) for r in here], str(self.leases.directory))
            )
            states = []
            for config in here:
                health, lease = probe["robots"][config.name]
                if lease is None and free.get(robot_resource(config.name), 1) < 1:
                    lease = Lease(config.name, "a Ray task", "", 0, 0, float("inf"), host, 0)
                states.append(RobotState(config, host, health, lease))
                located.add(config.name)
            gpus = probe["accelerators"][: int(total.get("GPU", 0))]
            hosts.append(
                Host(
                    host,
                    float(free.get("CPU", 0.0)),
                    total.get("memory", 0) / GIB,
                    free.get("memory", 0) / GIB,
                    gpus,
                    states,
                )
            )
            self._node_of[host] = node_id
        unreachable = {
            name: f"robot {name!r} is not advertised by any Ray node (custom resource "
            f"{robot_resource(name)!r})"
            for name in configs
            if name not in located
        }
        return Inventory(hosts, unreachable)

    def start(
        self,
        argv: list[str],
        env: dict[str, str],
        assignment: Assignment,
        heartbeat_file: str,
        log_file: str,
        holder: str,
    ) -> RayHandle:
        node_id = getattr(self, "_node_of", {}).get(assignment.host)
        if node_id is None:
            self.inventory([])
            node_id = self._node_of[assignment.host]
        options: dict[str, Any] = {
            "num_cpus": assignment.cpus,
            "num_gpus": 1 if assignment.gpu_index is not None else 0,
            "scheduling_strategy": NodeAffinitySchedulingStrategy(node_id, soft=False),
        }
        if assignment.robot is not None:
            options["resources"] = {robot_resource(assignment.robot): 1}
        actor = self._worker_cls.options(**options).remote(
            argv, env, heartbeat_file, log_file, str(self.leases.directory), holder, assignment.robot
        )
        return RayHandle(actor, node_id, actor.pid.remote())  # not awaited: starts run in parallel

    def poll(self, handles: Sequence[RayHandle]) -> list[PollResult]:
        refs = [h.actor.poll.remote() for h in handles]
        out: list[PollResult] = []
        for ref in refs:
            try:
                out.append(ray.get(ref))
            except ray.exceptions.RayActorError as e:  # the node or the actor died: the worker is gone
                log.warning("Ray actor of a worker died: %s", e)
                out.append((-9, None))
        return out

    def pid(self, handle: RayHandle) -> int | None:
        return handle.pid()

    def terminate(self, handle: RayHandle) -> None:
        ray.get(handle.actor.terminate.remote())

    def kill(self, handle: RayHandle) -> None:
        ray.get(handle.actor.kill.remote())

    def release(self, handle: RayHandle) -> int:
        try:
            rc = ray.get(handle.actor.release.remote())
        except ray.exceptions.RayActorError:
            rc = -9
        ray.kill(handle.actor)  # gives its robot resource, CPUs and GPU back to Ray
        return rc

    def close(self) -> None:
        if self.started_ray:
            ray.shutdown()
            self.started_ray = False
