"""Hypothesis: any dtype, shape, layout, alpha and bit pattern; every backend
bit-exact with the reference.

The default run draws ``max_examples`` from the "fastleaky" profile; set
``FASTLEAKY_HYPOTHESIS_PROFILE=fuzz`` (``ci/fuzz``) for a long run.
"""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastleaky
from fastleaky import cases, reference
from fastleaky.testing import assert_bitwise_equal

FLOATS = (np.float16, np.float32, np.float64)
DTYPES = st.sampled_from(FLOATS).flatmap(
    lambda t: st.sampled_from([np.dtype(t), np.dtype(t).newbyteorder("S")])
)
ALPHAS = st.one_of(
    st.sampled_from([0.0, -0.0, 0.01, 0.2, 1.0, -0.5, 1.5, 2.0, -3.0, 5e-324, -1e-310,
                     float(np.finfo(np.float32).smallest_subnormal),
                     float(np.finfo(np.float16).smallest_subnormal),
                     -float(np.finfo(np.float16).smallest_subnormal)]),
    st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
)
# sizes around SIMD widths, chunk alignment and the parallel thresholds
LARGE_ODD = st.sampled_from([127, 129, 4097, 16_383, 32_769, 65_537, 100_003])


def _raw(dtype, n, seed):
    """``n`` random bit patterns (every NaN payload, subnormal, inf, signed
    zero is possible) with the edge values spread in."""
    bits = np.dtype(f"u{dtype.itemsize}")
    rng = np.random.default_rng(seed)
    x = rng.integers(0, np.iinfo(bits).max, size=n, dtype=bits, endpoint=True).view(dtype)
    edges = cases.edge_values(dtype)
    if n:
        x[rng.integers(0, n, size=min(n, 2 * len(edges)))] = np.resize(edges, min(n, 2 * len(edges)))
    return x


@st.composite
def layouts(draw, arr):
    """A view of ``arr`` in a drawn layout: per-axis steps (negative too),
    transposes, Fortran order, byte order."""
    how = draw(st.sampled_from(["as-is", "fortran", "steps", "transposed", "byteswapped"]))
    if how == "fortran":
        return np.asfortranarray(arr)
    if how == "byteswapped":
        return arr.astype(arr.dtype.newbyteorder("S"))
    if arr.ndim == 0:
        return arr
    if how == "steps":
        steps = draw(st.lists(st.sampled_from([1, 2, 3, -1, -2]), min_size=arr.ndim,
                              max_size=arr.ndim))
        return arr[tuple(slice(None, None, s) for s in steps)]
    if how == "transposed":
        return arr.T
    return arr


@st.composite
def arrays(draw):
    dtype = draw(DTYPES)
    native = dtype.newbyteorder("=")
    source = draw(st.sampled_from(["hypothesis", "bits", "large"]))
    if source == "hypothesis":
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=9))
        arr = draw(hnp.arrays(native, shape, elements=st.floats(width=8 * native.itemsize,
                                                                allow_subnormal=True)))
    else:
        seed = draw(st.integers(0, 2**32 - 1))
        if source == "bits":
            shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=12))
        else:
            shape = (draw(LARGE_ODD),)
        arr = _raw(native, int(np.prod(shape)), seed).reshape(shape)
    arr = draw(layouts(arr))
    return arr.astype(dtype) if dtype != arr.dtype else arr


def _native(x):
    return x.astype(x.dtype.newbyteorder("="))


BACKENDS = [b.name for b in fastleaky.backends() if b.available and b.device == "cpu"]
OPS = {
    "forward": (fastleaky.leaky_relu, reference.leaky_relu),
    "grad": (fastleaky.leaky_relu_grad, reference.leaky_relu_grad),
}


@given(x=arrays(), alpha=ALPHAS, backend=st.sampled_from(["auto", *BACKENDS]),
       op=st.sampled_from(list(OPS)), where=st.sampled_from(["new", "out", "in-place"]))
def test_forward_and_grad(x, alpha, backend, op, where):
    fn, ref = OPS[op]
    expected = ref(_native(x), alpha)
    before = x.copy()
    if where == "new":
        got = fn(x, alpha, backend=backend)
    elif where == "in-place" and x.dtype.isnative and x.flags.writeable:
        got = fn(x, alpha, out=x, backend=backend)
        assert got is x
        assert_bitwise_equal(np.asarray(got), np.asarray(expected))
        return
    else:
        out = np.empty_like(expected)
        got = fn(x, alpha, out=out, backend=backend)
        assert got is out
    assert_bitwise_equal(np.asarray(got), np.asarray(expected))
    assert_bitwise_equal(x, before)


@given(x=arrays(), alpha=ALPHAS, backend=st.sampled_from(["auto", *BACKENDS]), data=st.data())
def test_backward(x, alpha, backend, data):
    g = _raw(x.dtype.newbyteorder("="), x.size, data.draw(st.integers(0, 2**32 - 1)))
    g = g.reshape(x.shape)
    how = data.draw(st.sampled_from(["as-is", "fortran", "reversed", "byteswapped", "wider"]))
    if how == "fortran" and g.ndim:  # (asfortranarray makes 0-d input 1-d)
        g = np.asfortranarray(g)
    elif how == "reversed" and g.ndim:  # same values, negative strides on every axis
        g = np.flip(np.flip(g).copy())
    elif how == "byteswapped":
        g = g.astype(g.dtype.newbyteorder("S"))
    elif how == "wider" and g.dtype != np.float64:  # promotes the result to float64
        with np.errstate(invalid="ignore"):  # signaling NaNs
            g = g.astype(np.float64)
    expected = reference.leaky_relu_backward(_native(g), _native(x), alpha)
    where = data.draw(st.sampled_from(["new", "out", "into-grad"]))
    if where == "new":
        got = fastleaky.leaky_relu_backward(g, x, alpha, backend=backend)
    else:
        out = g if where == "into-grad" and g.dtype == expected.dtype else np.empty_like(expected)
        got = fastleaky.leaky_relu_backward(g, x, alpha, out=out, backend=backend)
        assert got is out
    assert_bitwise_equal(np.asarray(got), np.asarray(expected))
