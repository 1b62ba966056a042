"""Placement: turn a run spec and an inventory into one assignment per worker, or refuse.

Actors go first, since robots are the scarce, physical thing: each actor group takes distinct
available robots (healthy, not leased, on a host with room for the actor), in a deterministic
order (host, then robot name). The learner goes next: to the GPU with enough free memory on the
host that runs most actors (``colocate``), then the most free memory, then by name; with no such
GPU it falls back to CPU if its spec allows, and says so in ``Placement.notes``.

Every shortfall is collected, and an infeasible spec raises ``InfeasibleSpecError`` listing them
all, before anything is started. The same spec on the same inventory always gives the same
placement, whichever backend asked.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field

from hal.config import nearest
from hal.errors import InfeasibleSpecError
from hal.host import Inventory, RobotState
from hal.runspec import ActorsSpec, RunSpec, WorkerSpec


@dataclass(frozen=True)
class Assignment:
    """Where one worker runs: host, robot (actors), device (``cuda:N`` or ``cpu``) and GPU index."""

    worker: str
    role: str
    host: str
    robot: str | None = None
    robot_type: str | None = None
    device: str = "cpu"
    gpu_index: int | None = None
    cpus: float = 0.0
    memory_gb: float = 0.0
    gpu_memory_gb: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Placement:
    """Workers and their assignments, in start order, plus spare robots by type and notes."""

    run: str
    workers: list[WorkerSpec]
    assignments: dict[str, Assignment]
    spares: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def rows(self) -> list[tuple]:
        """``(worker, role, host, robot, device)`` per worker: what two placements compare by."""
        return [(a.worker, a.role, a.host, a.robot, a.device) for a in self.assignments.values()]

    def to_dict(self) -> dict:
        return {
            "run": self.run,
            "assignments": [a.to_dict() for a in self.assignments.values()],
            "spares": self.spares,
            "notes": self.notes,
        }


class _Capacity:
    """Free CPUs, memory and per-GPU memory of each host, as placement consumes them."""

    def __init__(self, inventory: Inventory) -> None:
        self.cpus = {h.name: h.cpus for h in inventory.hosts}
        self.memory = {h.name: h.memory_available_gb for h in inventory.hosts}
        self.gpus = {h.name: {a.index: a for a in h.accelerators} for h in inventory.hosts}
        self.gpu_free = {(h.name, a.index): a.memory_free_gb for h in inventory.hosts for a in h.accelerators}

    def fits(self, host: str, cpus: float, memory_gb: float) -> bool:
        return self.cpus.get(host, 0.0) + 1e-9 >= cpus and self.memory.get(host, 0.0) + 1e-9 >= memory_gb

    def shortfall(self, host: str, cpus: float, memory_gb: float) -> str:
        return (
            f"host {host} has {self.cpus.get(host, 0.0):g} CPUs and {self.memory.get(host, 0.0):.1f} GB "
            f"free, needs {cpus:g} CPUs and {memory_gb:g} GB"
        )

    def take(self, host: str, cpus: float, memory_gb: float) -> None:
        self.cpus[host] -= cpus
        self.memory[host] -= memory_gb


def _names(robots: list[RobotState], limit: int = 8) -> str:
    shown = ", ".join(r.name for r in robots[:limit])
    return shown + (f" and {len(robots) - limit} more" if len(robots) > limit else "")


def _unusable(robots: list[RobotState], limit: int = 8) -> str:
    shown = "; ".join(f"{r.name} ({r.why_unavailable()})" for r in robots[:limit])
    return shown + (f"; and {len(robots) - limit} more" if len(robots) > limit else "")


def place(spec: RunSpec, inventory: Inventory, exclude_robots: dict[str, str] | None = None) -> Placement:
    """Assign every worker of ``spec`` to ``inventory``; ``InfeasibleSpecError`` lists what is missing.

    ``exclude_robots`` (name -> reason) are robots the caller has seen fail; they are not used.
    """
    exclude_robots = exclude_robots or {}
    problems: list[str] = []
    notes: list[str] = []
    cap = _Capacity(inventory)
    hosts = {h.name for h in inventory.hosts}
    by_name: dict[str, RobotState] = {}
    by_type: dict[str, list[RobotState]] = defaultdict(list)
    for robot in sorted(inventory.robots, key=lambda r: (r.host, r.name)):
        by_name[robot.name] = robot
        by_type[robot.type].append(robot)
    used: set[str] = set()
    workers: list[WorkerSpec] = []
    assignments: dict[str, Assignment] = {}
    actors_per_host: dict[str, int] = defaultdict(int)

    def usable(robot: RobotState) -> bool:
        return robot.available and robot.name not in used and robot.name not in exclude_robots

    for group in spec.actors:
        candidates, problem = _candidates(group, by_name, by_type, inventory)
        if problem:
            problems.append(problem)
            continue
        if group.hosts:
            candidates = [r for r in candidates if r.host in group.hosts]
        want = group.count if group.count is not None else sum(usable(r) for r in candidates)
        what = f"robot {group.robot!r}" if group.robot else f"robots of type {group.robot_type!r}"
        if want == 0:
            problems.append(
                f"actors {group.name!r} want one actor per available {what}; none is available: "
                f"{_unusable(candidates)}"
            )
            continue
        chosen: list[RobotState] = []
        no_room: list[str] = []
        for robot in candidates:
            if len(chosen) == want:
                break
            if not usable(robot):
                continue
            if not cap.fits(robot.host, group.cpus, group.memory_gb):
                no_room.append(f"{robot.name} ({cap.shortfall(robot.host, group.cpus, group.memory_gb)})")
                continue
            cap.take(robot.host, group.cpus, group.memory_gb)
            chosen.append(robot)
            used.add(robot.name)
        if len(chosen) < want:
            bad = [r for r in candidates if not usable(r) and r.name not in used]
            why = []
            if bad:
                why.append(
                    "unavailable: "
                    + "; ".join(
                        f"{r.name} ({exclude_robots.get(r.name) or r.why_unavailable()})" for r in bad[:8]
                    )
                )
            if no_room:
                why.append("no room on their host: " + "; ".join(no_room[:8]))
            problems.append(
                f"actors {group.name!r} need {want} {what}, only {len(chosen)} can be used"
                + (f" ({_names(chosen)})" if chosen else "")
                + (": " + "; ".join(why) if why else "")
            )
            continue
        for i, robot in enumerate(chosen):
            worker = group.worker(i)
            workers.append(worker)
            assignments[worker.name] = Assignment(
                worker.name,
                "actor",
                robot.host,
                robot.name,
                robot.type,
                cpus=group.cpus,
                memory_gb=group.memory_gb,
            )
            actors_per_host[robot.host] += 1

    if spec.learner is not None:
        learner = spec.learner.worker()
        assignment, problem, note = _place_learner(learner, spec, cap, hosts, actors_per_host, inventory)
        if problem:
            problems.append(problem)
        else:
            workers.insert(0, learner)
            assignments = {learner.name: assignment, **assignments}
        if note:
            notes.append(note)

    if problems:
        raise InfeasibleSpecError(spec.name, problems)
    spares: dict[str, list[str]] = {}
    for type_name, robots in by_type.items():
        free = [r.name for r in robots if usable(r)]
        if free:
            spares[type_name] = free
    return Placement(spec.name, workers, assignments, spares, notes)


def _candidates(
    group: ActorsSpec,
    by_name: dict[str, RobotState],
    by_type: dict[str, list[RobotState]],
    inventory: Inventory,
) -> tuple[list[RobotState], str | None]:
    if group.robot is not None:
        robot = by_name.get(group.robot)
        if robot is not None:
            return [robot], None
        if group.robot in inventory.unreachable:
            return (
                [],
                f"actors {group.name!r} want robot {group.robot!r}: {inventory.unreachable[group.robot]}",
            )
        near = nearest(group.robot, list(by_name))
        hint = f"; did you mean {near!r}?" if near else ""
        return [], (
            f"actors {group.name!r} want robot {group.robot!r}, which is not in the inventory{hint} "
            f"(robots: {', '.join(sorted(by_name)) or 'none'})"
        )
    candidates = by_type.get(group.robot_type or "", [])
    if not candidates:
        unreachable = list(inventory.unreachable)
        near = nearest(group.robot_type or "", list(by_type))
        hint = f"; did you mean {near!r}?" if near else ""
        extra = f"; unreachable robots: {', '.join(unreachable)}" if unreachable else ""
        return [], (
            f"actors {group.name!r} want robots of type {group.robot_type!r}; the inventory has none"
            f"{hint} (types present: {', '.join(sorted(by_type)) or 'none'}){extra}"
        )
    return candidates, None


def _place_learner(
    learner: WorkerSpec,
    spec: RunSpec,
    cap: _Capacity,
    hosts: set[str],
    actors_per_host: dict[str, int],
    inventory: Inventory,
):
    req = learner.request
    allowed = [h.name for h in inventory.hosts if not req.hosts or h.name in req.hosts]
    if req.hosts and not allowed:
        return (
            None,
            f"learner wants host {req.hosts[0]!r}, which is not in the inventory "
            f"(hosts: {', '.join(sorted(hosts)) or 'none'})",
            None,
        )

    def rank(host: str) -> tuple:
        return (-actors_per_host.get(host, 0) if req.colocate else 0, host)

    fitting_hosts = [h for h in allowed if cap.fits(h, req.cpus, req.memory_gb)]
    note = None
    if req.gpu_memory_gb > 0:
        gpus = [
            (host, gpu)
            for host in fitting_hosts
            for gpu in cap.gpus[host].values()
            if cap.gpu_free[(host, gpu.index)] + 1e-9 >= req.gpu_memory_gb
        ]
        if gpus:
            host, gpu = min(
                gpus,
                key=lambda hg: (*rank(hg[0])[:1], -cap.gpu_free[(hg[0], hg[1].index)], hg[0], hg[1].index),
            )
            cap.take(host, req.cpus, req.memory_gb)
            cap.gpu_free[(host, gpu.index)] -= req.gpu_memory_gb
            return (
                Assignment(
                    learner.name,
                    "learner",
                    host,
                    device=gpu.device,
                    gpu_index=gpu.index,
                    cpus=req.cpus,
                    memory_gb=req.memory_gb,
                    gpu_memory_gb=req.gpu_memory_gb,
                ),
                None,
                None,
            )
        seen = [
            f"{h} {a.device} {a.name} with {cap.gpu_free[(h, a.index)]:.1f} of "
            f"{a.memory_total_gb:.1f} GB free"
            for h in allowed
            for a in cap.gpus[h].values()
        ]
        found = f"GPUs: {'; '.join(seen)}" if seen else f"no GPU on {', '.join(allowed) or 'any host'}"
        if not req.allow_cpu:
            return (
                None,
                (f"learner needs a GPU with {req.gpu_memory_gb:g} GB free and allow_cpu is false; {found}"),
                None,
            )
        note = f"learner: no GPU with {req.gpu_memory_gb:g} GB free ({found}); running on CPU"
    if not fitting_hosts:
        short = "; ".join(cap.shortfall(h, req.cpus, req.memory_gb) for h in allowed)
        return None, f"learner needs {req.cpus:g} CPUs and {req.memory_gb:g} GB memory: {short}", note
    host = min(fitting_hosts, key=rank)
    cap.take(host, req.cpus, req.memory_gb)
    return Assignment(learner.name, "learner", host, cpus=req.cpus, memory_gb=req.memory_gb), None, note
