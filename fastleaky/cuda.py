"""CUDA device functions for your own ``@cuda.jit`` kernels.

Importing this module imports ``numba.cuda`` (``import fastleaky`` does not)::

    from numba import cuda
    from fastleaky.cuda import leaky_relu_device

    @cuda.jit
    def bias_leaky_relu(x, bias, alpha, out):
        i = cuda.grid(1)
        if i < x.size:
            out[i] = leaky_relu_device(x[i] + bias[i], alpha)

Each function computes in its argument's own type, whatever the type of
``alpha`` (which is first rounded to that type, as the reference does) and
gives the bits of ``fastleaky.reference``, NaNs included, on any GPU.  Each
is its operation's scalar definition (``fastleaky.ops``) compiled for the
GPU; the ``cuda`` backend's kernels are built from the same functions
(``device_function``).
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from . import ops

__all__ = ["leaky_relu_device", "leaky_relu_grad_device", "leaky_relu_backward_device",
           "device_function"]

# The bits of the NaN the host's multiply makes from non-NaN operands
# (``-inf * 0``): the reference's result there.  A GPU multiply makes its
# own canonical NaN instead, so the kernels put these bits in its place.
_CREATED_NAN_BITS = {}
with np.errstate(invalid="ignore"):
    for _t in (np.float16, np.float32, np.float64):
        _CREATED_NAN_BITS[np.dtype(_t).itemsize * 8] = int(
            (np.array([-np.inf], _t) * np.array([0], _t)).view(f"u{np.dtype(_t).itemsize}")[0])
_QUIET_BIT = {np.dtype(t).itemsize * 8: 1 << (np.finfo(t).nmant - 1)
              for t in (np.float16, np.float32, np.float64)}


def _simulating() -> bool:
    from numba.cuda.core import config as numba_config

    return bool(numba_config.ENABLE_CUDASIM)


# ---------------------------------------------------------------- type and bit helpers
#
# Compiled (Numba intrinsics) on a GPU; plain NumPy under the simulator,
# which runs device functions as Python on NumPy scalars.  Each is a
# conversion or a bit operation, never arithmetic on a NaN: a GPU's
# arithmetic returns its canonical NaN and would lose the payload.

def _compiled_helpers():
    from llvmlite import ir
    from numba.cuda import types
    from numba.cuda.extending import intrinsic

    def compute_type(t):
        # float16 is computed in float32 (exact for one product of two
        # float16, rounded once on the way back: NumPy's float16 result),
        # where numba-cuda would call C++ shims for half arithmetic.
        if isinstance(t, types.Float):
            return types.float32 if t.bitwidth == 16 else t
        return types.float64

    def result_type(t):
        return t if isinstance(t, types.Float) else types.float64

    def cast(to):
        def codegen(context, builder, sig, args):
            return context.cast(builder, args[0], sig.args[0], sig.return_type)
        return codegen

    @intrinsic
    def to_compute(typingctx, value, like):
        """``value`` in the type ``like``'s operation is computed in."""
        target = compute_type(like)
        return target(value, like), cast(target)

    @intrinsic
    def to_result(typingctx, value, like):
        """``value`` rounded once to ``like``'s result type."""
        target = result_type(like)
        return target(value, like), cast(target)

    @intrinsic
    def promote(typingctx, value, other):
        """``value`` in the common type of ``value`` and ``other``."""
        target = result_type(typingctx.unify_pairs(value, other))
        return target(value, other), cast(target)

    @intrinsic
    def quiet(typingctx, x):
        """The NaN ``x`` with its quiet bit set, payload and sign kept."""
        if not isinstance(x, types.Float):
            return None

        def codegen(context, builder, sig, args):
            bits = ir.IntType(x.bitwidth)
            value = builder.or_(builder.bitcast(args[0], bits),
                                ir.Constant(bits, _QUIET_BIT[x.bitwidth]))
            return builder.bitcast(value, args[0].type)
        return x(x), codegen

    @intrinsic
    def created_nan(typingctx, like):
        """The host's NaN from non-NaN operands, in ``like``'s type."""
        if not isinstance(like, types.Float):
            return None

        def codegen(context, builder, sig, args):
            bits = ir.Constant(ir.IntType(like.bitwidth), _CREATED_NAN_BITS[like.bitwidth])
            return builder.bitcast(bits, args[0].type)
        return like(like), codegen

    return to_compute, to_result, promote, quiet, created_nan


