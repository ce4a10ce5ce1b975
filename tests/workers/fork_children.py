"""The parent runs the parallel backends, then a multiprocessing pool (start
method from argv) calls them in its children.  Exits 0 when every child
result is bit-exact.  Run by tests/test_fork.py in a subprocess with a
timeout: a child stuck in an OpenMP runtime shows up as a hang."""

from __future__ import annotations

import multiprocessing as mp
import sys

import numpy as np

import fastleaky
from fastleaky import reference

SIZE = 1_000_000  # above every parallel threshold


def data():
    return np.random.default_rng(2).standard_normal(SIZE).astype(np.float32)


def names() -> list[str]:
    return ["auto"] + [b.name for b in fastleaky.backends() if b.available and b.device == "cpu"]


def child(name: str) -> bool:
    x = data()
    results = (
        (fastleaky.leaky_relu(x, 0.1, backend=name), reference.leaky_relu(x, 0.1)),
        (fastleaky.leaky_relu_grad(x, 0.1, backend=name), reference.leaky_relu_grad(x, 0.1)),
        (fastleaky.leaky_relu_backward(x, x, 0.1, backend=name),
         reference.leaky_relu_backward(x, x, 0.1)),
    )
    return all(np.array_equal(g.view(np.uint32), e.view(np.uint32)) for g, e in results)


def main(method: str) -> int:
    x = data()
    for name in names():  # the parent starts every thread pool first
        fastleaky.leaky_relu(x, 0.1, backend=name)
    with mp.get_context(method).Pool(2) as pool:
        ok = pool.map(child, names() * 2)
    from fastleaky._backends import numba_loops

    print(f"method={method} layer={numba_loops.threading_layer()} ok={all(ok)} {ok}")
    # after the pool, the parent's own parallel calls still work
    return 0 if all(ok) and child("auto") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
