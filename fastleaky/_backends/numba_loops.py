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
import os
import threading

import numpy as np

from .. import config, threads
from . import _forksafe

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


# None until the first parallel call has started Numba's threads; then True
# when the layer is "workqueue" (not thread-safe), else False.  Until known,
# parallel calls take the gate (blocking): the first one starts the pool.
_layer_guard: list = [None]
_parallel_gate = threading.Lock()


def _after_fork_in_child() -> None:
    # A thread of the parent may have held the gate at the fork; in the
    # child that thread is gone and the lock would never be released.
    global _parallel_gate
    _parallel_gate = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _parallel_unsafe_after_fork() -> bool:
    """In a forked child of a process that ran GNU OpenMP threads, Numba's
    parallel loops run only if its layer already runs and is not "omp"
    (Numba would terminate the child, or pick "omp" and hang in libgomp)."""
    if not _forksafe.child_of_openmp_process():
        return False
    return threading_layer() in (None, "omp")


def _learn_layer() -> None:
    import numba

    try:
        _layer_guard[0] = numba.threading_layer() == "workqueue"
    except ValueError:  # threads not started yet
        pass


def threading_layer() -> str | None:
    """Numba's threading layer once its threads run (None before, or without Numba)."""
    import sys

    numba = sys.modules.get("numba")
    if numba is None:
        return None
    try:
        return numba.threading_layer()
    except ValueError:
        return None


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
        if not self.parallel or out.size < config.parallel_min_for(out.dtype):
            return getattr(k, f"{op}_serial")(*args, out)
        if _parallel_unsafe_after_fork():
            return getattr(k, f"{op}_serial")(*args, out)
        # Numba's workqueue layer aborts the process when two threads enter
        # parallel code at once: there, a call that finds another in flight
        # runs serially instead.  TBB and OpenMP need no guard.
        guarded = _layer_guard[0]
        if guarded is None:
            with _parallel_gate:
                try:
                    return self._run_parallel(k, op, out, *args)
                finally:
                    _learn_layer()
        if not guarded:
            return self._run_parallel(k, op, out, *args)
        if not _parallel_gate.acquire(blocking=False):
            return getattr(k, f"{op}_serial")(*args, out)
        try:
            return self._run_parallel(k, op, out, *args)
        finally:
            _parallel_gate.release()

    @staticmethod
    def _run_parallel(k, op, out, *args):
        kernel = getattr(k, f"{op}_parallel")
        # Only a cap needs Numba's thread count: reading it costs ~2 us after
        # a 1e6-element call (cache-cold interpreter), 4% of that call.
        cap = threads.limit()
        if cap is None:
            return kernel(*args, out)
        current = k.numba.get_num_threads()
        if cap >= current:
            return kernel(*args, out)
        k.numba.set_num_threads(cap)  # thread-local in Numba
        try:
            return kernel(*args, out)
        finally:
            k.numba.set_num_threads(current)

    def forward(self, x, a, out):
        self._run("forward", out, x, a)

    def grad(self, x, a, out):
        self._run("grad", out, x, a)

    def backward(self, g, x, a, out):
        self._run("backward", out, g, x, a)


CPU = NumbaUfuncBackend("cpu")
PARALLEL = NumbaUfuncBackend("parallel")
