"""fastleaky.testing.assert_bitwise_equal: an AssertionError with a message
for every difference, under every optimisation level."""

import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest

from fastleaky.testing import assert_bitwise_equal

# (actual, expected, what the message must say)
DIFFERENT = [
    pytest.param(np.array([1.0], np.longdouble), np.array([2.0], np.longdouble),
                 "1 of 1 elements differ", id="longdouble-values"),
    pytest.param(np.array([0.0], np.longdouble), np.array([-0.0], np.longdouble),
                 "1 of 1 elements differ", id="longdouble-signed-zero"),
    pytest.param(np.array([1.0], np.float32), np.array([1065353216], np.int32),
                 "dtypes differ", id="same-bits-other-dtype"),
    pytest.param(np.zeros(4), np.zeros((2, 2)), "shapes differ", id="shape"),
    pytest.param(np.float64(1.0), np.array(1.0), "expected ndarray", id="scalar-vs-0d"),
    pytest.param(np.array([np.nan]), -np.array([np.nan]), "0x7ff8", id="nan-sign"),
    pytest.param(np.array([True, False]), np.array([True, True]), "first at flat index 1",
                 id="bool"),
    pytest.param(np.array([1 + 2j], np.clongdouble), np.array([1 - 2j], np.clongdouble),
                 "1 of 1 elements differ", id="clongdouble"),
]


@pytest.mark.parametrize(("actual", "expected", "message"), DIFFERENT)
def test_every_difference_raises_assertion_error(actual, expected, message):
    with pytest.raises(AssertionError, match=message.replace("(", r"\(")):
        assert_bitwise_equal(actual, expected)


def test_equal_inputs_pass():
    assert_bitwise_equal(np.array([np.nan, -0.0, 1.0], np.longdouble),
                         np.array([np.nan, -0.0, 1.0], np.longdouble))
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert_bitwise_equal(x.T, np.ascontiguousarray(x.T))
    assert_bitwise_equal(np.float16(2), np.float16(2))


def test_raises_under_python_optimize():
    """``python -O`` strips ``assert`` statements; the helper must not rely on them."""
    script = textwrap.dedent("""
        import numpy as np
        from fastleaky.testing import assert_bitwise_equal

        cases = [
            (np.array([1.0], np.longdouble), np.array([2.0], np.longdouble)),
            (np.array([1.0], np.float32), np.array([1065353216], np.int32)),
            (np.zeros(4), np.zeros((2, 2))),
            (np.float64(1.0), np.array(1.0)),
        ]
        for actual, expected in cases:
            try:
                assert_bitwise_equal(actual, expected)
            except AssertionError as exc:
                print("raised:", str(exc).splitlines()[0])
            else:
                print("passed")
    """)
    proc = subprocess.run([sys.executable, "-O", "-c", script], capture_output=True,
                          text=True, cwd=tempfile.gettempdir(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 4 and all(line.startswith("raised: ") for line in lines), proc.stdout
