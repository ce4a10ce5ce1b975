"""PyTorch tensors in, tensors out.

The plain case -- CPU tensors, contiguous, float16/32/64 of one dtype, no
lazy negation bit, computed by the Cython loops -- runs on the tensors'
own memory through ``pointer_call`` (data pointer, element count, dtype):
no NumPy view, no general path.  Other CPU tensors are computed through
zero-copy NumPy views (``t.numpy()`` shares the tensor's memory), so every
host backend, ``out=`` and in-place use work exactly as for ndarrays.  CUDA
tensors are handed, with a result tensor allocated here, to the CUDA array
adapter through their ``__cuda_array_interface__``: no host round trip, no
extra device copy.

Writes into a caller's tensor (``out=``) are writes PyTorch can see: the
tensor's version counter is bumped, so autograd raises where a saved tensor
was overwritten, exactly as after a torch in-place op; an inference tensor
is refused outside ``torch.inference_mode()``, as torch refuses it; a
tensor with a lazy negation bit receives the result through ``copy_`` (which
honours the bit) instead of a view of its raw memory.

Semantics are fastleaky's (alpha cast to the tensor's dtype, bool/int input
gives float64).  ``fastleaky.torch`` is the module that follows
``torch.nn.functional.leaky_relu`` bit for bit and records autograd
history; this adapter refuses tensors that would need it (see
``_check_no_autograd``) instead of silently dropping the graph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .. import boundary, registry
from . import cuda_arrays

if TYPE_CHECKING:
    from collections.abc import Sequence
    from ctypes import CDLL

    from numpy.typing import NDArray

    from .._backends.cython_backend import PointerEntry
    from ..ops import Op
    from ..registry import PlainEntry
    from . import Inner

# The NumPy dtypes the Cython loops compute, by tensor dtype, and their type numbers
_F16 = np.dtype(np.float16)
_NP_OF = {t: np.dtype(n) for t, n in ((torch.float16, np.float16), (torch.float32, np.float32),
                                      (torch.float64, np.float64))}
TYPENUM = {t: d.num for t, d in _NP_OF.items()}

# The Cython loops' entries, looked up on first use (``pointer_kernel``)
_looked_up = False
_pointer_call: PointerEntry | None = None  # None where the loops are not built
_plain_call: PlainEntry | None = None  # the fast entry whose bits pointer_call gives


def pointer_kernel() -> PointerEntry | None:
    """The Cython loops' raw-pointer entry, or None when they are not built."""
    global _looked_up, _pointer_call, _plain_call
    if not _looked_up:
        ok, _ = registry.availability("cython")
        if ok:
            cython = registry.load("cython")
            entry: PointerEntry | None = cython.pointer_entry()
            if entry is not None:
                cython.share_torch_threads()  # tensor calls on torch's own OpenMP team
                _plain_call = cython.plain_entry()
                _pointer_call = entry
        _looked_up = True
    return _pointer_call


def pointer_threads() -> str:
    """What runs the raw-pointer entry's parallel calls, in words."""
    if pointer_kernel() is None:
        return "no compiled loops"
    why_not: str = registry.load("cython").share_torch_threads()  # now (a fork changes it)
    return "PyTorch's OpenMP team" if why_not == "" else f"fastleaky's threads ({why_not})"


def plain_entry() -> PlainEntry | None:
    """The Cython loops' ``plain_call`` when their raw-pointer entry exists:
    the fast entry that, decided for a backend, means it computes with them."""
    pointer_kernel()
    return _plain_call


def cython_for_floats(backend: str) -> bool:
    """Whether ``backend`` (as passed: "auto" follows ``use_backend`` and the
    environment) computes float32 and float64 at every size with the Cython
    loops, the case where their raw-pointer entry gives its bits."""
    fast = registry.fast_entry(backend)
    return fast is not None and pointer_kernel() is not None and fast is _plain_call


def runs_on_pointers(name: str, dtype: torch.dtype, size: int) -> bool:
    """Whether the requested backend ``name`` computes this host call with
    the Cython loops (so their raw-pointer entry gives the same bits)."""
    if dtype is torch.float32 or dtype is torch.float64:
        if cython_for_floats(name):
            return True
    npdtype = _NP_OF.get(dtype)
    if npdtype is None or pointer_kernel() is None:
        return False
    if name == "cython":
        return np.float16 in registry.load("cython").native_dtypes() or npdtype != _F16
    return name == "auto" and registry.auto_host(npdtype.type, size) == "cython"



def plain(t: torch.Tensor) -> bool:
    """A CPU tensor whose memory the loops can read as it is: exactly
    ``torch.Tensor``, with storage (not a batched gradient of
    ``autograd.grad(is_grads_batched=True)``), not a ZeroTensor or a
    functionalization wrapper (no memory either: a null data pointer),
    contiguous, aligned, no lazy negation bit."""
    return (
        type(t) is torch.Tensor
        and t.is_cpu
        and t.is_contiguous()
        and not t.is_neg()
        and torch._C._has_storage(t)
        and not t._is_zerotensor()
        and (t.data_ptr() != 0 or t.numel() == 0)
        and t.data_ptr() % t.element_size() == 0
    )


