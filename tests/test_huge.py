"""More than 2**31 elements on every CPU backend: correct at the start,
around the 32-bit index and byte-offset boundaries, and at the end.

Marked ``slow`` (run by ``ci/slow``): float16 needs two 4 GiB arrays, float32
one 8 GiB array (computed in place).  Only slices are compared, so checking
allocates nothing large.
"""

import numpy as np
import pytest

import fastleaky
from fastleaky import cases, reference, registry
from fastleaky.info import available_memory
from fastleaky.testing import assert_bitwise_equal

pytestmark = pytest.mark.slow

N = 2**31 + 4099  # odd: the end is not aligned to any block or chunk
W = 4096  # elements checked each side of every boundary
# element indices where 32-bit element indices or byte offsets would wrap
BOUNDARIES = (2**29, 2**30, 2**31)
GIB = 2**30

OPS = {
    "forward": (lambda x, **kw: fastleaky.leaky_relu(x, 0.2, **kw),
                lambda x: reference.leaky_relu(x, 0.2)),
    "grad": (lambda x, **kw: fastleaky.leaky_relu_grad(x, 0.2, **kw),
             lambda x: reference.leaky_relu_grad(x, 0.2)),
    "backward": (lambda x, **kw: fastleaky.leaky_relu_backward(x, x, 0.2, **kw),
                 lambda x: reference.leaky_relu_backward(x, x, 0.2)),
}


def _need(nbytes):
    free = available_memory() or 0
    if free < nbytes + 2 * GIB:
        pytest.skip(f"needs {(nbytes + 2 * GIB) / GIB:.1f} GiB available, "
                    f"MemAvailable is {free / GIB:.1f} GiB")


def _slices():
    out = [slice(0, W)] + [slice(b - W, b + W) for b in BOUNDARIES] + [slice(N - W, N)]
    return [s for s in out if s.stop <= N]


def _huge(dtype):
    """N elements: the sample values (edge values included) repeated; a
    prime period, so every checked slice holds different values."""
    return np.resize(cases.sample(dtype, 65_521, seed=5), N)


def _names(dtype):
    """Every CPU backend name, less those that hand this dtype to the same
    implementation as an earlier one (a backend without a float16 loop hands
    float16 to the NumPy reference, which takes ~40 s per pass at this size)."""
    names, seen = [], set()
    for name in ["auto"] + [b.name for b in fastleaky.backends()
                            if b.available and b.device == "cpu"]:
        if name == "auto":  # the fast path, or the same kernels as a named backend
            names.append(name)
            continue
        impl = registry.resolve(registry.requested_name(name), np.dtype(dtype), N)
        if id(impl) not in seen:
            names.append(name)
            seen.add(id(impl))
    return names


@pytest.fixture(scope="module")
def huge_f16():
    _need(2 * N * 2)
    return _huge(np.float16)


def _check(got_at, expected, where):
    for s, want in expected:
        try:
            assert_bitwise_equal(got_at(s), want)
        except AssertionError as exc:
            raise AssertionError(f"{where}, elements {s.start}:{s.stop}: {exc}") from None


@pytest.mark.parametrize("op", list(OPS))
def test_float16_new_result(huge_f16, op):
    fn, ref = OPS[op]
    x = huge_f16
    expected = [(s, ref(x[s])) for s in _slices()]
    for name in _names(np.float16):
        y = fn(x, backend=name)
        _check(lambda s: y[s], expected, f"{op} on {name}")
        del y


def test_float32_in_place():
    _need(N * 4)
    x = _huge(np.float32)
    originals = [(s, x[s].copy()) for s in _slices()]
    for op, (fn, ref) in OPS.items():
        expected = [(s, ref(v)) for s, v in originals]
        for name in _names(np.float32):
            for s, v in originals:
                x[s] = v
            assert fn(x, out=x, backend=name) is x
            _check(lambda s: x[s], expected, f"{op} in place on {name}")
