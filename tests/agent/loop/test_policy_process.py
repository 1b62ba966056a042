"""``PolicyProcess``: a real policy computing in a child process answers as it does in this one,
takes weights by name, and fails as a policy fails (its errors, its death by SIGKILL) without ever
taking the control loop down."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
import torch

from agent.loop import ControlLoop, LoopConfig
from agent.loop.policy_process import PolicyProcess, PolicyProcessError
from agent.testing.policies import tiny_residual_vla
from tests.ports import free_port

TINY = "agent.testing.policies:tiny_residual_vla"


def _obs(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"state": rng.standard_normal(4).astype(np.float32),
            "image.front": rng.integers(0, 256, (96, 96, 3), dtype=np.uint8),
            "instruction": "reach the red block", "timestamp": time.monotonic()}


@pytest.fixture(scope="module")
def remote():
    with PolicyProcess(TINY, {"seed": 3}, restart_backoff_s=0.0) as policy:
        yield policy


def test_it_answers_as_the_same_policy_in_this_process(remote):
    local = tiny_residual_vla(seed=3)
    obs = _obs()
    a, b = remote.act(obs), local.act(obs)
    assert remote.chunk_size == local.chunk_size == 8
    # equal up to float rounding: the child computes on one thread, this process maybe on more
    np.testing.assert_allclose(a.actions, b.actions, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.features, b.features, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.extras["residual"], b.extras["residual"], rtol=1e-5, atol=1e-6)
    assert a.observed_at == b.observed_at == obs["timestamp"] and a.period_s == b.period_s


def test_weights_go_by_name_and_bad_ones_are_refused(remote):
    state = {k: torch.full_like(v, 0.01) for k, v in remote.state_dict().items()}
    remote.load_state_dict(state, version=7)
    assert remote.version == 7
    assert all(torch.equal(v, state[k]) for k, v in remote.state_dict().items())
    with pytest.raises(PolicyProcessError, match="ResidualWeightsError: actor weights: missing"):
        remote.load_state_dict({"actor.nonsense": torch.zeros(2)}, version=8)
    assert remote.version == 7 and remote.act(_obs()).version == 7  # the good weights stay


def test_a_policy_error_comes_back_by_name_and_the_process_serves_on(remote):
    bad = {**_obs(), "state": np.zeros(3, np.float32)}
    with pytest.raises(PolicyProcessError, match=r"observation\['state'\] has shape \(3,\), expected \(4,\)"):
        remote.act(bad)
    with pytest.raises(PolicyProcessError, match="'pose': a dict cannot cross"):
        remote.act({**_obs(), "pose": {"x": 1}})
    assert remote.act(_obs()).actions.shape == (8, 2)


def test_a_killed_process_is_restarted_with_its_last_weights(remote):
    state = {k: torch.full_like(v, -0.02) for k, v in remote.state_dict().items()}
    remote.load_state_dict(state, version=11)
    before = remote.act(_obs(5))
    os.kill(remote.pid, signal.SIGKILL)
    with pytest.raises(PolicyProcessError, match=r"exited with -9"):
        remote.act(_obs(5))
    after = remote.act(_obs(5))  # started again (no backoff in this fixture), weights reapplied
    assert remote.restarts == 1 and after.version == 11
    np.testing.assert_array_equal(after.actions, before.actions)


def _threads_cpus(pid: int) -> set[frozenset[int]]:
    """The CPUs each thread of process ``pid`` may run on."""
    tasks = os.listdir(f"/proc/{pid}/task")
    return {frozenset(os.sched_getaffinity(int(t))) for t in tasks}


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux scheduling")
def test_with_avoid_cpus_every_thread_of_the_child_keeps_off_the_clocks_cpus():
    usable = os.sched_getaffinity(0)
    if len(usable) < 2:
        pytest.skip("needs two CPUs")
    clock = max(usable)
    with PolicyProcess(TINY, {"seed": 3}, threads=2, avoid_cpus=[clock], restart_backoff_s=0.0) as policy:
        policy.act(_obs())  # torch's threads are running
        assert _threads_cpus(policy.pid) == {frozenset(usable - {clock})}
        os.kill(policy.pid, signal.SIGKILL)  # a restarted child keeps off them too
        with pytest.raises(PolicyProcessError):
            policy.act(_obs())
        policy.act(_obs())
        assert policy.restarts == 1 and _threads_cpus(policy.pid) == {frozenset(usable - {clock})}


def test_a_factory_that_fails_is_named():
    why = r"could not build the policy agent.testing.policies:nothing: AttributeError"
    with pytest.raises(PolicyProcessError, match=why):
        PolicyProcess("agent.testing.policies:nothing")


def test_the_control_loop_drives_a_robot_with_it():
    from sim.tabletop.robot import TabletopRobot, TabletopRobotConfig

    config = TabletopRobotConfig(task="reach", colors=["red"], cameras=["front"], state="proprio",
                                 real_time=False, watchdog_timeout_s=1.0)
    robot = TabletopRobot("pp-arm", config)
    factory = "agent.loop.policy_process:load_vla_policy"
    with robot, PolicyProcess(factory, {"path": "pretrained:tabletop-reach"}) as policy:
        loop = ControlLoop(robot, policy, LoopConfig(control_hz=50, asynchronous=True))
        stats = loop.run(ticks=150)
    assert stats.policy_failures == 0 and stats.chunks >= 10
    assert stats.ticks == 150 and stats.holds < 30  # the first chunk takes a start-up's time
    assert len(policy.overhead_s) >= stats.chunks  # every chunk installed came from one act()


def test_a_vla_actor_computes_its_vla_in_a_process_of_its_own(tmp_path):
    """``inference: process`` in a VLA actor: the VLA runs in a child; the residual heads the learner
    trains stay here, so weights still arrive by name through the actor's own policy."""

    from agent.vla.actor import VLAActor, VLAActorConfig
    from hal.config import RobotConfig
    from hal.registry import make_robot

    port = free_port()  # nothing listens there: the actor spools and drives on
    arm = RobotConfig("arm", "sim-tabletop", {"task": "reach", "colors": ["red", "blue"], "real_time": False,
                                              "state": "proprio"})
    config = VLAActorConfig(learner=f"tcp://127.0.0.1:{port}", actor_id="arm", run_dir=tmp_path,
                            vla_path="pretrained:tabletop-reach", chunk_size=4, durability="os-buffered",
                            inference="process")
    with make_robot(arm) as robot:
        actor = VLAActor(config, robot)
        try:
            assert isinstance(actor.vla, PolicyProcess) and actor.vla.pid != os.getpid()
            assert actor.vla.feature_dim == actor.spec["obs_dim"]  # declared by the child's policy
            stats = actor.loop.run(ticks=200)
        finally:
            actor.close()
    assert stats.policy_failures == 0 and stats.chunks >= 20 and actor.seq > 0
    assert actor.vla.channel is None  # closed with the actor


