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
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 3000
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
    """The shipped VLA config end to end, briefly: the actor builds the VLA with the config's
    settings, drives the camera-equipped arm, and the learner learns from its chunks."""
    spec = yaml.safe_load((REPO / "config" / "sim_tabletop_vla.yaml").read_text())
    spec["run_dir"] = str(tmp_path / "run")
    spec["train"]["steps_per_actor"] = 600
    cfg = tmp_path / "vla.yaml"
    cfg.write_text(yaml.safe_dump(spec))
    out = subprocess.run([sys.executable, "-m", "agent.cli", "run", str(cfg)], cwd=REPO, env=_env(tmp_path),
                         capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    actor_dir = tmp_path / "run" / "actors" / "actor-0"
    settings = json.loads((actor_dir / "settings.json").read_text())
    train = spec["train"]
    assert (settings["base_scale"], settings["chunk_size"], settings["control_hz"]) == (
        train["base_scale"], train["chunk_size"], train["control_hz"])
    summary = json.loads((actor_dir / "summary.json").read_text())
    assert summary["ticks"] == 600 and summary["loop"]["policy_failures"] == 0, summary
    assert summary["acked_seq"] == summary["seq"] > 100 and summary["backlog"] == 0, summary
    assert summary["episodes"] >= 1
    applied = read_journal(tmp_path / "run" / "applied.log")
    assert [s for a, s in applied if a == "actor-0"] == list(range(1, summary["seq"] + 1))
