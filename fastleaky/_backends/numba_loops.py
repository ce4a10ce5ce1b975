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
import importlib
import importlib.metadata
import importlib.util
import os
import threading
import types
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

from .. import boundary, ops, threads
from . import _forksafe

_kernels: types.ModuleType | None = None
_lock = threading.Lock()


def kernels() -> types.ModuleType:
    """The compiled-kernels module (imports Numba, loads or compiles on first use)."""
    global _kernels
    if _kernels is None:
        with _lock:
            if _kernels is None:
                from . import _numba_kernels

                _kernels = _numba_kernels
    return _kernels


# ---------------------------------------------------------------- typed Numba decorators
#
# Numba's annotations are partial (none on its decorators), and where it is
# not installed the checker knows nothing of it: what its decorators give
# back would be untyped.  These wrappers declare it, so that the functions
# they compile keep their types.  Used by the CPU loops, ``fastleaky.jit``
# and the cuda kernels alike; here because this module imports nothing heavy.

_F = TypeVar("_F", bound=Callable[..., Any])
_P = ParamSpec("_P")
_S = TypeVar("_S", bound=np.generic)

#: Numba's compile-time objects (types, signatures, its typing context) and
#: llvmlite's IR values, as typing functions and code generators see them.
NumbaObject = Any
#: A code generator: ``(context, builder, signature, args)`` -> LLVM value.
Codegen = Callable[[NumbaObject, NumbaObject, NumbaObject, list[NumbaObject]], NumbaObject]


class Dispatcher(Protocol):
    """What ``numba.njit`` and ``numba.cuda.jit`` give back: a callable that
    compiles itself for each new combination of argument types (the
    result's type is Numba's choice), with the Python function at ``py_func``."""

    py_func: Callable[..., Any]

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...


def njit(**options: Any) -> Callable[[Callable[..., Any]], Dispatcher]:
    """``numba.njit(**options)``, typed."""
    decorate: Callable[[Callable[..., Any]], Dispatcher] = _numba("numba").njit(**options)
    return decorate


def overload(func: Callable[..., Any]) -> Callable[[_F], _F]:
    """``numba.extending.overload(func)``, typed: it registers the decorated
    function (returned unchanged), which maps argument types to an
    implementation, as ``func`` in compiled code."""
    register: Callable[[_F], _F] = _numba("numba.extending").overload(func)
    return register


if TYPE_CHECKING:
    from typing import Concatenate

    #: An intrinsic's typing function: ``(typing context, argument types...)``
    #: -> ``(signature, codegen)``, or None where it does not apply.
    Typer = Callable[Concatenate[NumbaObject, _P], tuple[NumbaObject, Codegen] | None]


def intrinsic(typer: Typer[_P]) -> Callable[_P, Any]:
    """``numba.extending.intrinsic(typer)``, typed: a function of ``typer``'s
    arguments after the typing context, for compiled code only, whose
    result is of the type ``typer``'s signature gives."""
    return _intrinsic_in("numba.extending", typer)


def cuda_intrinsic(typer: Typer[_P]) -> Callable[_P, Any]:
    """``numba.cuda.extending.intrinsic(typer)``, typed (see ``intrinsic``)."""
    return _intrinsic_in("numba.cuda.extending", typer)


def _intrinsic_in(module: str, typer: Typer[_P]) -> Callable[_P, Any]:
    compiled: Callable[_P, Any] = _numba(module).intrinsic(typer)
    return compiled


def _numba(module: str) -> types.ModuleType:
    """A Numba module, imported on first use; its attributes are Any to the
    checker whether or not Numba is installed where it runs."""
    return importlib.import_module(module)


#: What ``fastleaky.jit``'s and ``fastleaky.cuda``'s functions take: Python
#: and NumPy real numbers (bool and integers compute in float64).
Real = float | np.floating[Any] | np.integer[Any] | np.bool_


# ---------------------------------------------------------------- compiled copies

def definitions_digest(*functions: Callable[..., Any]) -> str:
    """A short digest of the code of ``functions`` (constants and names
    included), the same in every process."""
    h = hashlib.sha256()
    for func in functions:
        _hash_code(h, func.__code__)
    return h.hexdigest()[:12]


def _hash_code(h: hashlib._Hash, code: types.CodeType) -> None:
    h.update(code.co_code)
    h.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _hash_code(h, const)
        elif isinstance(const, frozenset):  # its order varies with string hashing
            h.update(repr(sorted(map(repr, const))).encode())
        else:
            h.update(repr(const).encode())


