"""The backend registry and the "auto" policy.

A backend is an object (usually a module) with:

- ``available() -> (bool, reason)``: cheap, never compiles; the reason says
  what is missing (or which version is in use);
- ``native_dtypes() -> frozenset of numpy scalar types`` it computes itself;
- ``forward(x, a, out)``, ``grad(x, a, out)``, ``backward(g, x, a, out)``:
  kernels on flat, contiguous, native-order arrays of one dtype, ``a`` a
  scalar of that dtype.  They trust their caller (``fastleaky.api``).

Adding a backend is one module and one entry in ``_REGISTRY``.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
import threading
from dataclasses import dataclass

import numpy as np

from . import config

__all__ = ["BackendInfo", "BackendUnavailableError", "backends", "use_backend"]


class BackendUnavailableError(RuntimeError):
    """A backend was named explicitly but cannot run here; the message says why."""


@dataclass(frozen=True)
class BackendInfo:
    """What ``fastleaky.backends()`` reports for one backend."""

    name: str
    available: bool
    reason: str
    device: str
    summary: str


@dataclass(frozen=True)
class _Entry:
    name: str
    target: str  # "module" or "module:attribute", imported on first use
    device: str
    summary: str


_REGISTRY: dict[str, _Entry] = {
    e.name: e
    for e in (
        _Entry("numpy", "fastleaky.reference", "cpu", "NumPy reference (np.where)"),
        _Entry("cython", "fastleaky._backends.cython_backend", "cpu",
               "Cython/C loops, serial and OpenMP, ISA picked at load"),
        _Entry("numba-cpu", "fastleaky._backends.numba_loops:CPU", "cpu",
               "Numba: the scalar kernel in an @njit loop"),
        _Entry("numba-parallel", "fastleaky._backends.numba_loops:PARALLEL", "cpu",
               "Numba: the scalar kernel in a prange loop"),
        _Entry("cuda", "fastleaky._backends.numba_cuda", "cuda",
               "numba-cuda kernels, grid-stride, 4 elements a thread"),
    )
}

NAMES = ("auto", *_REGISTRY)

_loaded: dict[str, object] = {}
_availability: dict[str, tuple[bool, str]] = {}
_lock = threading.Lock()
_current: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fastleaky_backend", default=None
)
_env_default: list[str] = []  # one validated value, read on first use


def check_name(name) -> str:
    if name == "auto" or name in _REGISTRY:
        return name
    raise ValueError(
        f"unknown fastleaky backend {name!r}; valid names: {', '.join(NAMES)}"
    )


def load(name: str):
    """The backend object for a registered name (imported on first use)."""
    try:
        return _loaded[name]
    except KeyError:
        pass
    entry = _REGISTRY[name]
    module, _, attr = entry.target.partition(":")
    obj = importlib.import_module(module)
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


def default_name() -> str:
    """``FASTLEAKY_BACKEND`` if set (validated), else "auto"."""
    if not _env_default:
        value = os.environ.get(config.ENV_BACKEND, "").strip() or "auto"
        try:
            check_name(value)
        except ValueError:
            raise ValueError(
                f"{config.ENV_BACKEND}={value!r} is not a fastleaky backend; "
                f"valid names: {', '.join(NAMES)}"
            ) from None
        _env_default.append(value)
    return _env_default[0]


def requested_name(backend: str) -> str:
    """The name in force for one call: argument, then use_backend(), then env."""
    if backend != "auto":
        return check_name(backend)
    current = _current.get()
    return current if current is not None else default_name()


@contextlib.contextmanager
def use_backend(name: str):
    """Use ``name`` for calls in this context (thread- and task-local).

    An explicit ``backend=`` argument still wins.  Unknown names raise
    ``ValueError`` at once; availability is checked at the call.
    """
    token = _current.set(check_name(name))
    try:
        yield
    finally:
        _current.reset(token)


def require(name: str):
    """The backend object, or BackendUnavailableError saying why it cannot run."""
    ok, reason = availability(name)
    if not ok:
        raise BackendUnavailableError(f"fastleaky backend {name!r} is unavailable: {reason}")
    return load(name)


_COMPILED_FLOATS = (np.float16, np.float32, np.float64)


def auto_host(dtype_type, size: int) -> str:
    """The backend "auto" picks for a host (NumPy) array of this dtype and size.

    Cython first: compiled ahead of time, so no JIT warm-up, and the lowest
    per-call cost (0.25 us at 100 elements, against 1.4 us for a Numba ufunc
    call).  Numba when the extension is missing; NumPy for anything else.
    """
    if dtype_type in _COMPILED_FLOATS:
        if availability("cython")[0] and dtype_type in load("cython").native_dtypes():
            return "cython"
        if dtype_type is not np.float16 and availability("numba-cpu")[0]:
            parallel = size >= config.parallel_min_for(np.dtype(dtype_type))
            return "numba-parallel" if parallel else "numba-cpu"
    return "numpy"


def device(name: str) -> str:
    return _REGISTRY[name].device
