"""The ``cython`` backend: compiled C loops (``_cython_loop``), serial or OpenMP.

Small arrays run on the calling thread; from
``config.parallel_min_elements(dtype)`` on, the array is split into one
contiguous, cache-line aligned chunk per thread.  In a forked child of a
process that ran OpenMP threads the loops are serial (``_forksafe``).
"""

from __future__ import annotations

import numpy as np

from .. import config, threads
from . import _forksafe

try:
    from . import _cython_loop as _loop
except ImportError as exc:  # not built (e.g. a source checkout without build_ext)
    _loop = None
    _import_error = str(exc)

if _loop is not None and _forksafe.child_of_openmp_process():
    _loop.set_serial_only(True)  # first imported in a forked child of an OpenMP process


def available() -> tuple[bool, str]:
    if _loop is None:
        return False, f"the Cython extension was not built ({_import_error})"
    features = [
        "OpenMP" if _loop.HAVE_OPENMP else "no OpenMP (serial only)",
        "ISA dispatch" if _loop.ISA_DISPATCH else "baseline ISA",
        "native float16" if _loop.HAVE_FLOAT16 else "float16 via NumPy",
    ]
    return True, ", ".join(features)


def native_dtypes() -> frozenset:
    types = {np.float32, np.float64}
    if _loop is not None and _loop.HAVE_FLOAT16:
        types.add(np.float16)
    return frozenset(types)


def _nthreads(out) -> int:
    if out.size < config.parallel_min_for(out.dtype):
        return 1
    return threads.get(_loop.max_threads())


def forward(x, a, out):
    _loop.forward(x, a, out, _nthreads(out))


def grad(x, a, out):
    _loop.grad(x, a, out, _nthreads(out))


def backward(g, x, a, out):
    _loop.backward(g, x, a, out, _nthreads(out))
