"""A user's script with PyTorch, dask and xarray, type-checked with
``mypy --strict`` (``ci/typecheck``) and run by tests/test_typing.py where
those libraries are installed: each library's own type comes back, for one
argument and for an argument of that kind mixed with a NumPy array.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import dask.array as da
import numpy as np
import torch
import xarray as xr

import fastleaky

if TYPE_CHECKING:
    from typing_extensions import assert_type
else:  # typing.assert_type from Python 3.11 on: a no-op at run time
    _T = TypeVar("_T")

    def assert_type(value: _T, kind: object) -> _T:
        return value


def activation(t: torch.Tensor) -> torch.Tensor:
    return fastleaky.leaky_relu(t, 0.1)


values = np.linspace(-1, 1, 12, dtype=np.float32)

t = torch.from_numpy(values.copy())
assert isinstance(assert_type(activation(t), torch.Tensor), torch.Tensor)
assert_type(fastleaky.leaky_relu_grad(t), torch.Tensor)
assert_type(fastleaky.leaky_relu_backward(t, t), torch.Tensor)
into = torch.empty_like(t)
assert assert_type(fastleaky.leaky_relu(t, out=into), torch.Tensor) is into
assert isinstance(assert_type(fastleaky.leaky_relu_backward(values, t), torch.Tensor),
                  torch.Tensor)

# (dask's functions carry no annotations: a strict checker needs the type
# spelled out, and the call marked)
d: da.Array = da.from_array(values, chunks=4)  # type: ignore[no-untyped-call]
assert isinstance(assert_type(fastleaky.leaky_relu(d), da.Array), da.Array)
assert_type(fastleaky.leaky_relu_backward(d, d), da.Array)
assert isinstance(assert_type(fastleaky.leaky_relu_backward(values, d), da.Array), da.Array)

arr = xr.DataArray(values.reshape(3, 4), dims=("row", "col"))
assert isinstance(assert_type(fastleaky.leaky_relu(arr), xr.DataArray), xr.DataArray)
ds = xr.Dataset({"a": arr})
assert isinstance(assert_type(fastleaky.leaky_relu_grad(ds), xr.Dataset), xr.Dataset)
var = xr.Variable(("n",), values)
assert isinstance(assert_type(fastleaky.leaky_relu(var), xr.Variable), xr.Variable)
back = assert_type(fastleaky.leaky_relu_backward(arr, values.reshape(3, 4)), xr.DataArray)
assert isinstance(back, xr.DataArray)
assert isinstance(assert_type(fastleaky.leaky_relu_backward(values.reshape(3, 4), arr),
                              xr.DataArray), xr.DataArray)

# dask arrays are immutable: no out=, for the checker as at run time.
try:
    fastleaky.leaky_relu(d, out=d)  # type: ignore[call-overload]
except TypeError:
    pass
else:
    raise AssertionError("out= with a dask array was accepted")
