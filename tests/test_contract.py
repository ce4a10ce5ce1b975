"""The API contract on every host backend: what comes back, what is left alone,
what is rejected (and that nothing is written before the rejection)."""

import numpy as np
import pytest

import fastleaky
from fastleaky import cases, reference
from fastleaky.testing import assert_bitwise_equal

OPS = {
    "forward": (lambda x, **kw: fastleaky.leaky_relu(x, 0.2, **kw),
                lambda x: reference.leaky_relu(x, 0.2)),
    "grad": (lambda x, **kw: fastleaky.leaky_relu_grad(x, 0.2, **kw),
             lambda x: reference.leaky_relu_grad(x, 0.2)),
    "backward": (lambda x, **kw: fastleaky.leaky_relu_backward(np.negative(x), x, 0.2, **kw),
                 lambda x: reference.leaky_relu_backward(np.negative(x), x, 0.2)),
}


@pytest.fixture(params=list(OPS))
def op(request):
    return OPS[request.param]


def test_scalars_and_lists_like_a_ufunc(backend):
    got = fastleaky.leaky_relu(-2.0, 0.5, backend=backend)
    assert isinstance(got, np.float64) and got == -1.0
    assert fastleaky.leaky_relu(3, backend=backend) == 3.0
    lst = fastleaky.leaky_relu([1.0, -1.0, 0.0], 0.5, backend=backend)
    assert isinstance(lst, np.ndarray)
    np.testing.assert_array_equal(lst, [1.0, -0.5, 0.0])
    nested = fastleaky.leaky_relu([[1, -1], [2, -2]], 0.5, backend=backend)
    assert nested.shape == (2, 2) and nested.dtype == np.float64
    # 0-d arrays stay arrays (the reference returns one too)
    zero_d = fastleaky.leaky_relu(np.array(-4.0, np.float32), 0.5, backend=backend)
    assert isinstance(zero_d, np.ndarray) and zero_d.shape == () and zero_d == -2.0
    assert fastleaky.leaky_relu_grad(-1.0, 0.5, backend=backend) == 0.5
    assert fastleaky.leaky_relu_backward(4.0, -1.0, 0.5, backend=backend) == 2.0


@pytest.mark.parametrize("layout", list(cases.LAYOUTS))
def test_out_any_layout(backend, op, layout):
    fn, ref = op
    x = cases.make("float32", layout)
    expected = ref(x)
    out = np.full_like(expected, 7.0)
    if layout in ("fortran", "strided", "negative-stride", "transposed-slice"):
        # an output of the same odd layout as the input
        out = cases.LAYOUTS[layout](np.full(1000, 7.0, np.float32))
    returned = fn(x, out=out, backend=backend)
    assert returned is out
    assert_bitwise_equal(out, expected)


def test_in_place(backend, op):
    fn, ref = op
    x = cases.sample("float64", 5000)
    expected = ref(x)
    assert fn(x, out=x, backend=backend) is x
    assert_bitwise_equal(x, expected)


@pytest.mark.parametrize("shift", [1, 7, 64, -3])
def test_partial_overlap(backend, shift):
    buf = cases.sample("float32", 3000)
    x = buf[100:2100]
    out = buf[100 + shift:2100 + shift]
    expected = reference.leaky_relu(x, 0.3)
    fastleaky.leaky_relu(x, 0.3, out=out, backend=backend)
    assert_bitwise_equal(out, expected)


def test_backward_overlap_with_grad_output(backend):
    g = cases.sample("float32", 2000, seed=3)
    x = cases.sample("float32", 2000, seed=4)
    expected = reference.leaky_relu_backward(g, x, 0.1)
    fastleaky.leaky_relu_backward(g, x, 0.1, out=g, backend=backend)
    assert_bitwise_equal(g, expected)
    g2 = cases.sample("float32", 2001, seed=3)
    x = cases.sample("float32", 2000, seed=4)
    expected = reference.leaky_relu_backward(g2[1:], x, 0.1)
    fastleaky.leaky_relu_backward(g2[1:], x, 0.1, out=g2[:-1], backend=backend)
    assert_bitwise_equal(g2[:-1], expected)


def test_inputs_not_modified(backend, op):
    fn, _ = op
    x = cases.make("float32", "fortran")
    before = x.copy(order="K")
    fn(x, backend=backend)
    assert_bitwise_equal(x, before)


# Bad input (types, dtypes, alpha, out, backend names, shapes) is covered
# table-driven, for every entry point, in test_bad_input.py.


@pytest.mark.parametrize("alpha", [np.float32(0.3), np.float16(0.3), np.array(0.3),
                                   np.array([0.3]), 1, True, np.int8(-2)])
def test_alpha_kinds_accepted(backend, alpha):
    x = cases.sample("float32", 100)
    expected = reference.leaky_relu(x, np.asarray(alpha).reshape(())[()])
    assert_bitwise_equal(fastleaky.leaky_relu(x, alpha, backend=backend), expected)


def test_no_runtime_warning_on_nan_and_inf(backend, recwarn):
    # pytest runs with -W error, so a warning would already fail; recwarn
    # makes the check explicit.
    for dtype in cases.DTYPES:
        x = np.array([np.nan, np.inf, -np.inf, -0.0] * 50, dtype)
        for alpha in (0.0, 1.5, -0.5):
            fastleaky.leaky_relu(x, alpha, backend=backend)
            fastleaky.leaky_relu_grad(x, alpha, backend=backend)
            fastleaky.leaky_relu_backward(x, x, alpha, backend=backend)
    assert not recwarn.list


def test_errors_are_the_same_on_every_backend():
    """Validation happens before dispatch, so every backend raises alike."""
    x = cases.sample("float32", 10)
    with np.errstate(invalid="ignore"):  # casting a signalling NaN
        x_complex = x.astype(complex)
    outcomes = {}
    for name in [b.name for b in fastleaky.backends() if b.available and b.device == "cpu"]:
        kinds = []
        for args, kwargs in [((x, float("nan")), {}), ((x_complex,), {}),
                             ((x,), {"out": np.zeros(3, np.float32)}),
                             ((x,), {"out": np.zeros(10, np.float64)})]:
            try:
                fastleaky.leaky_relu(*args, backend=name, **kwargs)
                kinds.append(None)
            except Exception as exc:
                kinds.append((type(exc), str(exc)))
        outcomes[name] = kinds
    assert len({tuple(v) for v in outcomes.values()}) == 1, outcomes
