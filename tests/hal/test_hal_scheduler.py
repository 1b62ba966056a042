"""The embedded scheduler with real worker processes driving real MuJoCo robots.

Workers are ``hal.testing.counter_worker``: each step drives its robot and appends the next
sequence number to a durable log, so "restarted, numbers continue, nothing lost" is checked on disk.
"""

from __future__ import annotations

import os
import signal

from hal.backends.embedded import EmbeddedBackend
from hal.config import RobotConfig
from hal.leases import LeaseStore
from hal.runspec import ActorsSpec, HeartbeatPolicy, LearnerSpec, RestartPolicy, RunSpec
from hal.scheduler import DONE, FAILED, Scheduler, read_run_status
from hal.testing.counter_worker import stream_path
from hal.testing.sequence_log import read_records


def _spec(
    tmp_path,
    command,
    robots=("hopper-0",),
    count=1,
    learner=None,
    restart=None,
    heartbeat=None,
    fault_files=None,
) -> RunSpec:
    fault_files = fault_files or {}
    return RunSpec(
        "t",
        robots=[
            RobotConfig(r, "sim-mujoco", {"env_id": "Hopper-v5", "fault_file": fault_files.get(r)})
            for r in robots
        ],
        learner=learner,
        actors=[ActorsSpec("actor", robot_type="sim-mujoco", count=count, cpus=0.1, command=command)],
        restart=restart or RestartPolicy(max_restarts=3, backoff_s=0.05),
        heartbeat=heartbeat or HeartbeatPolicy(interval_s=0.05, timeout_s=10, lease_ttl_s=2),
        run_dir=str(tmp_path / "run"),
    )


def _kinds(scheduler: Scheduler, worker: str) -> list[str]:
    return [e.kind for e in scheduler.events if e.worker == worker]


def _once(condition, action):
    """An ``on_poll`` callback that runs ``action(scheduler)`` the first time ``condition`` holds."""
    done = []

    def on_poll(scheduler: Scheduler) -> None:
        if not done and condition(scheduler):
            done.append(True)
            action(scheduler)

    return on_poll


def _streamed(tmp_path, worker="actor-0") -> list[tuple[int, int, str]]:
    return read_records(stream_path(tmp_path / "run", worker))


def test_kill_9_actor_is_restarted_and_its_sequence_continues(tmp_path, counter_cmd):
    spec = _spec(
        tmp_path,
        counter_cmd(steps=120, rate=200),
        learner=LearnerSpec(cpus=0.1, command=counter_cmd(steps=20, rate=50)),
    )
    killed = []

    def kill(scheduler: Scheduler) -> None:
        pid = next(s.pid for s in scheduler.status() if s.name == "actor-0")
        killed.append(pid)
        os.kill(pid, signal.SIGKILL)

    with Scheduler(spec, EmbeddedBackend()) as scheduler:
        scheduler.start()
        assert scheduler.run(timeout_s=120, on_poll=_once(lambda s: len(_streamed(tmp_path)) >= 30, kill))
        status = {s.name: s for s in scheduler.status()}
    assert killed and status["actor-0"].state == DONE and status["actor-0"].restarts == 1
    assert status["learner"].state == DONE and status["learner"].restarts == 0
    records = _streamed(tmp_path)
    assert [seq for seq, _, _ in records] == list(range(120))  # contiguous: nothing lost, nothing twice
    incarnations = [inc for _, inc, _ in records]
    assert incarnations == sorted(incarnations) and set(incarnations) == {0, 1}
    assert {robot for _, _, robot in records} == {"hopper-0"}
    kinds = _kinds(scheduler, "actor-0")
    assert kinds == ["started", "running", "crashed", "restarting", "started", "running", "exited"]
    crash = next(e for e in scheduler.events if e.kind == "crashed")
    assert crash.detail == "killed by signal 9"
    assert LeaseStore().holder("hopper-0") is None  # released at the end, not left to expire


