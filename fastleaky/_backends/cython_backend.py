"""The ``cython`` backend: compiled C loops (``_cython_loop``), serial or OpenMP.

A parallel call splits the array into one contiguous, cache-line aligned
chunk per thread.  float16 has its own loops (``_select.h``), picked for the
CPU when the extension loads; ``_loop.half_isa()`` names them.  In a forked child of a process that ran OpenMP threads
the loops are serial (``_forksafe``).
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

parallel = True


def available() -> tuple[bool, str]:
    if _loop is None:
        return False, f"the Cython extension was not built ({_import_error})"
    features = [
        "OpenMP" if _loop.HAVE_OPENMP else "no OpenMP (serial only)",
        "ISA dispatch" if _loop.ISA_DISPATCH else "baseline ISA",
        f"native float16 ({_loop.half_isa()})" if _loop.HAVE_FLOAT16 else "float16 via NumPy",
    ]
    return True, ", ".join(features)


def native_dtypes() -> frozenset:
    types = {np.float32, np.float64}
    if _loop is not None and _loop.HAVE_FLOAT16:
        types.add(np.float16)
    return frozenset(types)


def max_threads() -> int:
    """Threads an OpenMP region would use now (``OMP_NUM_THREADS``, ...)."""
    return _loop.max_threads()


def run(op, inputs, a, out, nthreads):
    x = inputs[-1]
    _loop.run(op.code, inputs[0], x, a, out, nthreads)


def plain_entry():
    """``_loop.plain_call``: the plain case's checks and thread choice in C
    (see ``boundary.plain_out`` and ``threads.for_call``), told the current
    thresholds and where the thread cap lives."""
    _loop.set_plain_call_config(config.parallel_min_for(np.dtype(np.float16)),
                                config.parallel_min_for(np.dtype(np.float32)),
                                config.parallel_min_for(np.dtype(np.float64)),
                                threads._limit, config.ENV_THREADS)
    return _loop.plain_call


def pointer_entry():
    """``_loop.pointer_call(op, g, x, alpha, out, n, typenum)``: the kernel
    on raw addresses (a tensor's memory), with ``plain_call``'s thread rules
    and the current thresholds; None when the extension is not built."""
    if _loop is None:
        return None
    plain_entry()  # the thresholds and the thread cap, shared with plain_call
    return _loop.pointer_call
