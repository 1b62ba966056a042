"""An actor killed with SIGKILL just after saving its state comes back counting only the steps
whose transitions its stream kept: the steps it lost are taken again, so a run's stream holds
exactly its step budget with no gap and no reused sequence number."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from agent.actor import ActorConfig, ActorRunner
from agent.operator.config import OperatorConfig
from learners.checkpoint import CheckpointStore
from tests.ports import free_port

REPO = Path(__file__).resolve().parents[3]

# Batches of 300 rows and no timer: at the state save after step 1000 (every 250 steps), rows
# 901-1000 are still in the open batch, and the kill loses them.
CHILD = """
import json, os, signal, sys
from agent.actor import ActorConfig, ActorRunner
runner = ActorRunner(ActorConfig(learner=sys.argv[1], env="Hopper-v5", actor_id="edge", run_dir=sys.argv[2],
                                 state_every=int(sys.argv[4])))
runner.stream.batcher.max_rows, runner.stream.batcher.max_delay_s = 300, 3600.0
for _ in range(int(sys.argv[3])):
    runner.step()
print(json.dumps({"steps": runner.steps, "seq": runner.seq, "durable": runner.stream.durable_seq()}),
      flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_after(learner: str, run: Path, steps: int, state_every: int = 250) -> dict:
    """Run the child for ``steps`` steps and SIGKILL it; what it had counted, handed out and made durable."""
    argv = [sys.executable, "-c", CHILD, learner, str(run), str(steps), str(state_every)]
    child = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300,
                           env={**os.environ, "PYTHONPATH": str(REPO)})
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    return json.loads(child.stdout.strip().splitlines()[-1])


def test_a_restarted_actor_counts_the_steps_its_stream_kept(tmp_path):
    learner = f"tcp://127.0.0.1:{free_port()}"  # nobody listens: everything stays in the spool
    run = tmp_path / "run"
    before = _killed_after(learner, run, 1000)
    assert before == {"steps": 1000, "seq": 1000, "durable": 900}

    runner = ActorRunner(ActorConfig(learner=learner, env="Hopper-v5", actor_id="edge", run_dir=run,
                                     state_every=250))
    try:
        assert runner.seq == 900  # the stream continues after what the disk kept
        assert runner.steps == 900  # not the 1000 saved: the lost 100 are taken again
        runner.run(steps=1500)
        assert runner.steps == 1500 and runner.seq == 1500  # the stream holds the budget, no more
    finally:
        runner.close()


def test_an_actor_killed_before_its_first_state_save_counts_its_kept_steps(tmp_path):
    """No state on disk yet (the first save comes at step 1000): the restart still counts the 600
    steps the spool kept, so the budget is not run again in full."""
    learner = f"tcp://127.0.0.1:{free_port()}"
    run = tmp_path / "run"
    assert _killed_after(learner, run, 700, state_every=1000) == {"steps": 700, "seq": 700, "durable": 600}
    runner = ActorRunner(ActorConfig(learner=learner, env="Hopper-v5", actor_id="edge", run_dir=run,
                                     state_every=1000))
    try:
        assert runner.seq == 600 and runner.steps == 600  # the 100 lost steps are taken again
        runner.run(steps=1500)
        assert runner.steps == 1500 and runner.seq == 1500
    finally:
        runner.close()


def test_an_operated_actor_saves_its_waiting_step_as_counted(tmp_path):
    """An operated step is handed to the stream one step late (the next may end its episode and
    label it): the saved state counts it among the handed-out ones, so a restart neither repeats
    nor skips it."""
    config = ActorConfig(learner="tcp://127.0.0.1:9", env="Pendulum-v1", actor_id="pend", run_dir=tmp_path,
                         durability="none", state_every=50)
    runner = ActorRunner(config, operator=OperatorConfig(enabled=True, wait_for_start=False))
    try:
        while runner.steps < 50:
            runner.step()
        _, _, state = CheckpointStore(runner.dir / "state").load_latest()
        assert runner.operated.unrecorded == 1 and runner.seq == 49
        assert state["steps"] == state["handed_seq"] == 50
    finally:
        runner.close()
