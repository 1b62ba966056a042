"""VLAPolicy: chunk shape and limits, features, determinism, input checks, the instruction cache."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from policies.base import PolicyInputError
from policies.vla import VLAConfig, VLAConfigError, VLAPolicy, tiny_vla

LOW = [-1.0, -2.0, 0.0, -0.1]
HIGH = [1.0, 0.5, 3.0, 0.1]


@pytest.fixture(scope="module")
def policy():
    return VLAPolicy(tiny_vla(state_dim=6, action_dim=4, chunk_size=5, seed=0, action_low=LOW,
                              action_high=HIGH, period_s=0.02), version=3)


def _obs(seed=0, **changes):
    rng = np.random.default_rng(seed)
    obs = {"state": rng.standard_normal(6).astype(np.float32),
           "image.front": rng.integers(0, 256, (96, 96, 3), dtype=np.uint8),
           "instruction": "put the blue block in the bowl", "timestamp": 42.25}
    obs.update(changes)
    return obs


def test_chunk_shape_features_and_metadata(policy):
    obs = _obs()
    chunk = policy.act(obs)
    assert chunk.actions.shape == (5, 4) and chunk.actions.dtype == np.float32
    assert chunk.features.shape == (policy.config.feature_dim + 6,) == (policy.feature_dim,)
    assert chunk.features.dtype == np.float32
    np.testing.assert_array_equal(chunk.features[-6:], obs["state"])  # [pooled backbone, state]
    assert chunk.period_s == 0.02 and chunk.observed_at == 42.25 and chunk.version == 3
    assert np.isnan(chunk.logp)
    assert policy.model.backbone_frozen
    other = policy.act(_obs(seed=1))
    assert not np.array_equal(other.actions, chunk.actions)  # image and state matter


def test_actions_stay_inside_per_dimension_limits_even_when_saturated(policy):
    last = policy.model.action_head[-1]
    saved = last.bias.detach().clone()
    try:
        with torch.no_grad():
            last.bias.copy_(torch.tensor([50.0, -50.0, 50.0, -50.0]).repeat(5))
        actions = policy.act(_obs()).actions
    finally:
        with torch.no_grad():
            last.bias.copy_(saved)
    np.testing.assert_allclose(actions, np.tile([HIGH[0], LOW[1], HIGH[2], LOW[3]], (5, 1)), atol=1e-6)
    for seed in range(3):
        a = policy.act(_obs(seed)).actions
        assert (a >= np.float32(LOW)).all() and (a <= np.float32(HIGH)).all()


def test_same_seed_same_model_and_outputs():
    a = VLAPolicy(tiny_vla(state_dim=6, action_dim=4, chunk_size=5, seed=11))
    b = VLAPolicy(tiny_vla(state_dim=6, action_dim=4, chunk_size=5, seed=11))
    c = VLAPolicy(tiny_vla(state_dim=6, action_dim=4, chunk_size=5, seed=12))
    np.testing.assert_array_equal(a.act(_obs()).actions, b.act(_obs()).actions)
    np.testing.assert_array_equal(a.act(_obs()).actions, a.act(_obs()).actions)
    assert not np.array_equal(a.act(_obs()).actions, c.act(_obs()).actions)


def test_global_torch_rng_is_left_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    tiny_vla(state_dim=2, action_dim=2, chunk_size=2, seed=0)
    torch.testing.assert_close(torch.rand(3), expected)


def test_instruction_ids_are_cached_until_the_instruction_changes(policy):
    prompt = policy.prompt
    policy.act(_obs(instruction="open the drawer"))
    ids, count = prompt("open the drawer"), prompt.tokenizations
    policy.act(_obs(seed=1, instruction="open the drawer"))
    assert prompt("open the drawer") is ids and prompt.tokenizations == count
    policy.act(_obs(instruction="close the drawer"))
    assert prompt.tokenizations == count + 1 and not torch.equal(prompt("close the drawer"), ids)
    n_image = policy.config.image_tokens_per_camera
    assert (prompt("close the drawer") == policy.config.vlm_config.image_token_id).sum() == n_image


@pytest.mark.parametrize("change, message", [
    ({"image.front": np.zeros((96, 96), np.uint8)}, r"'image.front'\] has shape \(96, 96\), expected HxWx3"),
    ({"image.front": np.zeros((96, 96, 4), np.uint8)}, r"shape \(96, 96, 4\)"),
    ({"image.front": np.zeros((96, 96, 3), np.float32)}, "dtype float32, expected uint8"),
    ({"image.front": [[0, 0, 0]]}, "must be a numpy array"),
    ({"image.front": None}, r"no 'image.front'; this VLA reads cameras \['front'\]"),
    ({"instruction": ""}, "instruction'] is empty"),
    ({"instruction": "   "}, "instruction'] is empty"),
    ({"instruction": 7}, "must be a str, got int"),
    ({"state": np.zeros(5, np.float32)}, r"state'\] has shape \(5,\), expected \(6,\)"),
    ({"state": np.array([0, 0, np.nan, 0, 0, 0], np.float32)}, r"not finite at indices \[2\]"),
    ({"state": None}, "no 'state'"),
    ({"timestamp": None}, "timestamp'] must be a finite number"),
])
def test_bad_input_is_named(policy, change, message):
    obs = _obs()
    obs.update(change)
    if change.get("image.front", 1) is None:
        del obs["image.front"]
    with pytest.raises(PolicyInputError, match=message):
        policy.act(obs)


def test_a_literal_image_token_in_the_instruction_stays_text(policy):
    ids = policy.prompt("pick <image> up")
    assert (ids == policy.config.vlm_config.image_token_id).sum() == policy.config.image_tokens_per_camera
    policy.act(_obs(instruction="pick <image> up"))


def test_any_frame_size_is_resized_and_cameras_are_read_by_name():
    p = VLAPolicy(tiny_vla(state_dim=2, action_dim=2, chunk_size=3, camera_names=["top", "wrist"]))
    rng = np.random.default_rng(0)
    obs = {"state": np.zeros(2, np.float32), "instruction": "stack the cubes", "timestamp": 0.0,
           "image.top": rng.integers(0, 256, (480, 640, 3), dtype=np.uint8),
           "image.wrist": rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)[:, ::-1]}  # non-contiguous
    assert p.act(obs).actions.shape == (3, 2)
    assert p.images([obs["image.top"], obs["image.wrist"]]).shape == (1, 2, 3, 96, 96)
    del obs["image.wrist"]
    with pytest.raises(PolicyInputError, match=r"no 'image\.wrist'; this VLA reads cameras \['top', 'wr"):
        p.act(obs)


@pytest.mark.parametrize("field, value, message", [
    ("state_dim", 0, "state_dim must be a positive int, got 0"),
    ("chunk_size", 2.5, "chunk_size must be a positive int, got 2.5"),
    ("action_low", [1, 2], "action_low must be a number or a list of 7 finite numbers"),
    ("action_high", -2.0, r"action_low\[0\] / action_high\[0\] must satisfy low < high"),
    ("image_size", 100, "image_size must be a multiple of patch_size"),
    ("camera_names", ["a.b"], "camera_names must be a non-empty list"),
    ("pooling", "max", "pooling must be one of"),
    ("period_s", 0, "period_s must be a finite number > 0"),
    ("image_std", [0.5, 0, 0.5], "image_std must be > 0"),
])
def test_config_errors_name_field_and_value(field, value, message):
    with pytest.raises(VLAConfigError, match=message):
        VLAConfig(**{field: value})


def test_last_token_pooling_and_unfreezing():
    model = tiny_vla(state_dim=2, action_dim=2, chunk_size=2, pooling="last")
    model.set_backbone_frozen(False)
    assert not model.backbone_frozen and model.config.freeze_backbone is False
    chunk = VLAPolicy(model).act({"state": np.zeros(2, np.float32), "instruction": "go home",
                                  "image.front": np.zeros((96, 96, 3), np.uint8), "timestamp": 1.0})
    assert chunk.features.shape == (130,)
