"""Compiled stream-x kernels for the stock MLPs: forward, analytic backward, fused ObGD.

Every network is one contiguous float32 parameter buffer ``p`` with a same-shaped trace buffer
``z`` and an integer ``layout`` (one row per Linear group: ``n_in, n_out, w_off, b_off, act_off``;
hidden layers first, the output head last). A hidden layer is
``Linear -> LayerNorm(no affine, eps 1e-5) -> LeakyReLU(0.01)``; ``acts`` keeps what its backward
needs: the normalized pre-activation, the output and ``1/sqrt(var + eps)`` (see ``flat.py``).

The backward folds each gradient straight into the trace (``z <- gamma lambda z + g``) while it
walks the layers and sums ``|z|`` on the way, so the ObGD bound costs no extra pass; a second pass
applies ``p <- p - alpha_eff delta z`` (STREAMX.md, piece 1).

The kernels are compiled in every process (no on-disk cache): with fast-math flags, code loaded
from numba's cache computed different float32 results from the freshly compiled code of the process
that wrote the cache (seen: a run killed and resumed then differed from an uninterrupted one in the
last bits). Fresh compiles agree with each other, whatever the compile order, so every process
compiling its own keeps ``rill train --resume`` bit-exact across processes; the price is a few
seconds of compilation at start-up.

Array arithmetic uses ``reassoc``/``contract`` so that dot products and the L1 norm vectorize:
float32 sums then run in a different order than torch's, which is the (tiny,
bounded) difference between this path and the autograd path. Scalars that decide the step
(delta, the bound) are computed without fast-math, in float64, as the autograd path does.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

FASTMATH = {"reassoc", "contract", "nsz"}
LEAKY_SLOPE = np.float32(0.01)
LAYER_NORM_EPS = np.float32(1e-5)
SOFTPLUS_THRESHOLD = np.float32(20.0)
HALF_LOG_2PI = np.float32(0.5 * math.log(2.0 * math.pi))
_BLOCK = 256

_jit = njit(cache=False, fastmath=FASTMATH, nogil=True)
_exact = njit(cache=False, nogil=True)  # strict IEEE: no reassociation, no fused multiply-add


# -- forward -----------------------------------------------------------------------------------
@_jit
def _linear(p, row, x, y):
    n_in, n_out, w, b = row[0], row[1], row[2], row[3]
    weight = p[w:w + n_out * n_in].reshape((n_out, n_in))
    for i in range(n_out):
        s = np.float32(0.0)
        for j in range(n_in):
            s += weight[i, j] * x[j]
        y[i] = s + p[b + i]


@_jit
def _hidden_output(acts, layout, layer):
    n_out, a = layout[layer, 1], layout[layer, 4]
    return acts[a + n_out:a + 2 * n_out]


@_jit
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
@_jit
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


@_jit
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


# -- the ObGD step -------------------------------------------------------------------------------
@_exact
def bounded_step_size(alpha, kappa, delta, z_norm):
    """``alpha / max(alpha kappa max(|delta|, 1) |z|_1, 1)``, in float64 like the autograd path."""
    bound = alpha * kappa * max(abs(delta), 1.0) * z_norm
    return alpha / max(bound, 1.0)


@_exact
def td_error(reward, gamma, bootstrap, done, prediction):
    """``r + gamma bootstrap (1 - done) - prediction`` in float64, in the autograd path's order."""
    return reward + gamma * bootstrap * (0.0 if done else 1.0) - prediction


@_jit
def apply_step(p, z, coeff, reset):
    """``p <- p + coeff z`` (``coeff = -alpha_eff delta``); then zero the traces if ``reset``."""
    c = np.float32(coeff)
    for i in range(p.shape[0]):
        p[i] += c * z[i]
    if reset:
        z[:] = 0.0


@_jit
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


@_jit
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


# -- heads -------------------------------------------------------------------------------------
@_jit
def _softplus(x):
    return x if x > SOFTPLUS_THRESHOLD else np.float32(np.log1p(np.exp(x)))


@_jit
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


@_jit
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


@_jit
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


@_jit
def greedy_action(p, layout, x, acts):
    out = mlp_forward(p, layout, x, acts)
    best = 0
    for k in range(out.shape[0]):
        if out[k] > out[best]:
            best = k
    return best


