"""The operations, as data: one record per operation, one scalar definition each.

Every layer reads this table instead of spelling the operations out again:
the public functions (``fastleaky.api``), the backends (a kernel per
``Op``), the adapters (an ``Op`` travels with the call), the C loops (the
``code`` is their operation number) and the building blocks for users'
compiled code (``fastleaky.jit`` and ``fastleaky.cuda`` compile the scalar
definitions below).

The formula lives in three places only: the scalar definitions here (Python,
compiled by Numba for the CPU and for CUDA), the C definition in
``_backends/_select.h`` (expanded per dtype), and the NumPy reference
(``fastleaky.reference``).  ``kernels.pxd`` keeps a ``cdef inline`` copy for
users' Cython code; a test checks it against the others.

Importing this module imports NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from . import reference

if TYPE_CHECKING:
    from typing import TypeVar

    import numpy as np
    from numpy.typing import NDArray

    # A scalar of one floating type: a Python float, or the NumPy float of
    # the array (Numba compiles the definitions for each array dtype).
    _Real = TypeVar("_Real", float, np.floating[Any])


# The scalar definitions: what one element of each operation is, with ``a``
# already of x's type.  A select, never ``max(x, a * x)`` (wrong for a > 1
# and a < 0); NaN takes the multiply branch (``NaN > 0`` is false), which
# quiets it and keeps its payload, as the reference does.
def leaky_relu_scalar(x: _Real, a: _Real) -> _Real:
    return x if x > 0 else x * a


def leaky_relu_grad_scalar(x: _Real, a: _Real) -> _Real | int:
    return 1 if x > 0 else a


def leaky_relu_backward_scalar(g: _Real, x: _Real, a: _Real) -> _Real:
    return g if x > 0 else g * a


@dataclass(frozen=True)
class Op:
    """One elementwise operation.

    ``name`` is the key used everywhere inside the package; ``code`` the
    operation number of the C loops; ``public`` the name of the public
    function; ``inputs`` the names of its array arguments, in order (the last
    one is ``x``, which decides the result's kind and layout).
    """

    name: str
    code: int
    public: str
    inputs: tuple[str, ...]
    scalar: Callable[..., Any]  # (x, a) or (g, x, a): one element
    reference: Callable[..., NDArray[np.floating[Any]]]  # (x, alpha) or (g, x, alpha)

    @property
    def arity(self) -> int:
        return len(self.inputs)


FORWARD = Op("forward", 0, "leaky_relu", ("x",), leaky_relu_scalar, reference.leaky_relu)
GRAD = Op("grad", 1, "leaky_relu_grad", ("x",), leaky_relu_grad_scalar, reference.leaky_relu_grad)
BACKWARD = Op("backward", 2, "leaky_relu_backward", ("grad_output", "x"),
              leaky_relu_backward_scalar, reference.leaky_relu_backward)

OPS: tuple[Op, ...] = (FORWARD, GRAD, BACKWARD)
BY_NAME: dict[str, Op] = {op.name: op for op in OPS}
BY_CODE: tuple[Op, ...] = tuple(sorted(OPS, key=lambda op: op.code))
