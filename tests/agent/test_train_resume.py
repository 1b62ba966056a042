"""A run interrupted and resumed equals an uninterrupted one with the same seed, bit for bit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from agent.train import Trainer
from agent.train_config import TrainConfig

REPO = Path(__file__).resolve().parents[2]


def _assert_same_algorithm(a: Trainer, b: Trainer) -> None:
    sa, sb = a.algo.state_dict(), b.algo.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), f"{key} differs after resume"
    np.testing.assert_array_equal(a.pre.obs_norm.stats.mean, b.pre.obs_norm.stats.mean)


@pytest.mark.parametrize(("env", "algo"), [("Hopper-v5", "stream-ac"), ("CartPole-v1", "stream-sarsa")])
def test_stop_and_resume_equals_uninterrupted(tmp_path, rows, env, algo):
    def config(steps, run):
        return TrainConfig(env=env, algo=algo, steps=steps, seed=3, run=str(tmp_path / run),
                           checkpoint_every=500, hyper={"total_steps": 3000} if algo != "stream-ac" else {})

    whole = Trainer(config(3000, "whole"))
    whole.run()
    # Hopper stops mid-episode (its simulator state is checkpointed); CartPole resumes from the
    # last episode-boundary checkpoint after a simulated crash (the final checkpoint is removed).
    part = Trainer(config(1300, "part"))
    part.run()
    if env == "CartPole-v1":
        for ckpt in sorted((tmp_path / "part" / "checkpoints").iterdir())[-1:]:
            import shutil

            shutil.rmtree(ckpt)
    resumed = Trainer(config(3000, "part"), resume=True)
    assert 0 < resumed.step <= 1300
    resumed.run()
    _assert_same_algorithm(whole, resumed)
    assert rows(tmp_path / "whole") == rows(tmp_path / "part")


def test_sigkill_mid_run_then_resume_equals_uninterrupted(tmp_path, rows):
    args = ["--env", "Hopper-v5", "--steps", "4000", "--seed", "1", "--checkpoint-every", "700"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    victim_run = tmp_path / "victim"
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "train", *args, "--run", str(victim_run)],
                            env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpts = victim_run / "checkpoints"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if ckpts.exists() and any(p.name.startswith("step_") for p in ckpts.iterdir()):
            break
        time.sleep(0.02)
    time.sleep(float(np.random.default_rng().uniform(0, 0.5)))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"

    resumed = subprocess.run([sys.executable, "-m", "agent.cli", "train", *args, "--run", str(victim_run),
                              "--resume"], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    whole = Trainer(TrainConfig(env="Hopper-v5", steps=4000, seed=1, checkpoint_every=700,
                                run=str(tmp_path / "whole")))
    whole.run()
    from learners.checkpoint import load_checkpoint

    tensors, state = load_checkpoint(sorted((victim_run / "checkpoints").iterdir())[-1])
    assert state["step"] == 4000
    for key, value in whole.algo.state_dict().items():
        assert torch.equal(tensors[f"algo.{key}"], value), key
    assert rows(tmp_path / "whole") == rows(victim_run)
