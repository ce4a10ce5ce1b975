"""fastleaky.jit inside a user's own @njit code, bit-exact with the reference."""

from pathlib import Path

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from fastleaky import cases, reference  # noqa: E402
from fastleaky.jit import leaky_relu, leaky_relu_backward, leaky_relu_grad  # noqa: E402
from fastleaky.testing import assert_bitwise_equal  # noqa: E402


@numba.njit
def _user_loop(grad_output, x, alpha):
    """What a user writes: their own loop calling the scalar functions."""
    y = np.empty_like(x)
    dy = np.empty_like(x)
    dx = np.empty_like(x)
    for i in range(x.size):
        y[i] = leaky_relu(x[i], alpha)
        dy[i] = leaky_relu_grad(x[i], alpha)
        dx[i] = leaky_relu_backward(grad_output[i], x[i], alpha)
    return y, dy, dx


@numba.njit(parallel=True)
def _user_parallel(x, alpha, out):
    for i in numba.prange(x.size):
        out[i] = leaky_relu(x[i], alpha)


@pytest.mark.parametrize("alpha", cases.ALPHAS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_user_njit_loop_is_bit_exact(dtype, alpha):
    x = cases.sample(dtype, 2000)
    g = cases.sample(dtype, 2000, seed=5)
    # alpha arrives as a Python float (float64); the functions cast it to x's type
    y, dy, dx = _user_loop(g, x, alpha)
    assert_bitwise_equal(y, reference.leaky_relu(x, alpha))
    assert_bitwise_equal(dy, reference.leaky_relu_grad(x, alpha))
    assert_bitwise_equal(dx, reference.leaky_relu_backward(g, x, alpha))


def test_user_parallel_loop():
    x = cases.sample("float32", 5000)
    out = np.empty_like(x)
    _user_parallel(x, 0.2, out)
    assert_bitwise_equal(out, reference.leaky_relu(x, 0.2))


def test_callable_from_python():
    assert leaky_relu(-2.0, 0.5) == -1.0
    assert leaky_relu(3, 0.5) == 3.0  # integers compute in float64
    assert leaky_relu_grad(0.0, 0.2) == 0.2  # alpha at exactly 0, as PyTorch
    assert leaky_relu_grad(1e-300, 0.2) == 1.0
    assert leaky_relu_backward(4.0, -1.0, 0.25) == 1.0
    # float32 input computes in float32, alpha cast first
    assert leaky_relu(np.float32(-1), 0.01) == float(np.float32(-1) * np.float32(0.01))
    assert np.isnan(leaky_relu(np.nan, 0.5)) and leaky_relu_grad(np.nan, 0.5) == 0.5


def test_results_are_in_the_type_computed_in():
    """float32 in, float32 out: alpha is cast to x's type, and so is the
    result (the definitions' integer literals would make the grad float64)."""
    for fn, args in ((leaky_relu, (np.float32(-1.0), 0.2)),
                     (leaky_relu_grad, (np.float32(-1.0), 0.2)),
                     (leaky_relu_backward, (np.float32(2.0), np.float32(-1.0), 0.2))):
        fn(*args)
        arg_types = tuple(numba.typeof(a) for a in args)
        [sig] = [s for s in fn.nopython_signatures if s.args == arg_types]
        assert sig.return_type == numba.float32, (fn.__name__, sig)
        assert fn.__name__ in ("leaky_relu", "leaky_relu_grad", "leaky_relu_backward")


def test_compiled_in_memory_where_no_cache_folder_works(monkeypatch):
    """Where Numba finds no cache location, ``cache=True`` raises; the
    kernels are built without the disk cache instead, and say so."""
    from numba.core import caching

    from fastleaky._backends import numba_loops

    class Nowhere:
        @classmethod
        def from_function(cls, py_func, py_file):
            return None  # as every locator does for a read-only install without a home

    impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl  # older Numba: _CacheImpl
    monkeypatch.setattr(impl, "_locator_classes", [Nowhere])
    monkeypatch.setenv("NUMBA_CACHE_LOCATOR_CLASSES", "")
    if hasattr(numba.core.config, "CACHE_LOCATOR_CLASSES"):
        monkeypatch.setattr(numba.core.config, "CACHE_LOCATOR_CLASSES", "")
    monkeypatch.setattr(numba_loops, "_disk_cache", {})

    def add_one(x):
        return x + 1

    with pytest.raises(RuntimeError, match="cannot cache"):
        numba.njit(cache=True)(add_one)
    compiled = numba_loops.njit_with_disk_cache(add_one)
    assert compiled(1) == 2
    assert numba_loops.disk_cache_state() == {"cached": [], "uncached": [add_one.__qualname__]}


def test_every_kernel_is_built_with_the_disk_cache_decision():
    """The backends' loops, the scalar definitions and these functions all
    go through the one decision that ``fastleaky info`` reports."""
    from fastleaky import info
    from fastleaky._backends import _numba_kernels, numba_loops

    state = info.numba_cache_info()
    assert state == numba_loops.disk_cache_state()
    decided = set(numba_loops._disk_cache)
    kernels = [*_numba_kernels.SCALARS.values(), *_numba_kernels.LOOPS.values(),
               leaky_relu, leaky_relu_grad, leaky_relu_backward]
    assert {k.py_func.__qualname__ for k in kernels} <= decided
    assert all(Path(folder).is_dir() for folder in state["cached"])
