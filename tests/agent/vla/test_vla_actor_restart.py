"""A VLA actor killed with SIGKILL in the middle of an episode comes back counting on: its tick
count from the last episode it logged (the cut episode's ticks are taken again), and its episode
numbers past every one its transitions used, so no two robot episodes share a number."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

from agent.actor.episodes import read_episodes
from learners.cache import CacheConfig, ReplayCache
from tests.ports import free_port

REPO = Path(__file__).resolve().parents[3]
SETUP = """
import sim.robots  # registers sim-tabletop
from agent.vla.actor import VLAActor, VLAActorConfig
from hal.config import RobotConfig
from hal.registry import make_robot

ARM = RobotConfig("arm", "sim-tabletop", {"task": "reach", "state": "proprio", "cameras": ["front"],
                                          "colors": ["red", "blue", "yellow"], "max_delta": 1.0, "seed": 5})


def actor(learner, run_dir):
    robot = make_robot(ARM)
    robot.connect()
    config = VLAActorConfig(learner=learner, actor_id="arm", run_dir=run_dir,
                            vla_path="pretrained:tabletop-reach", chunk_size=4, residual_scale=0.35,
                            pace="fast", save_every_s=0.0, durability="os-buffered")
    return VLAActor(config, robot), robot
"""
# Killed 20 ticks into its third episode, once what it streamed of it is on the spool's disk.
CHILD = SETUP + """
import json, os, signal, sys, time
actor, robot = actor(sys.argv[1], sys.argv[2])


def kill_mid_episode():
    if actor.episode >= 2 and actor.ep_ticks >= 20:
        actor.stream.flush()
        while actor.stream.durable_seq() < actor.seq:
            time.sleep(0.01)
        print(json.dumps({"ticks": actor.ticks, "episode": actor.episode, "seq": actor.seq}), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    return False


actor.run(should_stop=kill_mid_episode)
"""


def test_a_killed_vla_actor_counts_on_without_reusing_an_episode_number(tmp_path):
    learner = f"tcp://127.0.0.1:{free_port()}"  # nobody listens: everything stays in the spool
    env = {**os.environ, "PYTHONPATH": str(REPO), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    child = subprocess.run([sys.executable, "-c", CHILD, learner, str(tmp_path)], cwd=REPO,
                           capture_output=True, text=True, env=env, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    before = json.loads(child.stdout.strip().splitlines()[-1])
    actor_dir = tmp_path / "actors" / "arm"
    logged = read_episodes(actor_dir / "episodes.csv")
    assert [e.episode for e in logged] == [1, 2] and before["episode"] == 2
    assert logged[-1].step < before["ticks"]  # the third episode was under way

    namespace: dict = {}
    exec(SETUP, namespace)
    actor, robot = namespace["actor"](learner, tmp_path)
    try:
        assert actor.ticks == logged[-1].step  # the cut episode's ticks are taken again
        assert actor.episode == 3  # index 2 went out with the cut episode's transitions
        actor.run(ticks=actor.ticks + 200)
        assert actor.ticks == logged[-1].step + 200
    finally:
        actor.close()
        robot.disconnect()

    with ReplayCache(actor_dir / "spool", CacheConfig(read_only=True)) as spool:
        spooled = [t for _, t in spool.iter_transitions()]
    assert [t.seq for t in spooled] == list(range(1, len(spooled) + 1))
    first = {t.episode for t in spooled if t.seq <= before["seq"]}
    second = {t.episode for t in spooled if t.seq > before["seq"]}
    assert first == {0, 1, 2} and second and min(second) == 3
    episodes = [e.episode for e in read_episodes(actor_dir / "episodes.csv")]
    assert episodes[:2] == [1, 2] and episodes[2] == 4 and episodes == sorted(set(episodes))
