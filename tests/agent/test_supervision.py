"""The supervision figures and ``rill watch`` / ``rill status`` without ROS: an ``EpisodeTally``
against a real ``episodes.csv``, the panel of a status file (stale, holding, torn, missing, not a
status), ``rill watch`` on a torn file, and ``rill status`` on an agent_node run directory.
``tests/agent/ros/test_ros_supervision.py`` checks the same on files a real ``agent_node`` wrote."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.actor.episodes import EpisodeLog, EpisodeRecord, read_episodes
from agent.supervision import EpisodeTally, intervention_windows, supervision_section
from agent.supervision_view import find_status_file, read_status, render_text

REPO = Path(__file__).resolve().parents[2]
OUTCOMES = {"success": "reward_model", "failure": "operator", "timeout": "time_limit", "stopped": "operator"}


def _flat(text: str) -> str:
    """A panel's words in one line (long values wrap inside its border)."""
    return " ".join(text.replace("│", " ").split())


def _write_episodes(path: Path, outcomes: list[str]) -> list[EpisodeRecord]:
    log = EpisodeLog(path)
    for i, outcome in enumerate(outcomes):
        log.append(EpisodeRecord(10 * i, i + 1, 0.0, 10, float(i), outcome=outcome,
                                 ended_by=OUTCOMES[outcome],
                                 success={"success": True, "failure": False}.get(outcome),
                                 takeovers=i % 3, intervened_steps=5 * (i % 3)))
    log.close()
    return read_episodes(path)


def _status(tally: EpisodeTally, *, age_s: float = 0.0, level: int = 0, state: str = "running",
            stopped: bool = False) -> dict:
    section = supervision_section(
        time_s=time.time() - age_s, period_s=1.0, instruction="push the red block onto the green square",
        reward_model={"confidence": 0.42, "threshold": 0.8, "streak": 1, "consecutive": 3, "declared": False},
        episode={"episode": 7, "phase": "running", "takeovers": 1, "intervened_steps": 3, "phase_s": 2.0},
        tally=tally, loop={"state": state, "level": level, "message": state, "ticks": 500, "holds": 5,
                           "deadline_misses": 2, "stale_observations": 1, "policy_failures": 0})
    return {"supervision": section, "stopped": stopped}


def _write_status(path: Path, status: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(status))
    return path


def test_the_tally_counts_the_episode_log(tmp_path):
    # 25 episodes: success rate over the last 20 and over all, stopped episodes not judged
    outcomes = ["success", "failure", "timeout", "success", "stopped"] * 5
    episodes = _write_episodes(tmp_path / "episodes.csv", outcomes)
    s = EpisodeTally.of(episodes).summary()
    assert s["episodes"] == 25
    assert s["success"]["overall"] == pytest.approx(10 / 20) and s["success"]["overall_judged"] == 20
    recent = episodes[-20:]
    assert s["success"]["recent_judged"] == 16 and s["success"]["recent"] == pytest.approx(8 / 16)
    assert s["interventions"]["last_takeovers"] == episodes[-1].takeovers == 24 % 3
    assert s["interventions"]["mean_takeovers"] == pytest.approx(sum(e.takeovers for e in recent) / 20)
    assert s["interventions"]["mean_intervened_steps"] == pytest.approx(
        sum(e.intervened_steps for e in recent) / 20)
    assert s["ended_by"]["overall"] == {"operator": 10, "reward_model": 10, "time_limit": 5}
    assert s["ended_by"]["recent"] == {"operator": 8, "reward_model": 8, "time_limit": 4}
    assert s["recent_outcomes"] == outcomes[-20:]
    windows = intervention_windows(episodes, 10)
    assert [(w["first"], w["last"]) for w in windows] == [(1, 10), (11, 20), (21, 25)]
    assert windows[0]["success"] == pytest.approx(4 / 8)
    assert windows[0]["takeovers"] == pytest.approx(sum(e.takeovers for e in episodes[:10]) / 10)


def test_no_episodes_yet_and_a_bad_window():
    s = EpisodeTally().summary()
    assert s["episodes"] == 0 and s["success"]["recent"] is None
    assert s["interventions"]["last_takeovers"] is None
    with pytest.raises(ValueError, match="window must be at least 1 episode, got 0"):
        EpisodeTally(0)


