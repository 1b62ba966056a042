"""Checkpoints are atomic and verified: damage is reported, never half-loaded."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
import torch

from agent.train import Trainer
from agent.train_config import TrainConfig
from learners.checkpoint import (
    STATE,
    TENSORS,
    CheckpointCorruptError,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)


def test_round_trip(tmp_path):
    tensors = {"w": torch.randn(3, 4), "n": torch.arange(5)}
    save_checkpoint(tmp_path / "c", tensors, {"step": 7, "x": 0.1})
    loaded, state = load_checkpoint(tmp_path / "c")
    assert state == {"step": 7, "x": 0.1}
    assert all(torch.equal(loaded[k], v) for k, v in tensors.items())


@pytest.mark.parametrize("victim", [TENSORS, STATE])
@pytest.mark.parametrize("seed", range(4))
def test_truncated_file_is_reported_corrupt(tmp_path, victim, seed):
    save_checkpoint(tmp_path / "c", {"w": torch.randn(64, 64)}, {"step": 1, "note": "x" * 100})
    path = tmp_path / "c" / victim
    data = path.read_bytes()
    cut = int(np.random.default_rng(seed).integers(0, len(data)))
    path.write_bytes(data[:cut])
    with pytest.raises(CheckpointCorruptError, match=victim.split(".")[0]):
        load_checkpoint(tmp_path / "c")


def test_flipped_byte_in_tensors_fails_checksum(tmp_path):
    save_checkpoint(tmp_path / "c", {"w": torch.zeros(100)}, {})
    path = tmp_path / "c" / TENSORS
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointCorruptError, match="checksum mismatch"):
        load_checkpoint(tmp_path / "c")


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / STATE).write_text('{"hello": 1}')
    (tmp_path / "c" / TENSORS).write_bytes(b"")
    with pytest.raises(CheckpointCorruptError, match="not a rill checkpoint"):
        load_checkpoint(tmp_path / "c")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing")


def test_resume_skips_a_damaged_newest_checkpoint_and_never_half_loads(tmp_path, caplog):
    config = TrainConfig(env="InvertedPendulum-v5", steps=600, checkpoint_every=200, run=str(tmp_path / "r"))
    Trainer(config).run()
    ckpts = sorted((tmp_path / "r" / "checkpoints").iterdir())
    assert [p.name for p in ckpts][-1] == "step_000000000600"
    tensors = ckpts[-1] / TENSORS
    tensors.write_bytes(tensors.read_bytes()[:1000])
    # A crash during a save leaves only a temporary directory; it is never taken for a checkpoint.
    shutil.copytree(ckpts[0], ckpts[0].with_name(".step_000000000800.tmp"))
    with caplog.at_level(logging.ERROR):
        resumed = Trainer(TrainConfig(**{**config.to_dict(), "steps": 800}), resume=True)
    assert resumed.step == 400
    assert "step_000000000600" in caplog.text and "checksum mismatch" in caplog.text
    for p in ckpts:
        (p / STATE).write_text((p / STATE).read_text()[:50])
    with pytest.raises(CheckpointError, match=r"no usable checkpoint.*not valid JSON"):
        Trainer(TrainConfig(**{**config.to_dict(), "steps": 800}), resume=True)


def test_checkpoint_of_another_network_is_refused_before_any_tensor_is_copied(tmp_path):
    small = Trainer(TrainConfig(env="InvertedPendulum-v5", steps=50, run=str(tmp_path / "a"),
                                hyper={"hidden": [16, 16]}))
    big = Trainer(TrainConfig(env="InvertedPendulum-v5", steps=50, run=str(tmp_path / "b")))
    before = {k: v.clone() for k, v in big.algo.state_dict().items()}
    with pytest.raises(ValueError, match="shape"):
        big.algo.load_state_dict(small.algo.state_dict())
    assert all(torch.equal(before[k], v) for k, v in big.algo.state_dict().items())
