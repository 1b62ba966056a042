"""``rill train`` runs MLP stream-x on the compiled path, says so in ``run.json``, and resumes exactly."""

from __future__ import annotations

import json

import torch

from agent.cli import main as rill
from agent.train import Trainer
from agent.train_config import TrainConfig
from learners.streamx.fast import FastStreamAC, FastStreamSARSA
from learners.streamx.fast.preprocess import FastStreamXPreprocessor
from learners.streamx.stream_ac import StreamAC


def _run_json(run) -> dict:
    return json.loads((run / "run.json").read_text())


def test_rill_train_uses_the_fast_path_for_mlp_policies(tmp_path):
    run = tmp_path / "hopper"
    assert rill(["train", "--env", "Hopper-v5", "--steps", "300", "--run", str(run)]) == 0
    assert _run_json(run)["update_path"] == "fast"
    trainer = Trainer(TrainConfig(env="Hopper-v5", steps=300, run=str(run)), resume=True)
    assert isinstance(trainer.algo, FastStreamAC)
    assert isinstance(trainer.pre, FastStreamXPreprocessor)
    trainer.metrics.close()
    assert rill(["eval", "--run", str(run), "--episodes", "1"]) == 0


def test_discrete_algorithms_take_the_fast_path_too(tmp_path):
    config = TrainConfig(env="CartPole-v1", algo="stream-sarsa", steps=200, run=str(tmp_path / "cp"),
                         hyper={"hidden": [32, 32]})
    trainer = Trainer(config)
    trainer.run()
    assert isinstance(trainer.algo, FastStreamSARSA)
    assert _run_json(tmp_path / "cp")["update_path"] == "fast"


def test_update_path_autograd_is_the_escape_hatch(tmp_path):
    run = tmp_path / "slow"
    assert rill(["train", "--env", "Hopper-v5", "--steps", "100", "--run", str(run),
                 "--update-path", "autograd"]) == 0
    assert _run_json(run)["update_path"] == "autograd"
    trainer = Trainer(TrainConfig(env="Hopper-v5", steps=100, run=str(run), update_path="autograd"),
                      resume=True)
    assert type(trainer.algo) is StreamAC
    trainer.metrics.close()


def _train(run, steps, resume=False, update_path="fast") -> Trainer:
    trainer = Trainer(TrainConfig(env="Hopper-v5", steps=steps, seed=3, run=str(run),
                                  checkpoint_every=10_000, update_path=update_path), resume=resume)
    trainer.run()
    return trainer


def test_fast_path_resumes_bit_exactly(tmp_path):
    straight = _train(tmp_path / "straight", 600).algo.state_dict()
    _train(tmp_path / "split", 250)  # stops mid-episode; the checkpoint holds the simulator state
    resumed = _train(tmp_path / "split", 600, resume=True).algo.state_dict()
    assert straight.keys() == resumed.keys()
    for key, value in straight.items():
        assert torch.equal(value, resumed[key]), key


def test_a_fast_checkpoint_resumes_on_the_autograd_path(tmp_path):
    _train(tmp_path / "run", 250)
    slow = _train(tmp_path / "run", 300, resume=True, update_path="autograd")
    assert _run_json(tmp_path / "run")["update_path"] == "autograd"
    assert slow.step == 300
