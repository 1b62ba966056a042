"""The clock thread under SCHED_FIFO on a real simulated robot: only the clock thread is raised (not
the inference thread, not threads it starts), it is put back after the run, and a refusal is
reported by name while the loop runs on. Pinned, the clock owns its CPUs: the process's other
threads run on the others while the loop runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from agent.loop import ControlLoop, LoopConfig
from agent.testing.policies import ReplanningPolicy
from hal.errors import ConfigError
from sim.robots import MujocoRobot, MujocoRobotConfig

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_setscheduler"), reason="Linux scheduling")


def _policy() -> int:
    """The calling thread's scheduling policy, without the reset-on-fork flag."""
    return os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK


def _fifo_allowed() -> bool:
    """Whether this process may raise a thread to SCHED_FIFO (root, CAP_SYS_NICE or rtprio)."""
    result: list[bool] = []

    def probe() -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(1))
            result.append(True)
        except PermissionError:
            result.append(False)

    t = threading.Thread(target=probe)  # a thread of its own: the test's thread stays as it is
    t.start()
    t.join()
    return result[0]


class _SchedulingPolicy(ReplanningPolicy):
    """Records the scheduling policy of the thread it runs on (the inference thread)."""

    def __init__(self, *a, **k) -> None:
        super().__init__(*a, **k)
        self.policies: set[int] = set()
        self.cpus: set[frozenset[int]] = set()

    def act(self, observation):
        self.policies.add(_policy())
        self.cpus.add(frozenset(os.sched_getaffinity(0)))
        return super().act(observation)


def _run(config: LoopConfig, ticks: int = 60):
    robot = MujocoRobot("hopper", MujocoRobotConfig(env_id="Hopper-v5", watchdog_timeout_s=None))
    policy = _SchedulingPolicy(3, chunk_size=10, latency_s=0.01)
    seen: dict[str, set] = {"clock": set(), "cpus": set(), "started": set()}

    def on_tick(record) -> None:
        seen["clock"].add(_policy())
        seen["cpus"].add(frozenset(os.sched_getaffinity(0)))
        if record.tick == 5:  # a thread started from the clock must not inherit its priority
            t = threading.Thread(target=lambda: seen["started"].add(_policy()))
            t.start()
            t.join()

    loop = ControlLoop(robot, policy, config, on_tick=on_tick)
    before = (os.sched_getscheduler(0), os.sched_getaffinity(0))
    with robot:
        stats = loop.run(ticks=ticks)
    after = (os.sched_getscheduler(0), os.sched_getaffinity(0))
    return stats, policy, seen, before, after


def test_only_the_clock_thread_runs_under_sched_fifo_and_it_is_put_back():
    if not _fifo_allowed():
        pytest.skip("this process may not use SCHED_FIFO (no CAP_SYS_NICE or rtprio limit)")
    cpu = min(os.sched_getaffinity(0))
    stats, policy, seen, before, after = _run(LoopConfig(control_hz=100, rt_priority=20, cpus=[cpu]))
    assert stats.ticks == 60
    assert stats.realtime == f"SCHED_FIFO 20 on CPUs [{cpu}]" and stats.realtime_refused == ""
    assert seen["clock"] == {os.SCHED_FIFO}
    assert seen["cpus"] == {frozenset({cpu})}
    assert seen["started"] == {os.SCHED_OTHER}, "a thread started by the clock inherited SCHED_FIFO"
    assert policy.calls >= 2 and policy.policies == {os.SCHED_OTHER}, "the inference thread was raised"
    assert after == before, "the caller's thread was not put back"


def test_pinned_the_clock_owns_its_cpu_and_the_processs_other_threads_run_on_the_others():
    usable = os.sched_getaffinity(0)
    if len(usable) < 2:
        pytest.skip("needs two CPUs")
    cpu = max(usable)
    # a thread of this process that was running before the loop (as a ROS executor would be)
    during, stop = set(), threading.Event()

    def bystander() -> None:
        while not stop.wait(0.002):
            during.add(frozenset(os.sched_getaffinity(0)))

    t = threading.Thread(target=bystander)
    t.start()
    try:
        stats, policy, seen, before, after = _run(LoopConfig(control_hz=100, cpus=[cpu]))
        bystander_after = os.sched_getaffinity(t.native_id)
    finally:
        stop.set()
        t.join()
    assert stats.ticks == 60 and stats.realtime == f"on CPUs [{cpu}]"
    assert seen["cpus"] == {frozenset({cpu})}
    assert policy.calls >= 2 and policy.cpus == {frozenset(usable - {cpu})}, policy.cpus
    assert frozenset(usable - {cpu}) in during, "a thread running before the loop kept the clock's CPU"
    assert bystander_after == usable, "the loop did not give the thread its CPUs back"
    assert after == before


