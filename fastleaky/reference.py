"""The NumPy reference: the definition every backend is tested against.

The ``numpy`` backend (``_backends/numpy_blocks.py``) runs these functions
block by block; it is also the fallback for dtypes a compiled backend has
no native loop for (e.g. ``longdouble``).  Computed in x's
floating dtype with alpha first cast to that dtype, as a select (never
``max(x, alpha * x)``, which is wrong for alpha > 1 and alpha < 0).
"""

from __future__ import annotations

import numpy as np

__all__ = ["leaky_relu", "leaky_relu_grad", "leaky_relu_backward"]


def _as_float(x) -> np.ndarray:
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(np.float64)


def leaky_relu(x, alpha: float = 0.01) -> np.ndarray:
    """``np.where(x > 0, x, x * alpha)`` in x's floating dtype."""
    x = _as_float(x)
    a = x.dtype.type(alpha)
    # -inf * 0 and overflow (alpha > 1 on float16) are defined results here,
    # not errors: no RuntimeWarning, as for every backend.
    with np.errstate(all="ignore"):
        return np.where(x > 0, x, x * a)


def leaky_relu_grad(x, alpha: float = 0.01) -> np.ndarray:
    """1 where ``x > 0``, alpha elsewhere (alpha at exactly 0, as in PyTorch)."""
    x = _as_float(x)
    return np.where(x > 0, x.dtype.type(1), x.dtype.type(alpha))


def leaky_relu_backward(grad_output, x, alpha: float = 0.01) -> np.ndarray:
    """``grad_output * leaky_relu_grad(x, alpha)``, computed as a select."""
    g = np.asarray(grad_output)
    x = np.asarray(x)
    dtype = np.result_type(g, x)
    if dtype.kind != "f":
        dtype = np.dtype(np.float64)
    with np.errstate(all="ignore"):  # casting a signaling NaN raises "invalid"
        g = g.astype(dtype, copy=False)
        x = x.astype(dtype, copy=False)
        return np.where(x > 0, g, g * dtype.type(alpha))
