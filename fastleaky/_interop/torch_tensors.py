"""PyTorch tensors in, tensors out.

CPU tensors are computed through zero-copy NumPy views (``t.numpy()``
shares the tensor's memory), so every host backend, ``out=`` and in-place
use work exactly as for ndarrays.  CUDA tensors are handed, with a result
tensor allocated here, to the CUDA array adapter through their
``__cuda_array_interface__``: no host round trip, no extra device copy.

Semantics are fastleaky's (alpha cast to the tensor's dtype, bool/int input
gives float64).  ``fastleaky.torch`` is the module that follows
``torch.nn.functional.leaky_relu`` bit for bit and records autograd
history; this adapter refuses tensors that would need it (see
``_check_no_autograd``) instead of silently dropping the graph.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import boundary
from . import cuda_arrays


def _check_no_autograd(tensors, out) -> None:
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


def numpy_dtype(dtype: torch.dtype) -> np.dtype:
    """The NumPy dtype of a tensor dtype; TypeError for those NumPy lacks."""
    if not dtype.is_complex:
        try:
            return torch.empty(0, dtype=dtype).numpy().dtype
        except TypeError:  # bfloat16, float8 ...: no NumPy equivalent
            pass
    raise TypeError(
        f"fastleaky computes on real numbers with a NumPy dtype; got tensor dtype {dtype}"
    )


def _host_view(t: torch.Tensor) -> np.ndarray:
    """A NumPy view of a CPU tensor's memory (no copy)."""
    numpy_dtype(t.dtype)
    # resolve_neg/resolve_conj return the tensor itself unless a lazy
    # negation/conjugation bit is set (which numpy() refuses).
    return t.detach().resolve_neg().resolve_conj().numpy()


def _torch_dtype(dtype: np.dtype) -> torch.dtype:
    return torch.from_numpy(np.empty(0, dtype)).dtype


def compute(op, arrays, alpha, out, backend, inner):
    tensors = [a for a in (*arrays, out) if isinstance(a, torch.Tensor)]
    _check_no_autograd(tensors, out)
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        raise ValueError(f"tensors on different devices: {sorted(map(str, devices))}")
    (device,) = devices
    if device.type == "cuda":
        return _cuda(op, arrays, alpha, out, backend)
    if device.type != "cpu":
        raise TypeError(f"fastleaky computes CPU and CUDA tensors; got a tensor on {device}")
    views = [_host_view(a) if isinstance(a, torch.Tensor) else a for a in arrays]
    out_view = _host_view(out) if isinstance(out, torch.Tensor) else out
    result = inner(op, views, alpha, out_view, backend)
    if isinstance(out, torch.Tensor):
        return out
    if out is not None:
        return result
    return torch.from_numpy(np.asarray(result))


def _cuda(op, arrays, alpha, out, backend):
    if not all(isinstance(a, torch.Tensor) for a in arrays) or (
        out is not None and not isinstance(out, torch.Tensor)
    ):
        raise TypeError("mixing CUDA tensors with non-tensor arrays is not supported")
    # __cuda_array_interface__ is refused on tensors that require grad.
    arrays = tuple(a.detach() for a in arrays)
    if out is None:
        dtype = boundary.result_dtype([numpy_dtype(a.dtype) for a in arrays])
        out = torch.empty(arrays[-1].shape, dtype=_torch_dtype(dtype), device=arrays[-1].device)
    cuda_arrays.compute_device(op, arrays, alpha, out.detach(), backend=backend)
    return out
