"""Leases across real processes: one holder at a time, a TTL renewed by beats; a dead holder's expires."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from hal.errors import LeaseHeldError, LeaseLostError
from hal.leases import LeaseStore

HOLDER = textwrap.dedent("""
    import sys, time
    from hal.leases import LeaseStore
    store = LeaseStore(sys.argv[1])
    lease = store.acquire("arm-1", "other-run/actor-0#0", ttl_s=float(sys.argv[2]))
    print("held", flush=True)
    while True:  # renew like a heartbeat, until killed
        time.sleep(float(sys.argv[2]) / 4)
        lease = store.renew(lease)
""")


@pytest.fixture
def holder_process(tmp_path):
    procs = []

    def start(ttl_s: float) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(tmp_path / "leases"), str(ttl_s)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout.readline().strip() == "held"
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_double_lease_is_refused_across_processes(tmp_path, holder_process):
    holder_process(ttl_s=30)
    store = LeaseStore(tmp_path / "leases")
    with pytest.raises(LeaseHeldError, match=r"'arm-1' is leased by 'other-run/actor-0#0' for another"):
        store.acquire("arm-1", "my-run/actor-0#0", ttl_s=5)
    assert store.holder("arm-1").holder == "other-run/actor-0#0"
    assert [lease.resource for lease in store.leases()] == ["arm-1"]


def test_killed_holders_lease_expires_and_frees_the_robot(tmp_path, holder_process):
    proc = holder_process(ttl_s=1.0)
    store = LeaseStore(tmp_path / "leases")
    with pytest.raises(LeaseHeldError):
        store.acquire("arm-1", "my-run/actor-0#0", ttl_s=5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # Nobody renews it now: it runs out, and the robot is free for the next holder.
    lease = store.acquire("arm-1", "my-run/actor-0#0", ttl_s=5, wait_s=30)
    assert store.holder("arm-1").holder == "my-run/actor-0#0" and lease.pid == os.getpid()


def test_lease_renew_release_and_loss(tmp_path):
    store = LeaseStore(tmp_path / "leases")
    lease = store.acquire("robot/with:odd name", "a", ttl_s=0.05)
    renewed = store.renew(lease)
    assert renewed.token == lease.token and renewed.expires >= lease.expires
    again = store.acquire("robot/with:odd name", "a", ttl_s=5)  # the same holder may take it afresh
    with pytest.raises(LeaseLostError, match="lost"):
        store.renew(lease)  # the old token is gone
    assert not store.release(lease) and store.release(again)
    assert store.holder("robot/with:odd name") is None
    taken = store.acquire("arm-2", "dead-worker#0", ttl_s=60)
    assert not store.break_lease("arm-2", holder="someone-else")
    assert store.break_lease("arm-2", holder="dead-worker#0")
    with pytest.raises(LeaseLostError):
        store.renew(taken)
