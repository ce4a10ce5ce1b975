"""Numba kernels of the numba-cpu / numba-parallel backends (imports Numba).

Imported on the first call that needs them, never by ``import fastleaky``.
One scalar definition per operation (``_forward``, ``_grad``, ``_backward``)
is compiled two ways:

- as ``@vectorize`` ufuncs for targets "cpu" and "parallel"
  (``ufuncs(target)``), real NumPy ufuncs for users who want broadcasting,
  ``where=``, reductions and so on;
- as ``@njit`` loops (``*_serial``, and ``prange`` loops ``*_parallel``),
  which is what the backends call.  Measured on a 2-core EPYC, float32:

  =====================================  ============  ==========  ===========
  form                                    100 elems    65536       4M elements
  =====================================  ============  ==========  ===========
  cpu ufunc, scalar alpha, ``out=``       2.6 us        0.13x copy  0.3x copy
  ``@njit`` loop                          0.4 us        0.9-1.1x    0.8-1.0x
  =====================================  ============  ==========  ===========

  A ufunc call passes the scalar alpha with stride 0, and Numba's ufunc loop
  takes its vectorized path only when every argument has unit stride
  (``is_unit_strided`` in ``numba/np/ufunc/wrappers.py``); the same holds in
  every thread of a "parallel" ufunc (0.57x of copy at 2**24 elements with
  TBB).  NumPy's ufunc call also costs ~1.5 us, and it turns the FP "invalid"
  flag that the vectorized compare raises on NaN into a RuntimeWarning.
  Building the six ufunc loops even from the disk cache took 0.66 s, against
  ~0.05 s for the cached ``@njit`` loops, so the ufuncs are built only on
  request.

Everything is ``cache=True``: later processes load it from Numba's cache.
"""

from __future__ import annotations

from ._numba_tbb import preload

preload()  # before Numba starts its thread pool

import numba  # noqa: E402

SIG_UNARY = ["float32(float32, float32)", "float64(float64, float64)"]
SIG_BINARY = ["float32(float32, float32, float32)", "float64(float64, float64, float64)"]


def _forward(x, a):
    return x if x > 0 else x * a


def _grad(x, a):
    return 1 if x > 0 else a


def _backward(g, x, a):
    return g if x > 0 else g * a


_forward_scalar = numba.njit(cache=True, inline="always")(_forward)
_grad_scalar = numba.njit(cache=True, inline="always")(_grad)
_backward_scalar = numba.njit(cache=True, inline="always")(_backward)


@numba.njit(cache=True)
def forward_serial(x, a, out):
    for i in range(x.size):
        out[i] = _forward_scalar(x[i], a)


@numba.njit(cache=True)
def grad_serial(x, a, out):
    for i in range(x.size):
        out[i] = _grad_scalar(x[i], a)


@numba.njit(cache=True)
def backward_serial(g, x, a, out):
    for i in range(x.size):
        out[i] = _backward_scalar(g[i], x[i], a)


@numba.njit(parallel=True, cache=True)
def forward_parallel(x, a, out):
    for i in numba.prange(x.size):
        out[i] = _forward_scalar(x[i], a)


@numba.njit(parallel=True, cache=True)
def grad_parallel(x, a, out):
    for i in numba.prange(x.size):
        out[i] = _grad_scalar(x[i], a)


@numba.njit(parallel=True, cache=True)
def backward_parallel(g, x, a, out):
    for i in numba.prange(x.size):
        out[i] = _backward_scalar(g[i], x[i], a)


_ufuncs: dict = {}


def ufuncs(target: str) -> dict:
    """``{"forward", "grad", "backward"}`` -> ``@vectorize`` ufunc for ``target``.

    Built on first request.  Not disk-cached: the cpu and parallel builds of
    one Python function would share (and overwrite) one cache index.
    """
    if target not in _ufuncs:
        _ufuncs[target] = {
            name: numba.vectorize(sigs, target=target)(func)
            for name, func, sigs in (("forward", _forward, SIG_UNARY),
                                     ("grad", _grad, SIG_UNARY),
                                     ("backward", _backward, SIG_BINARY))
        }
    return _ufuncs[target]
