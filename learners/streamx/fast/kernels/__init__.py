"""Compiled stream-x kernels for the stock MLPs, one concept per module.

Every network is one contiguous float32 parameter buffer ``p`` with a same-shaped trace buffer
``z`` and an integer ``layout`` (one row per Linear group: ``n_in, n_out, w_off, b_off, act_off``;
hidden layers first, the output head last; see ``fast/flat.py``).

- ``jit``: the two numba decorators, and how their code is cached on disk and stays bit-exact;
- ``mlp``: forward, and the analytic backward of ``Linear -> LayerNorm -> LeakyReLU`` folded into
  the traces together with their L1 norm;
- ``obgd_step``: the bounded step (plain and adaptive ObGD) and the trace reset;
- ``heads``: Gaussian and categorical acting, log-probabilities, the policy-loss gradient;
- ``td_errors``: the TD errors of value and Q networks;
- ``updates``: one whole Stream AC / TD / Q-SARSA update per call.
"""

from __future__ import annotations

from learners.streamx.fast.kernels.heads import (
    categorical_log_probs,
    categorical_policy_grad,
    gaussian_act,
    gaussian_log_prob,
    gaussian_policy_grad,
    greedy_action,
)
from learners.streamx.fast.kernels.mlp import mlp_backward_traces, mlp_forward
from learners.streamx.fast.kernels.obgd_step import (
    adaptive_directions,
    apply_step,
    bounded_step_size,
    obgd_finish,
)
from learners.streamx.fast.kernels.td_errors import q_delta, td_error, value_delta
from learners.streamx.fast.kernels.updates import stream_ac_update, stream_q_update, stream_td_update

__all__ = [
    "adaptive_directions", "apply_step", "bounded_step_size", "categorical_log_probs",
    "categorical_policy_grad", "gaussian_act", "gaussian_log_prob", "gaussian_policy_grad",
    "greedy_action", "mlp_backward_traces", "mlp_forward", "obgd_finish", "q_delta",
    "stream_ac_update", "stream_q_update", "stream_td_update", "td_error", "value_delta",
]
