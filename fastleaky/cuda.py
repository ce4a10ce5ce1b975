"""CUDA device functions for your own ``@cuda.jit`` kernels.

Importing this module imports ``numba.cuda`` (``import fastleaky`` does not)::

    from numba import cuda
    from fastleaky.cuda import leaky_relu_device

    @cuda.jit
    def bias_leaky_relu(x, bias, alpha, out):
        i = cuda.grid(1)
        if i < x.size:
            out[i] = leaky_relu_device(x[i] + bias[i], alpha)

Pass ``alpha`` as the same float type as ``x`` (e.g. ``np.float32(0.01)``
for float32 data): the product is then rounded once, in that type, and the
result is bit-exact with ``fastleaky.reference``.  These are the functions
the ``cuda`` backend's own kernels are built from.
"""

from __future__ import annotations

from numba import cuda

__all__ = ["leaky_relu_device", "leaky_relu_grad_device", "leaky_relu_backward_device"]


# NaN is kept as it is (``not x <= 0`` is true for NaN): a GPU multiply
# returns the canonical NaN and would lose the payload that the CPU
# reference, ``x * alpha``, keeps.
@cuda.jit(device=True, inline=True)
def leaky_relu_device(x, alpha):
    """``x`` where ``x > 0`` (and NaN), ``x * alpha`` elsewhere."""
    return x if not x <= alpha - alpha else x * alpha


@cuda.jit(device=True, inline=True)
def leaky_relu_grad_device(x, alpha):
    """1 where ``x > 0``, ``alpha`` elsewhere (``x == 0`` and NaN included)."""
    zero = alpha - alpha
    return zero + 1 if x > zero else alpha


@cuda.jit(device=True, inline=True)
def leaky_relu_backward_device(grad_output, x, alpha):
    """``grad_output * leaky_relu_grad(x, alpha)``, NaN payloads of
    ``grad_output`` kept as the CPU multiply keeps them."""
    g = grad_output
    return g if (x > alpha - alpha or g != g) else g * alpha