def test_faulted_robot_is_stopped_safely_and_its_actor_moves_to_a_spare(tmp_path, counter_cmd):
    fault = tmp_path / "hopper-0.estop"
    spec = _spec(
        tmp_path,
        counter_cmd(steps=100, rate=200),
        robots=("hopper-0", "hopper-1"),
        fault_files={"hopper-0": str(fault)},
    )
    with Scheduler(spec, EmbeddedBackend()) as scheduler:
        placement = scheduler.place()
        assert placement.assignments["actor-0"].robot == "hopper-0" and placement.spares == {
            "sim-mujoco": ["hopper-1"]
        }
        scheduler.start(placement)
        assert scheduler.run(
            timeout_s=120, on_poll=_once(lambda s: len(_streamed(tmp_path)) >= 30, lambda s: fault.touch())
        )
        status = scheduler.status()[0]
    assert status.state == DONE and status.robot == "hopper-1" and status.moves == 1 and status.restarts == 0
    assert "hopper-0" in scheduler.faulted_robots and str(fault) in scheduler.faulted_robots["hopper-0"]
    kinds = _kinds(scheduler, "actor-0")
    assert kinds[:2] == ["started", "running"] and kinds[-4:] == ["moved", "started", "running", "exited"]
    assert "robot-fault" in kinds and "crashed" not in kinds
    records = _streamed(tmp_path)
    assert [seq for seq, _, _ in records] == list(range(100))
    robots = [robot for _, _, robot in records]
    switch = robots.index("hopper-1")
    assert switch >= 30 and set(robots[:switch]) == {"hopper-0"} and set(robots[switch:]) == {"hopper-1"}
    log = (tmp_path / "run" / "logs" / "actor-0.log").read_text()
    assert "robot hopper-0 holding position (fault: simulated fault" in log  # stopped safely by its actor
    assert LeaseStore().holder("hopper-0") is None


def test_faulted_robot_without_a_spare_fails_its_actor_clearly(tmp_path, counter_cmd):
    fault = tmp_path / "estop"
    spec = _spec(tmp_path, counter_cmd(steps=1000, rate=200), fault_files={"hopper-0": str(fault)})
    with Scheduler(spec, EmbeddedBackend()) as scheduler:
        scheduler.start()
        assert not scheduler.run(
            timeout_s=120, on_poll=_once(lambda s: len(_streamed(tmp_path)) >= 10, lambda s: fault.touch())
        )
        status = scheduler.status()[0]
    assert status.state == FAILED
    assert (
        "robot hopper-0 faulted" in status.detail
        and "no spare healthy robot of type 'sim-mujoco'" in status.detail
    )


def test_a_spare_the_move_check_refuses_is_not_taken_and_the_reason_is_named(tmp_path, counter_cmd):
    # rill run sets move_check so that no actor moves where its link cannot reach the learner.
    fault = tmp_path / "estop"
    spec = _spec(tmp_path, counter_cmd(steps=1000, rate=200), robots=("hopper-0", "hopper-1"),
                 fault_files={"hopper-0": str(fault)})
    asked = []

    def refuse(worker: str, host: str) -> str:
        asked.append((worker, host))
        return f"no link from {host} for {worker}"

    with Scheduler(spec, EmbeddedBackend()) as scheduler:
        scheduler.move_check = refuse
        scheduler.start()
        assert not scheduler.run(
            timeout_s=120, on_poll=_once(lambda s: len(_streamed(tmp_path)) >= 10, lambda s: fault.touch())
        )
        status = scheduler.status()[0]
    assert asked and all(worker == "actor-0" for worker, _ in asked)
    assert status.state == FAILED and status.robot == "hopper-0" and status.moves == 0
    assert "no spare healthy robot of type 'sim-mujoco' it may move to (no link from" in status.detail


def test_crashing_worker_is_restarted_with_backoff_up_to_the_limit(tmp_path, counter_cmd):
    spec = _spec(
        tmp_path,
        counter_cmd(1, 1, "--exit-code", "3"),
        restart=RestartPolicy(max_restarts=2, backoff_s=0.01, max_backoff_s=0.02),
    )
    with Scheduler(spec, EmbeddedBackend()) as scheduler:
        scheduler.start()
        assert not scheduler.run(timeout_s=60)
        status = scheduler.status()[0]
    assert status.state == FAILED and status.restarts == 2 and status.incarnation == 2
    assert "restarted 2 times, the limit" in status.detail
    assert _kinds(scheduler, "actor-0") == [
        "started",
        "crashed",
        "restarting",
        "started",
        "crashed",
        "restarting",
        "started",
        "crashed",
        "failed",
    ]
    assert [e.detail for e in scheduler.events if e.kind == "restarting"] == [
        "restart 1 of 2 in 0.01 s",
        "restart 2 of 2 in 0.02 s",
    ]


