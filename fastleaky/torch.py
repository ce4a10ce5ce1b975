"""PyTorch integration: LeakyReLU as PyTorch operators on fastleaky's kernels.

``leaky_relu`` and ``LeakyReLU`` are drop-in replacements for
``torch.nn.functional.leaky_relu`` and ``torch.nn.LeakyReLU``: forward and
backward give PyTorch's bits (float16, float32, float64 and bfloat16, on
CPU and CUDA; NaN results are NaN, their payload bits aside, see below), and
the gradient at exactly ``x == 0`` is ``negative_slope``, as in PyTorch.

The operators.  Importing this module registers, through ``torch.library``,

- ``torch.ops.fastleaky.leaky_relu(Tensor self, float negative_slope=0.01,
  str backend="auto") -> Tensor`` and
- ``torch.ops.fastleaky.leaky_relu_backward(Tensor grad_output, Tensor self,
  float negative_slope=0.01, str backend="auto") -> Tensor``,

with CPU and CUDA kernels, fake (meta) kernels for ``torch.compile`` and
``torch.export``, batching rules for ``torch.func.vmap`` and autograd
formulas (the backward's own backward included, so double backward works).
``leaky_relu`` wraps them in one ``torch.autograd.Function`` that adds
forward-mode AD (``torch.func.jvp``), so ``torch.compile(fullgraph=True)``,
``torch.func.grad``/``vmap``/``jacrev``/``jvp``/``hessian`` and
``torch.jit.script`` (of a ``LeakyReLU`` module, or of code calling
``torch.ops.fastleaky.leaky_relu``) all work.  ``backend`` travels as an
operator argument and is resolved when the kernel runs (so a compiled graph
follows ``fastleaky.use_backend`` and ``FASTLEAKY_BACKEND`` at call time).

The lean path.  In eager mode, for a plain CPU tensor (contiguous, float16,
float32 or float64, computed by the Cython loops), the kernels run on the
tensor's memory through its data pointer, and a call is one autograd node
whose backward (without ``create_graph``) calls the backward kernel
directly: no dispatcher round trip, no NumPy view.  Everything else goes
through the operators, which give the same bits.

The C++ node.  Once compiled against the installed torch (``build_node``,
or ``fastleaky torch-node``; cached per torch version and loaded on import),
a CPU float32/float64 tensor dense in some memory order takes a C++ path
instead: the forward records a C++ autograd node, as torch's operators do,
and its backward runs in the autograd engine without Python (its Python
class is a ``torch.autograd.graph.Node``; compiled autograd traces it as the
backward operator).  Same bits, a few microseconds less per call.

Layouts.  In eager mode and in the operators alike, a result is laid out
as the input is where the input is dense in some memory order
(channels_last, a transpose), as torch's operators lay theirs out.

Half precision: PyTorch multiplies float16 and bfloat16 values by the slope
in float32 and rounds the product once to the tensor's type.  Where the
slope is exact in float16 (0, 0.25, 0.5, -0.5, 1.5, ...) that is what
fastleaky's float16 kernel computes as well; otherwise (0.01, 0.2, ...) and
for bfloat16 the kernel computes in a float32 temporary and PyTorch rounds
it to the tensor's type.  (``fastleaky.leaky_relu`` on a float16 tensor
instead follows NumPy: alpha cast to float16 first.)

NaN bits: a NaN input gives a NaN of the same sign in float32 and float64
(payload kept, as in PyTorch); in float16 and bfloat16 the payload (and for
bfloat16 the sign) of a NaN result are not guaranteed to be PyTorch's --
PyTorch's own half-precision results for one NaN input differ with the
element's position in the tensor (vectorised body or scalar tail).  A
signalling NaN in ``grad_output`` where ``x > 0`` is passed through
unchanged (PyTorch multiplies by 1, which quiets it).

In place: ``inplace=True`` overwrites the input (its version counter is
bumped, as by a torch in-place op) and saves what backward needs.  For
``negative_slope >= 0`` the output is positive exactly where the input was,
so the output itself serves; for a negative slope it is not (both signs map
to positive values), so a one-byte mask of ``x > 0`` is saved before the
input is overwritten.  (PyTorch refuses that case.)

Importing this module imports torch; ``import fastleaky`` does not.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.compiler import is_compiling as _is_compiling

from . import api, boundary, ops, registry
from ._interop import torch_node as _torch_node
from ._interop import torch_tensors as _tensors
from .registry import BackendName

if TYPE_CHECKING:
    from collections.abc import Callable

    from torch._functorch.autograd_function import VmapInfo
    from torch.autograd.function import FunctionCtx

    class _Ctx(FunctionCtx):
        """What the autograd formulas below keep on ``ctx``."""

        saved_tensors: tuple[torch.Tensor, ...]
        needs_input_grad: tuple[bool, ...]
        slope: float
        backend: str

    #: A batching rule's input dimensions (None: not batched) and output dimension.
    _InDims = tuple[int | None, ...]
    _Batched = tuple[torch.Tensor, int | None]

__all__ = ["LeakyReLU", "build_node", "leaky_relu", "node_status"]


# ---------------------------------------------------------------- kernels

def _via_float32(dtype: torch.dtype, slope: float) -> bool:
    """Whether PyTorch's float32 product differs from fastleaky's own kernel here."""
    if dtype == torch.bfloat16:
        return True
    return dtype == torch.float16 and float(np.float16(slope)) != float(np.float32(slope))


def _memory_order(x: torch.Tensor) -> list[int] | None:
    """The permutation that makes ``x`` contiguous, where ``x`` is dense in
    another order (channels_last, a transpose); None otherwise."""
    if x.dim() < 2 or x.is_contiguous():
        return None
    strides = x.stride()
    order = sorted(range(x.dim()), key=lambda d: (-strides[d], d))
    return order if x.permute(order).is_contiguous() else None


def _as_one(g: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``g`` and ``x`` of one dtype and shape, as torch's own backward takes
    them (a saved-tensor hook may hand back a tensor of another dtype or a
    broadcastable shape): promoted and broadcast."""
    if g.dtype == x.dtype and g.shape == x.shape:
        return g, x
    common = torch.promote_types(g.dtype, x.dtype)
    g, x = torch.broadcast_tensors(g.to(common), x.to(common))  # type: ignore[no-untyped-call]
    return g, x