def _simulated_helpers():
    def result_type(value):
        return type(value) if isinstance(value, np.floating) else np.float64

    def compute_type(like):
        t = result_type(like)
        return np.float32 if t is np.float16 else t

    def to_compute(value, like):
        return compute_type(like)(value)

    def to_result(value, like):
        return result_type(like)(value)

    def promote(value, other):
        return np.result_type(result_type(value), result_type(other)).type(value)

    def quiet(x):
        bits = np.array(x).view(f"u{x.itemsize}")
        bits |= _QUIET_BIT[8 * x.itemsize]
        return bits.view(x.dtype)[()]

    def created_nan(like):
        return np.array(_CREATED_NAN_BITS[8 * like.itemsize],
                        f"u{like.itemsize}").view(like.dtype)[()]

    return to_compute, to_result, promote, quiet, created_nan


_to_compute, _to_result, _promote, _quiet, _created_nan = (
    _simulated_helpers() if _simulating() else _compiled_helpers())

_SCALARS = {op.name: cuda.jit(device=True, inline=True)(op.scalar) for op in ops.OPS}


# ---------------------------------------------------------------- device functions

def device_function(op):
    """``op``'s scalar definition as a device function of ``op.arity``
    inputs and ``alpha``, giving the reference's bits.

    Parameters
    ----------
    op : fastleaky.ops.Op
        The operation.

    Returns
    -------
    A ``cuda.jit(device=True, inline=True)`` function.

    Notes
    -----
    It computes in the type of its inputs (their common type for two):
    ``alpha`` is first rounded to that type, float16 is computed in float32
    and rounded once (exact: NumPy's float16 result), and the definition's
    integer literals never widen the result, so no float64 instruction
    appears in a float16 or float32 kernel.

    NaN results get the reference's bits by selection and bit operations,
    never through a GPU multiply (which returns the canonical NaN):

    - a NaN first input (``x``; backward's ``grad_output``) comes back as it
      is where the definition selects it, and with its quiet bit set
      (payload and sign kept) where it multiplies it, as the host's multiply
      does.  Which of the two is decided by the definition itself, evaluated
      on integer stand-ins: -1 for the NaN (it compares with 0 as NaN does
      under ``>``) and 2 for ``alpha``;
    - a NaN made from non-NaN operands (``-inf * 0``) is the host's NaN
      for that operation.

    The grad of a NaN is ``alpha``, not NaN, and is left alone.
    """
    scalar = _SCALARS[op.name]
    to_compute, to_result, promote = _to_compute, _to_result, _promote
    quiet, created_nan = _quiet, _created_nan
    if op.arity == 1:
        def device(x, alpha):
            first = to_compute(x, x)
            result = to_compute(scalar(first, to_compute(to_result(alpha, x), x)), x)
            if result == result:
                return to_result(result, x)
            same = to_result(x, x)
            if first != first:
                return same if scalar(-1, 2) == -1 else quiet(same)
            return created_nan(same)
    elif op.arity == 2:
        def device(grad_output, x, alpha):
            g = promote(grad_output, x)
            first = to_compute(g, g)
            result = to_compute(
                scalar(first, to_compute(promote(x, g), g), to_compute(to_result(alpha, g), g)), g)
            if result == result:
                return to_result(result, g)
            if first != first:
                return g if scalar(-1, to_compute(promote(x, g), g), 2) == -1 else quiet(g)
            return created_nan(g)
    else:
        raise ValueError(f"no device function for operations of {op.arity} inputs")
    device.__name__ = device.__qualname__ = f"{op.public}_device"
    return cuda.jit(device=True, inline=True)(device)


# The Python code compiled into a kernel that uses ``device_function``:
# the kernels' disk-cache names carry a digest of it.
DEFINITIONS = (device_function, _compiled_helpers)


def _public(op, doc: str):
    fn = device_function(op)
    fn.__doc__ = doc
    return fn


leaky_relu_device = _public(
    ops.FORWARD, """``x`` where ``x > 0``, ``x * alpha`` elsewhere, in x's type.""")
leaky_relu_grad_device = _public(
    ops.GRAD, """1 where ``x > 0``, ``alpha`` elsewhere (``x == 0`` and NaN included),
    in x's type.""")
leaky_relu_backward_device = _public(
    ops.BACKWARD, """``grad_output`` where ``x > 0``, ``grad_output * alpha``
    elsewhere, in the common type of both.""")
