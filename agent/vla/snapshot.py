"""What a VLA residual actor needs to act as it did, saved beside it: ``actors/<id>/policy/``.

A rill checkpoint (safetensors + JSON, written atomically, checksummed: ``learners.checkpoint``)
holding the residual actor's weights (``actor.*``, the learner's newest the actor had), the running
standardization of the VLA's features (``features.mean`` / ``features.m2`` and their count), the
reward scaler's statistics, the settings that built the policy (the VLA and the sha256 of its
weights, scales, hidden sizes), and the actor's tick and episode counts (``progress``), which a
restarted actor continues from.

The actor writes it at episode ends (at most every ``save_every_s``) and when it closes, and reads
it back when it restarts, so the features a restarted actor sends are standardized as before (the
learner's heads were trained on that scale). ``load_residual_policy`` rebuilds the acting policy
from it, frozen, for evaluation (``bench.vla --run``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agent.vla.features import NormalizedFeatures
from agent.vla.inputs import ResidualInputs
from learners.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from policies.streamx.normalization import RewardScaler
from policies.vla.residual import ResidualPolicy, ResidualWeightsError

POLICY_DIR = "policy"
PROGRESS_KEYS = ("ticks", "episode")


def save_actor_policy(path: Path, policy: ResidualPolicy, features: NormalizedFeatures,
                      scaler: RewardScaler, settings: dict[str, Any],
                      progress: dict[str, int] | None = None) -> Path:
    """Write the acting state of a VLA residual actor to the checkpoint directory ``path``."""
    return save_checkpoint(path, *capture_actor_policy(policy, features, scaler, settings, progress))


def capture_actor_policy(policy: ResidualPolicy, features: NormalizedFeatures, scaler: RewardScaler,
                         settings: dict[str, Any], progress: dict[str, int] | None = None,
                         ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The acting state as copies (tensors, JSON state): cheap to take on the control thread, so
    the writing (``save_checkpoint``, with its fsyncs) can happen on another. ``progress``: the
    actor's counters (``ticks``, ``episode``), which a restarted actor continues from."""
    stats = features.state_dict()
    reward = scaler.state_dict()
    tensors = {**policy.state_dict(),
               "features.mean": torch.from_numpy(np.asarray(stats["mean"], np.float64)),
               "features.m2": torch.from_numpy(np.asarray(stats["m2"], np.float64))}
    state = {"settings": settings, "weights_version": policy.version, "features_count": int(stats["count"]),
             "reward": {"trace": float(reward["trace"]), "count": int(reward["count"]),
                        "mean": float(reward["mean"]), "m2": float(reward["m2"])},
             "progress": {k: int(v) for k, v in (progress or {}).items()},
             "saved_at": time.time()}
    return tensors, state


def restore_actor_policy(path: Path, policy: ResidualPolicy, features: NormalizedFeatures,
                         scaler: RewardScaler, vla_path: str | None = None) -> dict[str, Any]:
    """Load what ``save_actor_policy`` wrote into the given parts, all or nothing. ``vla_path``: the
    saved VLA this actor runs (None: an untrained tiny one), checked against the one the policy saved.

    ``CheckpointError`` names a damaged or mismatched file; the parts are untouched then."""
    tensors, state = load_checkpoint(path)
    _check_inputs(path, state, features.inputs)
    if vla_path:
        _check_vla(path, state["settings"], vla_path)
    _apply(path, tensors, state, policy, features, scaler)
    return state


def _check_inputs(path: Path, state: Any, inputs: ResidualInputs) -> None:
    """Refuse a policy saved for other residual inputs, or with another locator's weights: its
    statistics would standardize inputs they were never taken from."""
    settings = state.get("settings") if isinstance(state, dict) else None
    if not isinstance(settings, dict):
        raise CheckpointError(f"{path}: no settings saved with the policy")
    try:
        saved = ResidualInputs.from_saved(settings)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: saved residual inputs unreadable ({e})") from None
    if not saved.same_as(inputs):
        raise CheckpointError(f"{path}: saved for other residual inputs ({saved.describe()}) than this "
                              f"actor's ({inputs.describe()})")
    if inputs.locator:
        _check_locator(path, settings, inputs.locator)


def _check_locator(path: Path, settings: dict[str, Any], locator: str) -> None:
    from policies.vla.locator import weights_digest

    _check_weights(path, settings.get("locator_sha256"), "locator", locator, weights_digest)


def _check_vla(path: Path, settings: dict[str, Any], vla: str) -> None:
    from policies.vla.build import vla_digest

    _check_weights(path, settings.get("vla_sha256"), "VLA", vla, vla_digest)


