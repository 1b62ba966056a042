"""The stock MLP on flat buffers: forward, and the analytic backward folded into the traces.

A hidden layer is ``Linear -> LayerNorm(no affine, eps 1e-5) -> LeakyReLU(0.01)``; the head is a
plain Linear. ``acts`` keeps what the backward needs per hidden layer: the normalized
pre-activation, the output and ``1/sqrt(var + eps)`` (see ``fast/flat.py`` for the layout).

The backward never materializes a gradient: it folds each one straight into the trace
(``z <- gamma lambda z + g``) while it walks the layers and sums ``|z|`` on the way, so the ObGD
bound costs no extra pass.
"""

from __future__ import annotations

import numpy as np

from learners.streamx.fast.kernels.jit import fast_jit

LEAKY_SLOPE = np.float32(0.01)
LAYER_NORM_EPS = np.float32(1e-5)


# -- forward -----------------------------------------------------------------------------------
@fast_jit
def _linear(p, row, x, y):
    n_in, n_out, w, b = row[0], row[1], row[2], row[3]
    weight = p[w:w + n_out * n_in].reshape((n_out, n_in))
    for i in range(n_out):
        s = np.float32(0.0)
        for j in range(n_in):
            s += weight[i, j] * x[j]
        y[i] = s + p[b + i]


@fast_jit
def _hidden_output(acts, layout, layer):
    n_out, a = layout[layer, 1], layout[layer, 4]
    return acts[a + n_out:a + 2 * n_out]


@fast_jit
def mlp_forward(p, layout, x, acts):
    """Run the network on ``x``; returns the head's outputs (a view into ``acts``)."""
    n_hidden = layout.shape[0] - 1
    inp = x
    for layer in range(n_hidden):
        n_out, a = layout[layer, 1], layout[layer, 4]
        xhat = acts[a:a + n_out]
        _linear(p, layout[layer], inp, xhat)
        mean = np.float32(0.0)
        for i in range(n_out):
            mean += xhat[i]
        mean /= n_out
        var = np.float32(0.0)
        for i in range(n_out):
            d = xhat[i] - mean
            var += d * d
        var /= n_out
        rstd = np.float32(1.0) / np.sqrt(var + LAYER_NORM_EPS)
        acts[a + 2 * n_out] = rstd
        h = acts[a + n_out:a + 2 * n_out]
        for i in range(n_out):
            v = (xhat[i] - mean) * rstd
            xhat[i] = v
            h[i] = v if v > 0 else v * LEAKY_SLOPE
        inp = h
    head = layout[n_hidden]
    out = acts[head[4]:head[4] + head[1]]
    _linear(p, head, inp, out)
    return out


# -- backward folded into the traces -------------------------------------------------------------
@fast_jit
def _trace_linear(p, z, row, g, x, gl, gx, want_gx):
    """``z_W <- gl z_W + g x^T``, ``z_b <- gl z_b + g``; ``gx <- W^T g`` if wanted; returns the L1."""
    n_in, n_out, w, b = row[0], row[1], row[2], row[3]
    weight = p[w:w + n_out * n_in].reshape((n_out, n_in))
    trace = z[w:w + n_out * n_in].reshape((n_out, n_in))
    norm = 0.0  # float64 across rows, float32 (vectorized) within a row: accurate and cheap
    if want_gx:
        for j in range(n_in):
            gx[j] = 0.0
    for i in range(n_out):
        gi = g[i]
        row = np.float32(0.0)
        if want_gx:  # two copies of the loop so that each vectorizes without a branch inside
            for j in range(n_in):
                gx[j] += weight[i, j] * gi
                t = gl * trace[i, j] + gi * x[j]
                trace[i, j] = t
                row += abs(t)
        else:
            for j in range(n_in):
                t = gl * trace[i, j] + gi * x[j]
                trace[i, j] = t
                row += abs(t)
        norm += row
    row = np.float32(0.0)
    for i in range(n_out):
        t = gl * z[b + i] + g[i]
        z[b + i] = t
        row += abs(t)
    return norm + row


@fast_jit
def mlp_backward_traces(p, z, layout, x, acts, grad_out, scratch, gl):
    """Fold ``d loss / d params`` (given ``d loss / d head outputs``) into ``z``; returns ``|z|_1``.

    ``acts`` must hold the forward pass on ``x`` with the current ``p``. ``scratch`` has room for
    two hidden-width vectors.
    """
    n_hidden = layout.shape[0] - 1
    width = scratch.shape[0] // 2
    g_h = scratch[:width]
    g_a = scratch[width:]
    head = layout[n_hidden]
    inp = x if n_hidden == 0 else _hidden_output(acts, layout, n_hidden - 1)
    norm = _trace_linear(p, z, head, grad_out, inp, gl, g_h, n_hidden > 0)
    for layer in range(n_hidden - 1, -1, -1):
        n_out, a = layout[layer, 1], layout[layer, 4]
        xhat = acts[a:a + n_out]
        rstd = acts[a + 2 * n_out]
        # LeakyReLU, then LayerNorm without affine: da = rstd (g - mean(g) - xhat mean(g xhat)).
        mean_g = np.float32(0.0)
        mean_gx = np.float32(0.0)
        for i in range(n_out):
            gi = g_h[i] if xhat[i] > 0 else g_h[i] * LEAKY_SLOPE
            g_a[i] = gi
            mean_g += gi
            mean_gx += gi * xhat[i]
        mean_g /= n_out
        mean_gx /= n_out
        for i in range(n_out):
            g_a[i] = rstd * (g_a[i] - mean_g - xhat[i] * mean_gx)
        inp = x if layer == 0 else _hidden_output(acts, layout, layer - 1)
        norm += _trace_linear(p, z, layout[layer], g_a, inp, gl, g_h, layer > 0)
    return norm
