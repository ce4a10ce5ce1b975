"""The cuda backend's kernels, as plain Python (``numba_cuda`` compiles them).

They live in a module that imports ``numba.cuda`` as the global ``cuda``
because the simulator runs a kernel by swapping that global for its fake
module.  Each kernel computes ``(inputs..., out, alpha, n)`` on 1-D C arrays
by the device function bound to ``device`` in its copy
(``kernel_function``): ``unary`` (forward and grad) and ``binary``
(backward).  The device functions are the public ones of
``fastleaky.cuda``, which compute in the arrays' type (float16 through
float32) and give the reference's NaN bits.

Shape: a tile is ``4 * blockDim`` elements; thread ``t`` handles elements
``t``, ``t + b``, ``t + 2b``, ``t + 3b`` of it (each access coalesced), issues
the four loads before any store, and the grid strides over tiles.  ``i`` and
``step`` are int64 (numba widens the uint32 thread registers when they meet
an int64 operand), so arrays above 2**31 elements are indexed correctly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import cuda as device_functions
from .numba_loops import compiled_copy

if TYPE_CHECKING:
    import types
    from collections.abc import Callable
    from typing import Protocol

    from .. import ops

    class _Dim3(Protocol):
        @property
        def x(self) -> int: ...

    class _ThreadIndexing(Protocol):
        """What the kernels read of ``numba.cuda`` (Numba's own annotations
        describe its built-in CUDA target, not numba-cuda's)."""

        @property
        def blockDim(self) -> _Dim3: ...
        @property
        def blockIdx(self) -> _Dim3: ...
        @property
        def threadIdx(self) -> _Dim3: ...
        @property
        def gridDim(self) -> _Dim3: ...

    class _Vector(Protocol):
        """A 1-D array in a kernel, of Numba's element type."""

        def __getitem__(self, i: int) -> Any: ...
        def __setitem__(self, i: int, value: Any) -> None: ...

    cuda: _ThreadIndexing
    # Bound per copy of the kernels (``kernel_function``).
    device: Callable[..., Any]
else:
    from numba import cuda


# ---------------------------------------------------------------- kernels

def unary(x: _Vector, out: _Vector, a: Any, n: int) -> None:
    b = cuda.blockDim.x
    i = cuda.blockIdx.x * (b * 4) + cuda.threadIdx.x
    step = cuda.gridDim.x * (b * 4)
    while i < n:
        if i + 3 * b < n:
            v0 = x[i]
            v1 = x[i + b]
            v2 = x[i + 2 * b]
            v3 = x[i + 3 * b]
            out[i] = device(v0, a)  # noqa: F821 (bound per copy)
            out[i + b] = device(v1, a)  # noqa: F821
            out[i + 2 * b] = device(v2, a)  # noqa: F821
            out[i + 3 * b] = device(v3, a)  # noqa: F821
        else:
            for k in range(4):
                j = i + k * b
                if j < n:
                    out[j] = device(x[j], a)  # noqa: F821
        i += step


def binary(g: _Vector, x: _Vector, out: _Vector, a: Any, n: int) -> None:
    b = cuda.blockDim.x
    i = cuda.blockIdx.x * (b * 4) + cuda.threadIdx.x
    step = cuda.gridDim.x * (b * 4)
    while i < n:
        if i + 3 * b < n:
            g0 = g[i]
            g1 = g[i + b]
            g2 = g[i + 2 * b]
            g3 = g[i + 3 * b]
            v0 = x[i]
            v1 = x[i + b]
            v2 = x[i + 2 * b]
            v3 = x[i + 3 * b]
            out[i] = device(g0, v0, a)  # noqa: F821
            out[i + b] = device(g1, v1, a)  # noqa: F821
            out[i + 2 * b] = device(g2, v2, a)  # noqa: F821
            out[i + 3 * b] = device(g3, v3, a)  # noqa: F821
        else:
            for k in range(4):
                j = i + k * b
                if j < n:
                    out[j] = device(g[j], x[j], a)  # noqa: F821
        i += step


def kernel_function(op: ops.Op, dtype: type[np.floating[Any]]) -> types.FunctionType:
    """The Python function the kernel of ``op`` on ``dtype`` arrays is
    compiled from: ``unary`` or ``binary`` with the device function of
    ``op`` bound to ``device``, named after both (the kernels' disk-cache
    files are named after the function)."""
    template = binary if op.arity == 2 else unary
    name = f"leaky_relu_{op.name}_{np.dtype(dtype).name}"
    return compiled_copy(template, name, {"device": device_functions.device_function(op)},
                         inlined=(op.scalar, *device_functions.DEFINITIONS))
