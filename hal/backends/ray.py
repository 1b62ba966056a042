"""The Ray backend: robots as Ray custom resources, GPUs as Ray GPUs; for a lab past one machine.

Each robot is a custom resource ``robot:<name>`` of amount 1 on the node it is attached to
(``ray start --resources='{"robot:arm-1": 1}'`` there; when this backend starts a local Ray itself,
it advertises the spec's local robots). Ray then guarantees that one task at a time holds a robot
anywhere in the cluster, beside the node-local lease files that every worker also takes.

Placement is the same code as the embedded backend's (``hal.placement``) over an inventory read
from Ray (nodes, logical CPUs and memory, GPUs, robot resources) and probed on each node (GPU memory,
robot health, leases). Each worker is then a Ray actor pinned to its node, holding its robot's
resource and its GPU, that runs the worker's command as a child process and relays its heartbeat
file (``hal.process.WorkerProcess``), so heartbeats stay node-local. What runs on a node is in
``ray_node.py``.

Nodes share no disk. A worker on the scheduler's own node uses the run directory as the embedded
backend does; a worker on another node keeps its run directory and leases under that node's
``$RILL_HOME`` (default ``~/.rill``: ``runs/<run>/`` and ``leases/``), receives its configuration
files with its start, and the scheduler fetches the small files a summary needs (``gather``). A node
that dies (its raylet gone) shows as its workers killed; ``host_alive`` then says it is gone.

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

from hal.backends import ROBOT_RESOURCE_PREFIX, Backend, PollResult, WorkerDirs, free_tcp_port
from hal.backends.ray_node import NodeWorker, discover_on_node, probe_node, read_files, with_class
from hal.config import RobotConfig
from hal.errors import ConfigError
from hal.host import GIB, Host, Inventory, RobotState, local_host_name
from hal.leases import Lease, LeaseStore
from hal.placement import Assignment
from hal.registry import load_class_path, robot_types

log = logging.getLogger(__name__)

RESOURCE_PREFIX = ROBOT_RESOURCE_PREFIX
CALL_TIMEOUT_S = 10.0  # a call to a worker's Ray actor that takes longer: its node is taken as gone
# The first call on a node (its inventory probe or discovery) also starts a Ray worker process there
# and imports hal in it: on a loaded 2-core node that alone took over 10 s. Later calls on a node
# that answered once get CALL_TIMEOUT_S.
FIRST_CALL_TIMEOUT_S = 30.0


def robot_resource(name: str) -> str:
    return RESOURCE_PREFIX + name


@dataclass
class RayHandle:
    """A worker under Ray: the Ray actor that owns its process, and that process's pid (fetched once)."""

    actor: Any
    node_id: str
    pid_ref: Any
    _pid: int | None = None
    pending: Any = None  # the poll call in flight (one at a time: a stalled node does not pile them up)

    def pid(self) -> int | None:
        if self._pid is None:
            ready, _ = ray.wait([self.pid_ref], timeout=0)
            if not ready:
                return None  # still starting
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
        self._worker_cls = ray.remote(max_restarts=0)(NodeWorker)
        self._probe = ray.remote(probe_node)
        self._read = ray.remote(read_files)
        self._discover = ray.remote(discover_on_node)
        self._port = ray.remote(free_tcp_port)
        self._driver_node = ray.get_runtime_context().get_node_id()
        self._node_of: dict[str, str] = {}
        self._facts: dict[str, dict] = {}  # per node id: its address, $RILL_HOME and lease directory
        self._probed: set[str] = set()  # node ids that answered a probe or discovery

    def _first_call_timeout(self, node_id: str) -> float:
        return CALL_TIMEOUT_S if node_id in self._probed else FIRST_CALL_TIMEOUT_S

    def _nodes(self) -> list[tuple[str, str, dict]]:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        counts = Counter(n["NodeManagerHostname"] for n in ray.nodes())  # dead ones keep their names
        out = []
        for n in sorted(nodes, key=lambda n: (n["NodeManagerHostname"], n["NodeID"])):
            host = n["NodeManagerHostname"]
            if counts[host] > 1:  # several Ray nodes on one machine: tell them apart
                host = f"{host}/{n['NodeID'][:8]}"
            self._facts.setdefault(n["NodeID"], {})["address"] = n["NodeManagerAddress"]
            out.append((host, n["NodeID"], n["Resources"]))
        return out

    def _on(self, node_id: str) -> NodeAffinitySchedulingStrategy:
        return NodeAffinitySchedulingStrategy(node_id, soft=False)

    def _node(self, host: str) -> str:
        if host not in self._node_of:
            self.inventory([])
        try:
            return self._node_of[host]
        except KeyError:
            raise ConfigError(f"no live Ray node is called {host!r}") from None

    def inventory(self, robots: Sequence[RobotConfig]) -> Inventory:
        configs = {r.name: r for r in robots}
        try:
            from ray._private.state import available_resources_per_node

            available = available_resources_per_node()
        except Exception:  # a private API: without it, assume what is there is free
            available = {}
        hosts, located = [], set()
        self._node_of = {}
        for host, node_id, total in self._nodes():
            self._node_of[host] = node_id  # alive, even if its probe below goes unanswered
            free = available.get(node_id, total)
            here = [
                configs[k[len(RESOURCE_PREFIX) :]]
                for k in sorted(total)
                if k.startswith(RESOURCE_PREFIX) and k[len(RESOURCE_PREFIX) :] in configs
            ]
            lease_dir = str(self.leases.directory) if node_id == self._driver_node else None
            try:  # bounded: a node that does not answer is left out, never waited on
                probe = ray.get(
                    self._probe.options(num_cpus=0, scheduling_strategy=self._on(node_id)).remote(
                        [with_class(r) for r in here], lease_dir
                    ),
                    timeout=self._first_call_timeout(node_id),
                )
            except ray.exceptions.RayError as e:
                log.warning("node %s (%s) did not answer the inventory probe: %s; left out", host, node_id, e)
                continue
            self._probed.add(node_id)
            self._facts[node_id].update(home=probe["home"], lease_dir=probe["lease_dir"])
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
        files: dict[str, str] | None = None,
    ) -> RayHandle:
        node_id = self._node(assignment.host)
        options: dict[str, Any] = {
            "num_cpus": assignment.cpus,
            "num_gpus": 1 if assignment.gpu_index is not None else 0,
            "scheduling_strategy": self._on(node_id),
        }
        if assignment.robot is not None:
            options["resources"] = {robot_resource(assignment.robot): 1}
        lease_dir = self._facts.get(node_id, {}).get("lease_dir", str(self.leases.directory))
        actor = self._worker_cls.options(**options).remote(
            argv, env, heartbeat_file, log_file, lease_dir, holder, assignment.robot, files
        )
        return RayHandle(actor, node_id, actor.pid.remote())  # not awaited: starts run in parallel

    def poll(self, handles: Sequence[RayHandle]) -> list[PollResult]:
        for h in handles:
            if h.pending is None:
                h.pending = h.actor.poll.remote()
        ready, _ = ray.wait([h.pending for h in handles], num_returns=len(handles), timeout=0.2)
        ready_ids = {r.hex() for r in ready}
        out: list[PollResult] = []
        for h in handles:
            if h.pending.hex() not in ready_ids:
                out.append((None, None))  # still starting, or its node is slow: no news yet
                continue
            ref, h.pending = h.pending, None
            try:
                out.append(ray.get(ref))
            except ray.exceptions.RayError as e:  # the node or the actor died: the worker is gone
                log.warning("Ray actor of a worker died: %s", e)
                out.append((-9, None))
        return out

    def pid(self, handle: RayHandle) -> int | None:
        return handle.pid()

    def _call(self, handle: RayHandle, method: str) -> Any:
        """A call to the worker's Ray actor, waited for at most ``CALL_TIMEOUT_S``."""
        return ray.get(getattr(handle.actor, method).remote(), timeout=CALL_TIMEOUT_S)

    def terminate(self, handle: RayHandle) -> None:
        try:
            self._call(handle, "terminate")
        except ray.exceptions.RayError as e:  # gone already: poll reports it
            log.warning("terminate: the worker's Ray actor did not answer: %s", e)

    def kill(self, handle: RayHandle) -> None:
        try:
            self._call(handle, "kill")
        except ray.exceptions.RayError as e:
            log.warning("kill: the worker's Ray actor did not answer (%s); killing the actor", e)
            ray.kill(handle.actor)

    def release(self, handle: RayHandle) -> int:
        try:
            rc = self._call(handle, "release")
        except ray.exceptions.RayError:
            rc = -9
        ray.kill(handle.actor)  # gives its robot resource, CPUs and GPU back to Ray
        return rc

    def discover(self) -> list[RobotConfig]:
        """Robots found by the discovery plugins on each node, where that node advertises them."""
        found: dict[str, RobotConfig] = {}
        for _, node_id, total in self._nodes():
            advertised = [k[len(RESOURCE_PREFIX) :] for k in total if k.startswith(RESOURCE_PREFIX)]
            if not advertised:
                continue
            ref = self._discover.options(num_cpus=0, scheduling_strategy=self._on(node_id)).remote(advertised)
            try:
                answer = ray.get(ref, timeout=self._first_call_timeout(node_id))
            except ray.exceptions.RayError as e:  # that node's robots are not offered this time
                log.warning("discovery on node %s: %s; its robots are left out", node_id, e)
                continue
            self._probed.add(node_id)
            for data in answer:
                path = data.pop("class", None)
                if path and data["type"] not in robot_types():
                    load_class_path(path)
                config = RobotConfig(**{**data, "host": None})
                if config.name in found:
                    log.warning("robot %r is discovered on two nodes; keeping the first", config.name)
                    continue
                found[config.name] = config
        return list(found.values())

    # -- nodes that share no disk --------------------------------------------------------------
    def worker_dirs(self, host: str, run: str, run_dir: Path) -> WorkerDirs:
        node_id = self._node(host)
        if node_id == self._driver_node:
            return super().worker_dirs(host, run, run_dir)
        facts = self._facts[node_id]
        return WorkerDirs(f"{facts['home']}/runs/{run}", facts["lease_dir"], shared=False)

    def address(self, host: str) -> str:
        return self._facts[self._node(host)]["address"]

    def free_port(self, host: str) -> int:
        node_id = self._node(host)
        if node_id == self._driver_node:
            return free_tcp_port()
        ref = self._port.options(num_cpus=0, scheduling_strategy=self._on(node_id)).remote("0.0.0.0")
        return int(ray.get(ref, timeout=CALL_TIMEOUT_S))

    def host_alive(self, host: str) -> bool:
        node_id = self._node_of.get(host)
        return node_id is not None and any(n["NodeID"] == node_id and n.get("Alive") for n in ray.nodes())

    def gather(self, host: str, root: str, patterns: Sequence[str], max_bytes: int) -> dict[str, bytes]:
        node_id = self._node_of.get(host)
        if node_id is None or node_id == self._driver_node:
            return {}
        ref = self._read.options(num_cpus=0, scheduling_strategy=self._on(node_id)).remote(
            root, list(patterns), max_bytes
        )
        try:
            return ray.get(ref, timeout=CALL_TIMEOUT_S)
        except ray.exceptions.RayError as e:  # its node is gone: what was fetched before stays
            log.warning("gather from %s: %s", host, e)
            return {}

    def close(self) -> None:
        if self.started_ray:
            ray.shutdown()
            self.started_ray = False
