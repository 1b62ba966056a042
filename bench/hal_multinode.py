"""The Ray backend across two nodes that share no disk, next to the same work on one node.

    python -m bench.hal --multinode [--quick] --json OUT

Two real Ray clusters on this machine (``hal.testing.ray_cluster``), one after the other:
- *one node*: the robot and a stand-in GPU on the same ``ray start``;
- *two nodes*: the robot on one node, the stand-in GPU on another, each with its own temp directory
  and ``$RILL_HOME``; the link between learner and actor is then CurveZMQ on the machine's address.

Measured on each:
- placement: ``Scheduler.place()`` (an inventory read from Ray, probing every node, then placement);
- restart: a real actor (``hal.testing.counter_worker`` on a MuJoCo Hopper) is ``kill -9``-ed; the
  time until its replacement streams its next sequence number (default backoff included);
- learner updates/s: ``rill run`` of the stream-x Hopper job, learner on the GPU node, actor on the
  robot's; the learner's own rate (``metrics/learner.csv``), median over its reports after the first.

Both nodes share two CPU cores here, so the two-node figures show what the no-shared-disk paths and
an encrypted link cost, not what a network between machines would add.
"""

from __future__ import annotations

import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
ROBOT = "hopper-0"
STANDIN = {"RILL_STANDIN_GPUS": "standin-gpu:16"}


TOKEN = secrets.token_hex(16)  # both clusters: this process's Ray client reads its token once


def _cluster(root: Path, two: bool):
    from hal.testing.ray_cluster import LocalRayCluster

    cluster = LocalRayCluster(root, token=TOKEN)
    robot = {f"robot:{ROBOT}": 1}
    try:
        if two:
            cluster.add_node("gpu", num_gpus=1, env=STANDIN)
            cluster.add_node("robots", resources=robot)
        else:
            cluster.add_node("one", num_cpus=2, num_gpus=1, resources=robot, env=STANDIN)
    except BaseException:  # a node that did not start: the ones that did are stopped
        cluster.stop()
        raise
    return cluster


def _spec(cluster, run_dir: Path, command: list[str] | None = None):
    from hal.config import RobotConfig
    from hal.runspec import ActorsSpec, HeartbeatPolicy, LearnerSpec, RunSpec

    learner_cmd = [sys.executable, "-m", "hal.testing.counter_worker", "--steps", "100000000", "--rate", "5"]
    return RunSpec(
        "multinode",
        robots=[RobotConfig(ROBOT, "sim-mujoco", {"env_id": "Hopper-v5"})],
        learner=LearnerSpec(gpu_memory_gb=8, allow_cpu=False, cpus=0.2, command=learner_cmd),
        actors=[ActorsSpec("actor", robot_type="sim-mujoco", count=1, cpus=0.2, command=command)],
        heartbeat=HeartbeatPolicy(interval_s=0.1, startup_timeout_s=120),
        backend="ray",
        ray_address=cluster.address,
        run_dir=str(run_dir),
    )


def placement_and_restart(cluster, root: Path, repeats: int) -> dict:
    """Placement times, then one kill -9 of the actor and the time to its replacement's next record."""
    import ray

    from hal.scheduler import Scheduler
    from hal.testing.counter_worker import stream_path
    from hal.testing.sequence_log import read_records

    command = [sys.executable, "-m", "hal.testing.counter_worker", "--steps", "100000000", "--rate", "200"]
    try:
        with Scheduler(_spec(cluster, root / "run", command), sweep_s=0.01) as scheduler:
            scheduler.place()  # warm-up: Ray's first calls to each node
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                placement = scheduler.place()
                times.append(time.perf_counter() - t0)
            hosts = {a.worker: a.host for a in placement.assignments.values()}
            scheduler.start(placement)
            actor = scheduler.workers["actor-0"]
            log_path = stream_path(actor.dirs.run_dir, "actor-0")
            deadline = time.monotonic() + 120
            while len(read_records(log_path)) < 50 and time.monotonic() < deadline:
                scheduler.poll()
                time.sleep(0.01)
            before = len(read_records(log_path))
            pid = next(w.pid for w in scheduler.status() if w.name == "actor-0")
            killed = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            streaming = None
            while time.monotonic() < deadline + 60:
                scheduler.poll()
                if actor.incarnation == 1 and len(read_records(log_path)) > before:
                    streaming = time.perf_counter() - killed
                    break
                time.sleep(scheduler.sweep_s)
            seqs = [s for s, _, _ in read_records(log_path)]
            scheduler.stop()
    finally:
        ray.shutdown()
    return {
        "hosts": hosts,
        "place_ms": {"median": round(1e3 * statistics.median(times), 1), "max": round(1e3 * max(times), 1)},
        "kill9_to_streaming_s": None if streaming is None else round(streaming, 2),
        "contiguous": seqs == list(range(len(seqs))),
    }


