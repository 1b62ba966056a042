"""What a person supervising learning on the tabletop arm sees, from real processes on loopback
DDS (the scenario of ``test_ros_reward_model.py``, with short episodes): ``agent_node`` with no
``status_file`` writes ``<learner.run_dir>/actors/<actor_id>/status.json``; its ``supervision``
section agrees with ``episodes.csv``; ``rill watch``'s panel shows the instruction, the reward
model's confidence, the success rate and the interventions; ``rill status`` on the run directory
shows the episodes afterwards."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from agent.actor.episodes import read_episodes
from agent.supervision_view import read_status, render_text
from learners.service import LearnerConfig, LearnerService

REPO = Path(__file__).resolve().parents[3]
JUDGED = ("success", "failure", "timeout")


def _flat(text: str) -> str:
    """The panel's words in one line (a long value wraps inside the panel's border)."""
    return " ".join(text.replace("│", " ").split())


def _finished(path: Path) -> int:
    return len(read_episodes(path)) if path.exists() else 0


def test_the_supervision_status_agrees_with_the_episode_log_and_renders(start_node, tmp_path):
    learner = LearnerService(LearnerConfig(bind="tcp://127.0.0.1:0", run_dir=tmp_path / "learner", obs_dim=4,
                                           action_dim=2, durability="os-buffered")).start()
    run_dir = tmp_path / "agent"
    actor = run_dir / "actors" / "tabletop-agent"
    try:
        sim = start_node("agent.ros.sim_node", "--params-file", "config/ros_sim_tabletop.yaml")
        agent = start_node(
            "agent.ros.agent_node", "--params-file", "config/ros_sim_tabletop_agent.yaml",
            "-p", f"learner.endpoint:={learner.endpoint}", "-p", f"learner.run_dir:={run_dir}",
            "-p", "operator.wait_timeout_s:=0.0", "-p", "operator.time_limit_s:=4.0",
            "-p", "diagnostics_hz:=4.0")
        operator = start_node("agent.ros.scripted_operator", "-p", "command:=velocity",
                              "-p", "joints:=[pusher_x, pusher_y]", "-p", "success_after_s:=1.0",
                              "-p", "give_up_s:=3.0")
        deadline = time.monotonic() + 90
        while _finished(actor / "episodes.csv") < 3 and time.monotonic() < deadline:
            for node in (sim, agent, operator):
                assert node.proc.poll() is None, f"{node.argv[2]} exited early:\n{node.output()[-3000:]}"
            time.sleep(0.25)
        live = read_status(actor / "status.json")  # written while the node runs
        assert operator.stop() == 0
        agent_rc = agent.stop()
        sim.stop()
    finally:
        learner.stop()
    assert agent_rc == 0, agent.output()[-4000:]
    episodes = read_episodes(actor / "episodes.csv")
    assert len(episodes) >= 3, f"{episodes}\n{agent.output()[-4000:]}"

    # While running: the instruction sim_node publishes and the reward model's confidence, shown
    assert live.status is not None, live.problem
    sup = live.status["supervision"]
    assert sup["instruction"], sup
    model = sup["reward_model"]
    assert 0.0 <= model["confidence"] <= 1.0 and 0.0 < model["threshold"] <= 1.0 and model["consecutive"] == 3
    assert sup["loop"]["ticks"] > 0 and not live.status.get("stopped")
    text = render_text(live)
    assert " ".join(sup["instruction"].split()) in _flat(text), text
    assert f"{model['confidence']:.2f} / {model['threshold']:.2f}" in text, text

    # At exit: the section counts every episode of episodes.csv, as the CSV says
    final = read_status(actor / "status.json")
    assert final.status is not None and final.status["stopped"], final.problem
    sup = final.status["supervision"]
    assert sup["episodes"] == len(episodes)
    judged = [e for e in episodes if e.outcome in JUDGED]
    rate = sum(e.outcome == "success" for e in judged) / len(judged)
    assert sup["success"]["overall"] == pytest.approx(rate)
    assert sup["success"]["overall_judged"] == len(judged)
    recent = episodes[-20:]
    recent_judged = [e for e in recent if e.outcome in JUDGED]
    assert sup["success"]["recent"] == pytest.approx(
        sum(e.outcome == "success" for e in recent_judged) / len(recent_judged))
    assert sup["ended_by"]["overall"] == dict(Counter(e.ended_by for e in episodes))
    iv = sup["interventions"]
    assert iv["last_takeovers"] == episodes[-1].takeovers
    assert iv["last_intervened_steps"] == episodes[-1].intervened_steps
    mean_takeovers = sum(e.takeovers for e in recent) / len(recent)
    assert iv["mean_takeovers"] == pytest.approx(mean_takeovers)
    assert iv["total_intervened_steps"] == sum(e.intervened_steps for e in episodes)
    assert sup["recent_outcomes"] == [e.outcome for e in recent]
    assert sup["loop"]["state"] == "stopped"

    text = render_text(final)
    assert "STOPPED" in text, text
    assert f"{sup['success']['recent']:.0%} of the last {len(recent_judged)}" in text, text
    assert f"{mean_takeovers:.1f} takeovers" in text, text

    # Afterwards: rill status on the run directory, from its files
    out = subprocess.run([sys.executable, "-m", "agent.cli", "status", str(run_dir)], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"agent_node actor tabletop-agent: {len(episodes)} episodes" in out.stdout, out.stdout
    assert f"overall {rate:.0%} of {len(judged)}" in out.stdout, out.stdout
    for who, n in Counter(e.ended_by for e in episodes).items():
        assert f"{who} {n}" in out.stdout, out.stdout
    assert "STOPPED" in out.stdout, out.stdout
