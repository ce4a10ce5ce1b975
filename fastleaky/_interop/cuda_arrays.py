"""Device arrays: CuPy, Numba device arrays, PyTorch CUDA tensors, anything
with ``__cuda_array_interface__`` (and, under the simulator, Numba's
simulated device arrays).

The result is the caller's kind of array, allocated by the input's own
library on the input's GPU, computed on the caller's stream (the CAI
``stream`` field, CuPy's or PyTorch's current stream), with no host round
trip.  Contiguous input (C or Fortran order) is used in place; strided views
are first copied to a contiguous buffer on the device.  Validation is
``fastleaky.boundary``'s, so errors are the host path's.

``compute_device`` is the entry point for other adapters (the torch one): it
takes any CAI objects, an optional stream handle and an optional allocator.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import boundary, registry

if TYPE_CHECKING:
    from typing import Protocol

    from .. import ops

    class _CudaBackend(Protocol):
        """What this module uses of the cuda backend (``numba_cuda``)."""

        def native_dtypes(self) -> frozenset[type[np.generic]]: ...

        def simulating(self) -> bool: ...

        def launch(self, op: str, dtype: type[np.floating[Any]], n: int, inputs: Sequence[Any],
                   out: Any, a: np.generic, stream: int = 0, device: int = 0) -> None: ...

#: ``empty(shape, dtype, order)``: an uninitialised device array.
Allocator = Callable[[tuple[int, ...], np.dtype[Any], str], Any]


@dataclass
class _View:
    # The array, of its library's type: CuPy and Numba have no annotations,
    # and any object with ``__cuda_array_interface__`` is taken.
    obj: Any
    library: str  # "cupy", "torch", "numba", "sim" or "cai"
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    ptr: int
    c_contiguous: bool
    f_contiguous: bool
    readonly: bool
    stream: int | None  # CAI stream field (None: not given)


def _library(obj: object) -> str:
    module = type(obj).__module__
    if module.startswith("numba.cuda.simulator"):
        return "sim"
    top = module.partition(".")[0]
    if top in ("cupy", "torch"):
        return top
    if top in ("numba", "numba_cuda"):
        return "numba"
    return "cai"


def _contiguity(shape: tuple[int, ...], strides: Sequence[int] | None,
                itemsize: int) -> tuple[bool, bool]:
    if strides is None:
        return True, len(shape) <= 1 or 0 in shape
    c = f = True
    expected = itemsize
    for n, s in zip(reversed(shape), reversed(strides)):
        if n != 1 and s != expected:
            c = False
        expected *= n
    expected = itemsize
    for n, s in zip(shape, strides):
        if n != 1 and s != expected:
            f = False
        expected *= n
    if 0 in shape:
        c = f = True
    return c, f


def describe(obj: Any) -> _View:
    """What the kernels need to know about one device array."""
    library = _library(obj)
    if library == "sim":
        dtype = np.dtype(obj.dtype)
        c, f = bool(obj.flags["C_CONTIGUOUS"]), bool(obj.flags["F_CONTIGUOUS"])
        return _View(obj, library, tuple(obj.shape), dtype, 0, c, f, False, None)
    try:
        cai = obj.__cuda_array_interface__
    except AttributeError:
        raise TypeError(
            f"cannot mix host and device arrays: got {type(obj).__name__} "
            "alongside a device array (move it with the device library first)"
        ) from None
    dtype = np.dtype(cai["typestr"])
    shape = tuple(cai["shape"])
    c, f = _contiguity(shape, cai.get("strides"), dtype.itemsize)
    if cai.get("strides") is None:
        f = f or len(shape) <= 1
    ptr, readonly = cai["data"]
    return _View(obj, library, shape, dtype, ptr or 0, c, f, bool(readonly), cai.get("stream"))


def _device_of(view: _View) -> int:
    ordinal: int
    if view.library == "cupy":
        ordinal = view.obj.device.id
        return ordinal
    if view.library == "torch":
        ordinal = view.obj.device.index
        return ordinal
    if view.library == "sim" or view.ptr == 0:
        return 0
    driver = importlib.import_module("cuda.bindings.driver")  # (no type information)

    err, ordinal = driver.cuPointerGetAttribute(
        driver.CUpointer_attribute.CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, view.ptr
    )
    return int(ordinal) if err == driver.CUresult.CUDA_SUCCESS else -1


def _stream_of(view: _View) -> int:
    """The caller's stream, as a raw handle (0: the legacy default stream)."""
    if view.library == "cupy":
        import cupy

        handle: int = cupy.cuda.get_current_stream().ptr
        return handle
    if view.library == "torch":
        import torch

        handle = torch.cuda.current_stream(view.obj.device).cuda_stream
        return handle
    if view.stream in (None, 1):
        return 0
    return int(view.stream)


# ---------------------------------------------------------------- allocation

def _empty(like: _View, shape: tuple[int, ...], dtype: np.dtype[Any], order: str) -> Any:
    """An uninitialised array of the input's kind, on its device."""
    if like.library == "cupy":
        import cupy

        with like.obj.device:
            return cupy.empty(shape, dtype, order=order)
    if like.library == "torch":
        import torch

        out = torch.empty(shape[::-1] if order == "F" else shape,
                          dtype=getattr(torch, dtype.name), device=like.obj.device)
        return out.permute(*reversed(range(len(shape)))) if order == "F" else out
    cuda = importlib.import_module("numba.cuda")  # (numba-cuda's: no type information)
    if like.library == "sim":
        return cuda.device_array(shape, dtype, order=order)
    device = _device_of(like)
    with cuda.gpus[device]:
        return cuda.device_array(shape, dtype, order=order)


