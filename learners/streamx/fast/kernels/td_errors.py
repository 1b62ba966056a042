"""The TD errors on flat buffers: of a value network (AC's critic, TD) and of a Q-network.

Each runs the bootstrap pass first and the pass on ``s`` last, so that ``acts`` ends up holding
what the backward of the differentiated prediction needs. The overshoot monitor calls them again
after the step.
"""

from __future__ import annotations

import numpy as np

from learners.streamx.fast.kernels.jit import exact_jit, fast_jit
from learners.streamx.fast.kernels.mlp import mlp_forward


@exact_jit
def td_error(reward, gamma, bootstrap, done, prediction):
    """``r + gamma bootstrap (1 - done) - prediction`` in float64, in the autograd path's order."""
    return reward + gamma * bootstrap * (0.0 if done else 1.0) - prediction


@fast_jit
def value_delta(p, layout, acts, s, s_next, reward, gamma, done):
    """``(V(s), delta)``: the TD error of a value network; ``acts`` ends up holding ``V(s)``'s pass."""
    v_next = np.float64(0.0)
    if not done:
        v_next = np.float64(mlp_forward(p, layout, s_next, acts)[0])
    v = np.float64(mlp_forward(p, layout, s, acts)[0])
    return v, td_error(reward, gamma, v_next, False, v)


@fast_jit
def q_delta(p, layout, acts, s, s_next, action, next_action, reward, gamma, done):
    """``(delta, greedy action at s)``; ``next_action < 0`` bootstraps from ``max_a' Q(s', a')``.

    ``acts`` ends up holding the pass on ``s``.
    """
    bootstrap = np.float64(0.0)
    if not done:
        q_next = mlp_forward(p, layout, s_next, acts)
        if next_action < 0:
            best = q_next[0]
            for k in range(q_next.shape[0]):
                best = max(best, q_next[k])
            bootstrap = np.float64(best)
        else:
            bootstrap = np.float64(q_next[next_action])
    q = mlp_forward(p, layout, s, acts)
    greedy = 0
    for k in range(q.shape[0]):
        if q[k] > q[greedy]:
            greedy = k
    return td_error(reward, gamma, bootstrap, False, np.float64(q[action])), greedy
