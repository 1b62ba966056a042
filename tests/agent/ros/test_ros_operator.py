"""A person in the loop, as real processes on loopback DDS: ``sim_node`` (its reward topic off,
standing in for a real arm; its ``/sim/task`` aid on) and ``agent_node`` (a learning stream-x
policy, operator-run episodes, a teleop intervention source) with ``scripted_operator`` starting
episodes, taking over when the arm heads away from the target, and marking success. The
learner in this process stores the intervened transitions flagged, counts them and learns; the
episodes end on the operator's word and are logged with their outcome and interventions; an
event for an unknown episode and teleop commands of the wrong width or with NaN are refused."""

from __future__ import annotations

import json
import math
import time

from agent.actor.episodes import read_episodes
from learners.cache import ReplayCache
from learners.service import LearnerConfig, LearnerService


def _operator_successes(path) -> list:
    if not path.exists():
        return []
    return [e for e in read_episodes(path) if e.outcome == "success" and e.ended_by == "operator"]


def test_operator_intervenes_labels_and_the_learner_learns(start_node, tmp_path):
    learner = LearnerService(LearnerConfig(bind="tcp://127.0.0.1:0", run_dir=tmp_path / "learner", obs_dim=4,
                                           action_dim=2, durability="os-buffered")).start()
    status, ops = tmp_path / "agent_status.json", tmp_path / "operator.jsonl"
    episodes_csv = tmp_path / "agent" / "actors" / "sim-agent" / "episodes.csv"
    try:
        sim = start_node("agent.ros.sim_node", "--params-file", "config/ros_sim.yaml",
                         "-p", "reward_topic:=''", "-p", "task_topic:=/sim/task",
                         "-p", "episode_steps:=100000", "-p", "image_topic:=''")
        agent = start_node(
            "agent.ros.agent_node", "--params-file", "config/ros_sim_agent.yaml",
            "-p", "robot.image_topic:=''", "-p", "robot.reward_topic:=''", "-p", "policy.type:=streamx",
            "-p", "robot.max_delta:=0.2",
            "-p", f"learner.endpoint:={learner.endpoint}", "-p", f"learner.run_dir:={tmp_path / 'agent'}",
            "-p", "operator.enabled:=true", "-p", "operator.home_pose:=[0.0, 0.0]",
            "-p", "operator.reset_speed:=2.0", "-p", "operator.home_tolerance:=0.1",
            "-p", "operator.reset_timeout_s:=4.0",
            "-p", "intervention.topic:=/teleop/command", "-p", f"status_file:={status}")
        operator = start_node("agent.ros.scripted_operator", "-p", "probe_bad_input:=true",
                              "-p", f"metrics_file:={ops}")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(_operator_successes(episodes_csv)) < 2:
            for node in (sim, agent, operator):
                assert node.proc.poll() is None, f"{node.argv[2]} exited early:\n{node.output()[-3000:]}"
            time.sleep(0.25)
        assert operator.stop() == 0
        agent_rc = agent.stop()
        sim.stop()
        durable = dict(learner.server.durable_seq)
        deadline = time.monotonic() + 60
        while learner.updater.applied.get("sim-agent", 0) < durable.get("sim-agent", 0) \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        counted = dict(learner.status()["intervened"])
    finally:
        learner.stop()
    logs = f"agent:\n{agent.output()[-4000:]}\noperator:\n{operator.output()[-2000:]}"
    assert agent_rc == 0, logs
    episodes = read_episodes(episodes_csv)
    successes = [e for e in episodes if e.outcome == "success" and e.ended_by == "operator"]
    assert len(successes) >= 2, f"{episodes}\n{logs}"
    assert any(e.takeovers and e.intervened_steps for e in successes), episodes
    assert all(e.success for e in successes)
    assert (episodes[-1].outcome == "stopped" and episodes[-1].ended_by == "node_stopped") or \
        episodes[-1].outcome == "success", episodes  # stopped mid-episode, or between episodes

    cache = ReplayCache(tmp_path / "learner" / "cache")
    records = [t for _, t in cache.iter_transitions()]
    cache.close()
    intervened = [t for t in records if t.extras.get("intervened")]
    assert intervened and all(math.isnan(t.behavior_logp) for t in intervened)
    # The policy acted too, between takeovers. (Whether its draws keep their probability is
    # test_ros_learner_client's: here max_delta 0.2 clamps nearly all of them, so any that survive
    # unclamped are chance.)
    assert any(not t.extras.get("intervened") for t in records)
    labelled = [t for t in records if t.extras.get("label_source") == "operator"]
    assert len(labelled) >= 2 and all(t.terminated and t.extras["success"] and t.reward > 0 for t in labelled)
    assert counted == {"sim-agent": len(intervened)}, (counted, len(intervened))

    snap = json.loads(status.read_text())
    assert snap["episode"]["refused"] >= 1, snap["episode"]  # the event for episode 999
    assert "no episode 999" in snap["episode"]["last_refusal"]
    refused = snap["intervention"]["refused"]
    assert refused.get("wrong width") == 1 and refused.get("non-finite") == 1, snap["intervention"]
