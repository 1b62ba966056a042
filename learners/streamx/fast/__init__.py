"""The compiled ("fast") update path of the stream-x algorithms for the stock MLP networks.

Same algorithm, same numbers, same ``state_dict`` as the autograd path in ``learners.streamx``;
the forward pass, the analytic backward of ``Linear -> LayerNorm -> LeakyReLU`` blocks and heads,
the trace update, the L1 norm and the bounded step run as a few numba kernels over preallocated
float32 buffers that the torch modules share. The autograd path stays for arbitrary networks.
"""

from __future__ import annotations

from learners.streamx.fast.stream_ac import FastStreamAC
from learners.streamx.fast.stream_q import FastStreamQ, FastStreamSARSA
from learners.streamx.fast.stream_td import FastStreamTD

__all__ = ["FastStreamAC", "FastStreamQ", "FastStreamSARSA", "FastStreamTD"]
