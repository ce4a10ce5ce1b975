"""The ``numba-cpu`` and ``numba-parallel`` backends: Numba kernels.

The scalar kernels are Numba ``@vectorize`` ufuncs for targets "cpu" and
"parallel" (``CPU.ufuncs()``, ``PARALLEL.ufuncs()``); calls through the API
run the same scalar code in ``@njit`` loops, serial or ``prange``.

This module is imported by ``fastleaky.backends()`` and must stay cheap: it
imports Numba (through ``_numba_kernels``) only on the first computation.
See ``_numba_kernels`` for why the ufuncs are driven from ``@njit`` code.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import threading

import numpy as np

from .. import config, threads

_kernels = None
_lock = threading.Lock()


def kernels():
    """The compiled-kernels module (imports Numba, loads or compiles on first use)."""
    global _kernels
    if _kernels is None:
        with _lock:
            if _kernels is None:
                from . import _numba_kernels

                _kernels = _numba_kernels
    return _kernels


class NumbaUfuncBackend:
    def __init__(self, target: str):
        self.target = target
        self.parallel = target == "parallel"

    def available(self) -> tuple[bool, str]:
        if importlib.util.find_spec("numba") is None:
            return False, "numba is not installed (pip install 'fastleaky[numba]')"
        version = importlib.metadata.version("numba")
        return True, f'numba {version}, @vectorize(target="{self.target}")'

    def native_dtypes(self) -> frozenset:
        return frozenset({np.float32, np.float64})

    def ufuncs(self) -> dict:
        """``{"forward", "grad", "backward"}`` -> this target's NumPy ufunc."""
        return kernels().ufuncs(self.target)

    def _run(self, op, out, *args):
        k = kernels()
        if not self.parallel or out.size < config.parallel_min_elements(out.dtype.name):
            return getattr(k, f"{op}_serial")(*args, out)
        import numba

        current = numba.get_num_threads()
        wanted = threads.get(current)
        if wanted == current:
            return getattr(k, f"{op}_parallel")(*args, out)
        numba.set_num_threads(wanted)  # thread-local in Numba
        try:
            return getattr(k, f"{op}_parallel")(*args, out)
        finally:
            numba.set_num_threads(current)

    def forward(self, x, a, out):
        self._run("forward", out, x, a)

    def grad(self, x, a, out):
        self._run("grad", out, x, a)

    def backward(self, g, x, a, out):
        self._run("backward", out, g, x, a)


CPU = NumbaUfuncBackend("cpu")
PARALLEL = NumbaUfuncBackend("parallel")
