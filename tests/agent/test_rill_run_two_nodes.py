"""``rill run`` across two Ray nodes that share no disk: the learner on the node with the (stand-in)
GPU, the actor on the node with the robot, the link between them CurveZMQ on the machine's address.

The nodes are real ``ray start`` processes on this machine (``hal.testing.ray_cluster``), each with its
own temp directory and ``$RILL_HOME``. The driver (``rill run``) attaches to the head, the GPU node,
so the learner keeps its data in the run directory and the actor keeps its spool under the robot
node's home; configuration reaches the actor through Ray, and its episode log comes back to the run
directory through the scheduler's gather.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("ray")

from hal.testing.ray_cluster import LocalRayCluster
from learners.link.security import generate_keys
from learners.service.journal import read_journal

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One cluster for the module (its last test kills the robot node)."""
    # what the robot's computer offers: the robots its discovery plugins find (rill's simulated
    # sim-hopper), through the command a user runs before ray start, plus one configured robot
    found = subprocess.run([sys.executable, "-m", "agent.cli", "hal", "ray-resources"], cwd=REPO,
                           capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONPATH": str(REPO)})
    assert found.returncode == 0, found.stderr
    offered = json.loads(found.stdout)
    assert offered == {"robot:sim-hopper": 1}
    # Ray notices a dead node after a few missed health checks: one a second, two missed
    fast = {"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "2"}
    with LocalRayCluster(tmp_path_factory.mktemp("cluster")) as c:
        c.add_node("gpu", num_gpus=1, env={"RILL_STANDIN_GPUS": "standin-gpu:16", **fast})
        c.add_node("robots", resources={**offered, "robot:hopper-0": 1})
        yield c


def _keys(cluster: LocalRayCluster) -> dict[str, str]:
    """Key pairs as two machines would hold them: each secret on its own node, the publics copied."""
    gpu, robots = cluster.node("gpu").home / "keys", cluster.node("robots").home / "keys"
    # fresh pairs for each test on the module's cluster, replacing the last test's
    learner_public, learner_secret = generate_keys(gpu, "learner", replace=True)
    actor_public, _ = generate_keys(robots / "made-here", "actor-0", replace=True)
    (gpu / "actors").mkdir(exist_ok=True)
    (gpu / "actors" / "actor-0.key").write_bytes(actor_public.read_bytes())
    (robots / "learner.key").write_bytes(learner_public.read_bytes())
    return {"learner_secret": str(learner_secret), "allow_dir": str(gpu / "actors"),
            "actor_secret": str(robots / "made-here" / "{name}.key_secret"),
            "learner_public": str(robots / "learner.key")}


def _config(tmp: Path, cluster: LocalRayCluster, steps: int, link: dict) -> Path:
    spec = yaml.safe_load((REPO / "config" / "sim_hopper.yaml").read_text())
    spec.update(name=tmp.name, run_dir=str(tmp / "run"), backend="ray", ray_address=cluster.address,
                link=link)
    spec["learner"].update(gpu_memory_gb=8, allow_cpu=False, cpus=0.5)
    spec["actors"][0].update(cpus=0.5)
    spec["train"] = {"steps_per_actor": steps, "max_lag": 64}
    spec["heartbeat"]["startup_timeout_s"] = 120
    path = tmp / "run.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _run(cfg: Path, tmp: Path, cluster: LocalRayCluster) -> subprocess.Popen:
    env = {**os.environ, **cluster.client_env(), "PYTHONPATH": str(REPO),
           "RILL_HOME": str(tmp / "driver-home"), "MUJOCO_GL": "egl"}
    return subprocess.Popen([sys.executable, "-m", "agent.cli", "run", str(cfg)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _workers(run: Path) -> dict:
    try:
        return {w["name"]: w for w in json.loads((run / "status.json").read_text())["workers"]}
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return {}


def test_rill_run_trains_across_two_nodes_that_share_no_disk(tmp_path, cluster):
    cfg = _config(tmp_path, cluster, 2000, _keys(cluster))
    proc = _run(cfg, tmp_path, cluster)
    try:
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-4000:]
    run = tmp_path / "run"
    workers = _workers(run)
    learner, actor = workers["learner"], workers["actor-0"]
    assert actor["state"] == "done" and learner["state"] == "stopped"  # rill run stops it when done
    assert learner["host"] != actor["host"] and learner["device"] == "standin:0"
    # The actor's own data stayed on its node; only the files the summary reads came back.
    remote = cluster.node("robots").home / "runs" / tmp_path.name
    assert (remote / "actors" / "actor-0" / "spool").is_dir()
    assert (remote / "workers" / "actors.actor.yaml").is_file()
    assert not (run / "actors" / "actor-0" / "spool").exists()
    assert not (run / "workers" / "actors.actor.yaml").exists()
    assert (run / "actors" / "actor-0" / "episodes.csv").read_bytes() == (
        remote / "actors" / "actor-0" / "episodes.csv").read_bytes()
    assert not (remote / "cache").exists()
    applied = read_journal(run / "applied.log")
    assert not [k for k, n in collections.Counter(applied).items() if n > 1], "applied twice"
    assert [s for a, s in applied if a == "actor-0"] == list(range(1, 2001))
    assert "tcp://127.0.0.1" not in (run / "workers" / "learner.yaml").read_text()  # the link left loopback


DISCOVER = """
import json, sys
from hal.backends.ray import RayBackend
backend = RayBackend(address=sys.argv[1])
robots = backend.discover()
inventory = backend.inventory(robots)
print(json.dumps({r.name: [s.host for s in inventory.robots if s.name == r.name] for r in robots}))
"""


def test_robots_discovered_on_a_node_are_placed_there(tmp_path, cluster):
    env = {**os.environ, **cluster.client_env(), "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", DISCOVER, cluster.address], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    # both nodes' plugins find sim-hopper, but only the robots node offers it to Ray
    assert list(found) == ["sim-hopper"] and len(found["sim-hopper"]) == 1
    assert found["sim-hopper"][0].endswith(cluster.node("robots").node_id[:8])


def test_losing_the_robot_node_stops_the_run_clearly(tmp_path, cluster):
    cfg = _config(tmp_path, cluster, 200_000, _keys(cluster))
    proc = _run(cfg, tmp_path, cluster)
    run = tmp_path / "run"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            actor = _workers(run).get("actor-0", {})
            if actor.get("state") == "running" and actor.get("progress", {}).get("acked", 0) > 300:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the actor never got going")
        cluster.kill_node("robots")
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, out[-4000:]
    workers = _workers(run)
    assert workers["actor-0"]["state"] == "failed" and "hopper-0" in workers["actor-0"]["detail"]
    assert workers["learner"]["state"] == "stopped"
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    assert any(e["worker"] == "actor-0" and e["kind"] == "host-lost" for e in events)
    applied = read_journal(run / "applied.log")
    seqs = [s for a, s in applied if a == "actor-0"]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) > 300  # what was acknowledged was kept
