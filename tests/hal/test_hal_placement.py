"""Placement: feasible specs get deterministic assignments; infeasible ones say exactly what is missing."""

from __future__ import annotations

import psutil
import pytest

from hal.accelerators import Accelerator
from hal.backends.embedded import EmbeddedBackend
from hal.config import RobotConfig
from hal.errors import InfeasibleSpecError
from hal.host import Host, Inventory, RobotState
from hal.leases import Lease
from hal.placement import place
from hal.robot import RobotHealth
from hal.runspec import ActorsSpec, LearnerSpec, RunSpec
from hal.scheduler import Scheduler

OK = RobotHealth(True, "available")


def _robot(name: str, host: str, type_: str = "arm", health: RobotHealth = OK, lease: Lease | None = None):
    return RobotState(RobotConfig(name, type_), host, health, lease)


def _inventory(gpus: dict[str, list[float]] | None = None, cpus: float = 8) -> Inventory:
    """Two hosts with two arms each; ``gpus``: host -> free GB per GPU (of 16 GB)."""
    gpus = gpus or {}
    hosts = []
    for h in ("h0", "h1"):
        accel = [Accelerator(i, "Test GPU", 16.0, free) for i, free in enumerate(gpus.get(h, []))]
        hosts.append(Host(h, cpus, 64, 64, accel, [_robot(f"{h}-arm{i}", h) for i in range(2)]))
    return Inventory(hosts)


def _spec(learner: LearnerSpec | None = None, *actors: ActorsSpec) -> RunSpec:
    return RunSpec("t", learner=learner, actors=list(actors))


def test_placement_is_deterministic_and_prefers_the_gpu_host_with_the_actors():
    inv = _inventory(gpus={"h0": [4.0], "h1": [2.0, 12.0]})
    spec = _spec(LearnerSpec(gpu_memory_gb=3), ActorsSpec("a", robot_type="arm", count=2, hosts=["h1"]))
    placement = place(spec, inv)
    assert placement.rows() == [
        ("learner", "learner", "h1", None, "cuda:1"),
        ("a-0", "actor", "h1", "h1-arm0", "cpu"),
        ("a-1", "actor", "h1", "h1-arm1", "cpu"),
    ]
    assert placement.spares == {"arm": ["h0-arm0", "h0-arm1"]}
    assert place(spec, inv).rows() == placement.rows()


def test_one_actor_per_available_robot_skips_faulted_and_leased_ones():
    inv = _inventory()
    inv.hosts[0].robots[0].health = RobotHealth(False, "fault", "e-stop pressed")
    inv.hosts[1].robots[1].lease = Lease("h1-arm1", "other/actor-3#0", "x", 5, 0, 1e12, "h1", 1)
    placement = place(_spec(None, ActorsSpec("a", robot_type="arm")), inv)
    assert [a.robot for a in placement.assignments.values()] == ["h0-arm1", "h1-arm0"]


def test_too_few_robots_is_refused_with_each_reason():
    inv = _inventory()
    inv.hosts[0].robots[0].health = RobotHealth(False, "fault", "e-stop pressed")
    inv.hosts[1].robots[1].lease = Lease("h1-arm1", "other/actor-3#0", "x", 5, 0, 1e12, "h1", 1)
    with pytest.raises(InfeasibleSpecError) as err:
        place(_spec(None, ActorsSpec("a", robot_type="arm", count=3)), inv)
    msg = str(err.value)
    assert "nothing was started" in msg
    assert "actors 'a' need 3 robots of type 'arm', only 2 can be used (h0-arm1, h1-arm0)" in msg
    assert "h0-arm0 (fault: e-stop pressed)" in msg and "h1-arm1 (leased by 'other/actor-3#0'" in msg


def test_every_missing_resource_is_listed_at_once():
    spec = _spec(
        LearnerSpec(gpu_memory_gb=8, allow_cpu=False),
        ActorsSpec("a", robot_type="gripper"),
        ActorsSpec("b", robot="h0-arm7"),
    )
    with pytest.raises(InfeasibleSpecError) as err:
        place(spec, _inventory(gpus={"h1": [4.0]}))
    problems = err.value.problems
    assert len(problems) == 3
    assert problems[0].startswith("actors 'a' want robots of type 'gripper'; the inventory has none")
    assert "(types present: arm)" in problems[0]
    assert (
        "actors 'b' want robot 'h0-arm7', which is not in the inventory; did you mean 'h0-arm1'?"
        in problems[1]
    )
    assert problems[2] == (
        "learner needs a GPU with 8 GB free and allow_cpu is false; GPUs: h1 cuda:0 Test GPU "
        "with 4.0 of 16.0 GB free"
    )


def test_gpu_request_without_gpus_falls_back_to_cpu_only_if_allowed():
    placement = place(_spec(LearnerSpec(gpu_memory_gb=2, allow_cpu=True)), _inventory())
    assert placement.assignments["learner"].device == "cpu"
    assert placement.notes == ["learner: no GPU with 2 GB free (no GPU on h0, h1); running on CPU"]
    with pytest.raises(
        InfeasibleSpecError,
        match="learner needs a GPU with 2 GB free and allow_cpu is false; no GPU on h0, h1",
    ):
        place(_spec(LearnerSpec(gpu_memory_gb=2, allow_cpu=False)), _inventory())


def test_cpu_shortfall_is_named():
    with pytest.raises(InfeasibleSpecError, match=r"no room on their host: h0-arm1 \(host h0 has 0.5 CPUs"):
        place(_spec(None, ActorsSpec("a", robot_type="arm", count=4, cpus=1.5)), _inventory(cpus=2))
    with pytest.raises(
        InfeasibleSpecError, match="learner needs 16 CPUs and 0 GB memory: host h0 has 8 CPUs"
    ):
        place(_spec(LearnerSpec(cpus=16)), _inventory())


def test_infeasible_spec_on_the_embedded_backend_starts_nothing(tmp_path, counter_cmd):
    spec = RunSpec(
        "nothing",
        robots=[RobotConfig("hopper-0", "sim-mujoco")],
        learner=LearnerSpec(command=counter_cmd()),
        actors=[ActorsSpec("a", robot_type="sim-mujoco", count=2, command=counter_cmd())],
        run_dir=str(tmp_path / "run"),
    )
    scheduler = Scheduler(spec, EmbeddedBackend())
    children_before = psutil.Process().children(recursive=True)
    with pytest.raises(InfeasibleSpecError, match="actors 'a' need 2 robots of type 'sim-mujoco', only 1"):
        scheduler.start()
    assert psutil.Process().children(recursive=True) == children_before
    assert scheduler.workers == {} and not (tmp_path / "run").exists()
