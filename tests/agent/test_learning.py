"""Stream-x learns for real, with fixed seeds, within a CI budget (improvement, not exact numbers)."""

from __future__ import annotations

import numpy as np

from agent.evaluate import evaluate
from agent.train import Trainer
from agent.train_config import TrainConfig
from sim.envs import make_env


def random_policy_return(env_id: str, episodes: int = 20) -> float:
    env = make_env(env_id)
    env.reset(seed=0)
    env.action_space.seed(0)
    total = 0.0
    for _ in range(episodes):
        env.reset()
        done = False
        while not done:
            _, r, term, trunc, _ = env.step(env.action_space.sample())
            total += r
            done = term or trunc
    return total / episodes


def test_stream_q_learns_cartpole(tmp_path):
    baseline = random_policy_return("CartPole-v1")  # about 22
    trainer = Trainer(TrainConfig(env="CartPole-v1", algo="stream-q", steps=40_000, seed=0,
                                  run=str(tmp_path / "q")))
    summary = trainer.run()
    assert summary["final_return_mean_last_10"] > max(8 * baseline, 150)
    assert np.mean(evaluate(tmp_path / "q", episodes=5).returns) > 150


def test_stream_ac_learns_inverted_pendulum(tmp_path):
    # Three seeds, judged by their median: one seed's 15k steps depend on the last bit of floating
    # point (on one CPU seed 0 ended at 164 where on another it passed 200; at 25k steps it was 834),
    # while learning itself shows in every seed. Measured here: 164, 1000, 785.
    baseline = random_policy_return("InvertedPendulum-v5")  # about 5-10
    finals = [Trainer(TrainConfig(env="InvertedPendulum-v5", algo="stream-ac", steps=15_000, seed=seed,
                                  run=str(tmp_path / f"ac{seed}"))).run()["final_return_mean_last_10"]
              for seed in (0, 1, 2)]
    assert np.median(finals) > max(20 * baseline, 200), finals
    assert min(finals) > 5 * baseline, finals  # and none is still acting at random
