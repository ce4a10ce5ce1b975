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
result is bit-exact with ``fastleaky.reference``.  Each function is its
operation's scalar definition (``fastleaky.ops``) compiled for the GPU;
the ``cuda`` backend's own kernels are built from the same definitions
(``device_function``).
"""

from __future__ import annotations

from numba import cuda

from . import ops

__all__ = ["leaky_relu_device", "leaky_relu_grad_device", "leaky_relu_backward_device"]


def _same(value):
    return value


_SAME = cuda.jit(device=True, inline=True)(_same)
_SCALARS = {op.name: cuda.jit(device=True, inline=True)(op.scalar) for op in ops.OPS}


def device_function(op, compute=_SAME, narrow=_SAME):
    """``op``'s scalar definition as a device function of ``op.arity``
    inputs and ``alpha``.

    Parameters
    ----------
    op : fastleaky.ops.Op
        The operation.
    compute : CUDA device function, optional
        Converts to the type computed in: applied to every argument and to
        the definition's result (whose integer literals can make numba type
        it wider).  Unchanged by default.
    narrow : CUDA device function, optional
        Converts the result to the type returned.  Unchanged by default.

    Returns
    -------
    A ``cuda.jit(device=True, inline=True)`` function.

    Notes
    -----
    A GPU multiply returns the canonical NaN where the CPU's keeps the
    payload of a NaN operand (the reference's ``x * alpha``).  So where the
    first input is NaN and so is the result, the first input is returned as
    it is: the forward's ``x``, the backward's ``grad_output``.  (The grad
    of a NaN is ``alpha``, not NaN, and is left alone.)
    """
    scalar = _SCALARS[op.name]
    if op.arity == 1:
        def device(x, alpha):
            first = compute(x)
            result = compute(scalar(first, compute(alpha)))
            return x if (result != result and first != first) else narrow(result)
    else:
        def device(grad_output, x, alpha):
            first = compute(grad_output)
            result = compute(scalar(first, compute(x), compute(alpha)))
            return grad_output if (result != result and first != first) else narrow(result)
    device.__name__ = device.__qualname__ = f"{op.public}_device"
    return cuda.jit(device=True, inline=True)(device)


def _public(op, doc: str):
    fn = device_function(op)
    fn.__doc__ = doc
    return fn


leaky_relu_device = _public(
    ops.FORWARD, """``x`` where ``x > 0`` (and NaN), ``x * alpha`` elsewhere.""")
leaky_relu_grad_device = _public(
    ops.GRAD, """1 where ``x > 0``, ``alpha`` elsewhere (``x == 0`` and NaN included).""")
leaky_relu_backward_device = _public(
    ops.BACKWARD, """``grad_output * leaky_relu_grad(x, alpha)``, NaN payloads of
    ``grad_output`` kept as the CPU multiply keeps them.""")
