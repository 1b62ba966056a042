"""Learning on an arm with no reward, as real processes on loopback DDS: ``sim_node`` runs the
MuJoCo tabletop arm with its reward topic off (``config/ros_sim_tabletop.yaml``: the pusher
commanded in velocity, camera and instruction published); ``agent_node``
(``config/ros_sim_tabletop_agent.yaml``) runs a learning stream-x policy whose reward and
successes come from the shipped reward model watching the camera, with operator-run episodes and
a teleop intervention source; ``scripted_operator`` starts episodes, takes over when the pusher
heads away from the named block, marks success only if the arm has sat at the block a while
(the reward model usually says so first) and gives up after a few seconds. The learner here
stores and counts the intervened transitions; episodes end on the classifier's word and on the
operator's, each logged with who ended it."""

from __future__ import annotations

import json
import math
import struct
import time

from agent.actor.episodes import read_episodes
from learners.cache import ReplayCache
from learners.cache.codec import unpackb
from learners.service import LearnerConfig, LearnerService


def _ended(path) -> dict[str, int]:
    if not path.exists():
        return {}
    out: dict[str, int] = {}
    for e in read_episodes(path):
        out[e.ended_by or ""] = out.get(e.ended_by or "", 0) + 1
    return out


def _most_false_ends(n: int, precision: float = 0.911, alpha: float = 1e-3) -> int:
    """The fewest false ends k out of n such that more than k has probability below alpha."""
    q = 1.0 - precision
    for k in range(n + 1):
        if sum(math.comb(n, j) * q**j * precision ** (n - j) for j in range(k + 1, n + 1)) < alpha:
            return k
    return n


def test_the_reward_model_and_the_operator_end_episodes_and_the_learner_learns(start_node, tmp_path):
    learner = LearnerService(LearnerConfig(bind="tcp://127.0.0.1:0", run_dir=tmp_path / "learner", obs_dim=4,
                                           action_dim=2, durability="os-buffered")).start()
    status, ops = tmp_path / "agent_status.json", tmp_path / "operator.jsonl"
    episodes_csv = tmp_path / "agent" / "actors" / "tabletop-agent" / "episodes.csv"
    try:
        sim = start_node("agent.ros.sim_node", "--params-file", "config/ros_sim_tabletop.yaml")
        agent = start_node(
            "agent.ros.agent_node", "--params-file", "config/ros_sim_tabletop_agent.yaml",
            "-p", f"learner.endpoint:={learner.endpoint}", "-p", f"learner.run_dir:={tmp_path / 'agent'}",
            "-p", "operator.wait_timeout_s:=0.0", "-p", f"status_file:={status}")
        operator = start_node("agent.ros.scripted_operator", "-p", "command:=velocity",
                              "-p", "joints:=[pusher_x, pusher_y]", "-p", "success_after_s:=2.0",
                              "-p", "give_up_s:=6.0", "-p", "call_off_every:=3",
                              "-p", f"metrics_file:={ops}")
        # Most episodes end on the classifier's word within a second; waiting for one that stalls
        # for give_up_s took up to two minutes, so the operator also calls every third episode off.
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            ended = _ended(episodes_csv)
            if ended.get("reward_model", 0) >= 2 and ended.get("operator", 0) >= 1:
                break
            for node in (sim, agent, operator):
                assert node.proc.poll() is None, f"{node.argv[2]} exited early:\n{node.output()[-3000:]}"
            time.sleep(0.25)
        assert operator.stop() == 0
        agent_rc = agent.stop()
        sim.stop()
        durable = dict(learner.server.durable_seq)
        deadline = time.monotonic() + 60
        while learner.updater.applied.get("tabletop-agent", 0) < durable.get("tabletop-agent", 0) \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        counted = dict(learner.status()["intervened"])
        updates = learner.algo.updates
    finally:
        learner.stop()
    logs = (f"agent:\n{agent.output()[-4000:]}\nsim:\n{sim.output()[-2000:]}\n"
            f"operator:\n{operator.output()[-2000:]}")
    assert agent_rc == 0, logs
    episodes = read_episodes(episodes_csv)
    by_model = [e for e in episodes if e.ended_by == "reward_model"]
    by_operator = [e for e in episodes if e.ended_by == "operator"]
    assert len(by_model) >= 2 and all(e.outcome == "success" and e.success for e in by_model), \
        f"{episodes}\n{logs}"
    assert by_operator and all(e.outcome in ("success", "failure") for e in by_operator), episodes
    assert any(e.takeovers for e in episodes), episodes
    # What the simulator said as each episode ended (the operator's record): the reward model's
    # successes are real ones, nearly all. Its held-out precision per episode is 0.911
    # (docs/results/reward/tabletop-reach/README.md), so false ends come by chance: the test fails
    # only on more of them than a model of that precision gives once in a thousand runs.
    judged = [json.loads(line) for line in ops.read_text().splitlines()]
    model_judged = [j for j in judged if j["what"] == "ended" and j["ended_by"] == "reward_model"]
    false_ends = sum(not j["sim_success"] for j in model_judged)
    assert model_judged and false_ends <= _most_false_ends(len(model_judged)), judged

    cache = ReplayCache(tmp_path / "learner" / "cache")
    records = [t for _, t in cache.iter_transitions()]
    stored = [payload for _, payload in cache.iter_records(raw=True)]
    cache.close()
    # learner.compress (zstd, the default): the camera frames travelled and are stored compressed
    heads = [unpackb(p[4:4 + struct.unpack_from("<I", p)[0]], max_size=len(p)) for p in stored]
    assert all(h[0] == 2 and "z" in h[4]["obs"]["d"]["image.front"] for h in heads)
    assert sum(map(len, stored)) * 3 < 2 * 96 * 96 * 3 * len(records)
    intervened = [t for t in records if t.extras.get("intervened")]
    assert intervened and all(math.isnan(t.behavior_logp) for t in intervened)
    assert counted.get("tabletop-agent") == len(intervened)
    # The reward model's successes reach the learner as terminal transitions carrying its reward;
    # no other transition has a reward (the arm has no reward topic).
    model_ends = [t for t in records if t.terminated and t.reward >= 1.0 and "label_source" not in t.extras]
    assert len(model_ends) >= 2 and all(t.extras.get("success") for t in model_ends)
    assert all(t.reward == 0.0 for t in records if not t.terminated)
    assert updates >= len(records) - 5  # the learner applied what arrived
    # learner.keep_images: each transition holds the frame its step acted on and the instruction, an
    # episode's last one the final frame too (operator-labelled ends are reward-model data)
    assert all(isinstance(t.obs, dict) and t.obs["image.front"].shape == (96, 96, 3) for t in records)
    assert all(t.extras.get("instruction", "").startswith(("move", "reach", "touch", "go")) for t in records)
    assert all(t.next_obs["image.front"].shape == (96, 96, 3) for t in records if t.done)


def test_a_reward_model_for_another_camera_stops_agent_node_by_name(start_node):
    agent = start_node("agent.ros.agent_node", "--params-file", "config/ros_sim_tabletop_agent.yaml",
                       "-p", "robot.image_height:=64", "-p", "robot.image_width:=64")
    assert agent.proc.wait(timeout=60) == 2, agent.output()[-3000:]
    assert "reward.model 'pretrained:tabletop-reach'" in agent.output()
    assert "frames of (96, 96, 3), the robot's are (64, 64, 3)" in agent.output(), agent.output()[-3000:]
