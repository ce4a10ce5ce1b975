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

To a type checker the functions are ``ScalarFunction`` and
``BackwardScalarFunction`` (called from Python they return a ``float``,
whatever type they computed in), and ``ufuncs`` gives ``Ufunc`` objects.

Importing this module imports Numba (``import fastleaky`` does not).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
from numba.core import types
from numpy.typing import ArrayLike

from . import ops
from ._backends import _numba_kernels
from ._backends.numba_loops import (
    Dispatcher,
    NumbaObject,
    Real,
    compiled_copy,
    njit_with_disk_cache,
    overload,
)

if TYPE_CHECKING:
    def as_dtype(nbtype: NumbaObject) -> np.dtype[Any]: ...

    # Bound per copy of the templates below (``_user_function``).
    scalar: Callable[..., Any]
else:
    from numba.np.numpy_support import as_dtype

__all__ = ["leaky_relu", "leaky_relu_grad", "leaky_relu_backward", "ufuncs",
           "Real", "ScalarFunction", "BackwardScalarFunction", "Ufunc"]


class ScalarFunction(Protocol):
    """``leaky_relu`` and ``leaky_relu_grad``: a Numba dispatcher of ``x``
    and ``alpha``, callable from compiled code and from Python."""

    @property
    def py_func(self) -> Callable[[Real, Real], np.floating[Any]]:
        """The Python function (NumPy scalars in, a NumPy scalar out)."""

    def __call__(self, x: Real, alpha: Real) -> float: ...


class BackwardScalarFunction(Protocol):
    """``leaky_relu_backward``: a Numba dispatcher of ``grad_output``, ``x``
    and ``alpha``, callable from compiled code and from Python."""

    @property
    def py_func(self) -> Callable[[Real, Real, Real], np.floating[Any]]:
        """The Python function (NumPy scalars in, a NumPy scalar out)."""

    def __call__(self, grad_output: Real, x: Real, alpha: Real) -> float: ...


class Ufunc(Protocol):
    """A ufunc of ``ufuncs``: the inputs (arrays, then alpha) in, one array
    out, with the ufunc protocol (broadcasting, ``out=``, ``where=``,
    ``reduce``, ``accumulate``, ``outer``, ``at``).  For target "cpu" it is
    Numba's ``DUFunc``, which wraps a ``numpy.ufunc`` without being one; for
    "parallel", a ``numpy.ufunc``.  Its methods are typed as NumPy types
    those of ``numpy.ufunc``: their results are ``Any``."""

    @property
    def nin(self) -> int: ...
    @property
    def nout(self) -> int: ...
    @property
    def nargs(self) -> int: ...
    @property
    def ntypes(self) -> int: ...
    @property
    def types(self) -> list[str]: ...
    @property
    def identity(self) -> Any: ...

    def __call__(self, *args: ArrayLike, **kwargs: Any) -> Any: ...
    def reduce(self, *args: Any, **kwargs: Any) -> Any: ...
    def accumulate(self, *args: Any, **kwargs: Any) -> Any: ...
    def reduceat(self, *args: Any, **kwargs: Any) -> Any: ...
    def outer(self, *args: Any, **kwargs: Any) -> Any: ...
    def at(self, *args: Any, **kwargs: Any) -> None: ...


def _float_type(*numba_types: NumbaObject) -> type[np.floating[Any]]:
    """The NumPy scalar type fastleaky computes in for these argument types."""
    dtypes = [as_dtype(t) for t in numba_types]
    dtype = np.result_type(*dtypes)
    if dtype.kind != "f":
        dtype = np.result_type(np.float64, *dtypes)
    return dtype.type


# (Numba requires an overload's typing function and the implementation it
# returns to have one signature, annotations included: both take Any, Numba
# types in the first, values in compiled code in the second.)

