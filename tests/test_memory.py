"""No hidden copies: what a call allocates, seen by tracemalloc (NumPy
reports its data buffers there).  With ``out=`` and contiguous input,
nothing proportional to the array; without ``out=``, the result; a
non-contiguous input adds one contiguous copy."""

import tracemalloc

import numpy as np
import pytest

import fastleaky

N = 1 << 21  # 8 MiB of float32, 16 MiB of float64
# Anything proportional to the array is at least N bytes (a bool mask);
# fixed-size scratch (the numpy backend's blocks: ~0.3 MiB) stays below this.
SLACK = N // 4


def _peak(call):
    """Peak bytes allocated during ``call()`` above what was live before."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = call()
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    del result
    return peak


def _calls(x, out, backend):
    g = x[::-1].copy() if x.ndim == 1 and x.flags.c_contiguous else np.ones_like(x)
    return {
        "forward": lambda: fastleaky.leaky_relu(x, 0.1, out=out, backend=backend),
        "grad": lambda: fastleaky.leaky_relu_grad(x, 0.1, out=out, backend=backend),
        "backward": lambda: fastleaky.leaky_relu_backward(g, x, 0.1, out=out, backend=backend),
    }


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    return np.dtype(request.param)


@pytest.fixture(params=["forward", "grad", "backward"])
def op(request):
    return request.param


def _warm(x, backend):
    # compile / load kernels and caches outside the measurement
    for call in _calls(x, np.empty_like(x), backend).values():
        call()


def test_with_out_allocates_nothing_proportional(backend, dtype, op):
    x = np.random.default_rng(0).standard_normal(N).astype(dtype)
    _warm(x, backend)
    out = np.empty_like(x)
    assert _peak(_calls(x, out, backend)[op]) < SLACK
    assert _peak(_calls(x, x, backend)[op]) < SLACK  # in place


def test_without_out_allocates_only_the_result(backend, dtype, op):
    x = np.random.default_rng(0).standard_normal(N).astype(dtype)
    _warm(x, backend)
    assert _peak(_calls(x, None, backend)[op]) < x.nbytes + SLACK


def test_non_contiguous_input_makes_one_copy(backend, dtype):
    base = np.random.default_rng(0).standard_normal(2 * N).astype(dtype)
    x = base[::2]
    _warm(x, backend)
    out = np.empty(N, dtype)
    peak = _peak(lambda: fastleaky.leaky_relu(x, 0.1, out=out, backend=backend))
    assert x.nbytes <= peak < x.nbytes + SLACK
    peak = _peak(lambda: fastleaky.leaky_relu(x, 0.1, backend=backend))
    assert peak < 2 * x.nbytes + SLACK  # the result and one copy
