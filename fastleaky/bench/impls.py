"""The implementations the comparison report measures, in one string-keyed registry.

Each entry's ``setup(data)`` gets a :class:`Data` (the input, a shared output
buffer, alpha, lazily made device copies) and returns a zero-argument callable
that does the work once and returns the result.  Callables that write into a
buffer and return nothing carry that buffer as ``.output``.

Families: ``fastleaky`` (every backend, plus "auto"), ``peer`` (what a user
would write otherwise: NumPy, numexpr, PyTorch, CuPy) and ``limit`` (plain
copies of the same bytes, on one thread and on all cores: nothing that
reads x and writes out can beat the fastest of them by much).  A new peer is one entry in :func:`registry`.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import numpy as np

import fastleaky

from .schema import Family

if TYPE_CHECKING:
    import torch
    from numba.cuda.cudadrv.devicearray import DeviceNDArray
    from numpy.typing import NDArray

    from ..registry import BackendName

_T = TypeVar("_T")

#: One call of an implementation on its case, ready to be timed.
Work = Callable[[], object]
#: Makes an implementation's :data:`Work` for a case.
Setup = Callable[["Data"], Work]


class _WritesOutput(Protocol):
    """A :data:`Work` that returns nothing and carries the buffer it writes."""

    output: object

    def __call__(self) -> object: ...


class Unsupported(Exception):
    """This implementation cannot run this case (dtype, alpha); the message says why."""


@dataclass(frozen=True)
class Impl:
    name: str
    family: Family
    device: str  # "cpu" or "cuda"
    setup: Setup = field(repr=False)
    description: str = ""
    note: str = ""  # caveats shown in the report
    valid_alpha: Callable[[float], bool] | None = field(default=None, repr=False)
    expects: str = "leaky_relu"  # or "copy": what the output is checked against
    sync: Callable[[], None] | None = field(default=None, repr=False)


# The plain copy of each device (the "× np.copyto" column); the limit itself,
# "best copy", is per cell the fastest of every copy measured there (family
# "limit"), so that it exists with or without PyTorch.
COPY_LIMIT = {"cpu": "numpy:copyto", "cuda": "cuda:copy"}
PARALLEL_COPY = "numba:copy-parallel"
# The baseline the "speed-up" column divides by.
BASELINE = "numpy:where"


class Data:
    """The input of one case and the buffers every implementation shares.

    One output buffer (and one pair of device buffers) serves all entries, so
    a 1e8-element float64 sweep needs a few GiB, not one buffer per entry.
    """

    def __init__(self, x: NDArray[np.floating[Any]], alpha: float):
        self.x = x
        self.alpha = float(alpha)
        # alpha in x's dtype, as the reference casts it
        self.a: np.floating[Any] = x.dtype.type(alpha)
        self.out = np.empty_like(x)
        self._cache: dict[str, object] = {}

    def cached(self, key: str, make: Callable[[], _T]) -> _T:
        if key not in self._cache:
            self._cache[key] = make()
        return cast("_T", self._cache[key])  # stored by ``make`` under this key

    def device_arrays(self) -> tuple[DeviceNDArray, DeviceNDArray]:
        """(x, out) as Numba device arrays, made once per case."""
        from numba import cuda

        def make() -> tuple[DeviceNDArray, DeviceNDArray]:
            # Numba's own functions are not annotated: what they return, named
            on_device: DeviceNDArray = cuda.to_device(self.x)
            like: Callable[[NDArray[np.floating[Any]]], DeviceNDArray] = cuda.device_array_like
            return on_device, like(self.x)

        return self.cached("numba-cuda", make)

    def torch_cuda(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, out) as torch CUDA tensors sharing the Numba device buffers."""
        import torch

        def make() -> tuple[torch.Tensor, torch.Tensor]:
            dx, dout = self.device_arrays()
            return torch.as_tensor(dx, device="cuda"), torch.as_tensor(dout, device="cuda")

        return self.cached("torch-cuda", make)

    def cupy(self) -> tuple[Any, Any]:
        """(x, out) as CuPy arrays sharing the Numba device buffers."""
        import cupy

        def make() -> tuple[Any, Any]:
            dx, dout = self.device_arrays()
            return cupy.asarray(dx), cupy.asarray(dout)

        return self.cached("cupy", make)

    def release(self) -> None:
        """Drop the buffers: the case is measured."""
        self._cache.clear()
        del self.out


def _writes(fn: Work, out: object) -> Work:
    """``fn`` (returns nothing) with the buffer it writes, for the output check."""
    writer = cast(_WritesOutput, fn)  # functions and partials take attributes
    writer.output = out
    return writer


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# ---- fastleaky --------------------------------------------------------------------------


def _fastleaky_host(backend: BackendName) -> Setup:
    def setup(d: Data) -> Work:
        return functools.partial(fastleaky.leaky_relu, d.x, d.alpha, out=d.out, backend=backend)

    return setup


def _fastleaky_alloc(d: Data) -> Work:
    return functools.partial(fastleaky.leaky_relu, d.x, d.alpha)