@_exact
def _sign(x):
    return 1.0 if x > 0 else (-1.0 if x < 0 else 0.0)


@_jit
def _gaussian_grad(out, action, entropy_coeff, delta, w, grad):
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


@_jit
def _categorical_grad(out, a, entropy_coeff, delta, w, grad):
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


# -- whole updates ---------------------------------------------------------------------------
@_jit
def value_delta(p, layout, acts, s, s_next, reward, gamma, done):
    """``(V(s), delta)``: the TD error of a value network; ``acts`` ends up holding ``V(s)``'s pass."""
    v_next = np.float64(0.0)
    if not done:
        v_next = np.float64(mlp_forward(p, layout, s_next, acts)[0])
    v = np.float64(mlp_forward(p, layout, s, acts)[0])
    return v, td_error(reward, gamma, v_next, False, v)


@_jit
def stream_ac_update(ap, az, av, adir, alay, aacts, cp, cz, cv, cdir, clay, cacts, scratch, grad,
                     s, s_next, action, reward, done, gamma, gl, alpha, kappa_pi, kappa_v,
                     entropy_coeff, discrete, beta2, t, result, policy_weight):
    """One Stream AC(lambda) update; ``result <- (delta, actor alpha_eff, critic alpha_eff)``.

    Matches ``StreamAC.update``: ``V(s')`` is not differentiated; the critic's loss is ``-V(s)``,
    the actor's ``-log pi(a|s) - c sign(delta) H``; both networks step with the same delta, then
    their traces reset when the episode ended.
    """
    _, delta = value_delta(cp, clay, cacts, s, s_next, reward, gamma, done)
    out = mlp_forward(ap, alay, s, aacts)
    g = grad[:out.shape[0]]
    if discrete:
        _categorical_grad(out, int(action[0]), entropy_coeff, delta, policy_weight, g)
    else:
        _gaussian_grad(out, action, entropy_coeff, delta, policy_weight, g)
    a_norm = mlp_backward_traces(ap, az, alay, s, aacts, g, scratch, gl)
    grad[0] = -1.0
    c_norm = mlp_backward_traces(cp, cz, clay, s, cacts, grad[:1], scratch, gl)
    result[0] = delta
    result[1] = obgd_finish(ap, az, av, adir, a_norm, delta, alpha, kappa_pi, beta2, t, done)
    result[2] = obgd_finish(cp, cz, cv, cdir, c_norm, delta, alpha, kappa_v, beta2, t, done)


@_jit
def stream_td_update(p, z, v, direction, layout, acts, scratch, grad, s, s_next, reward, done,
                     gamma, gl, alpha, kappa, beta2, t, result):
    """One Stream TD(lambda) update; ``result <- (delta, alpha_eff)``."""
    _, delta = value_delta(p, layout, acts, s, s_next, reward, gamma, done)
    grad[0] = -1.0
    norm = mlp_backward_traces(p, z, layout, s, acts, grad[:1], scratch, gl)
    result[0] = delta
    result[1] = obgd_finish(p, z, v, direction, norm, delta, alpha, kappa, beta2, t, done)


@_jit
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


@_jit
def stream_q_update(p, z, v, direction, layout, acts, scratch, grad, s, s_next, action,
                    next_action, reward, done, cut_off_policy, gamma, gl, alpha, kappa, beta2, t,
                    result):
    """One Stream Q/SARSA(lambda) update; ``result <- (delta, alpha_eff, traces cut)``.

    Q(lambda) (``cut_off_policy``) also cuts the traces after a non-greedy action.
    """
    delta, greedy = q_delta(p, layout, acts, s, s_next, action, next_action, reward, gamma, done)
    cut = done or (cut_off_policy and action != greedy)
    n = layout[layout.shape[0] - 1, 1]
    g = grad[:n]
    g[:] = 0.0
    g[action] = -1.0
    norm = mlp_backward_traces(p, z, layout, s, acts, g, scratch, gl)
    result[0] = delta
    result[1] = obgd_finish(p, z, v, direction, norm, delta, alpha, kappa, beta2, t, cut)
    result[2] = 1.0 if cut else 0.0
