"""The ``cython`` backend: compiled C loops (``_cython_loop``), serial or parallel.

A parallel call runs on TBB's work-stealing scheduler where the build has
it (``_tbb_pool``) and PyPI's ``tbb`` can be loaded: the array is cut into
cache-line aligned chunks that idle threads take, the caller included, so
a helper thread that the OS does not schedule (other processes, another
library's thread pool) leaves its share to the caller instead of stalling
the call.  Otherwise one contiguous chunk per OpenMP thread.  Either way a
call takes only the cores other fastleaky calls in flight leave free, and
every thread computes in the caller's floating-point mode.  float16 has its
own loops (``_select.h``), picked for the CPU when the extension loads;
``_loop.half_isa()`` names them.  In a forked child of a process that ran
parallel calls the loops are serial (``_forksafe``).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import config, threads
from . import _forksafe

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from ctypes import CDLL

    from numpy.typing import NDArray

    from ..ops import Op
    from ..registry import PlainEntry

    #: ``pointer_entry()``: ``f(op, g, x, alpha, out, n, typenum, stream_ok)``
    #: on raw addresses (an invalid thread cap in the environment raises).
    PointerEntry = Callable[[int, int, int, float, int, int, int, bool], None]

try:
    from . import _cython_loop as _loop
except ImportError as exc:  # not built (e.g. a source checkout without build_ext)
    # None marks the unbuilt extension; every function below that reads
    # ``_loop`` without checking runs only once ``available()`` said yes,
    # so it keeps the module's own type.
    _loop = None  # type: ignore[assignment]
    _import_error = str(exc)

if _loop is not None and _forksafe.child_of_openmp_process():
    _loop.set_serial_only(True)  # first imported in a forked child of an OpenMP process
if _loop is not None:
    _loop.set_stream_min_bytes(config.STREAM_MIN_BYTES)


def _install_pool() -> str:
    """Hand the loops TBB's scheduler if the build has it and libtbb loads;
    returns why not, or "" when installed."""
    from . import _numba_tbb

    loaded = _numba_tbb.preload()  # the libtbb.so.12 Numba's TBB layer uses too
    try:
        from . import _tbb_pool
    except ImportError as exc:
        if "libtbb" in str(exc) or "undefined symbol" in str(exc):
            return f"TBB not loadable ({loaded}; {exc})"
        return "built without TBB"
    _loop.set_pool_chunk_bytes(config.POOL_CHUNK_BYTES)
    _loop.use_pool(_tbb_pool.parallel_for(), _tbb_pool.concurrency())
    return ""


def _threading_choice() -> tuple[str, str]:
    """``FASTLEAKY_THREADING`` ("auto" when unset), and why it was not taken."""
    value = os.environ.get(config.ENV_THREADING, "").strip().lower() or "auto"
    if value in config.THREADING_CHOICES:
        return value, ""
    return "auto", (f"{config.ENV_THREADING}={value!r} ignored: not one of "
                    f"{', '.join(config.THREADING_CHOICES)}")


_choice, _choice_problem = _threading_choice()
if _loop is None:
    _no_pool_reason = ""
elif _choice == "openmp":
    _no_pool_reason = f"{config.ENV_THREADING}=openmp"
else:
    _no_pool_reason = _install_pool()


def tbb_available() -> bool:
    """Whether this build can run the loops on TBB here (for tests and measurements)."""
    try:
        from . import _tbb_pool  # noqa: F401
    except ImportError:
        return False
    return True



parallel = True


def available() -> tuple[bool, str]:
    if _loop is None:
        return False, f"the Cython extension was not built ({_import_error})"
    if _loop.pool() == "tbb":
        threading = "TBB work stealing"
    elif _loop.HAVE_OPENMP:
        threading = f"OpenMP ({_no_pool_reason})"
    else:
        threading = f"serial only: no OpenMP, {_no_pool_reason}"
    features = [
        threading,
        *([_choice_problem] if _choice_problem else []),
        "ISA dispatch" if _loop.ISA_DISPATCH else "baseline ISA",
        f"native float16 ({_loop.half_isa()})" if _loop.HAVE_FLOAT16 else "float16 via NumPy",
    ]
    return True, ", ".join(features)


def native_dtypes() -> frozenset[type[np.generic]]:
    types: set[type[np.generic]] = {np.float32, np.float64}
    if _loop is not None and _loop.HAVE_FLOAT16:
        types.add(np.float16)
    return frozenset(types)


def max_threads() -> int:
    """Threads a parallel call would use now: ``OMP_NUM_THREADS`` /
    ``omp_set_num_threads``, within the cores TBB may use."""
    return _loop.max_threads()


def pool() -> str:
    """What runs the parallel calls: ``"tbb"``, ``"openmp"`` or ``"serial"``."""
    return _loop.pool()


def run(op: Op, inputs: Sequence[NDArray[Any]], a: np.generic, out: NDArray[Any],
        nthreads: int) -> None:
    x = inputs[-1]
    _loop.run(op.code, inputs[0], x, a, out, nthreads)


def plain_entry() -> PlainEntry:
    """``_loop.plain_call``: the plain case's checks and thread choice in C
    (see ``boundary.plain_out`` and ``threads.for_call``), told the current
    thresholds and where the thread cap lives."""
    _loop.set_plain_call_config(config.parallel_min_for(np.dtype(np.float16)),
                                config.parallel_min_for(np.dtype(np.float32)),
                                config.parallel_min_for(np.dtype(np.float64)),
                                threads._limit, config.ENV_THREADS)
    return _loop.plain_call


# The OpenMP entry points ``use_team`` needs, all taken from one library.
# The team's size is torch's ``at::get_num_threads()`` (which applies
# ``torch.set_num_threads`` to the calling thread first: OpenMP's own count
# is per thread, and torch sets it in a thread only at its first op there),
# else ``omp_get_max_threads``.
_TEAM_SYMBOLS = ("GOMP_parallel", "omp_get_thread_num")
_TEAM_SIZE_SYMBOLS = ("_ZN2at15get_num_threadsEv", "omp_get_max_threads")
_team_problem: str | None = None  # why there is no team ("" when installed; None: not looked for)


def _torch_openmp_runtime(torch_file: str) -> CDLL | None:
    """PyTorch's CPU library as a ``ctypes.CDLL`` whose symbol lookup
    (``dlsym`` on its handle: the library, then what it links) finds the
    OpenMP runtime torch's operators call -- its own ``torch/lib`` copy of
    libgomp, or one loaded before it under the same name -- or None."""
    import ctypes
    from pathlib import Path

    lib = Path(torch_file).parent / "lib"
    for name in ("libtorch_cpu.so", "libtorch_cpu.dylib"):
        try:  # loaded already by ``import torch``: never load a second copy
            return ctypes.CDLL(str(lib / name), mode=os.RTLD_NOLOAD)
        except (OSError, AttributeError):  # not there, or no RTLD_NOLOAD on this platform
            continue
    return None


def share_torch_threads() -> str:
    """Run the parallel calls on tensor memory (``pointer_call``), and NumPy
    calls with results of ``config.TEAM_MIN_BYTES`` and more, on PyTorch's
    own OpenMP team, as torch's operators run: next to torch ops a second
    pool of threads waits for cores that torch's threads, spinning after
    their last op, still hold; on torch's team they follow
    ``torch.set_num_threads``.  Needs torch imported; not with
    ``FASTLEAKY_THREADING=tbb`` or ``openmp``, which choose the threads of
    every call.  Returns why not, or "" when they do (looked up once)."""
    import ctypes

    global _team_problem
    if _team_problem is not None:
        return _team_problem
    torch_file = getattr(sys.modules.get("torch"), "__file__", None)
    if _loop is None:
        return "the Cython extension was not built"
    if _choice != "auto":
        _team_problem = f"{config.ENV_THREADING}={_choice}"
    elif not torch_file or "torch._C" not in sys.modules:
        return "PyTorch is not imported"  # looked for again at the next call that asks
    else:
        runtime = _torch_openmp_runtime(torch_file)
        try:
            if runtime is None:
                raise AttributeError("libtorch_cpu not loaded")
            addresses = [ctypes.cast(getattr(runtime, name), ctypes.c_void_p).value
                         for name in _TEAM_SYMBOLS]
            size = next((getattr(runtime, name) for name in _TEAM_SIZE_SYMBOLS
                         if hasattr(runtime, name)), None)
            if size is None:
                raise AttributeError("no omp_get_max_threads")
            addresses.append(ctypes.cast(size, ctypes.c_void_p).value)
        except AttributeError as exc:
            _team_problem = f"PyTorch's OpenMP runtime not usable ({exc})"
        else:
            # (``.value`` is None for a NULL pointer, which ctypes never gives
            # for a symbol it found: it raises the AttributeError instead)
            _loop.use_team(*(address or 0 for address in addresses))
            _team_problem = ""
    _loop.set_team_rule(config.TEAM_MIN_BYTES if _team_problem == "" else 0, None)
    return _team_problem


def _no_team_after_fork() -> None:
    """In a forked child of a process that imported PyTorch: torch's OpenMP
    threads (its operators', and those of the calls made on its team) are
    not in the child, and a team call would wait for them forever.  So the
    child's calls use the loops' own threads (which ``_forksafe`` makes
    serial where they ran in the parent), and OpenMP ones not at all: the
    extension's OpenMP runtime may be the very library torch loaded."""
    global _team_problem
    if _loop is None or "torch" not in sys.modules:
        return
    _loop.use_team(0, 0, 0)
    _loop.set_team_rule(0, None)
    _team_problem = "a forked child of a process that imported PyTorch"
    if _loop.pool() == "openmp":
        _loop.set_serial_only(True)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_no_team_after_fork)


def _look_for_team() -> None:
    """``set_team_rule``'s finder: before a large NumPy call, while none is installed."""
    share_torch_threads()


if _loop is not None and _choice == "auto":
    _loop.set_team_backoff(config.TEAM_BACKOFF_SECONDS)
    _loop.set_team_rule(config.TEAM_MIN_BYTES, _look_for_team)


def pointer_entry() -> PointerEntry | None:
    """``_loop.pointer_call(op, g, x, alpha, out, n, typenum, stream_ok)``: the kernel
    on raw addresses (a tensor's memory), with ``plain_call``'s thread rules
    and the current thresholds; None when the extension is not built."""
    if _loop is None:
        return None
    plain_entry()  # the thresholds and the thread cap, shared with plain_call
    return _loop.pointer_call
