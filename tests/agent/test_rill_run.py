"""``rill run``: the scheduler places and supervises a real learner and actor; a killed actor is
restarted, continues its sequence, and nothing is lost or applied twice."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from learners.service.journal import read_journal

REPO = Path(__file__).resolve().parents[2]


def _config(tmp: Path, steps: int, **actors) -> Path:
    spec = yaml.safe_load((REPO / "config" / "sim_hopper.yaml").read_text())
    spec["run_dir"] = str(tmp / "run")
    spec["train"] = {"steps_per_actor": steps, "max_lag": 64}
    spec["actors"][0].update(actors)
    path = tmp / "run.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _env(tmp: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "RILL_HOME": str(tmp / "home"), "MUJOCO_GL": "egl"}


def _status(run: Path) -> dict:
    try:
        return json.loads((run / "status.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _start(cfg: Path, tmp: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "agent.cli", "run", str(cfg)], cwd=REPO, env=_env(tmp),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _running_actor(run: Path, steps: int) -> dict | None:
    """actor-0's status once it runs and has taken more than ``steps`` steps (None after 120 s)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for w in _status(run).get("workers", []):
            if w["name"] == "actor-0" and w["state"] == "running" and w["progress"].get("steps", 0) > steps:
                return w
        time.sleep(0.05)
    return None


def test_rill_run_survives_kill_9_of_its_actor(tmp_path):
    cfg, run = _config(tmp_path, 3000), tmp_path / "run"
    proc = _start(cfg, tmp_path)
    try:
        victim = _running_actor(run, 500)
        assert victim is not None, "the actor never got going"
        os.kill(victim["pid"], signal.SIGKILL)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    assert any(e["worker"] == "actor-0" and e["kind"] == "crashed" for e in events)
    workers = {w["name"]: w for w in _status(run)["workers"]}
    assert workers["actor-0"]["state"] == "done" and workers["actor-0"]["restarts"] == 1
    applied = read_journal(run / "applied.log")
    assert not [k for k, n in collections.Counter(applied).items() if n > 1], "applied twice"
    seqs = [s for a, s in applied if a == "actor-0"]
    assert seqs == list(range(1, 3001))  # the lost steps were taken again: exactly the budget
    assert (run / "learning_curve.png").is_file()
    status = subprocess.run(
        [sys.executable, "-m", "agent.cli", "status", str(run)],
        cwd=REPO,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0 and "actor-0" in status.stdout and "updates" in status.stdout
    assert "learner state: cache ok; learning ok" in status.stdout, status.stdout


def test_infeasible_run_is_refused_before_anything_starts(tmp_path):
    cfg = _config(tmp_path, 100, count=3)
    out = subprocess.run(
        [sys.executable, "-m", "agent.cli", "run", str(cfg)],
        cwd=REPO,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "sim-mujoco" in out.stdout + out.stderr and "3" in out.stdout + out.stderr
    assert not (tmp_path / "run" / "workers").exists() and not (tmp_path / "run" / "cache").exists()


def test_actor_moves_to_the_spare_robot_when_its_robot_faults(tmp_path):
    spec = yaml.safe_load((REPO / "config" / "sim_hopper_2actors.yaml").read_text())
    spec["run_dir"] = str(tmp_path / "run")
    spec["train"] = {"steps_per_actor": 2500, "max_lag": 64}
    faults = {r["name"]: tmp_path / f"{r['name']}.fault" for r in spec["robots"]}
    for robot in spec["robots"]:
        robot["params"]["fault_file"] = str(faults[robot["name"]])
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump(spec))
    run = tmp_path / "run"
    proc = _start(cfg, tmp_path)
    try:
        actor = _running_actor(run, 300)
        assert actor is not None, "actor-0 never got going"
        broken = actor["robot"]
        faults[broken].touch()  # the simulated device reports a fault from now on
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    assert any(e["worker"] == "actor-0" and e["kind"] == "robot-fault" for e in events)
    assert any(e["worker"] == "actor-0" and e["kind"] == "moved" for e in events)
    workers = {w["name"]: w for w in _status(run)["workers"]}
    assert workers["actor-0"]["state"] == "done" and workers["actor-0"]["robot"] not in (broken, None)
    applied = read_journal(run / "applied.log")
    assert not [k for k, n in collections.Counter(applied).items() if n > 1], "applied twice"
    for actor in ("actor-0", "actor-1"):
        seqs = [s for a, s in applied if a == actor]
        assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 2500, actor


def test_rill_run_drives_the_tabletop_arm_with_the_vla(tmp_path):
    """The main job's config end to end, briefly: the shipped VLA drives the camera-equipped arm
    (its state says nothing of the blocks) and the learner learns from its chunks.

    What the actor did is checked, not what it was told: its episodes succeed as only a VLA that
    sees the blocks, reads the instruction and has its actions sent can make them (blind it
    reaches about a third, the residual heads alone or a goal-ignoring policy at most a quarter:
    bench.vla), and each transition's residual is the small correction the config asks for."""
    from agent.actor.episodes import read_run_episodes
    from learners.cache import CacheConfig, ReplayCache

    spec = yaml.safe_load((REPO / "config" / "sim_tabletop_vla.yaml").read_text())
    spec["run_dir"] = str(tmp_path / "run")
    spec["train"]["steps_per_actor"] = 1500
    cfg = tmp_path / "vla.yaml"
    cfg.write_text(yaml.safe_dump(spec))
    out = subprocess.run([sys.executable, "-m", "agent.cli", "run", str(cfg)], cwd=REPO, env=_env(tmp_path),
                         capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    run = tmp_path / "run"
    actor_dir = run / "actors" / "actor-0"
    summary = json.loads((actor_dir / "summary.json").read_text())
    assert summary["ticks"] == 1500 and summary["loop"]["policy_failures"] == 0, summary
    assert summary["loop"]["holds"] == 0, summary  # pace fast: the simulator waits for every chunk
    assert summary["acked_seq"] == summary["seq"] > 300 and summary["backlog"] == 0, summary
    episodes = read_run_episodes(run)
    success = sum(bool(e.success) for e in episodes) / len(episodes)
    assert len(episodes) >= 20 and success >= 0.6, (len(episodes), success)
    applied = read_journal(run / "applied.log")
    assert [s for a, s in applied if a == "actor-0"] == list(range(1, summary["seq"] + 1))
    with ReplayCache(run / "cache", CacheConfig(read_only=True)) as cache:
        residuals = np.array([t.action for _, t in cache.iter_transitions()])
    assert residuals.shape == (summary["seq"], 2)
    # N(mu, sigma) of the initial heads: an O(1) spread, scaled by residual_scale 0.2 before it is sent.
    assert 0.2 < residuals.std() < 3.0, residuals.std()
    # What bench.vla --run evaluates: the saved acting state, rebuilt, drives the arm; the run's own
    # success summary reads the same episodes.
    from agent.pretrain.evaluate import evaluate_policy
    from bench.vla import _robot, online_policy, run_summary

    learned, _ = online_policy(str(run))
    assert learned.version == summary["weights_version"] and learned.deterministic
    assert evaluate_policy(learned, _robot(), 2, 200_000).episodes == 2
    report = run_summary(str(run))
    assert report["episodes"] == len(episodes) and report["ticks"] == sum(e.length for e in episodes)
    assert report["success"]["start_rate"] == np.mean([bool(e.success) for e in episodes[:50]])