def _shm_files(*pids: int) -> list[str]:
    root = "/dev/shm" if os.path.isdir("/dev/shm") else os.environ.get("TMPDIR", "/tmp")
    return [n for n in os.listdir(root) if any(n.startswith(f"rill-policy-{pid}-") for pid in pids)]


def test_no_shared_memory_is_left_behind_when_the_child_is_killed():
    # Each side's arena file is removed once the other has mapped it: a SIGKILL leaves nothing.
    with PolicyProcess(TINY, {"seed": 1}, restart_backoff_s=0.0) as policy:
        policy.act(_obs())
        child = policy.pid
        assert _shm_files(os.getpid(), child) == []  # both arenas in use, neither has a name left
        os.kill(child, signal.SIGKILL)
        with pytest.raises(PolicyProcessError, match="exited with -9"):
            policy.act(_obs())
        assert _shm_files(os.getpid(), child) == []


def test_a_child_that_dies_while_starting_is_reported_by_its_exit():
    with pytest.raises(PolicyProcessError, match=r"policy process \d+ exited with -6"):
        PolicyProcess("os:abort")  # the factory kills the child before it says it is ready


def test_weights_given_while_the_child_is_down_are_checked_on_restart_and_bad_ones_never_replayed():
    with PolicyProcess(TINY, {"seed": 2}, restart_backoff_s=0.0) as policy:
        good = {k: torch.full_like(v, 0.03) for k, v in policy.state_dict().items()}
        policy.load_state_dict(good, version=7)
        expected = policy.act(_obs(9)).actions
        os.kill(policy.pid, signal.SIGKILL)
        with pytest.raises(PolicyProcessError, match="exited with -9"):
            policy.act(_obs(9))
        policy.load_state_dict({"actor.nonsense": torch.zeros(2)}, version=9)  # kept until the restart
        chunk = policy.act(_obs(9))  # restarted: v9 refused there, the last accepted (v7) applied
        assert policy.restarts == 1 and chunk.version == 7
        np.testing.assert_array_equal(chunk.actions, expected)
        os.kill(policy.pid, signal.SIGKILL)  # and v9 is not what a second restart tries again
        with pytest.raises(PolicyProcessError, match="exited with -9"):
            policy.act(_obs(9))
        newer = {k: torch.full_like(v, -0.01) for k, v in good.items()}
        policy.load_state_dict(newer, version=12)
        assert policy.act(_obs(9)).version == 12 and policy.restarts == 2