def test_a_thread_started_on_the_pinned_clock_is_moved_off_its_cpu_and_given_the_others_back():
    """A thread keeps the CPUs of the thread that starts it: one started on the clock (a checkpoint
    writer at an episode's end, a batcher's timer) would share the clock's CPU for the whole loop."""
    usable = os.sched_getaffinity(0)
    if len(usable) < 2:
        pytest.skip("needs two CPUs")
    cpu = max(usable)
    robot = MujocoRobot("hopper", MujocoRobotConfig(env_id="Hopper-v5", watchdog_timeout_s=None))
    policy = _SchedulingPolicy(3, chunk_size=10, latency_s=0.01)
    seen: list[frozenset[int]] = []
    stop, born = threading.Event(), []

    def writer() -> None:
        while not stop.wait(0.005):
            seen.append(frozenset(os.sched_getaffinity(0)))

    def on_tick(record) -> None:
        if record.tick == 5:
            t = threading.Thread(target=writer)
            t.start()
            born.append(t)

    loop = ControlLoop(robot, policy, LoopConfig(control_hz=100, cpus=[cpu]), on_tick=on_tick)
    try:
        with robot:
            stats = loop.run(ticks=100)
        after = os.sched_getaffinity(born[0].native_id)
    finally:
        stop.set()
        for t in born:
            t.join()
    assert stats.realtime == f"on CPUs [{cpu}]" and len(born) == 1
    phases = [a for i, a in enumerate(seen) if i == 0 or a != seen[i - 1]]
    assert phases[0] == {cpu}, "the thread did not start with the clock's CPU (nothing to test)"
    assert usable - {cpu} in phases, "a thread started on the clock stayed on the clock's CPU"
    assert phases == [{cpu}, usable - {cpu}, usable][:len(phases)], phases
    assert after == usable, "the thread did not get the process's CPUs after the loop"


def test_keep_off_leaves_a_thread_where_it_is_when_no_other_cpu_is_allowed():
    from agent.loop import realtime

    usable = os.sched_getaffinity(0)
    seen: list = []

    def probe() -> None:  # a thread of its own: the test's thread stays as it is
        seen.append(realtime.keep_off(sorted(usable)))
        seen.append(os.sched_getaffinity(0))
        seen.append(realtime.keep_off([]))

    t = threading.Thread(target=probe)
    t.start()
    t.join()
    assert seen == ["", usable, ""]


def test_a_refused_request_is_reported_by_name_and_the_loop_runs_on():
    # A CPU this machine does not have is refused by the kernel whoever runs the test.
    usable = os.sched_getaffinity(0)
    missing = 1000
    stats, _policy, seen, before, after = _run(LoopConfig(control_hz=100, cpus=[missing]))
    assert stats.ticks == 60 and stats.realtime == ""
    assert f"CPUs [{missing}] refused" in stats.realtime_refused
    assert str(sorted(usable)) in stats.realtime_refused
    assert seen["clock"] == {before[0]} and after == before


def test_fifo_refused_names_the_capability_and_the_limit():
    """Without CAP_SYS_NICE and with an rtprio limit of 0 (root's test drops the capability from a
    child process with ``setpriv``), asking for SCHED_FIFO is refused with what to change, and
    nothing is applied."""
    code = ("import json, os, resource\n"
            "from agent.loop import realtime\n"
            "resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))\n"
            "before = os.sched_getscheduler(0)\n"
            "s = realtime.enter(30, [])\n"
            "print(json.dumps([s.applied, s.refused, before, os.sched_getscheduler(0)]))\n")
    command = [sys.executable, "-c", code]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("root, and no setpriv to drop CAP_SYS_NICE with")
        command = ["setpriv", "--bounding-set=-sys_nice", *command]
    elif _fifo_allowed():
        pytest.skip("this user may use SCHED_FIFO")
    done = subprocess.run(command, capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[3])
    assert done.returncode == 0, done.stderr
    applied, refused, before, after = json.loads(done.stdout.strip().splitlines()[-1])
    assert applied == "" and before == after == os.SCHED_OTHER
    assert refused.startswith("SCHED_FIFO 30 refused")
    assert "CAP_SYS_NICE" in refused and "ulimit -r" in refused


@pytest.mark.parametrize(
    "field,value",
    [("rt_priority", -1), ("rt_priority", 99), ("rt_priority", 1.5), ("cpus", [-1]), ("cpus", "0,1"),
     ("cpus", [0.5]), ("cpus", [1 << 40]), ("rt_priority", 50)],
)
def test_bad_scheduling_settings_are_refused_by_name(field, value):
    # rt_priority 50 is refused here only because the loop is unpaced (it would hold its CPU)
    with pytest.raises(ConfigError, match=f"loop.{field}"):
        LoopConfig(**{field: value}, **({"paced": False, "asynchronous": False} if value == 50 else {}))
