"""An actor killed with SIGKILL just after saving its state comes back counting only the steps
whose transitions its stream kept: the steps it lost are taken again, so a run's stream holds
exactly its step budget with no gap and no reused sequence number."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from agent.actor import ActorConfig, ActorRunner

REPO = Path(__file__).resolve().parents[3]

CHILD = """
import json, os, signal, sys
from agent.actor import ActorConfig, ActorRunner
runner = ActorRunner(ActorConfig(learner=sys.argv[1], env="Hopper-v5", actor_id="edge", run_dir=sys.argv[2],
                                 state_every=250))
for _ in range(1000):
    runner.step()  # the state is saved after step 1000, with the last batch not yet on disk
print(json.dumps({"steps": runner.steps, "seq": runner.seq, "durable": runner.stream.durable_seq()}),
      flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_restarted_actor_counts_the_steps_its_stream_kept(tmp_path):
    learner = f"tcp://127.0.0.1:{_free_port()}"  # nobody listens: everything stays in the spool
    run = tmp_path / "run"
    child = subprocess.run([sys.executable, "-c", CHILD, learner, str(run)], cwd=REPO, capture_output=True,
                           text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    before = json.loads(child.stdout.strip().splitlines()[-1])
    assert before["steps"] == before["seq"] == 1000

    runner = ActorRunner(ActorConfig(learner=learner, env="Hopper-v5", actor_id="edge", run_dir=run,
                                     state_every=250))
    try:
        kept = runner.stream.durable_seq()
        assert 0 < kept <= 1000
        assert runner.steps == kept, (runner.steps, kept, before)
        runner.run(steps=1500)
        assert runner.steps == 1500 and runner.seq == 1500  # the stream holds the budget, no more
    finally:
        runner.close()