def _fastleaky_cuda(backend: BackendName) -> Setup:
    def setup(d: Data) -> Work:
        dx, dout = d.device_arrays()
        return functools.partial(fastleaky.leaky_relu, dx, d.alpha, out=dout, backend=backend)

    return setup


# ---- NumPy ------------------------------------------------------------------------------


def _numpy_where(d: Data) -> Work:
    x, a = d.x, d.a
    return lambda: np.where(x > 0, x, x * a)


def _numpy_maximum(d: Data) -> Work:
    x, a = d.x, d.a
    return lambda: np.maximum(x, x * a)


def _numpy_two_pass(d: Data) -> Work:
    x, a, out = d.x, d.a, d.out

    def two_pass() -> None:
        np.multiply(x, a, out=out)
        np.maximum(x, out, out=out)

    return _writes(two_pass, out)


def _copyto(d: Data) -> Work:
    return _writes(functools.partial(np.copyto, d.out, d.x), d.out)


def _parallel_copy(d: Data) -> Work:
    from . import parallel_copy

    return _writes(functools.partial(parallel_copy.copy, d.x, d.out), d.out)


# ---- numexpr ----------------------------------------------------------------------------


def _numexpr_where(d: Data) -> Work:
    import numexpr

    if d.x.dtype == np.float16:
        raise Unsupported("numexpr has no float16")
    # alpha as a 0-d array of x's dtype: a Python float would make numexpr
    # compute in float64 (not bit-exact, and a float32 run would not be one).
    local = {"x": d.x, "a": np.asarray(d.a)}
    return functools.partial(numexpr.evaluate, "where(x > 0, x, x * a)",
                             local_dict=local, out=d.out)


# ---- PyTorch ----------------------------------------------------------------------------


def _torch_leaky_relu(d: Data) -> Work:
    import torch

    t = torch.from_numpy(d.x)  # zero copy
    return functools.partial(torch.nn.functional.leaky_relu, t, d.alpha)


def _torch_leaky_relu_out(d: Data) -> Work:
    import torch

    t, o = torch.from_numpy(d.x), torch.from_numpy(d.out)
    # F.leaky_relu has no out=; the ATen op under it does.
    return functools.partial(torch._C._nn.leaky_relu, t, d.alpha, out=o)


def _torch_copy(d: Data) -> Work:
    import torch

    t, o = torch.from_numpy(d.x), torch.from_numpy(d.out)
    return functools.partial(o.copy_, t)


def _torch_cuda_leaky_relu(d: Data) -> Work:
    import torch

    t, _ = d.torch_cuda()
    return functools.partial(torch.nn.functional.leaky_relu, t, d.alpha)


def _torch_cuda_leaky_relu_out(d: Data) -> Work:
    import torch

    t, o = d.torch_cuda()
    return functools.partial(torch._C._nn.leaky_relu, t, d.alpha, out=o)


def _torch_sync() -> None:
    import torch

    torch.cuda.synchronize()


# ---- CuPy and the device copy -----------------------------------------------------------


def _cupy_where(d: Data) -> Work:
    import cupy

    x, _ = d.cupy()
    a = d.a
    return lambda: cupy.where(x > 0, x, x * a)


def _cuda_copy(d: Data) -> Work:
    dx, dout = d.device_arrays()
    return _writes(functools.partial(dout.copy_to_device, dx), dout)


def _numba_sync() -> None:
    from numba import cuda

    synchronize: Callable[[], None] = cuda.synchronize  # not annotated by Numba
    synchronize()


def _cupy_sync() -> None:
    import cupy

    cupy.cuda.Device().synchronize()


def _alpha_in_unit_interval(alpha: float) -> bool:
    return 0.0 <= alpha <= 1.0


