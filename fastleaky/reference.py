"""The NumPy reference: the definition every backend is tested against.

The ``numpy`` backend (``_backends/numpy_blocks.py``) runs these functions
block by block; it is also the fallback for dtypes a compiled backend has
no native loop for (e.g. ``longdouble``).  Computed in x's
floating dtype with alpha first cast to that dtype, as a select (never
``max(x, alpha * x)``, which is wrong for alpha > 1 and alpha < 0).

Each function returns an ndarray (0-d for scalar input, as ``np.where``
gives), of x's floating dtype; bool and integer input gives float64.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, overload

import numpy as np

if TYPE_CHECKING:
    from typing import TypeVar

    from numpy.typing import ArrayLike, NDArray

    _Float = TypeVar("_Float", bound=np.floating[Any])
    # alpha: any real scalar, cast to the result's dtype first
    _Alpha = float | np.floating[Any] | np.integer[Any] | np.bool_
    # what computes in float64: bool and integer arrays and scalars, Python floats
    _Whole = NDArray[np.integer[Any]] | NDArray[np.bool_] | np.integer[Any] | np.bool_ | float

__all__ = ["leaky_relu", "leaky_relu_grad", "leaky_relu_backward"]


def _as_float(x: ArrayLike) -> NDArray[np.floating[Any]]:
    arr = np.asarray(x)
    return arr if arr.dtype.kind == "f" else arr.astype(np.float64)


@overload
def leaky_relu(x: NDArray[_Float] | _Float, alpha: _Alpha = ...) -> NDArray[_Float]: ...
@overload
def leaky_relu(x: _Whole, alpha: _Alpha = ...) -> NDArray[np.float64]: ...
@overload
def leaky_relu(x: ArrayLike, alpha: _Alpha = ...) -> NDArray[np.floating[Any]]: ...
def leaky_relu(x: ArrayLike, alpha: _Alpha = 0.01) -> NDArray[np.floating[Any]]:
    """``np.where(x > 0, x, x * alpha)`` in x's floating dtype."""
    xf = _as_float(x)
    a = xf.dtype.type(alpha)
    # -inf * 0 and overflow (alpha > 1 on float16) are defined results here,
    # not errors: no RuntimeWarning, as for every backend.
    with np.errstate(all="ignore"):
        return np.where(xf > 0, xf, xf * a)


@overload
def leaky_relu_grad(x: NDArray[_Float] | _Float, alpha: _Alpha = ...) -> NDArray[_Float]: ...
@overload
def leaky_relu_grad(x: _Whole, alpha: _Alpha = ...) -> NDArray[np.float64]: ...
@overload
def leaky_relu_grad(x: ArrayLike, alpha: _Alpha = ...) -> NDArray[np.floating[Any]]: ...
def leaky_relu_grad(x: ArrayLike, alpha: _Alpha = 0.01) -> NDArray[np.floating[Any]]:
    """1 where ``x > 0``, alpha elsewhere (alpha at exactly 0, as in PyTorch)."""
    xf = _as_float(x)
    # (NumPy's stubs type np.where of two scalars as Any)
    grad: NDArray[np.floating[Any]] = np.where(xf > 0, xf.dtype.type(1), xf.dtype.type(alpha))
    return grad


@overload
def leaky_relu_backward(grad_output: NDArray[_Float] | _Float, x: NDArray[_Float] | _Float,
                        alpha: _Alpha = ...) -> NDArray[_Float]: ...
@overload
def leaky_relu_backward(grad_output: ArrayLike, x: ArrayLike,
                        alpha: _Alpha = ...) -> NDArray[np.floating[Any]]: ...
def leaky_relu_backward(grad_output: ArrayLike, x: ArrayLike,
                        alpha: _Alpha = 0.01) -> NDArray[np.floating[Any]]:
    """``grad_output * leaky_relu_grad(x, alpha)``, computed as a select."""
    g = np.asarray(grad_output)
    xa = np.asarray(x)
    dtype = np.result_type(g, xa)
    if dtype.kind != "f":
        dtype = np.dtype(np.float64)
    with np.errstate(all="ignore"):  # casting a signaling NaN raises "invalid"
        gf = g.astype(dtype, copy=False)
        xf = xa.astype(dtype, copy=False)
        return np.where(xf > 0, gf, gf * dtype.type(alpha))