def _as_numba(view: _View) -> Any:
    """A numba device array sharing the view's memory (copy path only)."""
    if view.library in ("sim", "numba"):
        return view.obj
    cuda = importlib.import_module("numba.cuda")
    return cuda.from_cuda_array_interface(view.obj.__cuda_array_interface__,
                                          owner=view.obj, sync=False)


def _assign(dst: _View, src: _View, stream: int) -> None:
    """dst[...] = src on the device (any layouts, casting as NumPy would)."""
    if dst.library == src.library == "cupy":
        dst.obj[...] = src.obj
    elif dst.library == src.library == "torch":
        dst.obj.copy_(src.obj)
    else:
        target = _as_numba(dst)
        if dst.library == "sim":
            target[...] = _as_numba(src)
        else:
            from fastleaky._backends.numba_cuda import _numba_stream

            target.setitem(Ellipsis, _as_numba(src), stream=_numba_stream(stream))


def _flat(view: _View, order: str, simulating: bool) -> Any:
    """The 1-D launch argument for a contiguous view."""
    if simulating:
        return view.obj.reshape(-1, order=order) if len(view.shape) != 1 else view.obj
    return view.ptr


# ---------------------------------------------------------------- entry points

def _check_backend(backend: str) -> _CudaBackend:
    name = registry.requested_name(backend)
    if backend not in ("auto", "cuda"):
        raise ValueError(
            f"backend {name!r} computes on host (NumPy) arrays; device arrays "
            "need backend='cuda' or 'auto'"
        )
    impl: _CudaBackend = registry.require("cuda")
    return impl


def _check_kernel_dtype(impl: _CudaBackend, dtype: np.dtype[Any]) -> None:
    """TypeError for a result dtype the GPU kernels lack (longdouble): host
    arrays fall back to the NumPy reference there, device arrays cannot
    without a round trip through host memory, which this path never makes."""
    if dtype.type not in impl.native_dtypes():
        names = ", ".join(sorted(np.dtype(t).name for t in impl.native_dtypes()))
        raise TypeError(
            f"the cuda backend computes device arrays of {names}, not {dtype.name} "
            f"({dtype.type.__name__}); "
            "convert the array first (or compute it on the host)"
        )


def compute(op: ops.Op, arrays: Sequence[Any], alpha: object, out: Any, backend: str,
            inner: object) -> Any:
    """The adapter entry point (see ``fastleaky._interop``)."""
    return compute_device(op, arrays, alpha, out, backend=backend)


def compute_device(op: ops.Op, arrays: Sequence[Any], alpha: object, out: Any = None, *,
                   backend: str = "auto", stream: int | None = None,
                   empty: Allocator | None = None) -> Any:
    """Run ``op`` (an ``ops.Op``) on device arrays.

    ``stream`` is a raw CUDA stream handle; None takes the caller's current
    stream from the input's library.  ``empty(shape, dtype, order)``, if
    given, allocates the result (default: the input's own library).
    """
    impl = _check_backend(backend)
    views = [describe(a) for a in arrays]
    x = views[-1]
    dtype, shape, a = boundary.check_inputs([v.dtype for v in views],
                                            [v.shape for v in views], alpha)
    _check_kernel_dtype(impl, dtype)
    device = _device_of(x)
    if any(_device_of(v) != device for v in views[:-1]):
        raise ValueError("grad_output and x are on different GPUs")
    if out is not None:
        if isinstance(out, np.ndarray):
            raise TypeError("out must be a device array like the input, got numpy.ndarray")
        o = describe(out)
        boundary.check_out_fields(o.shape, o.dtype, o.readonly, shape, dtype)
        if _device_of(o) != device:
            raise ValueError(f"out is on GPU {_device_of(o)}, the input on GPU {device}")
    if stream is None:
        stream = _stream_of(x)
    simulating = impl.simulating()

    # Memory order the kernel runs in: the input's, when every operand has it.
    order = "F" if (x.f_contiguous and not x.c_contiguous) else "C"
    allocate = empty or (lambda shp, dt, order: _empty(x, shp, dt, order))
    if out is None:
        result = target = describe(allocate(shape, dtype, order))
    else:
        result = o
        if o.c_contiguous or o.f_contiguous:
            order = "C" if o.c_contiguous else "F"
            target = o
        else:
            target = describe(allocate(shape, dtype, order))

    flats = []
    for v in views:
        fits = v.c_contiguous if order == "C" else v.f_contiguous
        # Partial overlap with out never happens for device arrays made by
        # slicing one buffer differently without a copy: a view that is not
        # the target itself but shares its memory would be read after
        # being written, so it is staged too.
        if v.dtype != dtype or not fits or (out is not None and _overlaps(v, target)):
            staged = describe(allocate(shape, dtype, order))
            _assign(staged, v, stream)
            v = staged
        flats.append(_flat(v, order, simulating))
    n = math.prod(shape)
    impl.launch(op.name, dtype.type, n, flats, _flat(target, order, simulating), a, stream, device)
    if target is not result:
        _assign(result, target, stream)
    return result.obj


def _extent(v: _View) -> tuple[int, int]:
    if v.library == "sim":
        base = v.obj._ary
        lo = base.__array_interface__["data"][0]
        return lo, lo + base.nbytes
    n = math.prod(v.shape)
    return v.ptr, v.ptr + n * v.dtype.itemsize


def _overlaps(v: _View, target: _View) -> bool:
    """Shares memory with the target without being exactly it (contiguous
    views: their extents decide)."""
    if v.obj is target.obj:
        return False
    (lo, hi), (tlo, thi) = _extent(v), _extent(target)
    if lo == tlo and hi == thi and v.shape == target.shape:
        return False
    return lo < thi and tlo < hi