def test_silent_worker_is_killed_and_restarted(tmp_path, counter_cmd):
    spec = _spec(
        tmp_path,
        counter_cmd(steps=80, rate=200),
        heartbeat=HeartbeatPolicy(interval_s=0.05, timeout_s=1.0, lease_ttl_s=2),
    )

    def freeze(scheduler: Scheduler) -> None:  # a hung worker: alive, but silent
        os.kill(scheduler.status()[0].pid, signal.SIGSTOP)

    with Scheduler(spec, EmbeddedBackend()) as scheduler:
        scheduler.start()
        assert scheduler.run(timeout_s=120, on_poll=_once(lambda s: len(_streamed(tmp_path)) >= 20, freeze))
    kinds = _kinds(scheduler, "actor-0")
    assert kinds == [
        "started",
        "running",
        "heartbeat-timeout",
        "crashed",
        "restarting",
        "started",
        "running",
        "exited",
    ]
    assert [seq for seq, _, _ in _streamed(tmp_path)] == list(range(80))


def test_stop_asks_workers_to_stop_and_status_file_tells_rill_status(tmp_path, counter_cmd):
    spec = _spec(tmp_path, counter_cmd(steps=100000, rate=100))
    with Scheduler(spec, EmbeddedBackend()) as scheduler:
        scheduler.start()
        scheduler.run(
            timeout_s=60, on_poll=_once(lambda s: len(_streamed(tmp_path)) >= 5, lambda s: s.stop())
        )
        status = read_run_status(tmp_path / "run")
    assert status["run"] == "t" and status["backend"] == "embedded"
    assert [(w["name"], w["state"], w["robot"]) for w in status["workers"]] == [
        ("actor-0", "stopped", "hopper-0")
    ]
    assert _kinds(scheduler, "actor-0")[-1] == "stopped"
    last = _streamed(tmp_path)[-1][0]
    assert [seq for seq, _, _ in _streamed(tmp_path)] == list(range(last + 1))
    assert LeaseStore().holder("hopper-0") is None  # the worker released its lease on SIGTERM


SUPERVISOR = """
import sys, time
import sim.robots
from hal.backends.embedded import EmbeddedBackend
from hal.config import RobotConfig
from hal.runspec import ActorsSpec, RunSpec
from hal.scheduler import Scheduler
spec = RunSpec("orphan", robots=[RobotConfig("hopper-0", "sim-mujoco")],
               actors=[ActorsSpec("actor", robot_type="sim-mujoco", count=1, cpus=0.1, command=sys.argv[2:])],
               run_dir=sys.argv[1])
scheduler = Scheduler(spec, EmbeddedBackend())
scheduler.start()
scheduler.run()
"""


def test_workers_of_a_killed_scheduler_stop_and_free_their_robot(tmp_path, counter_cmd, wait):
    import subprocess
    import sys

    import psutil

    run = tmp_path / "run"
    supervisor = subprocess.Popen([sys.executable, "-c", SUPERVISOR, str(run), *counter_cmd(10**9, 100)])
    try:
        wait(lambda: len(read_records(stream_path(run, "actor-0"))) >= 5, 60, "the actor to stream")
        assert LeaseStore().holder("hopper-0") is not None
        worker = psutil.Process(supervisor.pid).children()[0]
        supervisor.kill()
        supervisor.wait()
        # The orphaned worker is told to stop: it holds the robot, releases its lease and exits.
        wait(
            lambda: not worker.is_running() or worker.status() == psutil.STATUS_ZOMBIE,
            30,
            "the worker to exit",
        )
        assert LeaseStore().holder("hopper-0") is None
        assert "robot hopper-0 holding position (disconnect)" in (run / "logs" / "actor-0.log").read_text()
    finally:
        supervisor.kill()
        supervisor.wait()