def _check_weights(path: Path, saved: str | None, what: str, where: str, digest_of) -> None:
    """Refuse the ``what`` (VLA, locator) at ``where`` unless ``digest_of(where)``, the sha256 of
    its weights, is the ``saved`` one the policy at ``path`` learned with: the residual heads and
    feature statistics were fitted to its outputs. Policies saved before the digest was recorded
    (``saved`` None) are taken as they are."""
    if not saved:
        return
    try:
        now = digest_of(where)
    except (OSError, ValueError) as e:  # ValueError: VLACheckpointError, a directory that is no VLA
        raise CheckpointError(f"{path}: the {what} {where} cannot be read ({e})") from None
    if now != saved:
        raise CheckpointError(f"{path}: saved with another {what} than {where}: it is not the one this "
                              "policy was trained with (its weights changed since: retrained or replaced?)")


def _apply(path: Path, tensors: dict[str, torch.Tensor], state: dict[str, Any], policy: ResidualPolicy,
           features: NormalizedFeatures, scaler: RewardScaler) -> None:
    # Every entry is read and checked before anything is loaded; the residual weights (checked by
    # load_state_dict itself, all or nothing) go first, the statistics cannot fail after them.
    try:
        tensors = dict(tensors)
        mean, m2 = tensors.pop("features.mean"), tensors.pop("features.m2")
        if tuple(mean.shape) != (features.normalized_dim,) or tuple(m2.shape) != (features.normalized_dim,):
            raise CheckpointError(f"{path}: feature statistics of shape {tuple(mean.shape)}; this actor's "
                                  f"residual sees ({features.normalized_dim},): {features.inputs.describe()} "
                                  f"(the VLA gives {features.feature_dim} features)")
        feature_state = {"count": int(state["features_count"]), "mean": mean.numpy(), "m2": m2.numpy()}
        reward = state["reward"]
        reward_state = {"trace": float(reward["trace"]), "count": int(reward["count"]),
                        "mean": np.float64(reward["mean"]), "m2": np.float64(reward["m2"])}
        version = int(state["weights_version"])
        state["progress"] = _progress(path, state.get("progress", {}))
        policy.load_state_dict(tensors, version=version)
    except ResidualWeightsError as e:
        raise CheckpointError(f"{path}: not this VLA actor's policy ({e})") from None
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: not a VLA actor's policy (entry {type(e).__name__}: {e})") from None
    features.load_state_dict(feature_state)
    scaler.load_state_dict(reward_state)


def _progress(path: Path, progress: Any) -> dict[str, int]:
    """The saved counters, checked: a dict of non-negative integers (none in files written before
    they were kept)."""
    if not isinstance(progress, dict) or not all(
            k in PROGRESS_KEYS and type(v) is int and v >= 0 for k, v in progress.items()):
        raise CheckpointError(f"{path}: progress {progress!r} is not a set of non-negative counters "
                              f"among {PROGRESS_KEYS}")
    return dict(progress)


def load_residual_policy(path: Path, deterministic: bool = True) -> ResidualPolicy:
    """The VLA plus residual heads an actor saved at ``path`` (``actors/<id>/policy``), frozen:
    its feature statistics no longer move, and with ``deterministic`` the residual is its mean.
    ``CheckpointError`` names a damaged file or settings that cannot build the policy."""
    from policies.vla import VLAPolicy, load_vla

    tensors, state = load_checkpoint(path)
    settings = state.get("settings") if isinstance(state, dict) else None
    if not isinstance(settings, dict) or not settings.get("vla_path"):
        raise CheckpointError(f"{path}: no settings naming a saved VLA (an untrained tiny VLA's run "
                              "cannot be rebuilt for evaluation)")
    _check_vla(path, settings, settings["vla_path"])
    vla = VLAPolicy(load_vla(settings["vla_path"]))
    try:
        inputs = ResidualInputs.from_saved(settings)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: settings cannot build the policy ({type(e).__name__}: {e})") from None
    locator = None
    if inputs.locator:
        from policies.vla.locator import LocatorError, load_locator

        try:
            locator = load_locator(inputs.locator)
        except LocatorError as e:
            raise CheckpointError(f"{path}: the policy's locator cannot be loaded: {e}") from None
        _check_locator(path, settings, inputs.locator)
    try:
        # (runs saved before the time feature have no time_limit: no time input)
        features = NormalizedFeatures(vla, vla.feature_dim, float(settings["base_scale"]), frozen=True,
                                      time_limit=settings.get("time_limit"), inputs=inputs, locator=locator)
        policy = ResidualPolicy(features, features.out_dim, scale=settings["residual_scale"],
                                low=vla.action_low, high=vla.action_high, hidden=settings["hidden"],
                                deterministic=deterministic)
        scaler = RewardScaler(float(settings["gamma"]))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: settings cannot build the policy ({type(e).__name__}: {e})") from None
    _apply(path, tensors, state, policy, features, scaler)
    return policy
