"""A user's script, type-checked with ``mypy --strict`` (``ci/typecheck``) and
run by tests/test_typing.py: the types a user's checker sees are the kinds
fastleaky returns.

``assert_type`` claims are exact (an ``Any`` result fails them); the calls
marked ``# type: ignore[code]`` are ones the annotations must refuse: were
one accepted, ``mypy --strict`` would report the ignore as unused.  Each of
those is refused at run time too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from numpy.typing import NDArray

import fastleaky
import fastleaky.testing
from fastleaky import reference

if TYPE_CHECKING:
    from typing_extensions import assert_type
else:  # typing.assert_type from Python 3.11 on: a no-op at run time
    _T = TypeVar("_T")

    def assert_type(value: _T, kind: object) -> _T:
        return value


@contextlib.contextmanager
def refused(error: type[Exception]) -> Iterator[None]:
    """The block must raise ``error``."""
    try:
        yield
    except error:
        return
    raise AssertionError(f"expected {error.__name__}")


def layer(x: NDArray[np.float32], alpha: float = 0.2) -> NDArray[np.float32]:
    return fastleaky.leaky_relu(x, alpha)


def grad_step(g: NDArray[np.float64], x: NDArray[np.float64]) -> NDArray[np.float64]:
    return fastleaky.leaky_relu_backward(g, x, 0.1)


x16 = np.linspace(-1, 1, 11, dtype=np.float16)
x32 = np.linspace(-1, 1, 11, dtype=np.float32)
x64 = np.linspace(-1, 1, 11)
ints = np.arange(-5, 6)
flags = ints > 0

# Arrays: float16/32/64 (and longdouble) keep their dtype; bool and integer
# input computes in float64; anything else array-like is some float.
y32 = assert_type(layer(x32), NDArray[np.float32])
assert y32.dtype == np.float32
y16 = assert_type(fastleaky.leaky_relu(x16), NDArray[np.float16])
assert y16.dtype == np.float16
assert_type(fastleaky.leaky_relu_grad(x16), NDArray[np.float16])
assert_type(fastleaky.leaky_relu_grad(x64, np.float64(0.1)), NDArray[np.float64])
assert_type(grad_step(x64, x64), NDArray[np.float64])
assert_type(fastleaky.leaky_relu(ints), NDArray[np.float64])
assert fastleaky.leaky_relu(ints).dtype == np.float64
assert_type(fastleaky.leaky_relu_grad(flags), NDArray[np.float64])
assert_type(fastleaky.leaky_relu_backward(ints, ints), NDArray[np.float64])
assert fastleaky.leaky_relu_backward(ints, ints).dtype == np.float64
assert_type(fastleaky.leaky_relu_backward(x32, x32, 0.5), NDArray[np.float32])
assert_type(fastleaky.leaky_relu_backward(x16, x16), NDArray[np.float16])
mixed = assert_type(fastleaky.leaky_relu_backward(x32, x64), NDArray[np.floating[Any]])
assert mixed.dtype == np.float64
assert_type(fastleaky.leaky_relu([1.0, -2.0]), NDArray[np.floating[Any]])
wide: NDArray[np.longdouble] = fastleaky.leaky_relu(x64.astype(np.longdouble))
assert wide.dtype == np.longdouble

# Scalars in, scalars out, as with a ufunc.
minus_two: np.float32 = np.float32(-2.0)
s32 = assert_type(fastleaky.leaky_relu(minus_two), np.float32)
assert isinstance(s32, np.float32)
s = assert_type(fastleaky.leaky_relu(-2.0, 0.5), np.float64)
assert isinstance(s, np.float64) and s == -1.0
assert_type(fastleaky.leaky_relu_grad(3), np.float64)
assert_type(fastleaky.leaky_relu_backward(1.0, -1.0), np.float64)
assert isinstance(fastleaky.leaky_relu_backward(1.0, -1.0), np.float64)
assert_type(fastleaky.leaky_relu_backward(minus_two, 1.0), np.floating[Any])

# out= gives back out, of its own type.
out = np.empty_like(x32)
assert_type(fastleaky.leaky_relu(x32, out=out, backend="numpy"), NDArray[np.float32])
assert fastleaky.leaky_relu(x32, out=out) is out
out64 = np.empty_like(x64)
assert_type(fastleaky.leaky_relu_backward(x64, [1.0] * 11, out=out64), NDArray[np.float64])

# The reference and the testing helper.
assert_type(reference.leaky_relu(x32), NDArray[np.float32])
assert_type(reference.leaky_relu_grad(ints), NDArray[np.float64])
assert_type(reference.leaky_relu_backward(x16, x16, 0.2), NDArray[np.float16])
assert_type(reference.leaky_relu([1.0, -1.0]), NDArray[np.floating[Any]])
fastleaky.testing.assert_bitwise_equal(fastleaky.leaky_relu(x32), reference.leaky_relu(x32))

infos: list[fastleaky.BackendInfo] = fastleaky.backends()
names: list[fastleaky.BackendName] = ["numpy", "auto"]
with fastleaky.use_backend(names[0]), fastleaky.thread_limit(2):
    fastleaky.leaky_relu_backward(x64, x64, backend="auto")
with fastleaky.thread_limit(np.int64(1)):
    pass
assert all(isinstance(info.available, bool) for info in infos)

# What the annotations refuse.
wrong: NDArray[np.float64] = fastleaky.leaky_relu(x32)  # type: ignore[assignment]
with refused(ValueError):
    fastleaky.leaky_relu(x32, backend="gpu")  # type: ignore[call-overload]
with refused(ValueError), fastleaky.use_backend("gpu"):  # type: ignore[arg-type]
    pass
with refused(TypeError):
    fastleaky.leaky_relu(x32, "0.1")  # type: ignore[call-overload]
with refused(TypeError):
    fastleaky.leaky_relu_grad(x32, out=[0.0] * 11)  # type: ignore[call-overload]
with refused(TypeError), fastleaky.thread_limit(2.0):  # type: ignore[arg-type]
    pass
