"""This machine's inventory, the worker-side heartbeat, and the durable sequence log of test workers."""

from __future__ import annotations

import json

import pytest

from hal.accelerators import Accelerator, detect_accelerators
from hal.config import RobotConfig
from hal.host import Host
from hal.leases import LeaseStore
from hal.testing.sequence_log import SequenceLog, read_records
from hal.worker import Heartbeat, WorkerContext, read_heartbeat


def test_local_host_reports_cpus_memory_gpus_and_robot_states(tmp_path):
    leases = LeaseStore(tmp_path / "leases")
    robots = [
        RobotConfig("hopper-0", "sim-mujoco"),
        RobotConfig("hopper-1", "sim-mujoco"),
        RobotConfig("far-arm", "sim-mujoco", host="another-machine"),
    ]
    leases.acquire("hopper-1", "run/actor-0#0", ttl_s=30)
    host = Host.local(robots, leases)
    assert host.cpus >= 1 and 0 < host.memory_available_gb <= host.memory_total_gb
    assert all(isinstance(a, Accelerator) and a.memory_total_gb > 0 for a in host.accelerators)
    assert [r.name for r in host.robots] == ["hopper-0", "hopper-1"]  # far-arm is another host's
    free, taken = host.robots
    assert free.available and free.health.ok
    assert not taken.available and taken.lease.holder == "run/actor-0#0"
    assert "leased by 'run/actor-0#0'" in taken.why_unavailable()


def test_accelerator_detection_needs_nothing_and_is_cached():
    first = detect_accelerators()
    assert detect_accelerators() == first  # a list, empty on a machine without GPUs
    assert all(a.device.startswith("cuda:") for a in first)


def test_heartbeat_writes_at_most_once_per_interval(tmp_path):
    hb = Heartbeat(tmp_path / "w.json", interval_s=3600, identity={"worker": "w"})
    assert hb.beat(seq=1)
    assert not hb.beat(seq=2)  # not due yet
    assert read_heartbeat(tmp_path / "w.json")["seq"] == 1
    assert hb.beat(force=True, seq=3)
    beat = read_heartbeat(tmp_path / "w.json")
    assert beat["beat"] == 2 and beat["seq"] == 3 and beat["worker"] == "w" and "pid" in beat


def test_worker_context_reads_its_setup_and_takes_the_robot_lease(tmp_path):
    leases = tmp_path / "leases"
    env = {
        "RILL_WORKER_NAME": "actor-0",
        "RILL_WORKER_ROLE": "actor",
        "RILL_RUN": "r",
        "RILL_RUN_DIR": str(tmp_path),
        "RILL_INCARNATION": "3",
        "RILL_HEARTBEAT_FILE": str(tmp_path / "hb.json"),
        "RILL_HEARTBEAT_INTERVAL": "0.01",
        "RILL_LEASE_TTL": "30",
        "RILL_LEASE_DIR": str(leases),
        "RILL_ROBOT": json.dumps(
            {
                "name": "hopper-0",
                "type": "sim-mujoco",
                "params": {},
                "host": None,
                "class": "sim.robots:MujocoRobot",
            }
        ),
    }
    with WorkerContext.from_env(env, handle_signals=False) as ctx:
        robot = ctx.open_robot()
        assert LeaseStore(leases).holder("hopper-0").holder == "r/actor-0#3"
        robot.act(robot.action_spec.low * 0)
        ctx.beat(force=True, seq=7)
        beat = read_heartbeat(tmp_path / "hb.json")
        assert beat["incarnation"] == 3 and beat["progress"] == {"seq": 7}
        assert beat["robot"]["name"] == "hopper-0" and beat["robot"]["ok"]
    assert LeaseStore(leases).holder("hopper-0") is None and not robot.is_connected
    assert read_heartbeat(tmp_path / "hb.json")["state"] == "stopped"
    with pytest.raises(RuntimeError, match="not started by the rill scheduler"):
        WorkerContext.from_env({}, handle_signals=False)


def test_sequence_log_drops_a_torn_record_and_continues(tmp_path):
    log = SequenceLog(tmp_path / "a.seq")
    for _ in range(3):
        log.append(0, "hopper-0")
    log.close()
    with open(tmp_path / "a.seq", "ab") as f:
        f.write(b"3 0 hop")  # a writer killed mid-record
    log = SequenceLog(tmp_path / "a.seq")
    assert log.next_seq == 3 and log.append(1, "hopper-1") == 3
    log.close()
    assert read_records(tmp_path / "a.seq") == [
        (0, 0, "hopper-0"),
        (1, 0, "hopper-0"),
        (2, 0, "hopper-0"),
        (3, 1, "hopper-1"),
    ]