def learner_rate(cluster, root: Path, steps: int) -> dict:
    """``rill run`` of the stream-x Hopper job on ``cluster``; the learner's updates/s."""
    from learners.link.security import generate_keys

    spec = yaml.safe_load((REPO / "config" / "sim_hopper.yaml").read_text())
    spec.update(name="multinode-learn", run_dir=str(root / "learn"), backend="ray",
                ray_address=cluster.address)
    spec["learner"].update(gpu_memory_gb=8, allow_cpu=False, cpus=0.5)
    spec["actors"][0]["cpus"] = 0.5
    spec["train"] = {"steps_per_actor": steps, "max_lag": 64}
    if len(cluster.nodes) > 1:
        keys = root / "keys"
        learner_public, learner_secret = generate_keys(keys, "learner")
        generate_keys(keys / "actors", "actor-0")
        spec["link"] = {"learner_secret": str(learner_secret), "allow_dir": str(keys / "actors"),
                        "actor_secret": str(keys / "actors" / "{name}.key_secret"),
                        "learner_public": str(learner_public)}
    cfg = root / "learn.yaml"
    cfg.write_text(yaml.safe_dump(spec))
    env = {**os.environ, **cluster.client_env(), "PYTHONPATH": str(REPO), "MUJOCO_GL": "egl"}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "agent.cli", "run", str(cfg)], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"rill run failed ({out.returncode}): {out.stdout[-3000:]}{out.stderr[-3000:]}")
    lines = (root / "learn" / "metrics" / "learner.csv").read_text().strip().splitlines()
    rows = [dict(zip(lines[0].split(","), line.split(","))) for line in lines[1:]]
    rates = [float(r["updates_per_s"]) for r in rows[1:]] or [float("nan")]
    return {"steps": steps, "updates": int(rows[-1]["updates"]),
            "updates_per_s_median": round(statistics.median(rates), 1), "run_wall_s": round(wall, 1)}


def bench_multinode(quick: bool) -> dict:
    import sim.robots  # noqa: F401  registers the sim-mujoco robot

    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=TOKEN)  # before Ray reads them
    out = {}
    for layout, two in (("one_node", False), ("two_nodes", True)):
        with tempfile.TemporaryDirectory(prefix="hal-multinode-") as tmp:
            root = Path(tmp)
            t0 = time.perf_counter()
            cluster = _cluster(root / "cluster", two)
            try:
                started = time.perf_counter() - t0
                result = placement_and_restart(cluster, root, repeats=3 if quick else 20)
                result["learner"] = learner_rate(cluster, root, steps=2000 if quick else 20000)
                result["cluster_start_s"] = round(started, 1)
            finally:
                cluster.stop()
        out[layout] = result
    return out


def rows(results: dict) -> list[list[str]]:
    one, two = results["one_node"], results["two_nodes"]
    return [
        ["Ray cluster start (ray start per node)", f"{one['cluster_start_s']} s",
         f"{two['cluster_start_s']} s"],
        ["placement (inventory from Ray + place)", f"{one['place_ms']['median']} ms median",
         f"{two['place_ms']['median']} ms median"],
        ["kill -9 -> replacement streaming", f"{one['kill9_to_streaming_s']} s",
         f"{two['kill9_to_streaming_s']} s"],
        ["learner updates/s (rill run, stream-x Hopper)", f"{one['learner']['updates_per_s_median']}",
         f"{two['learner']['updates_per_s_median']}"],
    ]
