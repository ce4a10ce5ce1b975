"""The one case list: dtypes, layouts, edge values, alphas and sizes.

Used by the test suite (correctness on every backend), the pytest-benchmark
suite and ``fastleaky bench``, so that what is measured is what is tested.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import DTypeLike, NDArray

DTYPES = ("float16", "float32", "float64")
ALPHAS = (0.0, 0.01, 0.2, 1.0, 1.5, -0.5)


def edge_values(dtype: DTypeLike, signalling: bool = True) -> NDArray[np.floating[Any]]:
    """NaN (both signs, quiet and signalling, with payloads), +-inf, +-0.0,
    subnormals, extremes."""
    dtype = np.dtype(dtype)
    info = np.finfo(dtype)
    bits = np.dtype(f"u{dtype.itemsize}")
    nbits = 8 * dtype.itemsize
    # a quiet NaN with a non-default payload (bit pattern 0x7f...5 style)
    quiet_bit = 1 << (info.nmant - 1)
    exp_mask = ((1 << info.nexp) - 1) << info.nmant
    payload_nan = np.array([exp_mask | quiet_bit | 5], dtype=bits).view(dtype)[0]
    neg_payload_nan = np.array([(1 << (nbits - 1)) | exp_mask | quiet_bit | 3],
                               dtype=bits).view(dtype)[0]
    # signalling NaNs (quiet bit clear, payload non-zero): every CPU backend
    # gives the bits the CPU's ``x * alpha`` gives (quieted, payload kept)
    snans = np.array([exp_mask | 9, (1 << (nbits - 1)) | exp_mask | 1], dtype=bits).view(dtype)
    values = [
        np.nan, -np.nan, payload_nan, neg_payload_nan, *(snans if signalling else ()),
        np.inf, -np.inf, 0.0, -0.0,
        info.smallest_subnormal, -info.smallest_subnormal,
        info.smallest_normal, -info.smallest_normal,
        info.max, -info.max, info.min / 2, info.max / 2,
        1.0, -1.0, 0.5, -0.5, 3.0, -3.0, info.eps, -info.eps,
    ]
    return np.array(values, dtype=dtype)


def sample(dtype: DTypeLike, n: int, seed: int = 0,
           signalling: bool = True) -> NDArray[np.floating[Any]]:
    """``n`` values: standard normal (half negative, random order) with the
    edge values spread through it (``signalling=False``: without the
    signalling NaNs, for peers that do not keep their bits)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n).astype(dtype)
    edges = edge_values(dtype, signalling)
    if n:
        positions = rng.integers(0, n, size=min(n, len(edges) * 3))
        x[positions] = np.resize(edges, len(positions))
    if n >= len(edges):
        x[: len(edges)] = edges
    return x


# name -> (function of a flat sample -> array of that layout holding it)
def _c2d(x: NDArray[Any]) -> NDArray[Any]:
    return x[: (x.size // 7) * 7].reshape(-1, 7)


LAYOUTS: dict[str, Callable[[NDArray[Any]], NDArray[Any]]] = {
    "contiguous": lambda x: x,
    "c-2d": _c2d,
    "fortran": lambda x: np.asfortranarray(_c2d(x)),
    "strided": lambda x: x[::3],
    "negative-stride": lambda x: x[::-1],
    "transposed-slice": lambda x: _c2d(x)[1::2, ::2].T,
    "byteswapped": lambda x: x.astype(x.dtype.newbyteorder("S")),
    "readonly": lambda x: _readonly(x),
    "zero-d": lambda x: x[0:1].reshape(()).copy() if x.size else np.zeros((), x.dtype),
    "empty": lambda x: x[:0],
    "empty-2d": lambda x: x[:0].reshape(0, 5),
}


def _readonly(x: NDArray[Any]) -> NDArray[Any]:
    y: NDArray[Any] = x.copy()
    y.flags.writeable = False
    return y


def make(dtype: DTypeLike, layout: str, n: int = 1000, seed: int = 0) -> NDArray[Any]:
    """One test input: ``n`` sample values of ``dtype`` in ``layout``."""
    return LAYOUTS[layout](sample(dtype, n, seed))


# Sizes (elements) swept by the comparison report.
BENCH_SIZES_QUICK = (1_000, 100_000, 1_000_000, 10_000_000)
BENCH_SIZES_FULL = (1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000)
BENCH_DTYPES = ("float32", "float64", "float16")
BENCH_DTYPES_QUICK = ("float32", "float64")
# What the benchmark suite runs when it runs as plain tests (--benchmark-disable).
BENCH_SIZES_TEST = (1_000,)
