"""The Ray backend on a local ``ray.init``: same placements as the embedded backend, real workers run.

Robots are Ray custom resources (``robot:<name>``) of the local node; workers are Ray actors that
run ``hal.testing.counter_worker`` as a child process and relay its heartbeat.
"""

from __future__ import annotations

import os
import signal

import pytest

pytest.importorskip("ray")

from hal.backends.embedded import EmbeddedBackend
from hal.backends.ray import RayBackend, robot_resource
from hal.config import RobotConfig
from hal.errors import InfeasibleSpecError
from hal.leases import LeaseStore
from hal.runspec import ActorsSpec, HeartbeatPolicy, LearnerSpec, RestartPolicy, RunSpec
from hal.scheduler import DONE, Scheduler
from hal.testing.counter_worker import stream_path
from hal.testing.sequence_log import read_records

NAMES = ("hopper-0", "hopper-1", "hopper-2")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local Ray with three simulated robots as custom resources; shut down after the module."""
    root = tmp_path_factory.mktemp("ray-hal")
    fault = root / "hopper-0.estop"
    robots = [
        RobotConfig(n, "sim-mujoco", {"env_id": "Hopper-v5", "fault_file": str(root / f"{n}.estop")})
        for n in NAMES
    ]
    backend = RayBackend(robots, leases=LeaseStore(root / "leases"), num_cpus=2)
    try:
        yield backend, robots, fault
    finally:
        backend.close()


def _spec(robots, tmp_path, count=None, command=None, learner_command=None) -> RunSpec:
    return RunSpec(
        "ray-t",
        robots=list(robots),
        learner=LearnerSpec(gpu_memory_gb=1, allow_cpu=True, cpus=0.2, command=learner_command),
        actors=[ActorsSpec("actor", robot_type="sim-mujoco", count=count, cpus=0.2, command=command)],
        restart=RestartPolicy(max_restarts=2, backoff_s=0.05),
        heartbeat=HeartbeatPolicy(interval_s=0.05, timeout_s=20, lease_ttl_s=2),
        run_dir=str(tmp_path / "run"),
    )


def test_ray_and_embedded_backends_place_a_spec_alike(cluster, tmp_path):
    backend, robots, fault = cluster
    import ray

    assert ray.cluster_resources()[robot_resource("hopper-1")] == 1
    fault.touch()  # hopper-0 faults
    other = backend.leases.acquire("hopper-1", "other-run/actor-0#0", ttl_s=60)  # hopper-1 is taken
    try:
        embedded = EmbeddedBackend(leases=backend.leases)
        spec = _spec(robots, tmp_path)
        on_ray = Scheduler(spec, backend).place()
        local = Scheduler(spec, embedded).place()
        assert on_ray.rows() == local.rows()
        assert [(w, r, d) for w, _, _, r, d in on_ray.rows()] == [
            ("learner", None, "cpu"),
            ("actor-0", "hopper-2", "cpu"),
        ]
        assert on_ray.notes == local.notes and on_ray.spares == local.spares == {}
        too_many = _spec(robots, tmp_path, count=2)
        with pytest.raises(InfeasibleSpecError) as on_ray_err:
            Scheduler(too_many, backend).place()
        with pytest.raises(InfeasibleSpecError) as local_err:
            Scheduler(too_many, embedded).place()
        assert on_ray_err.value.problems == local_err.value.problems
        assert "hopper-0 (fault: simulated fault" in on_ray_err.value.problems[0]
        assert "hopper-1 (leased by 'other-run/actor-0#0'" in on_ray_err.value.problems[0]
    finally:
        backend.leases.release(other)
        fault.unlink()


def test_ray_backend_runs_restarts_and_finishes_workers(cluster, tmp_path, counter_cmd, wait):
    backend, robots, _ = cluster
    spec = _spec(
        robots[1:],
        tmp_path,
        count=2,
        command=counter_cmd(steps=80, rate=100),
        learner_command=counter_cmd(steps=10, rate=50),
    )

    def records(worker="actor-0"):
        return read_records(stream_path(tmp_path / "run", worker))

    killed = []

    def on_poll(scheduler: Scheduler) -> None:
        if not killed and len(records()) >= 20:
            pid = next(s.pid for s in scheduler.status() if s.name == "actor-0")
            killed.append(pid)
            os.kill(pid, signal.SIGKILL)

    with Scheduler(spec, backend) as scheduler:
        placement = scheduler.place()
        assert {a.robot for a in placement.assignments.values()} == {None, "hopper-1", "hopper-2"}
        scheduler.start(placement)
        assert scheduler.run(timeout_s=180, on_poll=on_poll)
        status = {s.name: s for s in scheduler.status()}
    assert killed and all(s.state == DONE for s in status.values())
    assert status["actor-0"].restarts == 1 and status["actor-1"].restarts == 0
    for worker in ("actor-0", "actor-1"):
        assert [seq for seq, _, _ in records(worker)] == list(range(80))
    assert {inc for _, inc, _ in records("actor-0")} == {0, 1}
    import ray

    # ray.kill is asynchronous: the robot's resource comes back to Ray shortly after.
    wait(lambda: ray.available_resources().get(robot_resource("hopper-1")) == 1, 60, "hopper-1 back in Ray")
