"""The NumPy reference: the definition every backend is tested against.

It is also the ``numpy`` backend and the fallback for dtypes a compiled
backend has no native loop for (e.g. ``longdouble``).  Computed in x's
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


# ---- backend protocol: kernels on flat, contiguous arrays of one dtype ----

def available() -> tuple[bool, str]:
    return True, f"numpy {np.__version__}"


def native_dtypes() -> frozenset:
    return frozenset(np.sctypeDict[t] for t in ("float16", "float32", "float64", "longdouble"))


# The kernels run the reference's np.where block by block, so that a call
# with ``out=`` allocates no temporaries proportional to the array (a whole
# array np.where made a mask, ``x * a`` and its result: 2.25x the array for
# float32), only this fixed-size scratch.  Each block is computed before
# it is written, so ``out`` may be ``x`` (or ``g``) itself.
BLOCK = 1 << 14


def _blocks(n):
    for lo in range(0, n, BLOCK):
        yield slice(lo, min(lo + BLOCK, n))


def forward(x, a, out):
    with np.errstate(all="ignore"):
        for b in _blocks(out.size):
            xb = x[b]
            out[b] = np.where(xb > 0, xb, xb * a)


def grad(x, a, out):
    one = x.dtype.type(1)
    for b in _blocks(out.size):
        out[b] = np.where(x[b] > 0, one, a)


def backward(g, x, a, out):
    with np.errstate(all="ignore"):
        for b in _blocks(out.size):
            gb = g[b]
            out[b] = np.where(x[b] > 0, gb, gb * a)
