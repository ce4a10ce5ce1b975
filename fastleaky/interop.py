"""Non-NumPy inputs: recognised here, handled by the adapter that knows them.

``adapter`` is the cheap test the API runs when an input is not a plain
ndarray: it looks at the type's module name and attributes only, so it never
imports torch, CuPy, dask, xarray or Numba, and returns the adapter module
for that kind (imported then); an adapter module exposes

    dispatch(op, arrays, alpha, out, backend) -> result of the caller's kind

with ``op`` one of "forward", "grad", "backward" and ``arrays`` the inputs
(``(x,)`` or ``(grad_output, x)``).  Lists, scalars and ndarray subclasses
are not foreign: they take the host path.
"""

from __future__ import annotations

import importlib


def _top_module(obj) -> str:
    return type(obj).__module__.partition(".")[0]


def _is_torch(obj) -> bool:
    return _top_module(obj) == "torch"


def _is_dask(obj) -> bool:
    return _top_module(obj) == "dask"


def _is_xarray(obj) -> bool:
    return _top_module(obj) == "xarray"


def _is_cuda_array(obj) -> bool:
    # CuPy arrays, Numba device arrays and anything else exporting the CUDA
    # array interface; Numba's simulated device arrays have no such attribute
    # and are recognised by their module.
    return hasattr(obj, "__cuda_array_interface__") or type(obj).__module__.startswith(
        "numba.cuda.simulator"
    )


# Checked in order: torch first (CUDA tensors also export the CUDA array
# interface, but the torch adapter returns tensors and handles autograd).
_ADAPTERS: list[tuple] = [
    (_is_torch, "fastleaky._interop.torch_tensors"),
    (_is_dask, "fastleaky._interop.dask_arrays"),
    (_is_xarray, "fastleaky._interop.xarray_objects"),
    (_is_cuda_array, "fastleaky._interop.cuda_arrays"),
]


def _adapter_for(obj):
    if obj is None or type(obj).__module__ in ("numpy", "builtins"):
        return None
    for test, module in _ADAPTERS:
        if test(obj):
            return module
    return None


def adapter(arrays, out):
    """The adapter module for the first foreign input (or ``out``), imported;
    None when every input is NumPy-like."""
    for a in (*arrays, out):
        module = _adapter_for(a)
        if module is not None:
            return importlib.import_module(module)
    return None
