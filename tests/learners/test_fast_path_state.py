"""The fast path's state stays one with its torch modules: copies, pickles, fallbacks, overshoots."""

from __future__ import annotations

import copy
import pickle
import sys

import numpy as np
import pytest
import torch

from learners.streamx import algorithm_config, build_algorithm
from learners.transition import Transition

ALGOS = [("stream-ac", {"action_dim": 3}), ("stream-ac", {"n_actions": 3}),
         ("stream-q", {"n_actions": 3}), ("stream-sarsa", {"n_actions": 3}), ("stream-td", {})]


def _feed(algo, rng, steps):
    s = rng.standard_normal(5).astype(np.float32)
    for _ in range(steps):
        s2 = rng.standard_normal(5).astype(np.float32)
        a = 0 if algo.config.name == "stream-td" else algo.act(s).action
        algo.update(Transition(s, a, float(rng.standard_normal()), s2, False, False, next_action=1))
        s = s2


@pytest.mark.parametrize(("name", "layout"), ALGOS)
@pytest.mark.parametrize("clone", [copy.deepcopy, lambda a: pickle.loads(pickle.dumps(a))],
                         ids=["deepcopy", "pickle"])
def test_copies_keep_weights_and_buffers_as_one(name, layout, clone):
    rng = np.random.default_rng(0)
    original = build_algorithm(name, 5, seed=1, fast=True, **layout)
    _feed(original, rng, 5)
    twin = clone(original)
    _feed(original, np.random.default_rng(1), 5)
    _feed(twin, np.random.default_rng(1), 5)
    a, b = original.state_dict(), twin.state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize(("name", "layout"), ALGOS)
def test_overshoot_monitor_matches_autograd(name, layout):
    config = algorithm_config(name, {"count_overshoots": True, "alpha": 3.0})
    slow = build_algorithm(name, 5, config=config, seed=2, **layout)
    fast = build_algorithm(name, 5, config=config, seed=2, fast=True, **layout)
    _feed(slow, np.random.default_rng(3), 200)
    _feed(fast, np.random.default_rng(3), 200)
    assert abs(slow.overshoots - fast.overshoots) <= 1  # a sign flip of a near-zero delta may differ


def test_without_numba_the_autograd_path_is_built(monkeypatch, caplog):
    import learners.streamx

    monkeypatch.setitem(sys.modules, "learners.streamx.fast", None)  # import now raises ImportError
    monkeypatch.delattr(learners.streamx, "fast", raising=False)
    algo = build_algorithm("stream-ac", 5, action_dim=2, fast=True)
    assert algo.update_path == "autograd"
    assert "fast stream-x path unavailable" in caplog.text
