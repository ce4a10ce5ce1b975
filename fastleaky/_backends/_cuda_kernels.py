"""The cuda backend's kernels, as plain Python (``numba_cuda`` compiles them).

They live in a module that imports ``numba.cuda`` as the global ``cuda``
because the simulator runs a kernel by swapping that global for its fake
module.  Each kernel computes ``(inputs..., out, alpha, n)`` on 1-D C arrays
by the device function bound to ``device`` in its copy
(``kernel_function``): ``unary`` (forward and grad) and ``binary``
(backward).

Shape: a tile is ``4 * blockDim`` elements; thread ``t`` handles elements
``t``, ``t + b``, ``t + 2b``, ``t + 3b`` of it (each access coalesced), issues
the four loads before any store, and the grid strides over tiles.  ``i`` and
``step`` are int64 (numba widens the uint32 thread registers when they meet
an int64 operand), so arrays above 2**31 elements are indexed correctly.
"""

import numpy as np
from numba import cuda
from numba.cuda.types import float16, float32

from ..cuda import device_function
from .numba_loops import compiled_copy


# ---------------------------------------------------------------- device functions

@cuda.jit(device=True, inline=True)
def _to_float32(value):
    return float32(value)


@cuda.jit(device=True, inline=True)
def _to_float16(value):
    return float16(value)


def _single(op):
    """float32, computed in float32: the definitions' integer literals make
    numba type the grad's select as float64; converting its result lets the
    compiler fold that back, keeping float64 out of the kernel."""
    return device_function(op, compute=_to_float32)


def _half(op):
    """float16: widened to float32 (exact), computed there and rounded once
    (cvt.rn), which gives NumPy's float16 product (NumPy computes it in
    float32 too): a few plain instructions, where numba-cuda lowers half
    arithmetic to calls into its C++ shims."""
    return device_function(op, compute=_to_float32, narrow=_to_float16)


_VARIANTS = {np.float16: _half, np.float32: _single, np.float64: device_function}


# ---------------------------------------------------------------- kernels

def unary(x, out, a, n):
    b = cuda.blockDim.x
    i = cuda.blockIdx.x * (b * 4) + cuda.threadIdx.x
    step = cuda.gridDim.x * (b * 4)
    while i < n:
        if i + 3 * b < n:
            v0 = x[i]
            v1 = x[i + b]
            v2 = x[i + 2 * b]
            v3 = x[i + 3 * b]
            out[i] = device(v0, a)  # noqa: F821 (bound per copy)
            out[i + b] = device(v1, a)  # noqa: F821
            out[i + 2 * b] = device(v2, a)  # noqa: F821
            out[i + 3 * b] = device(v3, a)  # noqa: F821
        else:
            for k in range(4):
                j = i + k * b
                if j < n:
                    out[j] = device(x[j], a)  # noqa: F821
        i += step


def binary(g, x, out, a, n):
    b = cuda.blockDim.x
    i = cuda.blockIdx.x * (b * 4) + cuda.threadIdx.x
    step = cuda.gridDim.x * (b * 4)
    while i < n:
        if i + 3 * b < n:
            g0 = g[i]
            g1 = g[i + b]
            g2 = g[i + 2 * b]
            g3 = g[i + 3 * b]
            v0 = x[i]
            v1 = x[i + b]
            v2 = x[i + 2 * b]
            v3 = x[i + 3 * b]
            out[i] = device(g0, v0, a)  # noqa: F821
            out[i + b] = device(g1, v1, a)  # noqa: F821
            out[i + 2 * b] = device(g2, v2, a)  # noqa: F821
            out[i + 3 * b] = device(g3, v3, a)  # noqa: F821
        else:
            for k in range(4):
                j = i + k * b
                if j < n:
                    out[j] = device(g[j], x[j], a)  # noqa: F821
        i += step


def kernel_function(op, dtype):
    """The Python function the kernel of ``op`` on ``dtype`` arrays is
    compiled from: ``unary`` or ``binary`` with that dtype's device function
    of ``op`` bound to ``device``, named after both."""
    template = binary if op.arity == 2 else unary
    name = f"leaky_relu_{op.name}_{np.dtype(dtype).name}"
    return compiled_copy(template, name, {"device": _VARIANTS[dtype](op)},
                         inlined=(op.scalar, device_function))
