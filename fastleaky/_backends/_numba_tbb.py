"""Make Numba's TBB threading layer loadable before Numba starts its threads.

Numba picks its threading layer when its first parallel function runs,
trying TBB first, then OpenMP, then its own workqueue.  PyPI's ``tbb``
wheel (``tbb<2023``; Numba loads ``libtbb.so.12``) puts the library in the
environment's ``lib/``, which is not on the loader path, so Numba silently
falls back to OpenMP, which was an order of magnitude slower here both in
bandwidth on large arrays and in the cost of a call on small ones.  TBB is
also the layer that is both thread- and fork-safe.

Loading the library by path with RTLD_GLOBAL first lets the dynamic loader
resolve Numba's ``libtbb.so.12`` dependency to it.  This only makes TBB
loadable: a layer chosen with ``NUMBA_THREADING_LAYER`` is still honoured,
and nothing changes once Numba's threads run.
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys

_NAMES = {"linux": "libtbb.so.12", "darwin": "libtbb.12.dylib", "win32": "tbb12.dll"}
_attempted: list[str] = []


def _candidates() -> list[str]:
    name = _NAMES.get(sys.platform)
    if name is None:
        return []
    dirs = {os.path.join(sys.prefix, "lib"), os.path.join(sys.prefix, "Library", "bin"),
            os.path.join(sys.base_prefix, "lib")}
    return [p for d in dirs for p in glob.glob(os.path.join(d, name))]


def preload() -> str:
    """Load PyPI's TBB if present; returns what happened (for ``fastleaky info``)."""
    if _attempted:
        return _attempted[0]
    result = "no libtbb.so.12 in this environment (pip install 'tbb<2023')"
    for path in _candidates():
        try:
            ctypes.CDLL(path, mode=getattr(ctypes, "RTLD_GLOBAL", 0))
            result = f"preloaded {path}"
            break
        except OSError as exc:
            result = f"could not load {path}: {exc}"
    _attempted.append(result)
    return result
