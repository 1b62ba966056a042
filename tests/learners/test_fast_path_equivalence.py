"""The compiled ("fast") stream-x path computes what the autograd path computes.

Both paths start from identical weights (same seed) and get the same transitions of a real stream:
the autograd learner drives a real gymnasium environment through the stream-x preprocessing, and
every transition it learns from is also fed to two fast learners:

* ``synced`` is reset to the autograd learner's exact state (``load_state_dict``) before every
  update, so comparing it after the update measures the error one update introduces;
* ``free`` is never reset, so comparing it measures how those errors accumulate (drift).

Tolerances (float32, norm-wise relative error over all parameters resp. all traces of a network):
one update <= 1e-6 for parameters (measured ~1e-8) and <= 1e-5 for traces (measured ~1e-6); drift
over the 2,000-step Hopper stream <= 1e-5 for parameters (measured ~3e-7) and <= 1e-4 for traces
(measured ~1e-5: a trace is a short sum, so its relative error follows that of recent gradients).

Why the paths differ at all, and why the drift stays bounded: both are float32, but they sum in
different orders (numba's vectorized dot products and L1 norm vs torch's kernels) and the fast
path differentiates analytically (e.g. LayerNorm's backward as ``rstd (g - mean g - xhat mean(g
xhat))``) where autograd chains elementary ops. Each op then differs by at most a few ulp (~1e-7
relative); cancellation (LayerNorm's backward, logits gradients that sum to zero) raises this to
~1e-6 in the traces. Traces forget at rate ``gamma lambda = 0.79``, so their errors do not pile up;
parameter errors accumulate like a random walk of per-step rounding (~sqrt(steps) x 1e-8 here).
What can break the bound is a discontinuity that a ulp-sized difference can cross: ``sign(delta)``
in the entropy term, LeakyReLU's kink at 0, the argmax that cuts Q(lambda)'s traces. Crossing one
gives that step an O(1) different gradient for one unit or one trace, after which the two runs are
two equally valid float32 realizations of the algorithm (the autograd path perturbed by single
ulps diverges from itself the same way). Hence tight drift bounds on the Hopper stream, where such
crossings did not occur, and short-horizon drift checks for the small classic-control networks.
The effective step size differs by up to ~6e-6: that is torch's float32 L1 norm of the traces
(accurate to ~6e-6 on a 16k-element trace), not the fast path's (float64 across rows, ~1e-9).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from learners.streamx import algorithm_config, build_algorithm
from learners.transition import Transition
from policies.streamx.normalization import StreamXPreprocessor
from sim.envs import action_layout, make_env, time_limit


def _network_vectors(algo) -> dict[str, torch.Tensor]:
    """Per network and kind (``actor`` / ``actor_opt`` ...): all its float tensors, concatenated."""
    groups: dict[str, list[torch.Tensor]] = {}
    for key, value in sorted(algo.state_dict().items()):
        if value.is_floating_point():
            groups.setdefault(key.split(".")[0], []).append(value.reshape(-1).double())
    return {name: torch.cat(parts) for name, parts in groups.items()}


def _relative_errors(fast, reference) -> dict[str, float]:
    ref = _network_vectors(reference)
    got = _network_vectors(fast)
    return {k: float((got[k] - v).norm() / max(float(v.norm()), 1e-30)) for k, v in ref.items()}


def _stream_compare(env_id: str, algo_name: str, steps: int, hyper: dict | None = None, seed: int = 0):
    """Drive ``env_id`` with the autograd learner; return the worst per-update errors and the drift."""
    torch.set_num_threads(1)
    env = make_env(env_id)
    layout = action_layout(env)
    continuous = "action_dim" in layout
    pre = StreamXPreprocessor(int(np.prod(env.observation_space.shape)), 0.99,
                              time_limit(env) if continuous else None)
    config = algorithm_config(algo_name, hyper or {})
    reference = build_algorithm(algo_name, pre.out_dim, config=config, seed=seed, **layout)
    synced = build_algorithm(algo_name, pre.out_dim, config=config, seed=seed, fast=True, **layout)
    free = build_algorithm(algo_name, pre.out_dim, config=config, seed=seed, fast=True, **layout)
    assert (reference.update_path, synced.update_path) == ("autograd", "fast")
    for key, value in reference.state_dict().items():  # identical start, identical layout
        assert torch.equal(value, free.state_dict()[key]), key

    worst = {"delta": 0.0, "step_size": 0.0, "action": 0.0}
    worst_update: dict[str, float] = {}
    drift: list[tuple[int, dict[str, float]]] = []
    raw, _ = env.reset(seed=seed)
    s = pre.reset(raw)
    pending = pending_free = None
    for step in range(1, steps + 1):
        if algo_name == "stream-td":
            chosen, env_action = None, env.action_space.sample()
        else:
            chosen = pending or reference.act(s)
            mine = pending_free if pending else free.act(s)
            if continuous:
                worst["action"] = max(worst["action"], float(np.abs(mine.action - chosen.action).max()))
                env_action = np.clip(chosen.action, env.action_space.low, env.action_space.high)
            else:
                env_action = chosen.action
        raw, reward, terminated, truncated, _ = env.step(env_action)
        s_next, scaled = pre.step(raw, reward, terminated, truncated)
        done = terminated or truncated
        pending = pending_free = None
        if reference.needs_next_action and not done:
            pending, pending_free = reference.act(s_next), free.act(s_next)
        t = Transition(s, 0 if chosen is None else chosen.action, scaled, s_next, terminated, truncated,
                       next_action=None if pending is None else pending.action)
        synced.load_state_dict(reference.state_dict())
        want, got = reference.update(t), synced.update(t)
        free.update(t)
        worst["delta"] = max(worst["delta"], abs(got.delta - want.delta) / max(1.0, abs(want.delta)))
        worst["step_size"] = max(worst["step_size"], abs(got.step_size - want.step_size) / want.step_size)
        for key, err in _relative_errors(synced, reference).items():
            worst_update[key] = max(worst_update.get(key, 0.0), err)
        if step % max(steps // 4, 1) == 0:
            drift.append((step, _relative_errors(free, reference)))
        if done:
            s = pre.reset(env.reset()[0])
        else:
            s = s_next
    env.close()
    return worst, worst_update, drift


def _check_update_errors(worst, worst_update, params_tol=1e-6, traces_tol=1e-5):
    assert worst["delta"] < 1e-5, worst
    # alpha_eff differs by up to ~6e-6 because torch's float32 L1 norm of a 16k-element trace is
    # off by that much; the fast path sums rows in float32 and rows in float64 (error ~1e-9).
    assert worst["step_size"] < 5e-5, worst
    for key, err in worst_update.items():
        tol = traces_tol if key.endswith("_opt") else params_tol
        assert err < tol, f"one update: {key} relative error {err:.2e} >= {tol:.0e}"


def test_stream_ac_hopper_matches_autograd_over_thousands_of_steps():
    worst, worst_update, drift = _stream_compare("Hopper-v5", "stream-ac", 2000)
    print(f"\nworst per update: {worst}; {({k: f'{v:.1e}' for k, v in worst_update.items()})}")
    print("drift:", [(s, {k: f"{v:.1e}" for k, v in e.items()}) for s, e in drift])
    _check_update_errors(worst, worst_update)
    assert worst["action"] < 1e-4, worst
    for step, errors in drift:
        for key, err in errors.items():
            tol = 1e-4 if key.endswith("_opt") else 1e-5
            assert err < tol, f"drift after {step} steps: {key} relative error {err:.2e} >= {tol:.0e}"


@pytest.mark.parametrize(("env_id", "algo", "steps", "hyper"), [
    ("Hopper-v5", "stream-ac", 400, {"adaptive": True}),
    ("Hopper-v5", "stream-td", 600, {}),
    ("CartPole-v1", "stream-ac", 600, {"hidden": [32, 32]}),
    ("CartPole-v1", "stream-q", 600, {"total_steps": 2000}),
    ("CartPole-v1", "stream-sarsa", 600, {"total_steps": 2000}),
])
def test_every_stream_x_algorithm_matches_autograd(env_id, algo, steps, hyper):
    worst, worst_update, drift = _stream_compare(env_id, algo, steps, hyper)
    print(f"\n{algo} {hyper}: worst per update {worst}; "
          f"{({k: f'{v:.1e}' for k, v in worst_update.items()})}; "
          f"drift {[(s, {k: f'{v:.1e}' for k, v in e.items()}) for s, e in drift]}")
    _check_update_errors(worst, worst_update)
    # Short horizon only: these small networks sit near discontinuities (LeakyReLU kinks, the
    # greedy argmax) often enough that longer runs become different float32 realizations.
    step, errors = drift[0]
    for key, err in errors.items():
        tol = 1e-3 if key.endswith("_opt") else 1e-4
        assert err < tol, f"drift after {step} steps: {key} relative error {err:.2e} >= {tol:.0e}"


def test_checkpoints_move_between_paths():
    """Same keys, shapes and values: a fast learner's state loads into an autograd one and back."""
    fast = build_algorithm("stream-ac", 12, action_dim=3, seed=4, fast=True)
    slow = build_algorithm("stream-ac", 12, action_dim=3, seed=5)
    rng = np.random.default_rng(0)
    for _ in range(20):
        s, s2 = rng.standard_normal(12).astype(np.float32), rng.standard_normal(12).astype(np.float32)
        fast.update(Transition(s, fast.act(s).action, 1.0, s2, False, False))
    state = fast.state_dict()
    slow.load_state_dict(state)
    assert {k: tuple(v.shape) for k, v in slow.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in state.items()}
    for key, value in slow.state_dict().items():
        assert torch.equal(value, state[key]), key
    again = build_algorithm("stream-ac", 12, action_dim=3, seed=6, fast=True)
    again.load_state_dict(slow.state_dict())
    assert again.actor_flat.is_shared() and again.critic_flat.is_shared()
    s = rng.standard_normal(12).astype(np.float32)
    a1, a2 = fast.act(s), again.act(s)  # same weights and the same generator state
    np.testing.assert_array_equal(a1.action, a2.action)
