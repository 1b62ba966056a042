"""``rill train`` / ``rill eval`` from the command line: results, and bad input refused early."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

from agent.cli import main
from agent.train import Trainer
from agent.train_config import TrainConfig

REPO = Path(__file__).resolve().parents[2]


def run_cli(*argv: str) -> int:
    return main(list(argv))


def test_train_writes_metrics_plot_checkpoints_and_eval_reads_them(tmp_path, capsys):
    run = tmp_path / "run"
    assert run_cli("train", "--env", "InvertedPendulum-v5", "--steps", "1500", "--run", str(run),
                   "--checkpoint-every", "1000") == 0
    for rel in ("config.yaml", "run.json", "summary.json", "learning_curve.png", "metrics/episodes.csv",
                "metrics/progress.csv"):
        assert (run / rel).is_file(), rel
    assert list((run / "metrics" / "tb").glob("events.out.tfevents.*"))
    assert (run / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in sorted((run / "checkpoints").iterdir())] == ["step_000000001000",
                                                                         "step_000000001500"]
    capsys.readouterr()
    video = tmp_path / "ep.mp4"
    assert run_cli("eval", "--run", str(run), "--episodes", "2", "--video", str(video)) == 0
    out = capsys.readouterr().out
    assert "mean ± std" in out and "step_000000001500" in out
    assert video.stat().st_size > 1000


def test_eval_names_what_it_cannot_evaluate(tmp_path, caplog):
    run = tmp_path / "run"
    assert run_cli("train", "--env", "CartPole-v1", "--algo", "stream-q", "--steps", "200",
                   "--run", str(run)) == 0
    with caplog.at_level(logging.ERROR):
        assert run_cli("eval", "--run", str(run), "--episodes", "0") == 2  # used to print "nan ± nan"
        assert "--episodes must be a positive integer, got 0" in caplog.text
        caplog.clear()
        whole = tmp_path / "sim-hopper"  # a rill run's directory: its config is a run spec
        whole.mkdir()
        (whole / "config.yaml").write_text((REPO / "config" / "sim_hopper.yaml").read_text())
        assert run_cli("eval", "--run", str(whole)) == 2
        assert f"{whole} holds a rill run (robots and actors), not a rill train run" in caplog.text


def test_unknown_env_is_named_with_close_matches_and_nothing_is_created(tmp_path, caplog):
    run = tmp_path / "run"
    with caplog.at_level(logging.ERROR):
        assert run_cli("train", "--env", "HalfCheeta-v5", "--run", str(run)) == 2
    assert "'HalfCheeta-v5'" in caplog.text and "HalfCheetah-v5" in caplog.text
    assert not run.exists()


@pytest.mark.parametrize(("flag", "message"), [
    (["--hp", "gamma=1.5"], "gamma must be in (0, 1], got 1.5"),
    (["--hp", "gamma=0"], "gamma must be in (0, 1], got 0"),
    (["--hp", "lamda=-0.2"], "lamda must be in [0, 1], got -0.2"),
    (["--hp", "kappa_policy=0"], "kappa_policy must be > 0, got 0"),
    (["--steps", "0"], "steps must be a positive integer, got 0"),
    (["--steps", "-5"], "steps must be a positive integer, got -5"),
    (["--hp", "lambda=0.5"], "unknown hyperparameter 'lambda'; did you mean 'lamda'?"),
    (["--hp", "lamda=abc"], "stream-ac.lamda must be a number, got 'abc'"),
    (["--hp", "adaptive=maybe"], "stream-ac.adaptive must be true or false, got 'maybe'"),
])
def test_invalid_settings_are_refused_before_anything_runs(tmp_path, caplog, flag, message):
    run = tmp_path / "run"
    with caplog.at_level(logging.ERROR):
        assert run_cli("train", "--env", "InvertedPendulum-v5", "--run", str(run), *flag) == 2
    assert message in caplog.text
    assert not run.exists()


def test_run_directory_holding_a_run_is_refused_unless_resume_or_overwrite(tmp_path, caplog):
    run = str(tmp_path / "run")
    base = ["train", "--env", "InvertedPendulum-v5", "--steps", "200", "--run", run]
    assert run_cli(*base) == 0
    with caplog.at_level(logging.ERROR):
        assert run_cli(*base) == 2
    assert "already holds a run" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert run_cli(*base, "--seed", "5", "--resume") == 2
    assert "holds a different run" in caplog.text and "seed: 0 -> 5" in caplog.text
    assert run_cli(*base, "--seed", "5", "--overwrite") == 0
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["seed"] == 5


def test_config_file_typo_names_the_nearest_key(tmp_path, caplog):
    cfg = tmp_path / "train.yaml"
    cfg.write_text("env: InvertedPendulum-v5\nstep: 100\n")
    with caplog.at_level(logging.ERROR):
        assert run_cli("train", "--config", str(cfg), "--run", str(tmp_path / "r")) == 2
    assert "unknown key 'step'; did you mean 'steps'?" in caplog.text


class _FlakySensorEnv(gym.Env):
    """A pendulum-like toy whose sensor returns NaN/inf now and then, as broken hardware does."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.np_random.normal(size=3).astype(np.float32), {}

    def step(self, action):
        self.t += 1
        obs = self.np_random.normal(size=3).astype(np.float32)
        reward = float(-abs(action[0]))
        if self.t % 37 == 0:
            obs[1] = np.nan
        if self.t % 53 == 0:
            reward = math.inf
        return obs, reward, False, self.t >= 100, {}


def test_nonfinite_observations_and_rewards_are_skipped_counted_and_never_reach_weights(tmp_path):
    gym.register("rill-test/FlakySensor-v0", entry_point=_FlakySensorEnv, max_episode_steps=100)
    trainer = Trainer(TrainConfig(env="rill-test/FlakySensor-v0", steps=2000, run=str(tmp_path / "r")))
    summary = trainer.run()
    assert summary["nonfinite_skipped"] > 40
    assert all(torch.isfinite(v).all() for v in trainer.algo.state_dict().values() if v.is_floating_point())
    assert np.isfinite(trainer.pre.obs_norm.stats.mean).all()
    assert np.isfinite(trainer.pre.reward_scaler.trace)
    progress = (tmp_path / "r" / "metrics" / "progress.csv").read_text().splitlines()
    assert progress[0].split(",")[5] == "nonfinite_skipped" and int(progress[-1].split(",")[5]) > 40


def test_resume_takes_the_runs_own_settings_and_refuses_to_go_backwards(tmp_path, caplog):
    run = tmp_path / "run"
    assert run_cli("train", "--env", "CartPole-v1", "--algo", "stream-q", "--steps", "300", "--seed", "3",
                   "--hp", "lamda=0.7", "--checkpoint-every", "100", "--run", str(run)) == 0
    # only --run and --steps: the env, algorithm, seed and hyperparameters are the run's own
    assert run_cli("train", "--run", str(run), "--resume", "--steps", "500") == 0
    stored = yaml.safe_load((run / "config.yaml").read_text())
    kept = (stored["env"], stored["algo"], stored["seed"], stored["steps"])
    assert kept == ("CartPole-v1", "stream-q", 3, 500)
    assert stored["hyper"]["lamda"] == 0.7
    with caplog.at_level(logging.ERROR):
        assert run_cli("train", "--run", str(run), "--resume", "--steps", "200") == 2
    assert "is at step 500 already, past --steps 200; give more steps" in caplog.text
    assert yaml.safe_load((run / "config.yaml").read_text())["steps"] == 500  # untouched