def test_the_panel_shows_instruction_confidence_success_and_interventions(tmp_path):
    tally = EpisodeTally.of(_write_episodes(tmp_path / "episodes.csv", ["success", "failure", "timeout"] * 3))
    path = _write_status(tmp_path / "status.json", _status(tally))
    text = render_text(read_status(path), width=80)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert " OK " in text and "push the red block onto the green square" in text
    assert "0.42 / 0.80  streak 1/3" in text
    assert "33% of the last 9" in text  # 3 successes of 9 judged
    assert "1.0 takeovers, 5.0 steps per episode (last 9)" in text
    assert "reward_model 3" in text and "500 ticks · 5 holds" in text


def test_holding_stale_and_stopped_are_marked(tmp_path):
    tally = EpisodeTally()
    held = _status(tally, level=1, state="holding: no chunk")
    holding = render_text(read_status(_write_status(tmp_path / "h.json", held)))
    assert "HOLDING" in holding and "holding: no chunk" in holding
    stale = render_text(read_status(_write_status(tmp_path / "s.json", _status(tally, age_s=30.0))))
    assert "STALE" in stale and "no update for 30s" in stale and " OK " not in stale
    stopped = render_text(read_status(_write_status(tmp_path / "x.json", _status(tally, age_s=30.0,
                                                                                  stopped=True))))
    assert "STOPPED" in stopped and "STALE" not in stopped


@pytest.mark.parametrize(("content", "problem"), [
    (None, "no status file at"),
    ('{"time": 1, "supervision": {"instr', "is not valid JSON"),
    ('{"level": 0, "message": "running"}', "has no 'supervision' section"),
    ("[1, 2]", "has no 'supervision' section"),
])
def test_a_missing_torn_or_foreign_status_file_is_reported(tmp_path, content, problem):
    path = tmp_path / "status.json"
    if content is not None:
        path.write_text(content)
    read = read_status(path)
    assert read.status is None and problem in read.problem and str(path) in read.problem
    text = render_text(read)
    assert problem in _flat(text) and "still watching" in text


def test_a_run_directory_names_its_actors_status_file(tmp_path):
    assert find_status_file(tmp_path / "status.json") == tmp_path / "status.json"
    (tmp_path / "actors" / "arm-a").mkdir(parents=True)
    assert find_status_file(tmp_path) == tmp_path / "actors" / "arm-a" / "status.json"  # not written yet
    _write_status(tmp_path / "actors" / "arm-a" / "status.json", _status(EpisodeTally()))
    assert find_status_file(tmp_path) == tmp_path / "actors" / "arm-a" / "status.json"
    assert find_status_file(tmp_path, "arm-b") == tmp_path / "actors" / "arm-b" / "status.json"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60)


def test_rill_watch_keeps_watching_a_torn_file(tmp_path):
    path = tmp_path / "status.json"
    path.write_text('{"supervision": {"time": ')
    out = _cli("watch", str(path), "--frames", "2", "--refresh", "0.05")
    assert out.returncode == 0, out.stderr
    assert "is not valid JSON" in _flat(out.stdout) and "still watching" in out.stdout, out.stdout
    out = _cli("watch", str(path), "--refresh", "0")
    assert out.returncode != 0 and "--refresh must be > 0 seconds, got 0.0" in out.stderr


def test_rill_status_on_an_agent_node_run_directory(tmp_path):
    actor = tmp_path / "run" / "actors" / "arm-a"
    episodes = _write_episodes(actor / "episodes.csv", ["failure"] * 10 + ["success", "failure"] * 5)
    _write_status(actor / "status.json", _status(EpisodeTally.of(episodes), age_s=5.0, stopped=True))
    out = _cli("status", str(tmp_path / "run"))
    assert out.returncode == 0, out.stderr
    assert "agent_node actor arm-a: 20 episodes" in out.stdout, out.stdout
    assert "success: start 25% (first 20 judged) -> end 25% (last 20); overall 25% of 20" in out.stdout
    assert "ended by: operator 15 · reward_model 5" in out.stdout, out.stdout
    assert "1-10" in out.stdout and "11-20" in out.stdout and "50%" in out.stdout  # per 10 episodes
    assert "STOPPED" in out.stdout and "push the red block" in out.stdout