def _result_like(x: torch.Tensor) -> tuple[torch.Tensor, list[int] | None]:
    """The new result tensor, laid out as torch's operators lay theirs out,
    and the permutation that makes it contiguous (None: it is).

    In the memory order of the input (``self``, for the backward too) where
    it is dense in one (contiguous, channels_last, a transpose), with the
    strides of that order (also for dimensions of size 1); else as
    ``empty_like`` gives it.  Not a view (forward-mode AD under vmap refuses
    one).  The fake kernels give the same."""
    if x.is_contiguous():
        return torch.empty_like(x, memory_format=torch.contiguous_format), None
    order = _memory_order(x)
    if order is None:
        result = torch.empty_like(x)
        return result, _memory_order(result)
    strides = [0] * x.dim()
    step = 1
    for d in reversed(order):
        strides[d] = step
        step *= max(x.shape[d], 1)
    return torch.empty_strided(x.shape, strides, dtype=x.dtype, device=x.device), order


def _compute(op: ops.Op, g: torch.Tensor, x: torch.Tensor, slope: float,
             backend: str) -> torch.Tensor:
    """A new tensor: ``op`` on detached CPU or CUDA tensors of one dtype and
    shape, as PyTorch rounds it (``g`` is read by the backward only),
    laid out as ``_result_like`` says."""
    if op is ops.BACKWARD:
        g, x = _as_one(g, x)
    result, order = _result_like(x)
    out = result
    if order is not None:  # computed in the result's memory order, into a view of it
        x, out = x.permute(order), result.permute(order)
        g = g.permute(order) if op is ops.BACKWARD else x
    _compute_into(op, g, x, slope, backend, out)
    return result  # not the view: forward-mode AD under vmap refuses a view here


