"""A VLA residual actor's acting state (``actors/<id>/policy``): saved and read back exactly, a
damaged or mismatched file refused by name with nothing half-loaded, and the saved policy rebuilt
for evaluation acts as the actor would have with the same weights and statistics."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import pytest
import torch

from agent.vla.features import NormalizedFeatures
from agent.vla.snapshot import load_residual_policy, restore_actor_policy, save_actor_policy
from hal.config import RobotConfig
from hal.registry import make_robot
from learners.checkpoint import CheckpointCorruptError, CheckpointError
from policies.streamx.normalization import RewardScaler
from policies.vla import ResidualPolicy, VLAPolicy, load_vla
from tests.ports import free_port

VLA = "pretrained:tabletop-reach"
SETTINGS = {"vla_path": VLA, "residual_scale": 0.2, "base_scale": 1.0, "hidden": [128, 128], "gamma": 0.99}
ARM = RobotConfig("arm", "sim-tabletop", {"task": "reach", "state": "proprio", "cameras": ["front"],
                                          "colors": ["red", "blue", "yellow"], "max_delta": 1.0, "seed": 5})


def _parts(seed: int = 0):
    vla = VLAPolicy(load_vla(VLA))
    features = NormalizedFeatures(vla, vla.feature_dim, 1.0)
    policy = ResidualPolicy(features, vla.feature_dim, scale=0.2, seed=seed)
    return policy, features, RewardScaler(0.99)


@pytest.fixture(scope="module")
def observations():
    import sim.robots  # noqa: F401  registers sim-tabletop

    torch.set_num_threads(1)
    out = []
    with make_robot(ARM) as robot:
        robot.reset()
        for t in range(12):
            out.append(robot.observe())
            robot.act(np.array([0.5, 0.3 if t % 2 else -0.3], np.float32))
    return out


def _trained(observations):
    """Parts as an actor would hold them after a while: statistics moved, learner weights applied."""
    policy, features, scaler = _parts()
    for obs in observations[:10]:
        policy.act(obs)
        scaler(float(obs["reward"]), False)
    rng = torch.Generator().manual_seed(3)
    weights = {k: torch.randn(v.shape, generator=rng) * 0.1 for k, v in policy.state_dict().items()}
    policy.load_state_dict(weights, version=41)
    return policy, features, scaler


def test_the_acting_state_reads_back_exactly(tmp_path, observations):
    policy, features, scaler = _trained(observations)
    save_actor_policy(tmp_path / "policy", policy, features, scaler, SETTINGS)
    policy2, features2, scaler2 = _parts(seed=9)
    state = restore_actor_policy(tmp_path / "policy", policy2, features2, scaler2)
    assert state["weights_version"] == policy2.version == 41
    for k, v in policy.state_dict().items():
        assert torch.equal(v, policy2.state_dict()[k]), k
    a, b = features.state_dict(), features2.state_dict()
    assert a["count"] == b["count"] == 10
    assert np.array_equal(a["mean"], b["mean"]) and np.array_equal(a["m2"], b["m2"])
    assert scaler2.state_dict()["trace"] == scaler.state_dict()["trace"] != 0.0
    assert scaler2(1.0, False, update=False) == scaler(1.0, False, update=False)


def test_the_rebuilt_policy_acts_as_the_actor_would(tmp_path, observations):
    policy, features, scaler = _trained(observations)
    save_actor_policy(tmp_path / "policy", policy, features, scaler, SETTINGS)
    rebuilt = load_residual_policy(tmp_path / "policy")
    assert rebuilt.version == 41 and rebuilt.deterministic
    policy.deterministic, features.frozen = True, True
    for obs in observations[10:]:
        ours, theirs = policy.act(obs), rebuilt.act(obs)
        np.testing.assert_allclose(theirs.actions, ours.actions, atol=1e-6)
        np.testing.assert_array_equal(theirs.extras["residual"], ours.extras["residual"])
        # The residual moves the VLA's own chunk: the actions are not the base's alone.
        assert not np.allclose(theirs.actions, theirs.extras["base_actions"])
    assert rebuilt.base.state_dict()["count"] == 10  # evaluation never moves the statistics


def test_a_damaged_file_is_refused_and_nothing_is_half_loaded(tmp_path, observations):
    policy, features, scaler = _trained(observations)
    path = save_actor_policy(tmp_path / "policy", policy, features, scaler, SETTINGS)
    blob = bytearray((path / "tensors.safetensors").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (path / "tensors.safetensors").write_bytes(bytes(blob))
    fresh, fresh_features, fresh_scaler = _parts(seed=9)
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    with pytest.raises(CheckpointCorruptError, match=r"tensors.safetensors: checksum mismatch"):
        restore_actor_policy(path, fresh, fresh_features, fresh_scaler)
    assert fresh.version == 0 and fresh_features.state_dict()["count"] == 0
    assert all(torch.equal(v, before[k]) for k, v in fresh.state_dict().items())


def test_a_policy_of_another_shape_is_refused_by_name(tmp_path, observations):
    _, features, scaler = _trained(observations)
    narrow = ResidualPolicy(features, features.feature_dim, scale=0.2, hidden=(32, 32))
    save_actor_policy(tmp_path / "policy", narrow, features, scaler, SETTINGS)
    fresh, fresh_features, fresh_scaler = _parts(seed=9)
    with pytest.raises(CheckpointError, match=r"not this VLA actor's policy \(actor weights: 'actor\..*' "
                                              r"has shape \(32,\), expected \(128,\)"):
        restore_actor_policy(tmp_path / "policy", fresh, fresh_features, fresh_scaler)
    assert fresh.version == 0 and fresh_features.state_dict()["count"] == 0


def test_a_run_of_the_untrained_tiny_vla_cannot_be_rebuilt(tmp_path, observations):
    policy, features, scaler = _trained(observations)
    save_actor_policy(tmp_path / "policy", policy, features, scaler, {**SETTINGS, "vla_path": None})
    with pytest.raises(CheckpointError, match="no settings naming a saved VLA"):
        load_residual_policy(tmp_path / "policy")


def test_a_vla_retrained_in_the_same_place_is_refused_by_name(tmp_path, observations):
    """The policy records the sha256 of the VLA's weights: residual heads and feature statistics
    fitted to one VLA's features are refused over another's, for a restarted actor and an
    evaluation alike, even when the directory is the same."""
    import shutil

    from policies.vla.build import resolve_vla_path, vla_digest

    vla_dir = tmp_path / "vla"
    shutil.copytree(resolve_vla_path(VLA), vla_dir)
    assert vla_digest(vla_dir) == vla_digest(VLA)
    policy, features, scaler = _trained(observations)
    settings = {**SETTINGS, "vla_path": str(vla_dir), "vla_sha256": vla_digest(vla_dir)}
    save_actor_policy(tmp_path / "policy", policy, features, scaler, settings)
    assert load_residual_policy(tmp_path / "policy").version == 41  # the same VLA: accepted
    model = load_vla(vla_dir)
    with torch.no_grad():
        next(model.parameters()).add_(0.01)  # "retrained": other weights, same shapes, same place
    model.save_pretrained(vla_dir)
    fresh, fresh_features, fresh_scaler = _parts(seed=9)
    with pytest.raises(CheckpointError,
                       match=r"saved with another VLA than .*vla: it is not the one this policy was trained"):
        restore_actor_policy(tmp_path / "policy", fresh, fresh_features, fresh_scaler, str(vla_dir))
    assert fresh.version == 0 and fresh_features.state_dict()["count"] == 0
    with pytest.raises(CheckpointError, match="saved with another VLA than"):
        load_residual_policy(tmp_path / "policy")
    shutil.rmtree(vla_dir)
    with pytest.raises(CheckpointError, match=r"the VLA .*vla cannot be read"):
        load_residual_policy(tmp_path / "policy")


def test_settings_that_cannot_build_the_policy_are_refused_by_name(tmp_path, observations):
    policy, features, scaler = _trained(observations)
    broken = {k: v for k, v in SETTINGS.items() if k != "gamma"}
    save_actor_policy(tmp_path / "policy", policy, features, scaler, broken)
    with pytest.raises(CheckpointError, match=r"settings cannot build the policy \(KeyError: 'gamma'\)"):
        load_residual_policy(tmp_path / "policy")


def test_a_restarted_actor_carries_on_with_the_statistics_it_had(tmp_path):
    """A VLA actor saves its acting state as it goes (at episode ends, written off the control
    thread) and when it closes; a new actor on the same directory starts from it. No learner is
    listening: the actor drives on and spools regardless."""

    import sim.robots  # noqa: F401  registers sim-tabletop
    from agent.vla.actor import VLAActor, VLAActorConfig

    port = free_port()  # nothing listens there once closed
    config = VLAActorConfig(learner=f"tcp://127.0.0.1:{port}", actor_id="arm", run_dir=tmp_path, vla_path=VLA,
                            chunk_size=4, residual_scale=0.35, pace="fast", save_every_s=0.0,
                            durability="os-buffered")
    with make_robot(ARM) as robot:
        first = VLAActor(config, robot)
        first.run(ticks=300)
        assert first.episode >= 2 and (tmp_path / "actors" / "arm" / "policy").is_dir()
        first.close()
        counted = first.features.state_dict()["count"]
        assert 300 // 4 <= counted <= 300 // 4 + first.episode  # one feature vector per chunk planned
        second = VLAActor(config, robot)
        try:
            restored = second.features.state_dict()
            assert restored["count"] == counted
            assert np.array_equal(restored["mean"], first.features.state_dict()["mean"])
            assert second.builder.scaler.state_dict()["trace"] == first.builder.scaler.state_dict()["trace"]
        finally:
            second.close()


def test_a_restarted_actor_counts_on_from_its_saved_ticks_and_episodes(tmp_path):
    """A tick budget spans restarts: the saved state carries the actor's tick and episode counts
    (as of the last episode end, or the close), and ``run(ticks)`` takes only what is left."""

    import sim.robots  # noqa: F401  registers sim-tabletop
    from agent.actor.episodes import read_episodes
    from agent.vla.actor import VLAActor, VLAActorConfig
    from learners.checkpoint import load_checkpoint

    FIRST = 320  # ticks of the first run: on these seeded scenes it stops inside an episode
    port = free_port()
    config = VLAActorConfig(learner=f"tcp://127.0.0.1:{port}", actor_id="arm", run_dir=tmp_path, vla_path=VLA,
                            chunk_size=4, residual_scale=0.35, pace="fast", save_every_s=0.0,
                            durability="os-buffered")
    policy_dir = tmp_path / "actors" / "arm" / "policy"
    log = tmp_path / "actors" / "arm" / "episodes.csv"
    with make_robot(ARM) as robot:
        first = VLAActor(config, robot)
        first.run(ticks=FIRST)
        first._writer.join()  # the save of the last episode end, before the close writes its own
        ended = read_episodes(log)
        assert len(ended) == first.episode >= 2
        _, state = load_checkpoint(policy_dir)
        assert state["progress"] == {"ticks": ended[-1].step, "episode": ended[-1].episode}
        first.close()
        _, state = load_checkpoint(policy_dir)
        assert state["progress"] == {"ticks": FIRST, "episode": first.episode}

        second = VLAActor(config, robot)
        try:
            assert second.ticks == FIRST
            # The stop cut an episode short whose transitions went out numbered first.episode: the
            # next episode takes the number after it.
            assert first.seq > ended[-1].seq and second.episode == first.episode + 1
            summary = second.run(ticks=500)
            assert summary["ticks"] == 500 and summary["loop"]["ticks"] == 500 - FIRST
        finally:
            second.close()
        third = VLAActor(config, robot)
        try:
            summary = third.run(ticks=500)
            assert summary["ticks"] == 500 and summary["loop"]["ticks"] == 0  # the budget was spent
        finally:
            third.close()
    episodes = [e.episode for e in read_episodes(log)]
    assert episodes[:len(ended)] == list(range(1, len(ended) + 1)) and len(episodes) > len(ended)
    assert episodes == sorted(set(episodes)) and episodes[len(ended)] == len(ended) + 2  # numbered on


def test_saved_counters_that_are_not_counters_are_refused_by_name(tmp_path, observations):
    policy, features, scaler = _trained(observations)
    save_actor_policy(tmp_path / "policy", policy, features, scaler, SETTINGS, {"ticks": -3})
    fresh, fresh_features, fresh_scaler = _parts(seed=9)
    with pytest.raises(CheckpointError, match=r"progress \{'ticks': -3\} is not a set of non-negative"):
        restore_actor_policy(tmp_path / "policy", fresh, fresh_features, fresh_scaler)
    assert fresh.version == 0 and fresh_features.state_dict()["count"] == 0


def test_a_policy_saved_for_other_residual_inputs_is_refused_by_name(tmp_path, observations):
    """Statistics of other inputs (here: two entries of the state besides the features) would
    standardize numbers they were never taken from; the restart starts fresh instead."""
    from agent.vla.inputs import ResidualInputs

    policy, features, scaler = _trained(observations)
    other = {**SETTINGS, **ResidualInputs(state=(0, 1)).saved()}
    save_actor_policy(tmp_path / "policy", policy, features, scaler, other)
    fresh, fresh_features, fresh_scaler = _parts(seed=9)
    expected = (r"saved for other residual inputs \(VLA features yes, privileged \[\], state \[0, 1\], "
                r"locator none\) than this actor's "
                r"\(VLA features yes, privileged \[\], state \[\], locator none\)")
    with pytest.raises(CheckpointError, match=expected):
        restore_actor_policy(tmp_path / "policy", fresh, fresh_features, fresh_scaler)
    assert fresh.version == 0 and fresh_features.state_dict()["count"] == 0
