"""The ``numba-cpu`` and ``numba-parallel`` backends: Numba ``@vectorize`` ufuncs.

Numba is imported and the ufuncs are built on first use (``cache=True``, so
later processes load them from Numba's disk cache instead of compiling).
The ufuncs are real NumPy ufuncs: ``NumbaUfuncBackend.ufuncs()`` hands them
out for use with broadcasting, ``out=``, ``where=`` and so on.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import threading
import types

import numpy as np

_SIGNATURES = {
    "forward": ["float32(float32, float32)", "float64(float64, float64)"],
    "grad": ["float32(float32, float32)", "float64(float64, float64)"],
    "backward": ["float32(float32, float32, float32)", "float64(float64, float64, float64)"],
}


# The scalar kernels, as plain Python; Numba compiles them per target.
def _forward(x, a):
    return x if x > 0 else x * a


def _grad(x, a):
    return 1 if x > 0 else a


def _backward(g, x, a):
    return g if x > 0 else g * a


_KERNELS = {"forward": _forward, "grad": _grad, "backward": _backward}


def _for_target(func, target):
    """A copy of ``func`` whose name carries the target.

    Numba names its disk-cache files after the function; without this the
    cpu and parallel builds of one kernel would share (and evict) one entry.
    """
    clone = types.FunctionType(func.__code__, func.__globals__, f"{func.__name__}_{target}")
    clone.__qualname__ = f"{func.__qualname__}_{target}"
    clone.__module__ = func.__module__
    return clone


class NumbaUfuncBackend:
    def __init__(self, target: str):
        self.target = target
        self._ufuncs: dict | None = None
        self._lock = threading.Lock()

    def available(self) -> tuple[bool, str]:
        if importlib.util.find_spec("numba") is None:
            return False, "numba is not installed (pip install 'fastleaky[numba]')"
        version = importlib.metadata.version("numba")
        return True, f'numba {version}, @vectorize(target="{self.target}")'

    def native_dtypes(self) -> frozenset:
        return frozenset({np.float32, np.float64})

    def ufuncs(self) -> dict:
        """``{"forward", "grad", "backward"}`` -> compiled ufunc (built once)."""
        if self._ufuncs is None:
            with self._lock:
                if self._ufuncs is None:
                    import numba

                    self._ufuncs = {
                        op: numba.vectorize(
                            _SIGNATURES[op], target=self.target, cache=True
                        )(_for_target(kernel, self.target))
                        for op, kernel in _KERNELS.items()
                    }
        return self._ufuncs

    # The ordered compare sets the FP "invalid" flag on NaN input and NumPy
    # turns flags raised inside a ufunc loop into RuntimeWarnings; results
    # are defined, so the flags are ignored (errstate costs ~1.4 us a call).
    def forward(self, x, a, out):
        uf = self.ufuncs()["forward"]
        with np.errstate(all="ignore"):
            uf(x, a, out=out)

    def grad(self, x, a, out):
        uf = self.ufuncs()["grad"]
        with np.errstate(all="ignore"):
            uf(x, a, out=out)

    def backward(self, g, x, a, out):
        uf = self.ufuncs()["backward"]
        with np.errstate(all="ignore"):
            uf(g, x, a, out=out)


CPU = NumbaUfuncBackend("cpu")
PARALLEL = NumbaUfuncBackend("parallel")
