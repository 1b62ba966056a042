"""How the stream-x kernels are compiled: two numba decorators and the reasons for their flags.

The kernels are compiled in every process (no on-disk cache): with fast-math flags, code loaded
from numba's cache computed different float32 results from the freshly compiled code of the process
that wrote the cache (seen: a run killed and resumed then differed from an uninterrupted one in the
last bits). Fresh compiles agree with each other, whatever the compile order, so every process
compiling its own keeps ``rill train --resume`` bit-exact across processes; the price is a few
seconds of compilation at start-up.

Array arithmetic uses ``reassoc``/``contract`` so that dot products and the L1 norm vectorize:
float32 sums then run in a different order than torch's, which is the (tiny, bounded) difference
between this path and the autograd path. Scalars that decide the step (delta, the bound) are
computed without fast-math, in float64, as the autograd path does.
"""

from __future__ import annotations

from numba import njit

FASTMATH = {"reassoc", "contract", "nsz"}

# Never cache=True here: see the module docstring (cached fast-math code broke bit-exact resume).
fast_jit = njit(cache=False, fastmath=FASTMATH, nogil=True)
exact_jit = njit(cache=False, nogil=True)  # strict IEEE: no reassociation, no fused multiply-add
