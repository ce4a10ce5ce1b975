"""A user's script, type-checked with ``mypy --strict`` (``ci/typecheck``) and
run by tests/test_typing.py: the types a user's checker sees are the kinds
fastleaky returns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from numpy.typing import NDArray

import fastleaky

if TYPE_CHECKING:
    from typing_extensions import assert_type
else:  # typing.assert_type from Python 3.11 on: a no-op at run time
    _T = TypeVar("_T")

    def assert_type(value: _T, kind: object) -> _T:
        return value


def layer(x: NDArray[np.float32], alpha: float = 0.2) -> NDArray[np.float32]:
    return fastleaky.leaky_relu(x, alpha)


x32 = np.linspace(-1, 1, 11, dtype=np.float32)
x64 = np.linspace(-1, 1, 11)
ints = np.arange(-5, 6)

y32 = assert_type(layer(x32), NDArray[np.float32])
assert y32.dtype == np.float32
assert_type(fastleaky.leaky_relu_grad(x64, np.float64(0.1)), NDArray[np.float64])
assert_type(fastleaky.leaky_relu(ints), NDArray[np.float64])
assert fastleaky.leaky_relu(ints).dtype == np.float64
assert_type(fastleaky.leaky_relu_backward(x32, x32, 0.5), NDArray[np.float32])
assert_type(fastleaky.leaky_relu([1.0, -2.0]), NDArray[np.floating[Any]])

# Scalars in, scalars out, as with a ufunc.
minus_two: np.float32 = np.float32(-2.0)
s32 = assert_type(fastleaky.leaky_relu(minus_two), np.float32)
assert isinstance(s32, np.float32)
s = assert_type(fastleaky.leaky_relu(-2.0, 0.5), np.float64)
assert isinstance(s, np.float64) and s == -1.0
assert_type(fastleaky.leaky_relu_backward(1.0, -1.0), np.floating[Any])

# out= gives back out, of its own type.
out = np.empty_like(x32)
assert_type(fastleaky.leaky_relu(x32, out=out, backend="numpy"), NDArray[np.float32])
assert fastleaky.leaky_relu(x32, out=out) is out

infos: list[fastleaky.BackendInfo] = fastleaky.backends()
names: list[fastleaky.BackendName] = ["numpy", "auto"]
with fastleaky.use_backend(names[0]), fastleaky.thread_limit(2):
    fastleaky.leaky_relu_backward(x64, x64, backend="auto")
assert all(isinstance(info.available, bool) for info in infos)