def compiled_copy(template: Callable[..., Any], name: str, bindings: dict[str, object],
                  inlined: tuple[Callable[..., Any], ...] = ()) -> types.FunctionType:
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


def njit_with_disk_cache(func: Callable[..., Any], **options: Any) -> Dispatcher:
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
    dispatcher = njit(**options)(func)
    internals: Any = dispatcher  # what ``cache=True`` sets up, beyond the protocol
    try:
        internals.enable_caching()  # what ``cache=True`` does: finds a locator or raises
    except RuntimeError as exc:
        if "cannot cache" not in str(exc):
            raise
        _disk_cache[func.__qualname__] = None
    else:
        _disk_cache[func.__qualname__] = getattr(internals._cache, "cache_path", "?")
    return dispatcher


# qualified name -> cache folder, or None where compiled without the disk cache
_disk_cache: dict[str, str | None] = {}


def record_disk_cache(name: str, folder: str | None) -> None:
    """Note where a kernel built elsewhere (the cuda backend) is cached, or
    None when it was compiled without the disk cache."""
    _disk_cache[name] = folder


def disk_cache_state() -> dict[str, list[str]]:
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
_layer_guard: list[bool | None] = [None]
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
    try:
        _layer_guard[0] = kernels().numba.threading_layer() == "workqueue"
    except ValueError:  # threads not started yet
        pass


def threading_layer() -> str | None:
    """Numba's threading layer once its threads run (None before, or without Numba)."""
    import sys

    numba = sys.modules.get("numba")
    if numba is None:
        return None
    try:
        layer: str = numba.threading_layer()
    except ValueError:
        return None
    return layer


def _run_parallel(loop: Dispatcher, serial: Dispatcher, args: tuple[object, ...],
                  nthreads: int) -> None:
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


def _run_capped(loop: Dispatcher, args: tuple[object, ...], nthreads: int) -> None:
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


def _flat(a: NDArray[_S]) -> NDArray[_S]:
    return a if a.ndim == 1 else a.reshape(-1)


class NumbaLoops:
    """A Numba backend: the serial loops, or (``parallel``) the ``prange`` ones."""

    def __init__(self, parallel: bool) -> None:
        self.parallel = parallel
        # the serial loops, by op code, once compiled; the prange loops likewise
        self._serial: tuple[Dispatcher, ...] | None = None
        self._prange: tuple[Dispatcher, ...] = ()

    def available(self) -> tuple[bool, str]:
        if importlib.util.find_spec("numba") is None:
            return False, "numba is not installed (pip install 'fastleaky[numba]')"
        version = importlib.metadata.version("numba")
        loops = "@njit(parallel=True) prange loops" if self.parallel else "serial @njit loops"
        return True, f"numba {version}, {loops}"

    def native_dtypes(self) -> frozenset[type[np.generic]]:
        return frozenset({np.float16, np.float32, np.float64})

    def _load_loops(self) -> tuple[Dispatcher, ...]:
        k = kernels()
        self._prange = tuple(k.LOOPS[op.name, True] for op in ops.BY_CODE)
        serial: tuple[Dispatcher, ...] = tuple(k.LOOPS[op.name, False] for op in ops.BY_CODE)
        self._serial = serial
        return serial

    def run(self, op: ops.Op, inputs: Sequence[NDArray[Any]], a: np.generic,
            out: NDArray[Any], nthreads: int) -> None:
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

    def _call(self, code: int, args: tuple[object, ...], nthreads: int) -> None:
        serial = self._serial or self._load_loops()
        if self.parallel and nthreads != threads.SERIAL:
            _run_parallel(self._prange[code], serial[code], args, nthreads)
        else:
            serial[code](*args)

    def plain_call(self, code: int, g: Any, x: Any, alpha: Any,
                   out: Any) -> NDArray[Any] | types.NotImplementedType:
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
            # typeshed gives NotImplemented a type derived from Any, so that
            # binary operators can return it: here it is NotImplementedType.
            return NotImplemented  # type: ignore[no-any-return]
        # alpha in x's type: a Python float is a float64 to Numba
        a = alpha if x.itemsize == 8 else np.float32(alpha)
        args: tuple[object, ...]
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

    def plain_entry(
            self) -> Callable[[int, Any, Any, Any, Any], NDArray[Any] | types.NotImplementedType]:
        """The registry's fast entry: ``plain_call``."""
        return self.plain_call


CPU = NumbaLoops(parallel=False)
PARALLEL = NumbaLoops(parallel=True)