def registry() -> dict[str, Impl]:
    """Every implementation that can run here, keyed by name, in report order.

    fastleaky's backends come from ``fastleaky.backends()``; peers are listed
    when their library is installed.  GPU entries appear only when the
    ``cuda`` backend is available, so nothing here needs a GPU.
    """
    impls: list[Impl] = []
    info = {b.name: b for b in fastleaky.backends()}
    host = [b for b in info.values() if b.device == "cpu" and b.available]
    cuda_ok = "cuda" in info and info["cuda"].available

    impls.append(Impl(COPY_LIMIT["cpu"], "limit", "cpu", _copyto,
                      "np.copyto(out, x): a copy on one thread", expects="copy"))
    if _installed("numba"):
        impls.append(Impl(PARALLEL_COPY, "limit", "cpu", _parallel_copy,
                          "fastleaky's copy on all cores: a Numba prange loop moving each "
                          "element's bits", expects="copy"))
    if _installed("torch"):
        impls.append(Impl("torch:copy", "limit", "cpu", _torch_copy,
                          "torch out.copy_(x): PyTorch's copy on all cores", expects="copy"))
    impls.append(Impl("fastleaky:auto", "fastleaky", "cpu", _fastleaky_host("auto"),
                      "fastleaky.leaky_relu(x, a, out=out)"))
    impls.append(Impl("fastleaky:auto-alloc", "fastleaky", "cpu", _fastleaky_alloc,
                      "fastleaky.leaky_relu(x, a), allocating its result"))
    for b in host:
        impls.append(Impl(f"fastleaky:{b.name}", "fastleaky", "cpu", _fastleaky_host(b.name),
                          f"fastleaky.leaky_relu(..., backend={b.name!r}): {b.summary}"))
    impls.append(Impl(BASELINE, "peer", "cpu", _numpy_where,
                      "np.where(x > 0, x, x * a), allocating"))
    impls.append(Impl("numpy:maximum", "peer", "cpu", _numpy_maximum,
                      "np.maximum(x, x * a), allocating",
                      note="max(x, a*x) is LeakyReLU only for 0 <= alpha <= 1",
                      valid_alpha=_alpha_in_unit_interval))
    impls.append(Impl("numpy:two-pass", "peer", "cpu", _numpy_two_pass,
                      "np.multiply(x, a, out); np.maximum(x, out, out)",
                      note="max(x, a*x) is LeakyReLU only for 0 <= alpha <= 1",
                      valid_alpha=_alpha_in_unit_interval))
    if _installed("numexpr"):
        impls.append(Impl("numexpr:where", "peer", "cpu", _numexpr_where,
                          "numexpr where(x > 0, x, x * a), out=, alpha a 0-d array of x's dtype"))
    if _installed("torch"):
        impls.append(Impl("torch:leaky_relu", "peer", "cpu", _torch_leaky_relu,
                          "torch.nn.functional.leaky_relu(t, a), allocating"))
        impls.append(Impl("torch:leaky_relu-out", "peer", "cpu", _torch_leaky_relu_out,
                          "torch._C._nn.leaky_relu(t, a, out=o)"))
    if cuda_ok:
        impls.append(Impl(COPY_LIMIT["cuda"], "limit", "cuda", _cuda_copy,
                          "device-to-device copy of x: the GPU copy limit",
                          expects="copy", sync=_numba_sync))
        impls.append(Impl("fastleaky:cuda", "fastleaky", "cuda", _fastleaky_cuda("cuda"),
                          "fastleaky.leaky_relu(dx, a, out=dout) on device arrays",
                          sync=_numba_sync))
        if _installed("torch"):
            impls.append(Impl("torch-cuda:leaky_relu", "peer", "cuda", _torch_cuda_leaky_relu,
                              "torch.nn.functional.leaky_relu on a CUDA tensor, allocating",
                              sync=_torch_sync))
            impls.append(Impl("torch-cuda:leaky_relu-out", "peer", "cuda",
                              _torch_cuda_leaky_relu_out,
                              "torch._C._nn.leaky_relu(t, a, out=o) on CUDA tensors",
                              sync=_torch_sync))
        if _installed("cupy"):
            impls.append(Impl("cupy:where", "peer", "cuda", _cupy_where,
                              "cupy.where(x > 0, x, x * a), allocating", sync=_cupy_sync))
    return {impl.name: impl for impl in impls}


def to_host(result: object) -> NDArray[Any]:
    """A NumPy copy of any result kind (ndarray, tensor, CuPy or Numba device array)."""
    host: NDArray[Any]
    if isinstance(result, np.ndarray):
        return result
    if hasattr(result, "detach"):  # torch
        host = result.detach().cpu().numpy()
    elif hasattr(result, "get"):  # CuPy
        host = result.get()
    elif hasattr(result, "copy_to_host"):  # Numba device array
        host = result.copy_to_host()
    else:
        host = np.asarray(result)
    return host


def run_once(fn: Work) -> NDArray[Any]:
    """Call ``fn`` once and return its result on the host."""
    result = fn()
    if result is None:
        result = cast(_WritesOutput, fn).output  # it wrote into this buffer
    return to_host(result)


def check(impl: Impl, d: Data, fn: Work) -> str:
    """How ``fn``'s output compares with the reference: "bit-exact", "close
    (max rel. err ...)" or "WRONG (...)"."""
    got = run_once(fn)
    if impl.expects == "copy":
        expected = d.x
    else:
        expected = fastleaky.reference.leaky_relu(d.x, d.alpha)
    if got.shape != expected.shape or got.dtype != expected.dtype:
        return f"WRONG (got {got.dtype}{list(got.shape)}, expected {expected.dtype})"
    bits = np.dtype(f"u{expected.dtype.itemsize}")
    if np.array_equal(got.view(bits), expected.view(bits)):
        return "bit-exact"
    with np.errstate(all="ignore"):
        same_nan = np.isnan(got) == np.isnan(expected)
        finite = np.isfinite(expected) & np.isfinite(got)
        inf_ok = np.array_equal(got[np.isinf(expected)], expected[np.isinf(expected)])
        e = expected[finite].astype(np.float64)
        g = got[finite].astype(np.float64)
        scale = np.maximum(np.abs(e), np.finfo(expected.dtype).smallest_normal)
        rel = float(np.max(np.abs(g - e) / scale)) if e.size else 0.0
    if same_nan.all() and inf_ok and rel <= 4 * float(np.finfo(expected.dtype).eps):
        return f"close (max rel. err {rel:.1e})"
    return f"WRONG (max rel. err {rel:.1e})"