def fits(out: torch.Tensor, x: torch.Tensor) -> bool:
    """Whether a result tensor made for ``x`` can take the loops' writes:
    plain, of ``x``'s dtype and shape (a TorchFunctionMode may have handed
    back anything for ``torch.empty_like``)."""
    return plain(out) and out.dtype == x.dtype and out.shape == x.shape


def watched() -> bool:
    """Whether something that sees only what goes through the dispatcher is
    recording or transforming the calls here: a dispatch mode
    (FakeTensorMode, make_fx, a TorchDispatchMode), make_fx's pre-dispatch
    tracing, or torch.jit.trace.  A kernel run on raw memory is invisible
    to them (and FakeTensorMode's tensors have no memory)."""
    return bool(
        torch._C._len_torch_dispatch_stack()
        or torch._C._dispatch_tls_is_dispatch_key_included(torch._C.DispatchKey.PreDispatch)
        or torch._C._get_tracing_state() is not None
    )


def disjoint(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether two contiguous tensors' memory does not overlap."""
    pa, pb = a.data_ptr(), b.data_ptr()
    return pa + a.numel() * a.element_size() <= pb or pb + b.numel() * b.element_size() <= pa


def run_pointers(code: int, g: torch.Tensor, x: torch.Tensor, alpha: float,
                 out: torch.Tensor, callers_out: bool = False) -> None:
    """Operation ``code`` on plain tensors of one dtype and size (``out`` is
    ``x`` / ``g`` or disjoint from them), alpha rounded once to the dtype.
    ``callers_out``: ``out`` is the caller's tensor, not one just allocated
    (a large result may then be written with streaming stores)."""
    kernel = pointer_kernel()
    assert kernel is not None, "called where runs_on_pointers said no"
    kernel(code, g.data_ptr(), x.data_ptr(), alpha, out.data_ptr(), x.numel(), TYPENUM[x.dtype],
           callers_out and out is not x and out is not g)


def check_writable(out: torch.Tensor) -> None:
    """Refuse a write PyTorch would refuse: an inference tensor outside
    ``torch.inference_mode()``, a ZeroTensor (all zeros, and no memory)."""
    if out._is_zerotensor():
        raise RuntimeError("ZeroTensors are immutable (out is one); pass a materialized "
                           "tensor, such as out.clone()")
    if out.is_inference() and not torch.is_inference_mode_enabled():
        raise RuntimeError(
            "Inplace update to inference tensor outside InferenceMode is not allowed "
            "(out is an inference tensor); clone it first, or call inside "
            "torch.inference_mode()"
        )


def mark_written(out: torch.Tensor) -> None:
    """Tell autograd that ``out``'s memory changed (as a torch in-place op does)."""
    torch._C._increment_version((out,))


def _check_no_autograd(tensors: Sequence[torch.Tensor], out: object) -> None:
    if not torch.is_grad_enabled():
        return
    if any(t.requires_grad for t in tensors) or (
        isinstance(out, torch.Tensor) and out.requires_grad
    ):
        raise RuntimeError(
            "fastleaky.leaky_relu* do not record autograd history, and this tensor "
            "requires grad; use fastleaky.torch.leaky_relu / fastleaky.torch.LeakyReLU "
            "(differentiable), or pass tensor.detach(), or call under torch.no_grad()"
        )


def numpy_dtype(dtype: torch.dtype) -> np.dtype[Any]:
    """The NumPy dtype of a tensor dtype; TypeError for those NumPy lacks."""
    if not dtype.is_complex:
        try:
            return torch.empty(0, dtype=dtype).numpy().dtype
        except TypeError:  # bfloat16, float8 ...: no NumPy equivalent
            pass
    raise TypeError(
        f"fastleaky computes on real numbers with a NumPy dtype; got tensor dtype {dtype}"
    )


def _readable(t: torch.Tensor) -> torch.Tensor:
    """An input tensor's values in memory of its own: detached, a lazy
    negation/conjugation bit resolved into a copy, a ZeroTensor (which has
    no memory) materialized as zeros."""
    if t._is_zerotensor():
        return torch.zeros(t.shape, dtype=t.dtype, device=t.device)
    return t.detach().resolve_neg().resolve_conj()


def _host_view(t: torch.Tensor) -> NDArray[Any]:
    """A NumPy view of a CPU input tensor's memory (no copy, but where
    ``_readable`` makes one)."""
    numpy_dtype(t.dtype)
    return _readable(t).numpy()


def _torch_dtype(dtype: np.dtype[Any]) -> torch.dtype:
    return torch.from_numpy(np.empty(0, dtype)).dtype


def compute(op: Op, arrays: Sequence[object], alpha: object, out: object, backend: str,
            inner: Inner) -> torch.Tensor | NDArray[Any]:
    """The adapter entry point (see ``fastleaky._interop``): a tensor, or
    ``out`` itself where it is a NumPy array."""
    result: torch.Tensor | NDArray[Any] | None
    tensors = [a for a in (*arrays, out) if isinstance(a, torch.Tensor)]
    _check_no_autograd(tensors, out)
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        raise ValueError(f"tensors on different devices: {sorted(map(str, devices))}")
    (device,) = devices
    if isinstance(out, torch.Tensor):
        check_writable(out)
    if any(torch._is_functional_tensor(t) for t in tensors):
        raise RuntimeError(
            "fastleaky.leaky_relu* compute on tensors' memory, which a functionalization "
            "wrapper (torch.func.functionalize) does not expose; use "
            "fastleaky.torch.leaky_relu, an operator functionalization sees")
    if watched():
        raise RuntimeError(
            "fastleaky.leaky_relu* compute on tensors' memory, which a dispatch mode "
            "(FakeTensorMode, make_fx, a TorchDispatchMode) or torch.jit.trace active "
            "here does not see; use fastleaky.torch.leaky_relu, an operator they see "
            "and record")
    if device.type == "cuda":
        result = _cuda(op, arrays, alpha, out, backend)
    elif device.type != "cpu":
        raise TypeError(f"fastleaky computes CPU and CUDA tensors; got a tensor on {device}")
    else:
        result = _pointer_path(op, arrays, alpha, out, backend)
        if result is None:
            result = _host(op, arrays, alpha, out, backend, inner)
    if isinstance(out, torch.Tensor):
        mark_written(out)
    return result


def _pointer_path(op: Op, arrays: Sequence[object], alpha: object, out: object,
                  backend: str) -> torch.Tensor | None:
    """The plain case on the tensors' own memory, or None for anything else."""
    x = arrays[-1]
    g = arrays[0]
    if not (isinstance(x, torch.Tensor) and isinstance(g, torch.Tensor)):
        return None
    dtype = x.dtype
    if dtype not in TYPENUM or g.dtype != dtype or g.shape != x.shape:
        return None
    if not (plain(x) and (g is x or plain(g))):
        return None
    if out is not None and not (
        isinstance(out, torch.Tensor) and out.dtype == dtype and out.shape == x.shape
        and plain(out)
        and (out is x or disjoint(out, x)) and (out is g or disjoint(out, g))
    ):
        return None
    if not runs_on_pointers(registry.requested_name(backend), dtype, x.numel()):
        return None
    # the same checks, in the same order, as every other path
    _, _, a = boundary.check_inputs([_NP_OF[dtype]], [tuple(x.shape)], alpha)
    target = torch.empty_like(x) if out is None else out
    if not fits(target, x):  # what a TorchFunctionMode made of empty_like
        return None
    run_pointers(op.code, g, x, float(a), target, callers_out=out is not None)
    return target


def _host(op: Op, arrays: Sequence[object], alpha: object, out: object, backend: str,
          inner: Inner) -> torch.Tensor | NDArray[Any]:
    views = [_host_view(a) if isinstance(a, torch.Tensor) else a for a in arrays]
    if isinstance(out, torch.Tensor) and (out.is_neg() or out.is_conj()):
        # A view of the raw memory would skip the lazy bit: compute into a
        # fresh result (checked against out's shape and dtype like any out)
        # and let copy_ apply the bit on the way in.
        result: NDArray[Any] = inner(
            op, views, alpha, np.empty(tuple(out.shape), numpy_dtype(out.dtype)), backend)
        out.copy_(torch.from_numpy(result))
        return out
    out_view = out.detach().numpy() if isinstance(out, torch.Tensor) else out
    if isinstance(out, torch.Tensor):
        numpy_dtype(out.dtype)
    result = inner(op, views, alpha, out_view, backend)
    if isinstance(out, torch.Tensor):
        return out
    if out is not None:
        return result
    return torch.from_numpy(np.asarray(result))


def _cuda(op: Op, arrays: Sequence[Any], alpha: object, out: object,
          backend: str) -> torch.Tensor:
    if not all(isinstance(a, torch.Tensor) for a in arrays) or (
        out is not None and not isinstance(out, torch.Tensor)
    ):
        raise TypeError("mixing CUDA tensors with non-tensor arrays is not supported")
    # __cuda_array_interface__ is refused on tensors that require grad.
    arrays = tuple(_readable(a) for a in arrays)
    if out is None:
        dtype = boundary.result_dtype([numpy_dtype(a.dtype) for a in arrays])
        out = torch.empty(arrays[-1].shape, dtype=_torch_dtype(dtype), device=arrays[-1].device)
    if out.is_neg() or out.is_conj():
        target = torch.empty(out.shape, dtype=out.dtype, device=out.device)
        cuda_arrays.compute_device(op, arrays, alpha, target, backend=backend)
        out.copy_(target)
        return out
    cuda_arrays.compute_device(op, arrays, alpha, out.detach(), backend=backend)
    return out
