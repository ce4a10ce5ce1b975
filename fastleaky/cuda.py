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

To a type checker the functions are ``DeviceFunction`` and
``BackwardDeviceFunction``: a result of the type computed in (NumPy
scalar types stand for the GPU's).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar, overload

import numpy as np
from numba import cuda

from . import ops
from ._backends.numba_loops import Codegen, Dispatcher, NumbaObject, Real, cuda_intrinsic

__all__ = ["leaky_relu_device", "leaky_relu_grad_device", "leaky_relu_backward_device",
           "device_function", "DeviceFunction", "BackwardDeviceFunction", "Real"]

_FloatT = TypeVar("_FloatT", bound=np.floating[Any])


class DeviceFunction(Protocol):
    """``leaky_relu_device`` and ``leaky_relu_grad_device``: a device
    function of ``x`` and ``alpha`` for ``@cuda.jit`` kernels, computing in
    x's type (float64 for an integer or bool ``x``)."""

    @property
    def py_func(self) -> Callable[..., Any]:
        """The Python function."""

    @overload
    def __call__(self, x: _FloatT, alpha: Real) -> _FloatT: ...
    @overload
    def __call__(self, x: float | np.integer[Any] | np.bool_, alpha: Real) -> np.float64: ...


class BackwardDeviceFunction(Protocol):
    """``leaky_relu_backward_device``: a device function of ``grad_output``,
    ``x`` and ``alpha`` for ``@cuda.jit`` kernels, computing in the common
    type of ``grad_output`` and ``x``."""

    @property
    def py_func(self) -> Callable[..., Any]:
        """The Python function."""

    @overload
    def __call__(self, grad_output: _FloatT, x: _FloatT, alpha: Real) -> _FloatT: ...
    @overload
    def __call__(self, grad_output: Real, x: Real, alpha: Real) -> np.floating[Any]: ...


_D = TypeVar("_D", DeviceFunction, BackwardDeviceFunction)


def _device_jit(func: Callable[..., Any]) -> Dispatcher:
    """``cuda.jit(device=True, inline=True)(func)``, typed."""
    untyped: Any = cuda  # Numba's annotations describe its own numba.cuda, not numba-cuda's
    compiled: Dispatcher = untyped.jit(device=True, inline=True)(func)
    return compiled


# The bits of the NaN the host's multiply makes from non-NaN operands
# (``-inf * 0``): the reference's result there.  A GPU multiply makes its
# own canonical NaN instead, so the kernels put these bits in its place.
_CREATED_NAN_BITS: dict[int, int] = {}
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
# In device code values are of Numba's types: to the checker, Any.

_Helpers = tuple[Callable[[Any, Any], Any], Callable[[Any, Any], Any], Callable[[Any, Any], Any],
                 Callable[[Any], Any], Callable[[Any], Any]]


def _compiled_helpers() -> _Helpers:
    import importlib

    from llvmlite import ir

    # (as a module: numba-cuda's types, which Numba's own annotations do not describe)
    types = importlib.import_module("numba.cuda.types")
    intrinsic = cuda_intrinsic

    def compute_type(t: NumbaObject) -> NumbaObject:
        # float16 is computed in float32 (exact for one product of two
        # float16, rounded once on the way back: NumPy's float16 result),
        # where numba-cuda would call C++ shims for half arithmetic.
        if isinstance(t, types.Float):
            return types.float32 if t.bitwidth == 16 else t
        return types.float64

    def result_type(t: NumbaObject) -> NumbaObject:
        return t if isinstance(t, types.Float) else types.float64

    def cast(to: NumbaObject) -> Codegen:
        def codegen(context: NumbaObject, builder: NumbaObject, sig: NumbaObject,
                    args: list[NumbaObject]) -> NumbaObject:
            return context.cast(builder, args[0], sig.args[0], sig.return_type)
        return codegen

    @intrinsic
    def to_compute(typingctx: NumbaObject, value: NumbaObject,
                   like: NumbaObject) -> tuple[NumbaObject, Codegen]:
        """``value`` in the type ``like``'s operation is computed in."""
        target = compute_type(like)
        return target(value, like), cast(target)

    @intrinsic
    def to_result(typingctx: NumbaObject, value: NumbaObject,
                  like: NumbaObject) -> tuple[NumbaObject, Codegen]:
        """``value`` rounded once to ``like``'s result type."""
        target = result_type(like)
        return target(value, like), cast(target)

    @intrinsic
    def promote(typingctx: NumbaObject, value: NumbaObject,
                other: NumbaObject) -> tuple[NumbaObject, Codegen]:
        """``value`` in the common type of ``value`` and ``other``."""
        target = result_type(typingctx.unify_pairs(value, other))
        return target(value, other), cast(target)

    @intrinsic
    def quiet(typingctx: NumbaObject, x: NumbaObject) -> tuple[NumbaObject, Codegen] | None:
        """The NaN ``x`` with its quiet bit set, payload and sign kept."""
        if not isinstance(x, types.Float):
            return None

        def codegen(context: NumbaObject, builder: NumbaObject, sig: NumbaObject,
                    args: list[NumbaObject]) -> NumbaObject:
            bits = ir.IntType(x.bitwidth)
            value = builder.or_(builder.bitcast(args[0], bits),
                                ir.Constant(bits, _QUIET_BIT[x.bitwidth]))
            return builder.bitcast(value, args[0].type)
        return x(x), codegen

    @intrinsic
    def created_nan(typingctx: NumbaObject,
                    like: NumbaObject) -> tuple[NumbaObject, Codegen] | None:
        """The host's NaN from non-NaN operands, in ``like``'s type."""
        if not isinstance(like, types.Float):
            return None

        def codegen(context: NumbaObject, builder: NumbaObject, sig: NumbaObject,
                    args: list[NumbaObject]) -> NumbaObject:
            bits = ir.Constant(ir.IntType(like.bitwidth), _CREATED_NAN_BITS[like.bitwidth])
            return builder.bitcast(bits, args[0].type)
        return like(like), codegen

    return to_compute, to_result, promote, quiet, created_nan


def _simulated_helpers() -> _Helpers:
    # (Typed results: NumPy's annotations give Any for some of these
    # conversions, and an array for a 0-d array indexed with (), a scalar.)
    def result_type(value: Real) -> type[np.floating[Any]]:
        return type(value) if isinstance(value, np.floating) else np.float64

    def compute_type(like: Real) -> type[np.floating[Any]]:
        t = result_type(like)
        return np.float32 if t is np.float16 else t

    def to_compute(value: Real, like: Real) -> np.floating[Any]:
        converted: np.floating[Any] = compute_type(like)(value)
        return converted

    def to_result(value: Real, like: Real) -> np.floating[Any]:
        converted: np.floating[Any] = result_type(like)(value)
        return converted

    def promote(value: Real, other: Real) -> np.floating[Any]:
        common: np.floating[Any] = np.result_type(result_type(value),
                                                  result_type(other)).type(value)
        return common

    def quiet(x: np.floating[Any]) -> np.floating[Any]:
        bits = np.array(x).view(f"u{x.itemsize}")
        bits |= _QUIET_BIT[8 * x.itemsize]
        quieted: np.floating[Any] = bits.view(x.dtype)[()]  # type: ignore[assignment]
        return quieted

    def created_nan(like: np.floating[Any]) -> np.floating[Any]:
        nan: np.floating[Any] = np.array(  # type: ignore[assignment]
            _CREATED_NAN_BITS[8 * like.itemsize], f"u{like.itemsize}").view(like.dtype)[()]
        return nan

    return to_compute, to_result, promote, quiet, created_nan


_to_compute, _to_result, _promote, _quiet, _created_nan = (
    _simulated_helpers() if _simulating() else _compiled_helpers())

_SCALARS = {op.name: _device_jit(op.scalar) for op in ops.OPS}


# ---------------------------------------------------------------- device functions

def device_function(op: ops.Op) -> DeviceFunction | BackwardDeviceFunction:
    """``op``'s scalar definition as a device function of ``op.arity``
    inputs and ``alpha``, giving the reference's bits.

    Parameters
    ----------
    op : fastleaky.ops.Op
        The operation.

    Returns
    -------
    DeviceFunction or BackwardDeviceFunction
        A ``cuda.jit(device=True, inline=True)`` function of ``(x, alpha)``
        for one input, ``(grad_output, x, alpha)`` for two.

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
    if op.arity == 1:
        return _unary_device(op)
    if op.arity == 2:
        return _binary_device(op)
    raise ValueError(f"no device function for operations of {op.arity} inputs")


def _unary_device(op: ops.Op) -> DeviceFunction:
    scalar = _SCALARS[op.name]
    to_compute, to_result = _to_compute, _to_result
    quiet, created_nan = _quiet, _created_nan

    def device(x: Any, alpha: Any) -> Any:
        first = to_compute(x, x)
        result = to_compute(scalar(first, to_compute(to_result(alpha, x), x)), x)
        if result == result:
            return to_result(result, x)
        same = to_result(x, x)
        if first != first:
            return same if scalar(-1, 2) == -1 else quiet(same)
        return created_nan(same)

    compiled: DeviceFunction = _named_device(device, op)
    return compiled


def _binary_device(op: ops.Op) -> BackwardDeviceFunction:
    scalar = _SCALARS[op.name]
    to_compute, to_result, promote = _to_compute, _to_result, _promote
    quiet, created_nan = _quiet, _created_nan

    def device(grad_output: Any, x: Any, alpha: Any) -> Any:
        g = promote(grad_output, x)
        first = to_compute(g, g)
        result = to_compute(
            scalar(first, to_compute(promote(x, g), g), to_compute(to_result(alpha, g), g)), g)
        if result == result:
            return to_result(result, g)
        if first != first:
            return g if scalar(-1, to_compute(promote(x, g), g), 2) == -1 else quiet(g)
        return created_nan(g)

    compiled: BackwardDeviceFunction = _named_device(device, op)
    return compiled


def _named_device(device: Callable[..., Any], op: ops.Op) -> Dispatcher:
    device.__name__ = device.__qualname__ = f"{op.public}_device"
    return _device_jit(device)


# The Python code compiled into a kernel that uses ``device_function``:
# the kernels' disk-cache names carry a digest of it.
DEFINITIONS = (_unary_device, _binary_device, _compiled_helpers)


def _public(fn: _D, doc: str) -> _D:
    fn.__doc__ = doc
    return fn


leaky_relu_device = _public(
    _unary_device(ops.FORWARD),
    """``x`` where ``x > 0``, ``x * alpha`` elsewhere, in x's type.""")
leaky_relu_grad_device = _public(
    _unary_device(ops.GRAD),
    """1 where ``x > 0``, ``alpha`` elsewhere (``x == 0`` and NaN included),
    in x's type.""")
leaky_relu_backward_device = _public(
    _binary_device(ops.BACKWARD),
    """``grad_output`` where ``x > 0``, ``grad_output * alpha``
    elsewhere, in the common type of both.""")