def _as_compute_type(x: Real, alpha: Real) -> tuple[np.floating[Any], np.floating[Any]]:
    """(x, alpha) both in x's floating type (Python fallback; see the overload)."""
    t = np.asarray(x).dtype.type
    t = t if np.dtype(t).kind == "f" else np.float64
    return t(x), t(alpha)


@overload(_as_compute_type)
def _as_compute_type_impl(x: Any, alpha: Any) -> Callable[[Any, Any], tuple[Any, Any]] | None:
    if not isinstance(x, (types.Float, types.Integer, types.Boolean)):
        return None
    cast = _float_type(x)

    def impl(x: Any, alpha: Any) -> tuple[Any, Any]:
        return cast(x), cast(alpha)

    return impl


def _as_common_type(g: Real, x: Real, alpha: Real
                    ) -> tuple[np.floating[Any], np.floating[Any], np.floating[Any]]:
    t = np.result_type(np.asarray(g), np.asarray(x)).type
    t = t if np.dtype(t).kind == "f" else np.float64
    return t(g), t(x), t(alpha)


@overload(_as_common_type)
def _as_common_type_impl(g: Any, x: Any, alpha: Any
                         ) -> Callable[[Any, Any, Any], tuple[Any, Any, Any]] | None:
    kinds = (types.Float, types.Integer, types.Boolean)
    if not (isinstance(g, kinds) and isinstance(x, kinds)):
        return None
    cast = _float_type(g, x)

    def impl(g: Any, x: Any, alpha: Any) -> tuple[Any, Any, Any]:
        return cast(g), cast(x), cast(alpha)

    return impl


def _in_type_of(value: Real, like: Real) -> np.floating[Any]:
    """``value`` converted to the type of ``like`` (Python fallback; see the overload)."""
    converted: np.floating[Any] = np.asarray(like).dtype.type(value)
    return converted


@overload(_in_type_of)
def _in_type_of_impl(value: Any, like: Any) -> Callable[[Any, Any], Any] | None:
    if not isinstance(like, types.Float):
        return None
    cast = as_dtype(like).type

    def impl(value: Any, like: Any) -> Any:
        return cast(value)

    return impl

# The templates of the functions below; ``scalar`` is bound per operation to
# its definition in ``fastleaky.ops``.  The result is converted to the type
# computed in: the definitions' integer literals would make the grad float64.
def _unary(x: Real, alpha: Real) -> np.floating[Any]:
    x, a = _as_compute_type(x, alpha)
    return _in_type_of(scalar(x, a), x)  # noqa: F821 (bound per copy)


def _binary(grad_output: Real, x: Real, alpha: Real) -> np.floating[Any]:
    g, x, a = _as_common_type(grad_output, x, alpha)
    return _in_type_of(scalar(g, x, a), x)  # noqa: F821


def _user_function(op: ops.Op, doc: str) -> Dispatcher:
    """``op``'s scalar definition with the argument casts above, as a
    Numba dispatcher named after the public function, disk-cached where
    a cache folder is writable (``njit_with_disk_cache``)."""
    template = _binary if op.arity == 2 else _unary
    copy = compiled_copy(template, op.public, {"scalar": _numba_kernels.SCALARS[op.name]},
                         inlined=(op.scalar,))
    copy.__doc__ = doc
    return njit_with_disk_cache(copy)


leaky_relu: ScalarFunction = _user_function(
    ops.FORWARD, """``x`` if ``x > 0`` else ``alpha * x``, with alpha in x's type.""")
leaky_relu_grad: ScalarFunction = _user_function(
    ops.GRAD, """1 where ``x > 0``, else ``alpha`` (``x == 0`` and NaN included).""")
leaky_relu_backward: BackwardScalarFunction = _user_function(
    ops.BACKWARD, """``grad_output * leaky_relu_grad(x, alpha)`` as one select.""")


def ufuncs(target: Literal["cpu", "parallel"] = "cpu") -> Mapping[str, Ufunc]:
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
