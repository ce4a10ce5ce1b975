"""The operations table: its scalar definitions, codes and public names
agree with the reference, the C loops and the public API."""

import numpy as np
import pytest

import fastleaky
from fastleaky import cases, ops, registry


@pytest.mark.parametrize("alpha", cases.ALPHAS)
@pytest.mark.parametrize("dtype", cases.DTYPES)
@pytest.mark.parametrize("op", ops.OPS, ids=lambda op: op.name)
def test_scalar_definition_is_the_reference(op, dtype, alpha):
    """The Python scalar definition (what Numba compiles), run on NumPy
    scalars, gives the reference's bits for every edge value."""
    x = cases.edge_values(dtype)
    g = x[::-1].copy()
    t = np.dtype(dtype).type
    a = t(alpha)
    args = [(gi, xi) for gi, xi in zip(g, x)] if op.arity == 2 else [(xi,) for xi in x]
    with np.errstate(all="ignore"):
        got = np.array([t(op.scalar(*v, a)) for v in args], dtype)
    want = op.reference(g, x, alpha) if op.arity == 2 else op.reference(x, alpha)
    bits = np.dtype(f"u{np.dtype(dtype).itemsize}")
    np.testing.assert_array_equal(got.view(bits), want.view(bits))


def test_table_is_consistent():
    assert [op.code for op in ops.BY_CODE] == list(range(len(ops.OPS)))
    for op in ops.OPS:
        assert getattr(fastleaky, op.public).__name__ == op.public
        assert ops.BY_NAME[op.name] is op


@pytest.mark.skipif(not registry.availability("cython")[0], reason="Cython loops not built")
def test_c_operation_numbers_match():
    from fastleaky._backends import _cython_loop

    assert _cython_loop.OP_CODES == {op.name: op.code for op in ops.OPS}
