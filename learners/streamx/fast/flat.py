"""A stock stream-x MLP whose weights and ObGD state live in contiguous float32 buffers.

The compiled kernels (``fast/kernels/``) work on one flat buffer per network; the torch module and
its ObGD optimizer keep working as before because their tensors become *views* of those buffers
(``torch.from_numpy``). So ``state_dict()`` / ``load_state_dict()``, checkpoints and weight
shipping by name see exactly the keys, shapes and values of the autograd path, and anything
written through torch (a loaded checkpoint, shipped weights) is what the kernels read next.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from learners.streamx.obgd import AdaptiveObGD, ObGD
from policies.streamx.networks import MLPBody

_EMPTY = np.zeros(0, np.float32)


class NotFlattenableError(TypeError):
    """The network is not a stock stream-x MLP (use the autograd path)."""


class FlatNetwork:
    """``body`` plus output ``heads`` (their Linears stacked in order, e.g. ``mu`` then ``sigma``).

    Buffer order: each hidden Linear's weight then bias, then the stacked head weights, then the
    stacked head biases. ``layout`` rows are ``n_in, n_out, w_off, b_off, act_off``.
    """

    def __init__(self, body: MLPBody, heads: Sequence[nn.Linear], opt: ObGD) -> None:
        if not isinstance(body, MLPBody) or not all(type(h) is nn.Linear for h in heads):
            raise NotFlattenableError("FlatNetwork needs an MLPBody and nn.Linear heads")
        hidden = list(body.layers)
        if not all(type(layer) is nn.Linear and layer.bias is not None for layer in hidden + list(heads)):
            raise NotFlattenableError("FlatNetwork needs biased nn.Linear layers")
        n_in_head = heads[0].in_features
        if any(h.in_features != n_in_head or h.bias is None for h in heads):
            raise NotFlattenableError("FlatNetwork heads must share their input and have biases")
        # (n_in, n_out, [(weight, bias) of the Linears stacked in this row])
        groups = [(layer.in_features, layer.out_features, [layer]) for layer in hidden]
        groups.append((n_in_head, sum(h.out_features for h in heads), list(heads)))
        total = sum(n_out * (n_in + 1) for n_in, n_out, _ in groups)
        self.params = np.zeros(total, np.float32)
        self.traces = np.zeros(total, np.float32)
        self.adaptive = isinstance(opt, AdaptiveObGD)
        self.second_moments = np.zeros(total, np.float32) if self.adaptive else _EMPTY
        self.directions = np.zeros(total, np.float32) if self.adaptive else _EMPTY

        layout, views, offset, act = [], {}, 0, 0
        for n_in, n_out, linears in groups:
            w_off, b_off = offset, offset + n_out * n_in
            hidden_row = len(layout) < len(hidden)
            layout.append((n_in, n_out, w_off, b_off, act))
            act += 2 * n_out + 1 if hidden_row else n_out
            row = 0
            for lin in linears:
                k = lin.out_features
                views[id(lin.weight)] = (w_off + row * n_in, (k, n_in))
                views[id(lin.bias)] = (b_off + row, (k,))
                row += k
            offset = b_off + n_out
        self.layout = np.array(layout, np.int64)
        self.acts = np.zeros(act, np.float32)
        width = max(n_out for _, n_out, _ in groups[:-1]) if hidden else 1
        self.scratch = np.zeros(2 * width, np.float32)
        self.grad = np.zeros(max(groups[-1][1], 1), np.float32)
        self.n_out = groups[-1][1]

        def view(buf: np.ndarray, key: int) -> torch.Tensor:
            start, shape = views[key]
            return torch.from_numpy(buf[start:start + int(np.prod(shape))].reshape(shape))

        module_params = [p for lin in (*hidden, *heads) for p in (lin.weight, lin.bias)]
        if {id(p) for p in opt.params} != {id(p) for p in module_params}:
            raise NotFlattenableError("the optimizer's parameters are not exactly the network's")
        for p in module_params:
            self.params[slice(views[id(p)][0], views[id(p)][0] + p.numel())] = \
                p.detach().reshape(-1).numpy()
            p.data = view(self.params, id(p))
        for i, p in enumerate(opt.params):
            z = view(self.traces, id(p))
            z.copy_(opt.traces[i])
            opt.traces[i] = z
            if self.adaptive:
                v = view(self.second_moments, id(p))
                v.copy_(opt.second_moments[i])
                opt.second_moments[i] = v
        self._opt = opt
        self._module_params = module_params

    def is_shared(self) -> bool:
        """True while the torch tensors still alias the flat buffers (nobody rebound them)."""
        bufs = [(self.params, self._module_params), (self.traces, self._opt.traces)]
        if self.adaptive:
            bufs.append((self.second_moments, self._opt.second_moments))
        for buf, tensors in bufs:
            lo, hi = buf.ctypes.data, buf.ctypes.data + buf.nbytes
            if not all(lo <= t.data_ptr() < hi for t in tensors):
                return False
        return True
