"""One whole stream-x update per call: TD error, backward into the traces, bounded step.

Each kernel is the compiled twin of its algorithm's ``update`` in ``learners.streamx`` and
writes its scalars (delta, the effective step sizes) into a small ``result`` array so that the
Python side reads them without allocating.
"""

from __future__ import annotations

from learners.streamx.fast.kernels.heads import categorical_policy_grad, gaussian_policy_grad
from learners.streamx.fast.kernels.jit import fast_jit
from learners.streamx.fast.kernels.mlp import mlp_backward_traces, mlp_forward
from learners.streamx.fast.kernels.obgd_step import obgd_finish
from learners.streamx.fast.kernels.td_errors import q_delta, value_delta


@fast_jit
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
        categorical_policy_grad(out, int(action[0]), entropy_coeff, delta, policy_weight, g)
    else:
        gaussian_policy_grad(out, action, entropy_coeff, delta, policy_weight, g)
    a_norm = mlp_backward_traces(ap, az, alay, s, aacts, g, scratch, gl)
    grad[0] = -1.0
    c_norm = mlp_backward_traces(cp, cz, clay, s, cacts, grad[:1], scratch, gl)
    result[0] = delta
    result[1] = obgd_finish(ap, az, av, adir, a_norm, delta, alpha, kappa_pi, beta2, t, done)
    result[2] = obgd_finish(cp, cz, cv, cdir, c_norm, delta, alpha, kappa_v, beta2, t, done)


@fast_jit
def stream_td_update(p, z, v, direction, layout, acts, scratch, grad, s, s_next, reward, done,
                     gamma, gl, alpha, kappa, beta2, t, result):
    """One Stream TD(lambda) update; ``result <- (delta, alpha_eff)``."""
    _, delta = value_delta(p, layout, acts, s, s_next, reward, gamma, done)
    grad[0] = -1.0
    norm = mlp_backward_traces(p, z, layout, s, acts, grad[:1], scratch, gl)
    result[0] = delta
    result[1] = obgd_finish(p, z, v, direction, norm, delta, alpha, kappa, beta2, t, done)


@fast_jit
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
