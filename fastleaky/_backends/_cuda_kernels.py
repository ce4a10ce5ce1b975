"""The cuda backend's kernels, as plain Python (``numba_cuda`` compiles them).

They live in a module that imports ``numba.cuda`` as the global ``cuda``
because the simulator runs a kernel by swapping that global for its fake
module.  Each kernel computes ``(inputs..., out, alpha, n)`` on 1-D C arrays:
``unary`` (forward and grad, by the device function bound to
``unary_device``) and ``backward``.

Shape: a tile is ``4 * blockDim`` elements; thread ``t`` handles elements
``t``, ``t + b``, ``t + 2b``, ``t + 3b`` of it (each access coalesced), issues
the four loads before any store, and the grid strides over tiles.  ``i`` and
``step`` are int64 (numba widens the uint32 thread registers when they meet
an int64 operand), so arrays above 2**31 elements are indexed correctly.
"""

from numba import cuda
from numba.cuda.types import float16, float32

# leaky_relu_grad_device is bound to unary_device by name in numba_cuda._build
from ..cuda import leaky_relu_backward_device, leaky_relu_device, leaky_relu_grad_device  # noqa: F401


# float16: numba-cuda lowers half arithmetic to calls into its C++ shims;
# converting to float32 (exact) and rounding the float32 product back once
# (cvt.rn) gives the same bits as NumPy's float16 multiply (which computes
# in float32 too) in three plain instructions.  NaN is passed through as is.
@cuda.jit(device=True, inline=True)
def leaky_relu_half(x, a):
    xf = float32(x)
    return x if not xf <= float32(0) else float16(xf * float32(a))


@cuda.jit(device=True, inline=True)
def leaky_relu_grad_half(x, a):
    return float16(1) if float32(x) > float32(0) else a


@cuda.jit(device=True, inline=True)
def leaky_relu_backward_half(g, x, a):
    gf = float32(g)
    return g if (float32(x) > float32(0) or gf != gf) else float16(gf * float32(a))


# The generic grad's ``zero + 1`` is typed float64 by numba; one constant of
# the array's type keeps float32 kernels free of float64 conversions.
@cuda.jit(device=True, inline=True)
def leaky_relu_grad_single(x, a):
    return float32(1) if x > float32(0) else a


SINGLE = {"leaky_relu_grad_device": leaky_relu_grad_single}

HALF = {
    "leaky_relu_device": leaky_relu_half,
    "leaky_relu_grad_device": leaky_relu_grad_half,
    "leaky_relu_backward_device": leaky_relu_backward_half,
}


# What ``unary`` applies; numba_cuda._build binds leaky_relu_device (forward)
# or leaky_relu_grad_device (grad) in the copy it compiles per op.
unary_device = leaky_relu_device


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
            out[i] = unary_device(v0, a)
            out[i + b] = unary_device(v1, a)
            out[i + 2 * b] = unary_device(v2, a)
            out[i + 3 * b] = unary_device(v3, a)
        else:
            for k in range(4):
                j = i + k * b
                if j < n:
                    out[j] = unary_device(x[j], a)
        i += step


def backward(g, x, out, a, n):
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
            out[i] = leaky_relu_backward_device(g0, v0, a)
            out[i + b] = leaky_relu_backward_device(g1, v1, a)
            out[i + 2 * b] = leaky_relu_backward_device(g2, v2, a)
            out[i + 3 * b] = leaky_relu_backward_device(g3, v3, a)
        else:
            for k in range(4):
                j = i + k * b
                if j < n:
                    out[j] = leaky_relu_backward_device(g[j], x[j], a)
        i += step
