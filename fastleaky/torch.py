"""PyTorch integration: a differentiable LeakyReLU running fastleaky's kernels.

``leaky_relu`` and ``LeakyReLU`` are drop-in replacements for
``torch.nn.functional.leaky_relu`` and ``torch.nn.LeakyReLU``: forward and
backward are bit-exact with them (float16, float32, float64 and bfloat16, on
CPU and CUDA), and the gradient at exactly ``x == 0`` is ``negative_slope``,
as in PyTorch.  Both passes run on the tensors' own memory: CPU tensors
through zero-copy NumPy views, CUDA tensors through
``__cuda_array_interface__``.

Half precision: PyTorch multiplies float16 and bfloat16 values by the slope
in float32 and rounds the product once to the tensor's type.  Where the
slope is exact in float16 (0, 0.25, 0.5, -0.5, 1.5, ...) that is what
fastleaky's float16 kernel computes as well; otherwise (0.01, 0.2, ...) and
for bfloat16 this module computes in a float32 temporary so the results
stay bit-exact with PyTorch.  (``fastleaky.leaky_relu`` on a float16 tensor
instead follows NumPy: alpha cast to float16 first.)

In place: ``inplace=True`` overwrites the input and saves what backward
needs.  For ``negative_slope >= 0`` the output is positive exactly where
the input was, so the output itself serves; for a negative slope it is not
(both signs map to positive values), so a one-byte mask of ``x > 0`` is
saved before the input is overwritten.  (PyTorch refuses that case.)

Importing this module imports torch; ``import fastleaky`` does not.
"""

from __future__ import annotations

import numpy as np
import torch

from . import api, boundary, registry

__all__ = ["LeakyReLU", "leaky_relu"]


def _via_float32(dtype: torch.dtype, slope: float) -> bool:
    """Whether PyTorch's float32 product differs from fastleaky's own kernel here."""
    if dtype == torch.bfloat16:
        return True
    return dtype == torch.float16 and float(np.float16(slope)) != float(np.float32(slope))


def _forward(x, slope, out, backend):
    """``out[...] = leaky_relu(x)`` as PyTorch rounds it; ``x``, ``out`` detached."""
    if _via_float32(x.dtype, slope):
        out.copy_(api.leaky_relu(x.float(), slope, backend=backend))
    else:
        api.leaky_relu(x, slope, out=out, backend=backend)


def _backward(grad_output, sign, slope, backend):
    """``grad_output`` where ``sign > 0``, else ``grad_output * slope``."""
    g = grad_output.detach()
    if sign.dtype != g.dtype:  # the bool mask saved by the in-place negative-slope case
        sign = sign.to(g.dtype)
    if _via_float32(g.dtype, slope):
        return api.leaky_relu_backward(g.float(), sign.float(), slope, backend=backend).to(
            g.dtype
        )
    out = torch.empty(g.shape, dtype=g.dtype, device=g.device)
    return api.leaky_relu_backward(g, sign.detach(), slope, out=out, backend=backend)


class _LeakyReLUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, slope, inplace, backend):
        xd = x.detach()
        ctx.slope, ctx.backend = slope, backend
        if not inplace:
            out = torch.empty_like(xd)
            _forward(xd, slope, out, backend)
            ctx.save_for_backward(x)
            return out
        mask = xd > 0 if (slope < 0 and ctx.needs_input_grad[0]) else None
        _forward(xd, slope, xd, backend)
        ctx.mark_dirty(x)
        # For slope >= 0, output > 0 exactly where input > 0 (x * slope is
        # never > 0 for x <= 0, and NaN stays NaN), so the output serves.
        ctx.save_for_backward(x if mask is None else mask)
        return x

    @staticmethod
    def backward(ctx, grad_output):
        (sign,) = ctx.saved_tensors
        grad_input = _LeakyReLUBackwardFunction.apply(grad_output, sign, ctx.slope, ctx.backend)
        return grad_input, None, None, None


class _LeakyReLUBackwardFunction(torch.autograd.Function):
    """The backward pass as a Function of its own, so double backward works."""

    @staticmethod
    def forward(ctx, grad_output, sign, slope, backend):
        ctx.slope, ctx.backend = slope, backend
        ctx.save_for_backward(sign)
        return _backward(grad_output, sign, slope, backend)

    @staticmethod
    def backward(ctx, grad_grad_input):
        (sign,) = ctx.saved_tensors
        # linear in grad_output; piecewise constant (derivative 0) in x
        grad_grad_output = _LeakyReLUBackwardFunction.apply(
            grad_grad_input, sign, ctx.slope, ctx.backend
        )
        return grad_grad_output, None, None, None


def leaky_relu(input, negative_slope=0.01, inplace=False, *, backend="auto"):
    """Differentiable LeakyReLU on fastleaky's kernels; like ``F.leaky_relu``.

    Parameters
    ----------
    input : torch.Tensor
        A floating tensor (float16, bfloat16, float32, float64) on the CPU
        or a CUDA device, of any layout.
    negative_slope : float, optional
        Slope for ``input <= 0``; any finite real number. Default 0.01.
    inplace : bool, optional
        Overwrite ``input`` (the gradient stays correct for every slope).
    backend : str, optional
        A fastleaky backend name (see ``fastleaky.backends()``); "auto"
        follows ``fastleaky.use_backend`` and ``FASTLEAKY_BACKEND``.

    Returns
    -------
    torch.Tensor
        ``input`` where ``input > 0``, ``negative_slope * input`` elsewhere;
        ``input`` itself when ``inplace``.  Its gradient is 1 where
        ``input > 0`` and ``negative_slope`` elsewhere (``input == 0``
        included).

    Raises
    ------
    TypeError
        ``input`` is not a tensor or not floating; ``negative_slope`` is not
        a real number.
    ValueError
        ``negative_slope`` is NaN or infinite.
    """
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"input must be a torch.Tensor, got {type(input).__name__}")
    if not input.dtype.is_floating_point:
        raise TypeError(f"leaky_relu needs a floating tensor, got dtype {input.dtype}")
    slope = float(boundary.check_alpha(negative_slope))
    return _LeakyReLUFunction.apply(input, slope, bool(inplace), registry.requested_name(backend))


class LeakyReLU(torch.nn.Module):
    """``torch.nn.LeakyReLU`` on fastleaky's kernels (see ``leaky_relu``).

    Parameters
    ----------
    negative_slope : float, optional
        Slope for inputs ``<= 0``. Default 0.01.
    inplace : bool, optional
        Overwrite the input. Default False.
    backend : str, optional
        A fastleaky backend name, default "auto".
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False, *,
                 backend: str = "auto"):
        super().__init__()
        self.negative_slope = float(boundary.check_alpha(negative_slope))
        self.inplace = inplace
        self.backend = registry.check_name(backend)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return leaky_relu(input, self.negative_slope, self.inplace, backend=self.backend)

    def extra_repr(self) -> str:
        extra = f"negative_slope={self.negative_slope}"
        if self.inplace:
            extra += ", inplace=True"
        if self.backend != "auto":
            extra += f", backend={self.backend!r}"
        return extra
