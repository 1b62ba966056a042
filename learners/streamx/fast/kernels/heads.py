"""The output heads on flat buffers: acting, log-probabilities and the policy-loss gradient.

Gaussian (continuous): the head outputs ``mu`` then the pre-softplus ``sigma``; diagonal, no tanh,
no minimum sigma. Categorical (discrete): the head outputs logits. Q and value heads need nothing
beyond the forward pass except the greedy choice.
"""

from __future__ import annotations

import math

import numpy as np

from learners.streamx.fast.kernels.jit import exact_jit, fast_jit
from learners.streamx.fast.kernels.mlp import mlp_forward

SOFTPLUS_THRESHOLD = np.float32(20.0)  # torch's softplus returns x itself above this
HALF_LOG_2PI = np.float32(0.5 * math.log(2.0 * math.pi))


@fast_jit
def _softplus(x):
    return x if x > SOFTPLUS_THRESHOLD else np.float32(np.log1p(np.exp(x)))


@exact_jit
def _sign(x):
    return 1.0 if x > 0 else (-1.0 if x < 0 else 0.0)


# -- acting ------------------------------------------------------------------------------------
@fast_jit
def gaussian_act(p, layout, x, acts, noise, deterministic, action):
    """Sample ``mu + sigma noise`` (or ``mu``) into ``action``; returns the summed ``log pi``."""
    out = mlp_forward(p, layout, x, acts)
    n = action.shape[0]
    logp = np.float32(0.0)
    for k in range(n):
        mu = out[k]
        sigma = _softplus(out[n + k])
        a = mu if deterministic else mu + sigma * noise[k]
        action[k] = a
        zk = (a - mu) / sigma
        logp += np.float32(-0.5) * zk * zk - np.log(sigma) - HALF_LOG_2PI
    return logp


@fast_jit
def gaussian_log_prob(p, layout, x, acts, action):
    """The summed ``log pi(action | x)`` of the Gaussian policy (for importance weights)."""
    out = mlp_forward(p, layout, x, acts)
    n = action.shape[0]
    logp = np.float32(0.0)
    for k in range(n):
        sigma = _softplus(out[n + k])
        zk = (action[k] - out[k]) / sigma
        logp += np.float32(-0.5) * zk * zk - np.log(sigma) - HALF_LOG_2PI
    return logp


@fast_jit
def categorical_log_probs(p, layout, x, acts, logp):
    """``log_softmax`` of the logits into ``logp``; returns the first argmax."""
    out = mlp_forward(p, layout, x, acts)
    best = 0
    for k in range(out.shape[0]):
        if out[k] > out[best]:
            best = k
    m = out[best]
    total = np.float32(0.0)
    for k in range(out.shape[0]):
        total += np.exp(out[k] - m)
    lse = m + np.log(total)
    for k in range(out.shape[0]):
        logp[k] = out[k] - lse
    return best


@fast_jit
def greedy_action(p, layout, x, acts):
    """The first argmax of the head's outputs (Q-values or logits) at ``x``."""
    out = mlp_forward(p, layout, x, acts)
    best = 0
    for k in range(out.shape[0]):
        if out[k] > out[best]:
            best = k
    return best


# -- d(policy loss)/d(head outputs) --------------------------------------------------------------
@fast_jit
def gaussian_policy_grad(out, action, entropy_coeff, delta, w, grad):
    """d/d(mu, pre_sigma) of ``-w sum log pi(a) - c sign(delta) H`` (``w``: importance weight)."""
    n = action.shape[0]
    c = np.float32(entropy_coeff * _sign(delta))
    w = np.float32(w)
    for k in range(n):
        mu = out[k]
        pre = out[n + k]
        sigma = _softplus(pre)
        zk = (action[k] - mu) / sigma
        grad[k] = -w * zk / sigma
        g_sigma = (w * (np.float32(1.0) - zk * zk) - c) / sigma
        if pre > SOFTPLUS_THRESHOLD:
            grad[n + k] = g_sigma
        else:
            e = np.exp(pre)
            grad[n + k] = g_sigma * e / (e + np.float32(1.0))


@fast_jit
def categorical_policy_grad(out, a, entropy_coeff, delta, w, grad):
    """d/d(logits) of ``-w log pi(a) - c sign(delta) H``: ``w (p - 1_a) + c sign p (log p + H)``."""
    w = np.float32(w)
    n = out.shape[0]
    m = out[0]
    for k in range(n):
        m = max(m, out[k])
    total = np.float32(0.0)
    for k in range(n):
        total += np.exp(out[k] - m)
    lse = m + np.log(total)
    entropy = np.float32(0.0)
    for k in range(n):
        lp = out[k] - lse
        entropy -= np.exp(lp) * lp
    c = np.float32(entropy_coeff * _sign(delta))
    for k in range(n):
        lp = out[k] - lse
        pk = np.exp(lp)
        grad[k] = w * (pk - (np.float32(1.0) if k == a else np.float32(0.0))) + c * pk * (lp + entropy)
