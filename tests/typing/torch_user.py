"""A PyTorch user's script with ``fastleaky.torch``, type-checked with
``mypy --strict`` (``ci/typecheck``): the functional call, the module in a
model, in place, a training step, a gradient.

It runs as well (``python tests/typing/torch_user.py``).  ``assert_type``
claims are exact (an ``Any`` result fails them); the calls marked
``# type: ignore[code]`` are ones the annotations must refuse: were one
accepted, ``mypy --strict`` would report the ignore as unused.  Each of
those is refused at run time too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

import fastleaky.torch as ft

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
    raise AssertionError(f"{error.__name__} not raised")


class Block(torch.nn.Module):
    """A user's layer calling the functional form."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ft.leaky_relu(self.linear(x), negative_slope=0.2)


torch.manual_seed(0)
x = torch.randn(8, 16)

# the functional form, as torch.nn.functional.leaky_relu
y = assert_type(ft.leaky_relu(x), torch.Tensor)
assert torch.equal(y, F.leaky_relu(x))
assert torch.equal(assert_type(ft.leaky_relu(x, 0.2, backend="cython"), torch.Tensor),
                   F.leaky_relu(x, 0.2))

# in place: the input itself comes back
buffer = x.clone()
assert assert_type(ft.leaky_relu(buffer, 0.1, inplace=True), torch.Tensor) is buffer

# the module, alone and in a model; a training step through it
act = ft.LeakyReLU(0.1)
assert_type(act.forward(x), torch.Tensor)
assert_type(act.negative_slope, float)
model = torch.nn.Sequential(Block(16), ft.LeakyReLU(0.05, inplace=True), torch.nn.Linear(16, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
loss = F.mse_loss(model(x), torch.zeros(8, 1))
torch.autograd.backward(loss)  # (Tensor.backward carries no annotations)
optimizer.step()

# the gradient is PyTorch's
leaf = x.clone().requires_grad_()
(grad,) = torch.autograd.grad(ft.leaky_relu(leaf, 0.2).sum(), leaf)
assert torch.equal(assert_type(grad, torch.Tensor), torch.where(x > 0, 1.0, 0.2))

# Refused: a NumPy array, an unknown backend name, a slope that is no number.
with refused(TypeError):
    ft.leaky_relu(np.ones(3))  # type: ignore[arg-type]
with refused(ValueError):
    ft.leaky_relu(x, backend="gpu")  # type: ignore[arg-type]
with refused(ValueError):
    ft.LeakyReLU(backend="cythn")  # type: ignore[arg-type]
with refused(TypeError):
    ft.leaky_relu(x, "0.1")  # type: ignore[arg-type]
