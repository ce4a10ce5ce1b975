"""Hypothesis: any shape, layout and value, every backend bit-exact with the reference."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastleaky
from fastleaky import reference
from fastleaky.testing import assert_bitwise_equal

DTYPES = st.sampled_from([np.float16, np.float32, np.float64]).flatmap(
    lambda t: st.sampled_from([np.dtype(t), np.dtype(t).newbyteorder("S")])
)
ALPHAS = st.one_of(
    st.sampled_from([0.0, 0.01, 1.0, -0.5, 1.5, 5e-324, -1e-310]),
    st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
)


@st.composite
def arrays(draw):
    dtype = draw(DTYPES)
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=9))
    arr = draw(hnp.arrays(dtype, shape, elements=st.floats(width=8 * dtype.itemsize,
                                                           allow_subnormal=True)))
    view = draw(st.sampled_from(["as-is", "fortran", "reversed", "strided"]))
    if view == "fortran":
        arr = np.asfortranarray(arr)
    elif view == "reversed" and arr.ndim:
        arr = arr[::-1]
    elif view == "strided" and arr.ndim:
        arr = arr[::2]
    return arr


BACKENDS = [b.name for b in fastleaky.backends() if b.available and b.device == "cpu"]


@settings(max_examples=150, deadline=None)
@given(x=arrays(), alpha=ALPHAS, backend=st.sampled_from(BACKENDS))
def test_forward_and_grad(x, alpha, backend):
    assert_bitwise_equal(fastleaky.leaky_relu(x, alpha, backend=backend),
                         reference.leaky_relu(x.astype(x.dtype.newbyteorder("=")), alpha))
    assert_bitwise_equal(fastleaky.leaky_relu_grad(x, alpha, backend=backend),
                         reference.leaky_relu_grad(x.astype(x.dtype.newbyteorder("=")), alpha))


@settings(max_examples=100, deadline=None)
@given(x=arrays(), alpha=ALPHAS, backend=st.sampled_from(BACKENDS), data=st.data())
def test_backward(x, alpha, backend, data):
    g = data.draw(hnp.arrays(x.dtype, x.shape, elements=st.floats(width=8 * x.dtype.itemsize)))
    native = x.dtype.newbyteorder("=")
    assert_bitwise_equal(fastleaky.leaky_relu_backward(g, x, alpha, backend=backend),
                         reference.leaky_relu_backward(g.astype(native), x.astype(native), alpha))
