"""Calls in a forked child of a process that ran GNU OpenMP threads.

GNU OpenMP (libgomp) is not fork-safe: a child made by ``fork()`` inherits
the runtime's record of its thread pool but not the threads, so its next
parallel region waits for them forever.  Measured here with a
``multiprocessing`` fork pool, after one parallel call in the parent:

- the Cython OpenMP loops hung in every child;
- Numba's ``omp`` threading layer terminated every child ("fork() called
  from a process already using GNU OpenMP"), and it hung when the parent had
  only run the Cython loops (both use the same libgomp).

Numba's TBB layer (which shuts TBB down before a fork) and its workqueue
survive a fork; the Cython loops' own TBB threads are not shut down, and a
child cannot use them.  So in a forked child of a process that started GNU
OpenMP threads or the Cython loops' TBB threads, the backends that would
use them run their serial loops instead (correct results, one thread).  A child that needs all
cores should be started with the "spawn" or "forkserver" method.
"""

from __future__ import annotations

import os
import sys

_child_of_openmp_process = False


def gnu_openmp_started() -> bool:
    """True when this process has started GNU OpenMP threads (either
    backend) or the Cython loops' TBB threads."""
    loop = sys.modules.get("fastleaky._backends._cython_loop")
    if loop is not None and loop.threads_started():
        return True
    numba = sys.modules.get("numba")
    if numba is None:
        return False
    try:
        layer: str = numba.threading_layer()
    except ValueError:  # Numba's threads not started
        return False
    return layer == "omp"


def child_of_openmp_process() -> bool:
    """True in a forked child (or grandchild) of a process that ran GNU OpenMP threads."""
    return _child_of_openmp_process


def _after_fork_in_child() -> None:
    global _child_of_openmp_process
    if _child_of_openmp_process or gnu_openmp_started():
        _child_of_openmp_process = True
        loop = sys.modules.get("fastleaky._backends._cython_loop")
        if loop is not None:
            loop.set_serial_only(True)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
