"""The public functions: route each call by the kind of its arguments, and
run host calls through one pipeline -- validate, promote, allocate or check
``out``, pick a backend, run its kernel on flat contiguous buffers, give the
result back in the caller's kind.

Kernels never see strides, byte order, overlap, mixed dtypes or ndarray
subclasses: this module hands them 1-D base-class arrays, making contiguous
native-order copies where needed (at most one per input) and computing into
a scratch buffer when ``out`` itself is not contiguous.

The plain case (exact C-contiguous float32/float64 arrays, a Python-float
alpha) first tries the chosen backend's fast entry (``registry.fast_entry``),
which gives the same bits without the general path's Python overhead.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from . import boundary, ops, registry, threads

if TYPE_CHECKING:  # the annotations only: none of these is imported at run time
    from collections.abc import Sequence
    from typing import Literal, Protocol, TypeVar

    import dask.array as da
    import torch
    import xarray as xr
    from numpy.typing import ArrayLike, NDArray

    from .registry import BackendName

    class _CudaArray(Protocol):
        """A device array (CuPy, Numba, ...): the result is of its kind."""

        @property
        def __cuda_array_interface__(self) -> dict[str, Any]: ...

    _Alpha = float | np.floating[Any] | np.integer[Any] | np.bool_
    _Float = TypeVar("_Float", bound=np.floating[Any])
    # bool and integer input computes in float64, as NumPy promotes it.
    _Whole = np.integer[Any] | np.bool_
    _RealScalar = float | np.floating[Any] | np.integer[Any] | np.bool_
    # ``out=`` given: the call returns ``out`` itself (a NumPy array, or a
    # tensor whichever the inputs' kind)
    _Out = TypeVar("_Out", bound="np.ndarray[Any, Any] | torch.Tensor")
    _Xarray = TypeVar("_Xarray", "xr.DataArray", "xr.Dataset", "xr.Variable")
    _Device = TypeVar("_Device", bound=_CudaArray)

__all__ = ["leaky_relu", "leaky_relu_grad", "leaky_relu_backward"]


# Each public function first tries the chosen backend's fast entry, written
# out in each (not a shared helper): one more Python call would be a large
# share of a small array's whole call.


@overload
def leaky_relu(x: NDArray[_Float], alpha: _Alpha = ..., *, out: None = ...,
               backend: BackendName = ...) -> NDArray[_Float]: ...
@overload
def leaky_relu(x: NDArray[_Whole], alpha: _Alpha = ..., *, out: None = ...,
               backend: BackendName = ...) -> NDArray[np.float64]: ...
@overload
def leaky_relu(x: _Float, alpha: _Alpha = ..., *, out: None = ...,
               backend: BackendName = ...) -> _Float: ...
@overload
def leaky_relu(x: float | _Whole, alpha: _Alpha = ..., *, out: None = ...,
               backend: BackendName = ...) -> np.float64: ...
@overload
def leaky_relu(x: ArrayLike, alpha: _Alpha = ..., *, out: _Out,
               backend: BackendName = ...) -> _Out: ...
@overload
def leaky_relu(x: torch.Tensor, alpha: _Alpha = ..., *, out: torch.Tensor | None = ...,
               backend: BackendName = ...) -> torch.Tensor: ...
@overload
def leaky_relu(x: _Xarray, alpha: _Alpha = ..., *, out: None = ...,
               backend: BackendName = ...) -> _Xarray: ...
@overload
def leaky_relu(x: da.Array, alpha: _Alpha = ..., *, out: None = ...,
               backend: BackendName = ...) -> da.Array: ...
@overload
def leaky_relu(x: _Device, alpha: _Alpha = ..., *, out: _Device | None = ...,
               backend: BackendName = ...) -> _Device: ...
@overload
def leaky_relu(x: ArrayLike, alpha: _Alpha = ..., *, out: None = ...,
               backend: BackendName = ...) -> NDArray[np.floating[Any]]: ...
def leaky_relu(x: Any, alpha: _Alpha = 0.01, *, out: Any = None,
               backend: BackendName = "auto") -> Any:
    """LeakyReLU: ``x`` where ``x > 0``, ``alpha * x`` elsewhere.

    Parameters
    ----------
    x : array_like
        Real input. float16/32/64 are computed natively; bool and integer
        input gives float64 (NumPy's promotion); longdouble is computed by
        the NumPy reference. Device arrays (``__cuda_array_interface__``),
        PyTorch tensors, dask and xarray objects come back as the same kind.
    alpha : float, optional
        Slope for ``x <= 0``: any finite real number (negative and > 1
        allowed), cast to the result dtype first. Default 0.01.
    out : ndarray, optional
        Where to write the result: the result's shape and dtype, writable.
        ``out=x`` works in place; partial overlap with ``x`` is handled.
    backend : str, optional
        ``"auto"`` (default), ``"numpy"``, ``"cython"``, ``"numba-cpu"``,
        ``"numba-parallel"`` or ``"cuda"``; see ``fastleaky.backends()``.

    Returns
    -------
    ndarray or scalar
        Like a NumPy ufunc: a scalar for scalar input, ``out`` if given.

    Raises
    ------
    TypeError
        Complex, object, string or datetime input; non-real alpha; ``out``
        of the wrong type or dtype.
    ValueError
        NaN/inf alpha; ``out`` of the wrong shape or read-only; an unknown
        backend name.
    fastleaky.BackendUnavailableError
        A named backend cannot run here (the message says why).
    """
    fast = registry.fast_entry(backend)
    if fast is not None:
        result = fast(0, x, x, alpha, out)
        if result is not NotImplemented:
            return result
    return compute(ops.FORWARD, (x,), alpha, out, backend)


@overload
def leaky_relu_grad(x: NDArray[_Float], alpha: _Alpha = ..., *, out: None = ...,
                    backend: BackendName = ...) -> NDArray[_Float]: ...
@overload
def leaky_relu_grad(x: NDArray[_Whole], alpha: _Alpha = ..., *, out: None = ...,
                    backend: BackendName = ...) -> NDArray[np.float64]: ...
@overload
def leaky_relu_grad(x: _Float, alpha: _Alpha = ..., *, out: None = ...,
                    backend: BackendName = ...) -> _Float: ...
@overload
def leaky_relu_grad(x: float | _Whole, alpha: _Alpha = ..., *, out: None = ...,
                    backend: BackendName = ...) -> np.float64: ...
@overload
def leaky_relu_grad(x: ArrayLike, alpha: _Alpha = ..., *, out: _Out,
                    backend: BackendName = ...) -> _Out: ...
@overload
def leaky_relu_grad(x: torch.Tensor, alpha: _Alpha = ..., *, out: torch.Tensor | None = ...,
                    backend: BackendName = ...) -> torch.Tensor: ...
@overload
def leaky_relu_grad(x: _Xarray, alpha: _Alpha = ..., *, out: None = ...,
                    backend: BackendName = ...) -> _Xarray: ...
@overload
def leaky_relu_grad(x: da.Array, alpha: _Alpha = ..., *, out: None = ...,
                    backend: BackendName = ...) -> da.Array: ...
@overload
def leaky_relu_grad(x: _Device, alpha: _Alpha = ..., *, out: _Device | None = ...,
                    backend: BackendName = ...) -> _Device: ...
@overload
def leaky_relu_grad(x: ArrayLike, alpha: _Alpha = ..., *, out: None = ...,
                    backend: BackendName = ...) -> NDArray[np.floating[Any]]: ...
def leaky_relu_grad(x: Any, alpha: _Alpha = 0.01, *, out: Any = None,
                    backend: BackendName = "auto") -> Any:
    """Derivative of LeakyReLU: 1 where ``x > 0``, ``alpha`` elsewhere.

    At exactly ``x == 0`` (and for NaN) the result is ``alpha``, as in
    PyTorch. Parameters, return value and errors as for ``leaky_relu``.
    """
    fast = registry.fast_entry(backend)
    if fast is not None:
        result = fast(1, x, x, alpha, out)
        if result is not NotImplemented:
            return result
    return compute(ops.GRAD, (x,), alpha, out, backend)


@overload
def leaky_relu_backward(grad_output: NDArray[_Float], x: NDArray[_Float], alpha: _Alpha = ...,
                        *, out: None = ..., backend: BackendName = ...) -> NDArray[_Float]: ...
@overload
def leaky_relu_backward(grad_output: NDArray[_Whole], x: NDArray[_Whole], alpha: _Alpha = ...,
                        *, out: None = ..., backend: BackendName = ...) -> NDArray[np.float64]: ...
@overload
def leaky_relu_backward(grad_output: _Float, x: _Float, alpha: _Alpha = ..., *, out: None = ...,
                        backend: BackendName = ...) -> _Float: ...
@overload
def leaky_relu_backward(grad_output: float | _Whole, x: float | _Whole, alpha: _Alpha = ...,
                        *, out: None = ..., backend: BackendName = ...) -> np.float64: ...
@overload
def leaky_relu_backward(grad_output: _RealScalar, x: _RealScalar, alpha: _Alpha = ...,
                        *, out: None = ..., backend: BackendName = ...) -> np.floating[Any]: ...
@overload
def leaky_relu_backward(grad_output: ArrayLike, x: ArrayLike, alpha: _Alpha = ..., *, out: _Out,
                        backend: BackendName = ...) -> _Out: ...
# One argument of a kind that holds the other's (NumPy arrays, lists ...,
# a dask array inside an xarray object) gives that kind, as its own binary
# operators would.
@overload
def leaky_relu_backward(grad_output: _Xarray, x: ArrayLike | _Xarray, alpha: _Alpha = ...,
                        *, out: None = ..., backend: BackendName = ...) -> _Xarray: ...
@overload
def leaky_relu_backward(grad_output: ArrayLike, x: _Xarray, alpha: _Alpha = ...,
                        *, out: None = ..., backend: BackendName = ...) -> _Xarray: ...
@overload
def leaky_relu_backward(grad_output: da.Array, x: ArrayLike, alpha: _Alpha = ...,
                        *, out: None = ..., backend: BackendName = ...) -> da.Array: ...
@overload
def leaky_relu_backward(grad_output: ArrayLike, x: da.Array, alpha: _Alpha = ...,
                        *, out: None = ..., backend: BackendName = ...) -> da.Array: ...
@overload
def leaky_relu_backward(grad_output: torch.Tensor, x: ArrayLike, alpha: _Alpha = ...,
                        *, out: torch.Tensor | None = ...,
                        backend: BackendName = ...) -> torch.Tensor: ...
@overload
def leaky_relu_backward(grad_output: ArrayLike, x: torch.Tensor, alpha: _Alpha = ...,
                        *, out: torch.Tensor | None = ...,
                        backend: BackendName = ...) -> torch.Tensor: ...
@overload
def leaky_relu_backward(grad_output: _Device, x: _Device, alpha: _Alpha = ...,
                        *, out: _Device | None = ..., backend: BackendName = ...) -> _Device: ...
@overload
def leaky_relu_backward(grad_output: ArrayLike, x: ArrayLike, alpha: _Alpha = ...,
                        *, out: None = ...,
                        backend: BackendName = ...) -> NDArray[np.floating[Any]]: ...
def leaky_relu_backward(grad_output: Any, x: Any, alpha: _Alpha = 0.01, *, out: Any = None,
                        backend: BackendName = "auto") -> Any:
    """Backward pass: ``grad_output * leaky_relu_grad(x, alpha)`` in one pass.

    ``grad_output`` and ``x`` must have the same shape; the result dtype is
    their promoted floating dtype. Other parameters, return value and errors
    as for ``leaky_relu``.
    """
    fast = registry.fast_entry(backend)
    if fast is not None:
        result = fast(2, grad_output, x, alpha, out)
        if result is not NotImplemented:
            return result
    return compute(ops.BACKWARD, (grad_output, x), alpha, out, backend)


assert (ops.FORWARD.code, ops.GRAD.code, ops.BACKWARD.code) == (0, 1, 2)  # the fast calls above


# ---------------------------------------------------------------- routing

# The module that computes each non-host kind (imported on first use, so
# that ``import fastleaky`` imports none of those libraries).  Each exposes
# ``compute(op, arrays, alpha, out, backend, inner)``; ``inner`` is
# ``compute`` below, for the data an xarray or dask object holds.
_ADAPTERS = {
    boundary.DEVICE: "fastleaky._interop.cuda_arrays",
    boundary.TORCH: "fastleaky._interop.torch_tensors",
    boundary.DASK: "fastleaky._interop.dask_arrays",
    boundary.XARRAY: "fastleaky._interop.xarray_objects",
}


def compute(op: ops.Op, arrays: Sequence[object], alpha: object, out: object = None,
            backend: str = "auto") -> Any:
    """Run ``op`` (an ``ops.Op``) on arguments of any kind fastleaky accepts."""
    kind = boundary.call_kind(arrays, out)
    if kind == boundary.HOST:
        return _host(op, arrays, alpha, out, backend)
    adapter = importlib.import_module(_ADAPTERS[kind])
    return adapter.compute(op, arrays, alpha, out, backend, compute)


# ---------------------------------------------------------------- host arrays

def _same_memory(a: NDArray[Any], b: NDArray[Any]) -> bool:
    same: bool = (
        a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        and a.strides == b.strides
    )
    return same


def _flat_input(arr: NDArray[Any], dtype: np.dtype[Any], order: Literal["C", "F"],
                target: NDArray[Any]) -> NDArray[Any]:
    """A flat view of ``arr`` in ``order``, or a contiguous copy when it is not
    already one, is not aligned for its type, or partially overlaps the output."""
    contiguous = arr.flags.c_contiguous if order == "C" else arr.flags.f_contiguous
    if arr.dtype == dtype and contiguous and arr.flags.aligned:
        if not np.may_share_memory(arr, target) or _same_memory(arr, target):
            return arr.reshape(-1, order=order)
    # A signaling NaN raises "invalid" when cast to a wider float; the cast
    # is exact otherwise, and results never raise a RuntimeWarning.
    with np.errstate(invalid="ignore"):
        flat = np.array(arr, dtype=dtype, order=order, copy=True)
    return flat.reshape(-1, order=order)


def _host(op: ops.Op, arrays: Sequence[object], alpha: object, out: object,
          backend: str) -> object:
    call = boundary.HostCall(arrays)
    xs = call.arrays
    x = xs[-1]
    dtype, shape, a = boundary.check_inputs([v.dtype for v in xs], [v.shape for v in xs], alpha)
    impl = registry.resolve(registry.requested_name(backend), dtype, x.size)
    out_base = None if out is None else boundary.check_host_out(out, shape, dtype)

    # Where the kernel writes: out itself when contiguous and aligned (as C
    # requires of a float pointer; buffers from a network or a file may not
    # be), else a scratch buffer.
    order: Literal["C", "F"]
    if out_base is None:
        order = "F" if (x.flags.f_contiguous and not x.flags.c_contiguous) else "C"
        result = target = np.empty(shape, dtype, order=order)
    else:
        result = out_base
        if out_base.flags.c_contiguous and out_base.flags.aligned:
            order, target = "C", out_base
        elif out_base.flags.f_contiguous and out_base.flags.aligned:
            order, target = "F", out_base
        else:
            order, target = "C", np.empty(shape, dtype)
    flats = tuple(_flat_input(arr, dtype, order, target) for arr in xs)
    if impl.parallel:
        nthreads = threads.for_call(dtype, x.size)
    else:
        threads.limit()  # a bad FASTLEAKY_NUM_THREADS raises whatever the backend
        nthreads = threads.SERIAL
    impl.run(op, flats, a, target.reshape(-1, order=order), nthreads)
    if target is not result:
        np.copyto(result, target)
    return call.wrap(result, out)
