"""The ObGD step on flat buffers (docs/streamx.md, pieces 1 and 2): bound, apply, reset.

The traces and their L1 norm arrive already folded by ``mlp_backward_traces``; what is left is
``alpha_eff = alpha / max(alpha kappa max(|delta|, 1) |z|_1, 1)`` and ``p <- p - alpha_eff delta z``
(or, for adaptive ObGD, the same with ``z`` rescaled by its running second moment).
"""

from __future__ import annotations

import numpy as np

from learners.streamx.fast.kernels.jit import exact_jit, fast_jit

_BLOCK = 256


@exact_jit
def bounded_step_size(alpha, kappa, delta, z_norm):
    """``alpha / max(alpha kappa max(|delta|, 1) |z|_1, 1)``, in float64 like the autograd path."""
    bound = alpha * kappa * max(abs(delta), 1.0) * z_norm
    return alpha / max(bound, 1.0)


@fast_jit
def apply_step(p, z, coeff, reset):
    """``p <- p + coeff z`` (``coeff = -alpha_eff delta``); then zero the traces if ``reset``."""
    c = np.float32(coeff)
    for i in range(p.shape[0]):
        p[i] += c * z[i]
    if reset:
        z[:] = 0.0


@fast_jit
def adaptive_directions(z, v, delta, beta2, correction, eps, out):
    """Adaptive ObGD: ``v <- b2 v + (1-b2)(delta z)^2``; ``out <- z / sqrt(v/(1-b2^t) + eps)``; |out|_1."""
    d = np.float32(delta)
    b2 = np.float32(beta2)
    one_minus = np.float32(1.0 - beta2)
    corr = np.float32(correction)
    e = np.float32(eps)
    norm = 0.0
    n = z.shape[0]
    for start in range(0, n, _BLOCK):  # float32 sums within a block, float64 across blocks
        part = np.float32(0.0)
        for i in range(start, min(start + _BLOCK, n)):
            s = z[i] * d
            vi = v[i] * b2 + one_minus * s * s
            v[i] = vi
            o = z[i] / np.sqrt(vi / corr + e)
            out[i] = o
            part += abs(o)
        norm += part
    return norm


@fast_jit
def obgd_finish(p, z, v, direction, z_norm, delta, alpha, kappa, beta2, t, reset):
    """The bounded step for one network (plain ObGD when ``v`` is empty); returns ``alpha_eff``."""
    if v.shape[0] > 0:
        z_norm = adaptive_directions(z, v, delta, beta2, 1.0 - beta2 ** t, 1e-8, direction)
        step = bounded_step_size(alpha, kappa, delta, z_norm)
        apply_step(p, direction, -step * delta, False)
        if reset:
            z[:] = 0.0
        return step
    step = bounded_step_size(alpha, kappa, delta, z_norm)
    apply_step(p, z, -step * delta, reset)
    return step
