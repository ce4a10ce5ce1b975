"""The backend registry, the "auto" policy, and each backend's fast entry.

A backend is an object (a module or an instance) with:

- ``available() -> (bool, reason)``: cheap, never compiles; the reason says
  what is missing (or what runs);
- ``native_dtypes() -> frozenset`` of the NumPy scalar types it computes
  itself (others go to the NumPy reference);
- ``parallel``: whether it can use more than one thread;
- ``run(op, inputs, a, out, nthreads)``: the kernel of ``op`` (an
  ``ops.Op``).  Every array is exactly ``numpy.ndarray``, 1-D,
  C-contiguous, aligned, native order, of out's dtype; an input is either the very
  memory of ``out`` or does not overlap it; ``a`` is a scalar of that dtype;
  ``nthreads`` comes from ``threads.for_call`` (1 serial, 0 the runtime's
  count, k a cap).  Kernels trust this; ``fastleaky.api`` guarantees it.
- optionally ``plain_entry()``: a function ``f(code, g, x, alpha, out)``
  doing the same computation for the plain case (``boundary.plain_out``;
  ``code`` is ``Op.code``, ``g`` read by backward only), with those checks
  and the thread policy folded in, returning the result or
  ``NotImplemented``.  Asked for once and kept until ``forget_decisions``.

Adding a backend is one module and one entry in ``_REGISTRY``; nothing
outside this module names a backend.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from . import config, threads

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Protocol

    from numpy.typing import NDArray

    from .ops import Op

    class Backend(Protocol):
        """The entries every backend has (see the module docstring)."""

        @property
        def parallel(self) -> bool: ...

        def available(self) -> tuple[bool, str]: ...

        def native_dtypes(self) -> frozenset[type[np.generic]]: ...

        def run(self, op: Op, inputs: Sequence[NDArray[Any]], a: np.generic,
                out: NDArray[Any], nthreads: int) -> None: ...

    #: A backend's ``plain_entry()``: ``f(code, g, x, alpha, out)``, the
    #: result or ``NotImplemented`` (it takes whatever the caller passed).
    PlainEntry = Callable[[int, Any, Any, Any, Any], Any]

__all__ = ["BackendInfo", "BackendName", "BackendUnavailableError", "backends", "use_backend"]

#: The names ``backend=`` and ``use_backend`` accept (``NAMES``, as a type).
BackendName = Literal["auto", "numpy", "cython", "numba-cpu", "numba-parallel", "cuda"]


class BackendUnavailableError(RuntimeError):
    """A backend was named explicitly but cannot run here; the message says why."""


@dataclass(frozen=True)
class BackendInfo:
    """What ``fastleaky.backends()`` reports for one backend."""

    name: BackendName
    available: bool
    reason: str
    device: str
    summary: str


@dataclass(frozen=True)
class _Entry:
    name: BackendName
    target: str  # "module" or "module:attribute", imported on first use
    device: str
    summary: str


_REGISTRY: dict[str, _Entry] = {
    e.name: e
    for e in (
        _Entry("numpy", "fastleaky._backends.numpy_blocks", "cpu", "NumPy reference (np.where)"),
        _Entry("cython", "fastleaky._backends.cython_backend", "cpu",
               "Cython/C loops, serial or threaded (TBB work stealing, else OpenMP), "
               "ISA picked at load"),
        _Entry("numba-cpu", "fastleaky._backends.numba_loops:CPU", "cpu",
               "Numba: the scalar kernel in an @njit loop"),
        _Entry("numba-parallel", "fastleaky._backends.numba_loops:PARALLEL", "cpu",
               "Numba: the scalar kernel in a prange loop"),
        _Entry("cuda", "fastleaky._backends.numba_cuda", "cuda",
               "numba-cuda kernels, grid-stride, 4 elements a thread"),
    )
}

NAMES = ("auto", *_REGISTRY)

# (the objects themselves are typed Any: besides the ``Backend`` entries,
# the adapters and ``tune`` use entries of one backend, e.g. the Cython
# loops' ``pointer_entry``, and a registered name says which object it is)
_loaded: dict[str, Any] = {}
_availability: dict[str, tuple[bool, str]] = {}
_lock = threading.Lock()
_current: contextvars.ContextVar[BackendName | None] = contextvars.ContextVar(
    "fastleaky_backend", default=None
)
_env_default: list[BackendName] = []  # one validated value, read on first use
# Each valid name to itself, typed as a ``BackendName`` (a test holds
# ``BackendName`` to ``NAMES``).
_VALID: dict[object, BackendName] = {name: name for name in get_args(BackendName)}


def check_name(name: object) -> BackendName:
    """``name`` if it is a backend name ("auto" included), else ValueError."""
    try:
        return _VALID[name]
    except (KeyError, TypeError):  # TypeError: an unhashable name
        pass
    raise ValueError(
        f"unknown fastleaky backend {name!r}; valid names: {', '.join(NAMES)}"
    )


def load(name: str) -> Any:
    """The backend object for a registered name (imported on first use): a
    ``Backend``, with the entries of its own that its name implies."""
    try:
        return _loaded[name]
    except KeyError:
        pass
    entry = _REGISTRY[name]
    module, _, attr = entry.target.partition(":")
    obj: Any = importlib.import_module(module)
    if attr:
        obj = getattr(obj, attr)
    _loaded[name] = obj
    return obj


def availability(name: str) -> tuple[bool, str]:
    try:
        return _availability[name]
    except KeyError:
        pass
    with _lock:
        if name not in _availability:
            try:
                ok, reason = load(name).available()
            except Exception as exc:  # a broken install must not break "auto"
                ok, reason = False, f"{type(exc).__name__}: {exc}"
            _availability[name] = (bool(ok), str(reason))
    return _availability[name]


def backends() -> list[BackendInfo]:
    """One record per backend: name, whether it can run here, and why (not)."""
    out = []
    for entry in _REGISTRY.values():
        ok, reason = availability(entry.name)
        out.append(BackendInfo(entry.name, ok, reason, entry.device, entry.summary))
    return out


def default_name() -> BackendName:
    """``FASTLEAKY_BACKEND`` if set (validated), else "auto"."""
    if not _env_default:
        value = os.environ.get(config.ENV_BACKEND, "").strip() or "auto"
        try:
            name = check_name(value)
        except ValueError:
            raise ValueError(
                f"{config.ENV_BACKEND}={value!r} is not a fastleaky backend; "
                f"valid names: {', '.join(NAMES)}"
            ) from None
        _env_default.append(name)
    return _env_default[0]


def requested_name(backend: str) -> BackendName:
    """The name in force for one call: argument, then use_backend(), then env."""
    if backend != "auto":
        return check_name(backend)
    current = _current.get()
    return current if current is not None else default_name()


@contextlib.contextmanager
def use_backend(name: BackendName) -> Iterator[None]:
    """Use ``name`` for calls in this context (thread- and task-local).

    An explicit ``backend=`` argument still wins.  Unknown names raise
    ``ValueError`` at once; availability is checked at the call.
    """
    token = _current.set(check_name(name))
    try:
        yield
    finally:
        _current.reset(token)


def require(name: str) -> Any:
    """The backend object, or BackendUnavailableError saying why it cannot run."""
    ok, reason = availability(name)
    if not ok:
        raise BackendUnavailableError(f"fastleaky backend {name!r} is unavailable: {reason}")
    return load(name)


_COMPILED_FLOATS = (np.float16, np.float32, np.float64)
_AUTO_PREFERENCE = ("cython", "numba-parallel")  # ahead-of-time compiled first: no JIT warm-up


def auto_host(dtype_type: type[np.generic] | None, size: int) -> str:
    """The backend "auto" picks for a host (NumPy) array of this dtype and size.

    The first available backend of ``_AUTO_PREFERENCE`` that computes the
    dtype natively; NumPy for anything else.  A parallel backend runs its
    serial loop below the size threshold (``threads.for_call``); that case
    is reported as "numba-cpu", the backend that runs it.
    """
    if dtype_type in _COMPILED_FLOATS:
        for name in _AUTO_PREFERENCE:
            if availability(name)[0] and dtype_type in load(name).native_dtypes():
                if name == "numba-parallel" and size < config.parallel_min_for(np.dtype(dtype_type)):
                    return "numba-cpu"
                return name
    return "numpy"


def resolve(name: str, dtype: np.dtype[Any], size: int) -> Backend:
    """The backend object that computes a host call of ``dtype`` and ``size``
    when ``name`` is requested ("auto" included; NumPy for dtypes the named
    backend has no loop for)."""
    impl: Backend
    if name == "auto":
        impl = load(auto_host(_NATIVE.get(dtype), size))
        return impl
    impl = require(name)
    if _NATIVE.get(dtype) in impl.native_dtypes():
        return impl
    impl = load("numpy")
    return impl  # longdouble ...: the reference, on every named backend


_NATIVE: dict[np.dtype[Any], type[np.floating[Any]]] = {
    np.dtype(t): t for t in _COMPILED_FLOATS
}

# requested name -> the fast entry for the plain case, or None
_fast: dict[str, PlainEntry | None] = {}


def fast_entry(backend: str) -> PlainEntry | None:
    """The ``plain_call`` that computes a plain call with this ``backend``
    argument, or None (the general path then handles every call).

    "auto" in a ``use_backend`` context is that context's backend; "auto"
    itself is the fast entry of the backend it picks for float32 and
    float64 at every size, when that is one backend.
    """
    if backend == "auto":
        current = _current.get()
        if current is not None:
            backend = current
    try:
        return _fast[backend]
    except (KeyError, TypeError):  # TypeError: an unhashable (invalid) name
        pass
    entry: PlainEntry | None = None
    if isinstance(backend, str):
        threads.limit()  # a bad FASTLEAKY_NUM_THREADS raises at the first call
        name = default_name() if backend == "auto" else backend
        if name == "auto":
            picks = {auto_host(t, n) for t in (np.float32, np.float64) for n in (1, 1 << 40)}
            if picks == {"cython"}:
                name = "cython"
            elif picks == {"numba-cpu", "numba-parallel"}:
                name = "numba-parallel"  # serial below the threshold: numba-cpu's loop
        if name in _REGISTRY and availability(name)[0]:
            make = getattr(load(name), "plain_entry", None)
            entry = make() if make is not None else None
        if backend in NAMES:
            _fast[backend] = entry
    return entry


def backend_context_var() -> contextvars.ContextVar[BackendName | None]:
    """The context variable ``use_backend`` sets (None outside one), for
    compiled callers that read it themselves."""
    return _current


def fast_entries() -> dict[str, PlainEntry | None]:
    """``fast_entry``'s decisions so far, by backend argument (the dict
    itself, kept for the life of the process, emptied by
    ``forget_decisions``), for compiled callers that read a decision
    without calling into Python."""
    return _fast


def forget_decisions() -> None:
    """Forget cached fast entries (after tuning, or availability changes in tests)."""
    _fast.clear()


def device(name: str) -> str:
    return _REGISTRY[name].device