def _compute_into(op: ops.Op, g: torch.Tensor, x: torch.Tensor, slope: float, backend: str,
                  out: torch.Tensor) -> None:
    """``_compute`` into ``out``, a new contiguous tensor (or a contiguous view of one)."""
    dtype = x.dtype
    if (
        (dtype is torch.float32 or dtype is torch.float64)
        and _tensors.plain(x)
        and (op is not ops.BACKWARD or (_tensors.plain(g) and g.dtype is dtype))
        and _tensors.fits(out, x)
        and _tensors.cython_for_floats(backend)
    ):  # the lean path: the loops on the tensors' own memory
        _tensors.run_pointers(op.code, g, x, slope, out)
        return
    if _via_float32(dtype, slope):
        g32 = x32 = x.float()
        if op is ops.BACKWARD:
            g32 = g.float()
        out.copy_(_compute(op, g32, x32, slope, backend))  # rounded once to dtype
        return
    x = x.contiguous()
    g = x if op is not ops.BACKWARD else g.contiguous()
    name = registry.requested_name(backend)
    if (_tensors.plain(x) and (g is x or (_tensors.plain(g) and g.dtype is dtype))
            and _tensors.fits(out, x) and _tensors.runs_on_pointers(name, dtype, x.numel())):
        _tensors.run_pointers(op.code, g, x, slope, out)
        return
    # the general path: other backends, CUDA (through the array interface)
    arrays = (g.detach(), x.detach()) if op is ops.BACKWARD else (x.detach(),)
    api.compute(op, arrays, slope, out=out, backend=name)


def _forward_kernel(self: torch.Tensor, negative_slope: float = 0.01,
                    backend: str = "auto") -> torch.Tensor:
    return _compute(ops.FORWARD, self, self, negative_slope, backend)


def _backward_kernel(grad_output: torch.Tensor, self: torch.Tensor, negative_slope: float = 0.01,
                     backend: str = "auto") -> torch.Tensor:
    if grad_output.dtype != self.dtype or grad_output.shape != self.shape:
        raise ValueError(
            f"grad_output ({grad_output.dtype}, {tuple(grad_output.shape)}) must have "
            f"the dtype and shape of self ({self.dtype}, {tuple(self.shape)})"
        )
    return _compute(ops.BACKWARD, grad_output, self, negative_slope, backend)


# ---------------------------------------------------------------- the operators

# (``torch.library.Library``'s methods and ``torch._check`` carry no
# annotations, ``register_fake`` and ``register_vmap`` none for what they
# return: the lines using them are marked ``no-untyped-call`` /
# ``untyped-decorator`` for mypy --strict.)
_LIB = torch.library.Library("fastleaky", "DEF")  # type: ignore[no-untyped-call]
_LIB.define(  # type: ignore[no-untyped-call]
    "leaky_relu(Tensor self, float negative_slope=0.01, str backend='auto') -> Tensor")
_LIB.define(  # type: ignore[no-untyped-call]
    "leaky_relu_backward(Tensor grad_output, Tensor self, "
    "float negative_slope=0.01, str backend='auto') -> Tensor")
for _device in ("CPU", "CUDA"):
    _LIB.impl("leaky_relu", _forward_kernel, _device)  # type: ignore[no-untyped-call]
    _LIB.impl("leaky_relu_backward", _backward_kernel, _device)  # type: ignore[no-untyped-call]

# The operators' overloads, typed as their schemas above.
_forward_op: Callable[[torch.Tensor, float, str], torch.Tensor] = (
    torch.ops.fastleaky.leaky_relu.default)
_backward_op: Callable[[torch.Tensor, torch.Tensor, float, str], torch.Tensor] = (
    torch.ops.fastleaky.leaky_relu_backward.default)


@torch.library.register_fake("fastleaky::leaky_relu", lib=_LIB)  # type: ignore[untyped-decorator]
def _forward_fake(self: torch.Tensor, negative_slope: float = 0.01,
                  backend: str = "auto") -> torch.Tensor:
    return _result_like(self)[0]


@torch.library.register_fake(  # type: ignore[untyped-decorator]
    "fastleaky::leaky_relu_backward", lib=_LIB)
def _backward_fake(grad_output: torch.Tensor, self: torch.Tensor, negative_slope: float = 0.01,
                   backend: str = "auto") -> torch.Tensor:
    torch._check(  # type: ignore[no-untyped-call]
        grad_output.dtype == self.dtype and grad_output.shape == self.shape,
        lambda: "grad_output must have the dtype and shape of self")
    return _result_like(self)[0]


# Elementwise: a batched input is just a bigger input.
@torch.library.register_vmap("fastleaky::leaky_relu", lib=_LIB)  # type: ignore[untyped-decorator]
def _forward_vmap(info: VmapInfo, in_dims: _InDims, self: torch.Tensor,
                  negative_slope: float = 0.01, backend: str = "auto") -> _Batched:
    return _forward_op(self, negative_slope, backend), in_dims[0]


