"""The shared case list on every backend, bit for bit against the reference."""

import numpy as np
import pytest

import fastleaky
from fastleaky import cases, reference
from fastleaky.testing import assert_bitwise_equal


@pytest.mark.parametrize("alpha", cases.ALPHAS)
@pytest.mark.parametrize("layout", list(cases.LAYOUTS))
@pytest.mark.parametrize("dtype", cases.DTYPES)
def test_forward(backend, dtype, layout, alpha):
    x = cases.make(dtype, layout)
    before = x.copy()
    got = fastleaky.leaky_relu(x, alpha, backend=backend)
    assert_bitwise_equal(got, reference.leaky_relu(x, alpha))
    assert_bitwise_equal(x, before)


@pytest.mark.parametrize("alpha", cases.ALPHAS)
@pytest.mark.parametrize("layout", list(cases.LAYOUTS))
@pytest.mark.parametrize("dtype", cases.DTYPES)
def test_grad(backend, dtype, layout, alpha):
    x = cases.make(dtype, layout)
    got = fastleaky.leaky_relu_grad(x, alpha, backend=backend)
    assert_bitwise_equal(got, reference.leaky_relu_grad(x, alpha))


@pytest.mark.parametrize("alpha", cases.ALPHAS)
@pytest.mark.parametrize("layout", list(cases.LAYOUTS))
@pytest.mark.parametrize("dtype", cases.DTYPES)
def test_backward(backend, dtype, layout, alpha):
    x = cases.make(dtype, layout)
    g = cases.make(dtype, layout, seed=1)
    got = fastleaky.leaky_relu_backward(g, x, alpha, backend=backend)
    assert_bitwise_equal(got, reference.leaky_relu_backward(g, x, alpha))


# Sizes around the SIMD widths, the thread chunk alignment (64) and the
# serial/parallel threshold, so every remainder loop runs.
@pytest.mark.parametrize("n", [1, 2, 15, 16, 17, 63, 65, 129, 4097, 40_001, 200_003, 300_007])
@pytest.mark.parametrize("dtype", cases.DTYPES)
def test_sizes(backend, dtype, n):
    x = cases.sample(dtype, n, seed=n)
    g = cases.sample(dtype, n, seed=n + 1)
    assert_bitwise_equal(fastleaky.leaky_relu(x, 0.2, backend=backend),
                         reference.leaky_relu(x, 0.2))
    assert_bitwise_equal(fastleaky.leaky_relu_grad(x, 0.2, backend=backend),
                         reference.leaky_relu_grad(x, 0.2))
    assert_bitwise_equal(fastleaky.leaky_relu_backward(g, x, 0.2, backend=backend),
                         reference.leaky_relu_backward(g, x, 0.2))


def test_semantics_of_reference():
    """The few facts the contract states outright."""
    x = np.array([np.nan, -0.0, 0.0, np.inf, -np.inf, 2.0, -2.0])
    y = reference.leaky_relu(x, 0.5)
    assert np.isnan(y[0])
    assert np.signbit(y[1]) and y[1] == 0
    assert not np.signbit(y[2])
    assert y[3] == np.inf and y[4] == -np.inf and y[5] == 2.0 and y[6] == -1.0
    # grad at exactly 0 (and NaN) is alpha, as in PyTorch
    np.testing.assert_array_equal(reference.leaky_relu_grad(x, 0.5),
                                  [0.5, 0.5, 0.5, 1, 0.5, 1, 0.5])
    # alpha > 1 and alpha < 0 use the select, not max(x, alpha * x)
    assert reference.leaky_relu(np.array([-1.0]), 2.0)[0] == -2.0
    assert reference.leaky_relu(np.array([-1.0]), -0.5)[0] == 0.5


@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.uint16, np.int32, np.int64])
def test_bool_and_int_give_float64(backend, dtype):
    x = np.array([0, 1, 1, 0, 1], dtype=dtype) if dtype is np.bool_ else \
        np.arange(-5, 5).astype(dtype)
    got = fastleaky.leaky_relu(x, 0.2, backend=backend)
    assert got.dtype == np.float64
    assert_bitwise_equal(got, reference.leaky_relu(x.astype(np.float64), 0.2))


def test_longdouble_goes_through_reference(backend):
    x = np.array([-1, 2, -3], dtype=np.longdouble)
    got = fastleaky.leaky_relu(x, 0.01, backend=backend)
    assert got.dtype == np.longdouble
    assert_bitwise_equal(got, reference.leaky_relu(x, 0.01))


def test_mixed_dtype_backward_promotes(backend):
    g = np.array([1.0, -2.0, 3.0], dtype=np.float32)
    x = np.array([-1.0, 2.0, -3.0], dtype=np.float16)
    got = fastleaky.leaky_relu_backward(g, x, 0.1, backend=backend)
    assert got.dtype == np.float32
    assert_bitwise_equal(got, reference.leaky_relu_backward(g, x, 0.1))


@pytest.mark.parametrize("target", ["cpu", "parallel"])
def test_numba_ufuncs_for_users(target):
    """The @vectorize ufuncs handed out for interop compute the same bits."""
    pytest.importorskip("numba")
    from fastleaky.jit import ufuncs as make_ufuncs

    ufuncs = make_ufuncs(target)
    # numba returns np.ufunc objects, or DUFuncs (which wrap one) for target "cpu"
    assert all(isinstance(getattr(u, "ufunc", u), np.ufunc) for u in ufuncs.values())
    for dtype in ("float32", "float64"):
        x = cases.sample(dtype, 3001)
        g = cases.sample(dtype, 3001, seed=5)
        for alpha in cases.ALPHAS:
            a = np.dtype(dtype).type(alpha)
            # called through NumPy, the vectorized compare's FP flag on NaN
            # input becomes a warning; the values are what matters here
            with np.errstate(invalid="ignore", over="ignore"):
                assert_bitwise_equal(ufuncs["forward"](x, a), reference.leaky_relu(x, alpha))
                assert_bitwise_equal(ufuncs["grad"](x, a), reference.leaky_relu_grad(x, alpha))
                assert_bitwise_equal(ufuncs["backward"](g, x, a),
                                     reference.leaky_relu_backward(g, x, alpha))
    # a real ufunc: broadcasting against an array of alphas
    grid = make_ufuncs(target)["forward"](np.float32([[-1.0], [2.0]]), np.float32([0.5, 0.25]))
    np.testing.assert_array_equal(grid, [[-0.5, -0.25], [2.0, 2.0]])


@pytest.mark.parametrize("alpha", [0.1, 1 / 3, 3.4028235e38, -3.4e38, 1e-45, 2.0**-149])
def test_auto_alpha_rounding_float32(alpha):
    """The fast path hands alpha over as a double; the float32 cast in C
    must round exactly like NumPy's."""
    x = cases.sample("float32", 1000)
    with np.errstate(over="ignore"):
        finite = np.isfinite(np.float32(alpha))
    if not finite:
        with pytest.raises(ValueError):
            fastleaky.leaky_relu(x, alpha)
        return
    assert_bitwise_equal(fastleaky.leaky_relu(x, alpha), reference.leaky_relu(x, alpha))
