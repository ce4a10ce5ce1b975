"""A user's script with the building blocks for compiled code, type-checked
with ``mypy --strict`` (``ci/typecheck``): ``fastleaky.jit``'s functions and
ufuncs, and ``fastleaky.cuda``'s device functions in a kernel's body.

It runs as well (``python tests/typing/building_blocks.py``): the device
functions are called from Python only under the CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``); on a GPU they run inside kernels only.
``_refused`` holds calls the types must refuse, each marked with the error
mypy reports: were one accepted, mypy would report its comment as unused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from fastleaky import cuda as fl_cuda
from fastleaky import jit as fl_jit

if TYPE_CHECKING:
    from typing_extensions import assert_type
else:  # typing.assert_type from Python 3.11 on: a no-op at run time
    _T = TypeVar("_T")

    def assert_type(value: _T, kind: object) -> _T:
        return value


# ---------------------------------------------------------------- fastleaky.jit

def my_layer(x: NDArray[np.float32], alpha: float, out: NDArray[np.float32]) -> None:
    """What a user would compile with ``numba.njit``; mypy checks it as Python."""
    for i in range(x.size):
        out[i] = fl_jit.leaky_relu(x[i], alpha)


x32 = np.linspace(-1, 1, 11, dtype=np.float32)
out32 = np.empty_like(x32)
my_layer(x32, 0.5, out32)  # the dispatchers run from Python too
assert out32[0] == np.float32(-0.5)

# Called from Python, they return a float, whatever type they computed in.
y = assert_type(fl_jit.leaky_relu(np.float32(-2.0), 0.5), float)
assert type(y) is float and y == -1.0
assert_type(fl_jit.leaky_relu_grad(3, np.float64(0.1)), float)
g = assert_type(fl_jit.leaky_relu_backward(2.0, -1.0, alpha=0.25), float)
assert g == 0.5
grad_function: fl_jit.ScalarFunction = fl_jit.leaky_relu_grad
backward_function: fl_jit.BackwardScalarFunction = fl_jit.leaky_relu_backward
# py_func: the Python definition, giving a NumPy scalar of x's type.
p = assert_type(fl_jit.leaky_relu.py_func(np.float32(-2.0), 0.5), np.floating[Any])
assert type(p) is np.float32 and p == -1.0

# The ufuncs: broadcasting, out= and the rest of the ufunc protocol.
ufuncs = fl_jit.ufuncs("cpu")
forward = assert_type(ufuncs["forward"], fl_jit.Ufunc)
assert_type(forward.nin, int)
assert forward.nin == 2 and ufuncs["backward"].nin == 3
forward(x32, np.float32(0.5), out=out32)
assert out32[0] == np.float32(-0.5)


# ---------------------------------------------------------------- fastleaky.cuda

def bias_leaky_relu(x: NDArray[np.float32], bias: NDArray[np.float32], alpha: float,
                    out: NDArray[np.float32], i: int) -> None:
    """A kernel's body (``@cuda.jit``, ``i = cuda.grid(1)``), as mypy checks it."""
    if i < x.size:
        out[i] = fl_cuda.leaky_relu_device(x[i] + bias[i], alpha)


def device_results() -> None:
    """Each computes in its input's type (float64 for a Python float)."""
    # (annotated: for Python 3.10, NumPy's annotations make a scalar's constructor Any)
    minus_two: np.float16 = np.float16(-2.0)
    two: np.float32 = np.float32(2.0)
    minus_one: np.float32 = np.float32(-1.0)
    h = assert_type(fl_cuda.leaky_relu_device(minus_two, 0.5), np.float16)
    assert type(h) is np.float16 and h == -1.0
    d = assert_type(fl_cuda.leaky_relu_grad_device(-2.0, np.float32(0.5)), np.float64)
    assert type(d) is np.float64 and d == 0.5
    b = assert_type(fl_cuda.leaky_relu_backward_device(two, minus_one, 0.25), np.float32)
    assert type(b) is np.float32 and b == 0.5
    assert_type(fl_cuda.leaky_relu_backward_device(two, -1.0, 0.25), np.floating[Any])


unary: fl_cuda.DeviceFunction = fl_cuda.leaky_relu_grad_device
binary: fl_cuda.BackwardDeviceFunction = fl_cuda.leaky_relu_backward_device


def _simulating() -> bool:
    from numba.cuda.core import config

    return bool(config.ENABLE_CUDASIM)


if _simulating():
    device_results()


def _refused() -> None:
    """Never called: the calls mypy must refuse."""
    fl_jit.leaky_relu("-2", 0.5)  # type: ignore[arg-type]
    fl_jit.leaky_relu_backward(1.0, 0.5)  # type: ignore[call-arg]
    fl_jit.ufuncs("cuda")  # type: ignore[arg-type]
    fl_jit.ufuncs()["forward"].nin = 3  # type: ignore[misc]
    fl_cuda.leaky_relu_device(np.float32(1.0))  # type: ignore[call-overload]
    wrong: fl_cuda.DeviceFunction = fl_cuda.leaky_relu_backward_device  # type: ignore[assignment]