def _aligned(info: VmapInfo, in_dims: _InDims,
             *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The tensors with their batch dimension first (a broadcast copy where one has none)."""
    return tuple(
        t.movedim(d, 0) if d is not None
        else t.unsqueeze(0).expand(info.batch_size, *t.shape)
        for t, d in zip(tensors, in_dims)
    )


@torch.library.register_vmap(  # type: ignore[untyped-decorator]
    "fastleaky::leaky_relu_backward", lib=_LIB)
def _backward_vmap(info: VmapInfo, in_dims: _InDims, grad_output: torch.Tensor,
                   self: torch.Tensor, negative_slope: float = 0.01,
                   backend: str = "auto") -> _Batched:
    if in_dims[0] == in_dims[1]:
        return _backward_op(grad_output, self, negative_slope, backend), in_dims[0]
    g, x = _aligned(info, in_dims[:2], grad_output, self)
    return _backward_op(g, x, negative_slope, backend), 0


def _op_setup_context(ctx: _Ctx, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
    ctx.save_for_backward(inputs[-3] if len(inputs) == 4 else inputs[0])
    ctx.slope, ctx.backend = inputs[-2], inputs[-1]


def _forward_op_backward(ctx: _Ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None, None]:
    (x,) = ctx.saved_tensors
    return _backward_op(grad_output, x, ctx.slope, ctx.backend), None, None


def _backward_op_backward(
        ctx: _Ctx, grad_grad_input: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor | None, None, None]:
    # linear in grad_output; piecewise constant in x: zeros, as torch gives
    # them (a gradient penalty's graph reaches x through them)
    (x,) = ctx.saved_tensors
    return (_backward_op(grad_grad_input, x, ctx.slope, ctx.backend),
            torch.zeros_like(x) if ctx.needs_input_grad[1] else None, None, None)


torch.library.register_autograd("fastleaky::leaky_relu", _forward_op_backward,
                                setup_context=_op_setup_context, lib=_LIB)
torch.library.register_autograd("fastleaky::leaky_relu_backward", _backward_op_backward,
                                setup_context=_op_setup_context, lib=_LIB)


# ---------------------------------------------------------------- autograd

def _has_memory(t: torch.Tensor) -> bool:
    """A real CPU/CUDA tensor whose values are in memory of its own."""
    return (
        type(t) is torch.Tensor
        and (t.is_cpu or t.is_cuda)
        and torch._C._has_storage(t)  # not a batched gradient (is_grads_batched=True)
        and not t._is_zerotensor()  # no memory: the operator's ZeroTensor fallback gives zeros
        and not torch._is_functional_tensor(t)  # no memory either: functionalization's wrapper
    )


def _direct() -> bool:
    """Outside torch.compile, torch.func, dispatch modes and tracers
    (``_tensors.watched``), which see only the operators."""
    return not (_is_compiling() or torch._C._are_functorch_transforms_active()
                or _tensors.watched())


def _eager(t: torch.Tensor) -> bool:
    """Whether the kernel may be called directly on ``t`` rather than
    through the operator."""
    return _has_memory(t) and _direct()


def _eager_backward(g: torch.Tensor, x: torch.Tensor) -> bool:
    """``_eager`` for the backward's two tensors (``x`` is the saved input,
    or the bool mask of an in-place call)."""
    return _has_memory(g) and _has_memory(x) and _direct()


def _forward(x: torch.Tensor, slope: float, backend: str) -> torch.Tensor:
    if _eager(x):
        return _compute(ops.FORWARD, x, x, slope, backend)
    return _forward_op(x, slope, backend)


def _backward(g: torch.Tensor, x: torch.Tensor, slope: float, backend: str) -> torch.Tensor:
    """The input gradient: differentiable again when grad mode is on."""
    g, x = _as_one(g, x)
    if torch.is_grad_enabled() and (g.requires_grad or x.requires_grad):
        return _apply_backward(g, x, slope, backend)
    if _eager_backward(g, x):
        return _compute(ops.BACKWARD, g, x, slope, backend)
    return _backward_op(g, x, slope, backend)


class _LeakyReLU(torch.autograd.Function):
    @staticmethod
    def forward(x: torch.Tensor, slope: float, backend: str) -> torch.Tensor:
        return _forward(x, slope, backend)

    @staticmethod
    def setup_context(ctx: _Ctx, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        x, ctx.slope, ctx.backend = inputs
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)

    @staticmethod
    def backward(ctx: _Ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (x,) = ctx.saved_tensors
        return _backward(grad_output, x, ctx.slope, ctx.backend), None, None

    @staticmethod
    def jvp(ctx: _Ctx, x_tangent: torch.Tensor, _slope_tangent: None,
            _backend_tangent: None) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return _backward(x_tangent, x, ctx.slope, ctx.backend)

    @staticmethod
    def vmap(info: VmapInfo, in_dims: _InDims, x: torch.Tensor, slope: float,
             backend: str) -> _Batched:
        return _apply_forward(x, slope, backend), in_dims[0]


class _LeanLeakyReLU(_LeakyReLU):
    """``_LeakyReLU`` for a real CPU or CUDA tensor in eager mode, outside
    torch.func transforms (``leaky_relu`` checks): the kernels are called
    without asking again, and a first-order backward is one kernel call."""

    @staticmethod
    def forward(x: torch.Tensor, slope: float, backend: str) -> torch.Tensor:
        return _compute(ops.FORWARD, x, x, slope, backend)

    @staticmethod
    def backward(ctx: _Ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (x,) = ctx.saved_tensors
        # create_graph records the backward too; a gradient without memory
        # (a batched one, a ZeroTensor) or under a dispatch mode goes to the operator
        if torch.is_grad_enabled() or not _eager(grad_output):
            return _backward(grad_output, x, ctx.slope, ctx.backend), None, None
        return _compute(ops.BACKWARD, grad_output, x, ctx.slope, ctx.backend), None, None


class _LeakyReLUBackward(torch.autograd.Function):
    """The backward pass as a Function of its own, so double backward works."""

    @staticmethod
    def forward(grad_output: torch.Tensor, x: torch.Tensor, slope: float,
                backend: str) -> torch.Tensor:
        if _eager_backward(grad_output, x):
            return _compute(ops.BACKWARD, grad_output, x, slope, backend)
        return _backward_op(grad_output, x, slope, backend)

    @staticmethod
    def setup_context(ctx: _Ctx, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        _, x, ctx.slope, ctx.backend = inputs
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)

    @staticmethod
    def backward(ctx: _Ctx, grad_grad_input: torch.Tensor,
                 ) -> tuple[torch.Tensor, torch.Tensor | None, None, None]:
        # linear in grad_output; piecewise constant in x: zeros, as torch gives
        # them (a gradient penalty's graph reaches x through them)
        (x,) = ctx.saved_tensors
        return (_backward(grad_grad_input, x, ctx.slope, ctx.backend),
                torch.zeros_like(x) if ctx.needs_input_grad[1] else None, None, None)

    @staticmethod
    def jvp(ctx: _Ctx, grad_output_tangent: torch.Tensor, _x_tangent: torch.Tensor | None,
            _slope_tangent: None, _backend_tangent: None) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return _backward(grad_output_tangent, x, ctx.slope, ctx.backend)

    @staticmethod
    def vmap(info: VmapInfo, in_dims: _InDims, grad_output: torch.Tensor, x: torch.Tensor,
             slope: float, backend: str) -> _Batched:
        if in_dims[0] == in_dims[1]:
            return _apply_backward(grad_output, x, slope, backend), in_dims[0]
        g, x = _aligned(info, in_dims[:2], grad_output, x)
        return _apply_backward(g, x, slope, backend), 0


class _LeakyReLUInplace(torch.autograd.Function):
    @staticmethod
    def forward(ctx: _Ctx, x: torch.Tensor, slope: float, backend: str) -> torch.Tensor:
        _tensors.check_writable(x)
        mask = x > 0 if (slope < 0 and ctx.needs_input_grad[0]) else None
        _overwrite(x, slope, backend)
        ctx.mark_dirty(x)
        ctx.slope, ctx.backend = slope, backend
        # For slope >= 0, output > 0 exactly where input > 0 (x * slope is
        # never > 0 for x <= 0, and NaN stays NaN), so the output serves.
        ctx.save_for_backward(x if mask is None else mask)
        return x

    @staticmethod
    def backward(ctx: _Ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (sign,) = ctx.saved_tensors
        if sign.dtype != grad_output.dtype:  # the bool mask of the negative-slope case
            sign = sign.to(grad_output.dtype)
        return _backward(grad_output, sign, ctx.slope, ctx.backend), None, None


def _overwrite(x: torch.Tensor, slope: float, backend: str) -> None:
    """``x[...] = leaky_relu(x)``: in its own memory where the loops can write it."""
    if (_eager(x) and not _via_float32(x.dtype, slope) and _tensors.plain(x)
            and _tensors.runs_on_pointers(registry.requested_name(backend), x.dtype, x.numel())):
        _tensors.run_pointers(ops.FORWARD.code, x, x, slope, x)
    else:
        x.copy_(_forward(x, slope, backend))


def _function_apply(cls: type[torch.autograd.Function]) -> Callable[..., Any]:
    """``cls.apply`` without ``Function.apply``'s Python prologue (binding
    default arguments, unwrapping torch.func wrappers), which costs more
    than the kernels at small sizes; only called outside torch.func
    transforms and torch.compile, where that prologue does nothing."""
    base = torch._C._FunctionBase.__dict__.get("apply")
    apply: Callable[..., Any] = base.__get__(None, cls) if base is not None else cls.apply
    return apply


# The Functions' ``apply`` (untyped in torch), typed as their ``forward``.
_apply_forward: Callable[[torch.Tensor, float, str], torch.Tensor] = _LeakyReLU.apply
_apply_backward: Callable[[torch.Tensor, torch.Tensor, float, str], torch.Tensor] = (
    _LeakyReLUBackward.apply)
_apply_inplace: Callable[[torch.Tensor, float, str], torch.Tensor] = _LeakyReLUInplace.apply
_apply_lean: Callable[[torch.Tensor, float, str], torch.Tensor] = _function_apply(_LeanLeakyReLU)


# ---------------------------------------------------------------- the C++ node

#: The compiled autograd node where it is built (``build_node``), else None.
_node: Any = _torch_node.load()


def build_node(verbose: bool = False) -> str:
    """Compile the C++ autograd node against the installed torch, once, and use it.

    The node runs the plain case (a CPU float32/float64 tensor, dense in
    some memory order) as torch's own operators run: the forward records a C++ node and the
    backward runs in the autograd engine without Python, which saves
    several microseconds per call over the Python ``autograd.Function``.
    The bits are the same either way.  The build (``torch.utils.cpp_extension``,
    a C++17 compiler and ninja needed, about 20 s on two cores) is cached per torch
    version and reused by every later process, which loads it on
    ``import fastleaky.torch``.

    Parameters
    ----------
    verbose : bool, optional
        Show the compiler's commands and output.

    Returns
    -------
    str
        The path of the built extension module.

    Raises
    ------
    RuntimeError
        The node is turned off (``FASTLEAKY_TORCH_NODE=0``) or the Cython
        loops are not available; compiling failed.
    """
    global _node
    _node = _torch_node.build(verbose)
    return str(_node.__file__)


def node_status() -> str:
    """Whether ``leaky_relu`` runs on the C++ node, in words."""
    if _node is not None:
        return f"the C++ autograd node ({_node.__file__})"
    problem = _torch_node.why_not()
    if problem:
        return f"Python autograd.Function: the C++ node is off ({problem})"
    return "Python autograd.Function: the C++ node is not built (fastleaky.torch.build_node())"


# ---------------------------------------------------------------- public API

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _has_tangent(t: torch.Tensor) -> bool:
    """Whether ``t`` carries a forward-mode AD tangent (looked up only
    inside a ``torch.autograd.forward_ad.dual_level``)."""
    return (torch.autograd.forward_ad._current_level >= 0
            and torch.autograd.forward_ad.unpack_dual(t).tangent  # type: ignore[no-untyped-call]
            is not None)


def _slope(negative_slope: object) -> float:
    # comparisons, not math.isfinite: torch.compile(dynamic=True) traces a
    # module's float as a symbol, which compares (and guards) but has no isfinite
    if type(negative_slope) is float and -math.inf < negative_slope < math.inf:
        return negative_slope
    return float(boundary.check_alpha(negative_slope))


def leaky_relu(input: torch.Tensor, negative_slope: float = 0.01, inplace: bool = False, *,
               backend: BackendName = "auto") -> torch.Tensor:
    """Differentiable LeakyReLU on fastleaky's kernels; like ``F.leaky_relu``.

    Parameters
    ----------
    input : torch.Tensor
        A floating tensor (float16, bfloat16, float32, float64) on the CPU
        or a CUDA device, of any layout.
    negative_slope : float, optional
        Slope for ``input <= 0``; any finite real number (for float16,
        bfloat16 and float32 tensors one that fits float32, as in torch).
        Default 0.01.
    inplace : bool, optional
        Overwrite ``input`` (the gradient stays correct for every slope).
    backend : str, optional
        A fastleaky backend name (see ``fastleaky.backends()``); "auto"
        follows ``fastleaky.use_backend`` and ``FASTLEAKY_BACKEND`` in force
        when the kernel runs.

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
        ``negative_slope`` is NaN or infinite; an unknown backend name.
    RuntimeError
        ``inplace`` on a leaf that requires grad, or on an inference tensor
        outside ``torch.inference_mode()``; a slope beyond float32 for a
        tensor computed in float32 (as PyTorch raises).
    NotImplementedError
        A nested tensor (``torch.nn.functional.leaky_relu`` takes jagged ones).
    """
    # The common call, checked and computed in C++ (the node's
    # fast_leaky_relu); None sends every other call down the checks below.
    # Few lookups on purpose: after a large tensor's kernels, every module
    # dictionary and function this touches is a cache miss.
    if _node is not None and not inplace and not _is_compiling():
        fast: torch.Tensor | None = _node.fast_leaky_relu(input, negative_slope, backend)
        if fast is not None:
            return fast
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"input must be a torch.Tensor, got {type(input).__name__}")
    if not input.dtype.is_floating_point:
        raise TypeError(f"leaky_relu needs a floating tensor, got dtype {input.dtype}")
    if input.is_nested:
        raise NotImplementedError("fastleaky.torch.leaky_relu does not take nested tensors; "
                                  "torch.nn.functional.leaky_relu takes jagged ones")
    slope = _slope(negative_slope)
    if abs(slope) > _FLOAT32_MAX and input.dtype is not torch.float64:
        # torch computes float32/16/bf16 in float32, and refuses a slope
        # that does not fit (instead of multiplying by infinity)
        raise RuntimeError(f"negative_slope {slope!r} cannot be converted to float32 "
                           f"(the type {input.dtype} is computed in) without overflow")
    if backend != "auto":
        registry.check_name(backend)
    if _is_compiling():
        # The operator itself (its autograd formula, fake kernel): Dynamo
        # does not trace a Function with a custom jvp.  In place: the result
        # copied into the input, computed from a copy (the formula saves
        # its input, which the copy-back overwrites).
        if inplace:
            return input.copy_(_forward_op(input.clone(), slope, backend))
        return _forward_op(input, slope, backend)
    if inplace:
        if not _direct() or _has_tangent(input):
            # torch.func, forward-mode AD and tracers take the result copied
            # into the input, computed from a copy (the Function saves its
            # input, which the copy-back overwrites)
            return input.copy_(_apply_forward(input.clone(), slope, backend))
        return _apply_inplace(input, slope, backend)
    if _eager(input):
        if _node is not None and _tensors.cython_for_floats(backend):
            result: torch.Tensor | None = _node.leaky_relu(input, slope, backend)
            if result is not None:
                return result
        return _apply_lean(input, slope, backend)
    return _apply_forward(input, slope, backend)


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

    Notes
    -----
    ``torch.jit.script`` compiles ``forward`` to a call of the operator
    ``torch.ops.fastleaky.leaky_relu`` (differentiable in reverse mode);
    there ``inplace=True`` computes the result and copies it into the input,
    so autograd refuses a backward through it (the input it saved changed).
    """

    __constants__ = ["negative_slope", "inplace", "backend"]
    negative_slope: float
    inplace: bool
    backend: BackendName

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False, *,
                 backend: BackendName = "auto") -> None:
        super().__init__()
        self.negative_slope = float(boundary.check_alpha(negative_slope))
        self.inplace = bool(inplace)
        self.backend = registry.check_name(backend)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        # torch.jit re-exports is_scripting without listing it in __all__.
        if torch.jit.is_scripting():  # type: ignore[attr-defined]
            result: torch.Tensor = torch.ops.fastleaky.leaky_relu(
                input, self.negative_slope, self.backend)
            if self.inplace:
                return input.copy_(result)
            return result
        return leaky_relu(input, self.negative_slope, self.inplace, backend=self.backend)

    def extra_repr(self) -> str:
        extra = f"negative_slope={self.negative_slope}"
        if self.inplace:
            extra += ", inplace=True"
        if self.backend != "auto":
            extra += f", backend={self.backend!r}"
        return extra
