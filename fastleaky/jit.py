"""LeakyReLU as Numba-compiled scalar functions for your own ``@njit`` code.

::

    import numba, numpy as np
    from fastleaky.jit import leaky_relu, leaky_relu_grad

    @numba.njit(cache=True)
    def my_layer(x, alpha, out):
        for i in range(x.size):
            out[i] = leaky_relu(x[i], alpha)

Each function is its operation's scalar definition (``fastleaky.ops``) as a
Numba ``@njit`` dispatcher, so it also works from plain Python; it is
cached on disk where Numba finds a writable cache folder, else compiled in
memory in each process (a read-only install without a home folder).
``alpha`` is cast to the type of ``x`` before it is used (``x`` float32 and
``alpha`` a Python float compute in float32), and the result is of that
type, which makes the results bit-exact with ``fastleaky.reference`` and
with the array backends; integer or bool ``x`` computes in float64, as NumPy does.
``leaky_relu_grad`` is ``alpha`` at exactly ``x == 0``, as in PyTorch.

Importing this module imports Numba (``import fastleaky`` does not).
"""

from __future__ import annotations

import numpy as np
from numba.core import types
from numba.extending import overload
from numba.np.numpy_support import as_dtype

from . import ops
from ._backends import _numba_kernels
from ._backends.numba_loops import compiled_copy, njit_with_disk_cache

__all__ = ["leaky_relu", "leaky_relu_grad", "leaky_relu_backward", "ufuncs"]


def _float_type(*numba_types):
    """The NumPy scalar type fastleaky computes in for these argument types."""
    dtypes = [as_dtype(t) for t in numba_types]
    dtype = np.result_type(*dtypes)
    if dtype.kind != "f":
        dtype = np.result_type(np.float64, *dtypes)
    return dtype.type


def _as_compute_type(x, alpha):
    """(x, alpha) both in x's floating type (Python fallback; see the overload)."""
    t = np.asarray(x).dtype.type
    t = t if np.dtype(t).kind == "f" else np.float64
    return t(x), t(alpha)


@overload(_as_compute_type)
def _as_compute_type_impl(x, alpha):
    if not isinstance(x, (types.Float, types.Integer, types.Boolean)):
        return None
    cast = _float_type(x)

    def impl(x, alpha):
        return cast(x), cast(alpha)

    return impl


def _as_common_type(g, x, alpha):
    t = np.result_type(np.asarray(g), np.asarray(x)).type
    t = t if np.dtype(t).kind == "f" else np.float64
    return t(g), t(x), t(alpha)


@overload(_as_common_type)
def _as_common_type_impl(g, x, alpha):
    kinds = (types.Float, types.Integer, types.Boolean)
    if not (isinstance(g, kinds) and isinstance(x, kinds)):
        return None
    cast = _float_type(g, x)

    def impl(g, x, alpha):
        return cast(g), cast(x), cast(alpha)

    return impl


def _in_type_of(value, like):
    """``value`` converted to the type of ``like`` (Python fallback; see the overload)."""
    return np.asarray(like).dtype.type(value)


@overload(_in_type_of)
def _in_type_of_impl(value, like):
    if not isinstance(like, types.Float):
        return None
    cast = as_dtype(like).type

    def impl(value, like):
        return cast(value)

    return impl


# The templates of the functions below; ``scalar`` is bound per operation to
# its definition in ``fastleaky.ops``.  The result is converted to the type
# computed in: the definitions' integer literals would make the grad float64.
def _unary(x, alpha):
    x, a = _as_compute_type(x, alpha)
    return _in_type_of(scalar(x, a), x)  # noqa: F821 (bound per copy)


def _binary(grad_output, x, alpha):
    g, x, a = _as_common_type(grad_output, x, alpha)
    return _in_type_of(scalar(g, x, a), x)  # noqa: F821


def _user_function(op, doc: str):
    """``op``'s scalar definition with the argument casts above, as a
    Numba dispatcher named after the public function, disk-cached where
    a cache folder is writable (``njit_with_disk_cache``)."""
    template = _binary if op.arity == 2 else _unary
    copy = compiled_copy(template, op.public, {"scalar": _numba_kernels.SCALARS[op.name]},
                         inlined=(op.scalar,))
    copy.__doc__ = doc
    return njit_with_disk_cache(copy)


leaky_relu = _user_function(
    ops.FORWARD, """``x`` if ``x > 0`` else ``alpha * x``, with alpha in x's type.""")
leaky_relu_grad = _user_function(
    ops.GRAD, """1 where ``x > 0``, else ``alpha`` (``x == 0`` and NaN included).""")
leaky_relu_backward = _user_function(
    ops.BACKWARD, """``grad_output * leaky_relu_grad(x, alpha)`` as one select.""")


def ufuncs(target: str = "cpu") -> dict:
    """The kernels as NumPy ufuncs: ``{"forward", "grad", "backward"}``.

    Numba ``@vectorize`` ufuncs (float32 and float64 loops) for ``target``
    "cpu" or "parallel", built on first request: broadcasting, ``out=``,
    ``where=`` and the rest of the ufunc protocol work.  Pass ``alpha`` in
    the array's dtype (``np.float32(0.01)``) for results bit-exact with the
    reference.  Called through NumPy, the vectorized compare raises the FP
    "invalid" flag on NaN input, which NumPy reports as a RuntimeWarning
    unless silenced with ``np.errstate(invalid="ignore")``; ``fastleaky``'s
    own functions never warn.
    """
    if target not in ("cpu", "parallel"):
        raise ValueError(f"target must be 'cpu' or 'parallel', got {target!r}")
    return _numba_kernels.ufuncs(target)
