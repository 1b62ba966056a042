"""VLA checkpoints: the Hugging Face layout round trip, offline, and strict loading errors."""

from __future__ import annotations

import json
import os
import socket

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported: no hub, ever

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from policies.vla import VLACheckpointError, VLAPolicy, load_vla, tiny_vla, vla_from_backbone
from policies.vla.config import tiny_backbone_config
from policies.vla.tokenizer import build_tokenizer


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open an internet socket fails the test."""
    def refuse(self, address):
        raise AssertionError(f"network access to {address!r} during an offline load")
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = tiny_vla(state_dim=5, action_dim=3, chunk_size=4, seed=7, camera_names=["front", "wrist"],
                     action_low=[-1.0, -0.5, 0.0], action_high=[1.0, 0.5, 2.0])
    path = tmp_path_factory.mktemp("ckpt") / "vla"
    model.save_pretrained(path)
    return model, path


def _obs(seed=0, instruction="pick up the red cube"):
    rng = np.random.default_rng(seed)
    return {"state": rng.standard_normal(5).astype(np.float32),
            "image.front": rng.integers(0, 256, (96, 96, 3), dtype=np.uint8),
            "image.wrist": rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
            "instruction": instruction, "timestamp": 12.5}


def test_round_trip_gives_identical_outputs_offline_with_the_tokenizer(saved, no_network):
    model, path = saved
    files = set(os.listdir(path))
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= files
    loaded = load_vla(path)
    assert loaded.config.to_diff_dict() == model.config.to_diff_dict()
    assert loaded.config.camera_names == ["front", "wrist"] and loaded.config.action_low == [-1.0, -0.5, 0.0]
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    assert loaded.backbone_frozen and not loaded.training
    text = "Pick up the RED cube, then place it 12 cm left of the zorblax!"
    assert loaded.tokenizer(text)["input_ids"] == model.tokenizer(text)["input_ids"]
    assert model.tokenizer.unk_token_id in model.tokenizer(text)["input_ids"]  # unknown word: <unk>
    a, b = VLAPolicy(model).act(_obs()), VLAPolicy(loaded).act(_obs())
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.features, b.features)


def test_saving_over_a_checkpoint_replaces_it_whole(saved, tmp_path):
    model, _ = saved
    path = tmp_path / "vla"
    tiny_vla(state_dim=5, action_dim=3, chunk_size=4, seed=1).save_pretrained(path)
    model.save_pretrained(path)
    assert load_vla(path).config.camera_names == ["front", "wrist"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vla"]  # no staging leftovers


def _copy(src, dst):
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_no_config_json_is_a_clear_error(saved, tmp_path):
    bad = _copy(saved[1], tmp_path / "bad")
    (bad / "config.json").unlink()
    with pytest.raises(VLACheckpointError, match=r"no config\.json"):
        load_vla(bad)
    with pytest.raises(VLACheckpointError, match="not a directory"):
        load_vla(tmp_path / "nowhere")


def test_a_tensor_of_the_wrong_shape_is_named(saved, tmp_path):
    bad = _copy(saved[1], tmp_path / "bad")
    tensors = load_file(bad / "model.safetensors")
    tensors["state_encoder.0.weight"] = torch.zeros(64, 6)
    save_file(tensors, bad / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(VLACheckpointError, match=r"'state_encoder.0.weight' has shape \(64, 6\).*\(64, 5\)"):
        load_vla(bad)


def test_a_config_that_disagrees_with_the_weights_is_named(saved, tmp_path):
    bad = _copy(saved[1], tmp_path / "bad")
    config = json.loads((bad / "config.json").read_text())
    config["chunk_size"] = 6
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(VLACheckpointError, match=r"action_head\.4\.weight"):
        load_vla(bad)
    config["chunk_size"] = 0
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(VLACheckpointError, match=r"config.json.*chunk_size must be a positive int, got 0"):
        load_vla(bad)


def test_missing_and_unexpected_tensors_are_named(saved, tmp_path):
    bad = _copy(saved[1], tmp_path / "bad")
    tensors = load_file(bad / "model.safetensors")
    del tensors["feature_head.0.bias"]
    tensors["extra.weight"] = torch.zeros(2)
    save_file(tensors, bad / "model.safetensors", metadata={"format": "pt"})
    expected = r"'feature_head\.0\.bias' missing.*unexpected tensor 'extra\.weight'"
    with pytest.raises(VLACheckpointError, match=expected):
        load_vla(bad)


def test_a_truncated_safetensors_file_is_named(saved, tmp_path):
    bad = _copy(saved[1], tmp_path / "bad")
    data = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(VLACheckpointError, match=r"model\.safetensors: corrupt or truncated"):
        load_vla(bad)
    (bad / "model.safetensors").unlink()
    with pytest.raises(VLACheckpointError, match=r"no model\.safetensors"):
        load_vla(bad)


def test_a_directory_without_tokenizer_or_of_another_model_type_is_refused(saved, tmp_path):
    bad = _copy(saved[1], tmp_path / "bad")
    (bad / "tokenizer.json").unlink()
    (bad / "tokenizer_config.json").unlink()
    with pytest.raises(VLACheckpointError, match="no tokenizer files"):
        load_vla(bad)
    other = tmp_path / "smolvlm"
    other.mkdir()
    tiny_backbone_config().save_pretrained(other)
    with pytest.raises(VLACheckpointError, match="model_type 'smolvlm' is not a rill VLA"):
        load_vla(other)


def test_a_real_vision_language_checkpoint_becomes_the_backbone(tmp_path, no_network):
    from transformers import SmolVLMForConditionalGeneration

    torch.manual_seed(3)
    vlm = SmolVLMForConditionalGeneration(tiny_backbone_config())
    path = tmp_path / "smolvlm"
    vlm.save_pretrained(path)
    build_tokenizer().save_pretrained(path)
    (path / "preprocessor_config.json").write_text(json.dumps(
        {"do_normalize": True, "image_mean": [0.4, 0.4, 0.4], "image_std": [0.2, 0.25, 0.3]}))
    model = vla_from_backbone(path, state_dim=5, action_dim=3, chunk_size=4, camera_names=["front", "wrist"])
    assert model.config.image_std == [0.2, 0.25, 0.3]
    for k, v in vlm.model.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[k], v), k
    chunk = VLAPolicy(model).act(_obs())
    assert chunk.actions.shape == (4, 3) and chunk.features.shape == (model.config.feature_dim + 5,)


def test_the_state_is_standardised_as_configured_and_saved_with_it(tmp_path):
    mean, std = [0.1, 0.7, 0.2, 0.5], [0.1, 0.05, 0.08, 0.4]
    plain = tiny_vla(state_dim=4, action_dim=4, chunk_size=2, seed=5)
    scaled = tiny_vla(state_dim=4, action_dim=4, chunk_size=2, seed=5, state_mean=mean, state_std=std)
    features = torch.randn(3, plain.config.feature_dim)
    state = torch.tensor([[0.12, 0.72, 0.15, 1.0], [0.0, 0.6, 0.3, 0.0], [0.2, 0.8, 0.1, 0.5]])
    standard = (state - torch.tensor(mean)) / torch.tensor(std)
    with torch.no_grad():
        torch.testing.assert_close(scaled.act_from_features(features, state),
                                   plain.act_from_features(features, standard))
    scaled.save_pretrained(tmp_path / "vla")
    loaded = load_vla(tmp_path / "vla")
    assert loaded.config.state_mean == pytest.approx(mean) and loaded.config.state_std == pytest.approx(std)
    with torch.no_grad():
        torch.testing.assert_close(loaded.act_from_features(features, state),
                                   scaled.act_from_features(features, state))
    with pytest.raises(ValueError, match=r"state_std .*must be > 0"):
        tiny_vla(state_dim=4, action_dim=4, state_mean=mean, state_std=[0.1, 0.0, 0.1, 0.1])
    with pytest.raises(ValueError, match=r"state_mean .*list of 4"):
        tiny_vla(state_dim=4, action_dim=4, state_mean=[0.0, 1.0])
