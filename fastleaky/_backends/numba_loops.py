"""The ``numba-cpu`` and ``numba-parallel`` backends: Numba ``@njit`` loops.

Each operation's scalar definition (``fastleaky.ops``) is compiled into a
serial loop and a ``prange`` loop (``_numba_kernels``); float16 is computed
natively there too.  ``numba-cpu`` runs the serial loops, ``numba-parallel``
the ``prange`` ones above the size where threads pay off.

This module is imported by ``fastleaky.backends()`` and must stay cheap: it
imports Numba (through ``_numba_kernels``) only on the first computation.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import threading
import types

import numpy as np

from .. import boundary, ops, threads
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


# ---------------------------------------------------------------- compiled copies
#
# Used by the CPU loops, ``fastleaky.jit`` and the cuda kernels alike; here
# because this module imports nothing heavy.

def definitions_digest(*functions) -> str:
    """A short digest of the code of ``functions`` (constants and names
    included), the same in every process."""
    h = hashlib.sha256()
    for func in functions:
        _hash_code(h, func.__code__)
    return h.hexdigest()[:12]


def _hash_code(h, code) -> None:
    h.update(code.co_code)
    h.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _hash_code(h, const)
        elif isinstance(const, frozenset):  # its order varies with string hashing
            h.update(repr(sorted(map(repr, const))).encode())
        else:
            h.update(repr(const).encode())


def compiled_copy(template, name: str, bindings: dict, inlined=()):
    """A copy of function ``template`` named ``name``, with ``bindings`` added
    to its globals, for Numba to compile with its disk cache
    (``njit_with_disk_cache``).

    Numba names its disk-cache files after a function's qualified name, so
    each copy needs its own.  The qualified name also carries a digest of
    the ``inlined`` functions: their code is compiled into the copy, but the
    cache only notices changes to the template's own file, so a changed
    definition must change the name.
    """
    namespace = dict(template.__globals__)
    namespace.update(bindings)
    copy = types.FunctionType(template.__code__, namespace, name,
                              template.__defaults__, template.__closure__)
    copy.__qualname__ = f"{name}_{definitions_digest(*inlined)}" if inlined else name
    copy.__module__ = template.__module__
    copy.__doc__ = template.__doc__
    return copy


def njit_with_disk_cache(func, **options):
    """``numba.njit(cache=True, **options)(func)`` where Numba finds a
    writable cache folder for ``func``'s source file, else the same
    dispatcher without the disk cache (compiled in memory in each process).

    Numba's ``cache=True`` raises ``RuntimeError: cannot cache function``
    when none of its cache locations (``NUMBA_CACHE_DIR``, the
    ``__pycache__`` next to the source, the user's cache folder) is
    writable, as for a read-only install run by a user without a home
    folder: the function must still compile and run there.  The decision is
    made once, here, per function; ``disk_cache_state`` reports it.
    """
    import numba

    dispatcher = numba.njit(**options)(func)
    try:
        dispatcher.enable_caching()  # what ``cache=True`` does: finds a locator or raises
    except RuntimeError as exc:
        if "cannot cache" not in str(exc):
            raise
        _disk_cache[func.__qualname__] = None
    else:
        _disk_cache[func.__qualname__] = getattr(dispatcher._cache, "cache_path", "?")
    return dispatcher


# qualified name -> cache folder, or None where compiled without the disk cache
_disk_cache: dict = {}


def record_disk_cache(name: str, folder) -> None:
    """Note where a kernel built elsewhere (the cuda backend) is cached, or
    None when it was compiled without the disk cache."""
    _disk_cache[name] = folder


def disk_cache_state() -> dict:
    """``{"cached": [folders], "uncached": [function names]}`` for the
    functions built by ``njit_with_disk_cache`` so far in this process."""
    return {
        "cached": sorted({p for p in _disk_cache.values() if p is not None}),
        "uncached": sorted(name for name, p in _disk_cache.items() if p is None),
    }


# ---------------------------------------------------------------- parallel safety

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


def _run_parallel(loop, serial, args, nthreads) -> None:
    """``loop(*args)`` on Numba's threads, or ``serial(*args)`` where that
    cannot be done safely."""
    if _parallel_unsafe_after_fork():
        serial(*args)
        return
    # Numba's workqueue layer aborts the process when two threads enter
    # parallel code at once: there, a call that finds another in flight
    # runs serially instead.  TBB and OpenMP need no guard.
    guarded = _layer_guard[0]
    if guarded is None:
        with _parallel_gate:
            try:
                _run_capped(loop, args, nthreads)
            finally:
                _learn_layer()
        return
    if not guarded:
        _run_capped(loop, args, nthreads)
        return
    if not _parallel_gate.acquire(blocking=False):
        serial(*args)
        return
    try:
        _run_capped(loop, args, nthreads)
    finally:
        _parallel_gate.release()


def _run_capped(loop, args, nthreads) -> None:
    """``loop(*args)`` on at most ``nthreads`` threads (0: Numba's own count)."""
    if nthreads == threads.RUNTIME_DEFAULT:
        loop(*args)
        return
    # Only a cap reads Numba's thread count: that read is slow right after
    # a large call (the interpreter's caches are cold).
    numba = kernels().numba
    current = numba.get_num_threads()
    if nthreads >= current:
        loop(*args)
        return
    numba.set_num_threads(nthreads)  # thread-local in Numba
    try:
        loop(*args)
    finally:
        numba.set_num_threads(current)


# ---------------------------------------------------------------- the backends

_F16 = np.dtype(np.float16)
_BACKWARD = ops.BACKWARD.code


def _flat(a: np.ndarray) -> np.ndarray:
    return a if a.ndim == 1 else a.reshape(-1)


class NumbaLoops:
    """A Numba backend: the serial loops, or (``parallel``) the ``prange`` ones."""

    def __init__(self, parallel: bool):
        self.parallel = parallel
        self._serial = None  # the serial loops, by op code, once compiled
        self._prange = None  # the prange loops, likewise

    def available(self) -> tuple[bool, str]:
        if importlib.util.find_spec("numba") is None:
            return False, "numba is not installed (pip install 'fastleaky[numba]')"
        version = importlib.metadata.version("numba")
        loops = "@njit(parallel=True) prange loops" if self.parallel else "serial @njit loops"
        return True, f"numba {version}, {loops}"

    def native_dtypes(self) -> frozenset:
        return frozenset({np.float16, np.float32, np.float64})

    def _load_loops(self):
        k = kernels()
        self._prange = tuple(k.LOOPS[op.name, True] for op in ops.BY_CODE)
        self._serial = tuple(k.LOOPS[op.name, False] for op in ops.BY_CODE)
        return self._serial

    def run(self, op, inputs, a, out, nthreads) -> None:
        """Compute ``op`` into ``out``.

        Parameters
        ----------
        op : fastleaky.ops.Op
        inputs : tuple of numpy.ndarray
            ``op.arity`` arrays: exactly ndarray, 1-D, C-contiguous, native
            byte order, of out's dtype; each is out itself or disjoint from it.
        a : numpy scalar
            alpha, of out's dtype.
        out : numpy.ndarray
            Like the inputs.
        nthreads : int
            1 serial, 0 Numba's own thread count, k >= 2 at most k threads
            (``threads.for_call``); the serial backend runs serially.
        """
        if out.dtype == _F16:
            # Numba has no float16 on the CPU: the loops take the bits.
            inputs = tuple(v.view(np.uint16) for v in inputs)
            out, a = out.view(np.uint16), np.float32(a)
        self._call(op.code, (*inputs, a, out), nthreads)

    def _call(self, code, args, nthreads) -> None:
        serial = self._serial or self._load_loops()
        if self.parallel and nthreads != threads.SERIAL:
            _run_parallel(self._prange[code], serial[code], args, nthreads)
        else:
            serial[code](*args)

    def plain_call(self, code, g, x, alpha, out):
        """The plain case (``boundary.plain_out``) in one step.

        Parameters
        ----------
        code : int
            ``Op.code`` of the operation.
        g, x : numpy.ndarray
            The inputs; ``g`` is read by the backward only (pass ``x`` otherwise).
        alpha : float
        out : numpy.ndarray or None

        Returns
        -------
        numpy.ndarray or NotImplemented
            The result (``out``, or a new array of x's shape), with the bits
            ``run`` gives; NotImplemented for any call that is not the plain
            case.
        """
        result = boundary.plain_out(g, x, alpha, out)
        if result is None:
            return NotImplemented
        # alpha in x's type: a Python float is a float64 to Numba
        a = alpha if x.itemsize == 8 else np.float32(alpha)
        if code == _BACKWARD:
            args = (_flat(g), _flat(x), a, _flat(result))
        else:
            args = (_flat(x), a, _flat(result))
        # ``_call``, written out: this path is all per-call overhead
        serial = self._serial or self._load_loops()
        if self.parallel:
            nthreads = threads.for_call(x.dtype, x.size)
            if nthreads != threads.SERIAL:
                _run_parallel(self._prange[code], serial[code], args, nthreads)
                return result
        serial[code](*args)
        return result

    def plain_entry(self):
        """The registry's fast entry: ``plain_call``."""
        return self.plain_call


CPU = NumbaLoops(parallel=False)
PARALLEL = NumbaLoops(parallel=True)
