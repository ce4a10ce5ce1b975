"""The caller's floating-point mode applies to every element, whatever the
thread count: after ``torch.set_flush_denormal(True)`` (flush-to-zero and
denormals-are-zero) or ``fesetround``, every CPU backend at serial and
parallel sizes gives what the reference gives in the calling thread.

Worker threads that already exist keep the mode they started with unless
the loops hand them the caller's, so each test first runs a parallel call
in the default mode (the threads exist), then changes the mode."""

import ctypes
import ctypes.util
import platform

import numpy as np
import pytest

import fastleaky
from fastleaky import config, reference, registry

CPU_BACKENDS = [b.name for b in fastleaky.backends() if b.device == "cpu" and b.available]
DTYPES = [np.float32, np.float64]
PARALLEL = 4 * max(config.parallel_min_elements(np.dtype(t).name) for t in DTYPES)
SIZES = {"serial": 1_000, "parallel": PARALLEL}

# fesetround's constants (<fenv.h>) on the platforms tests run on
_ROUNDING = {
    "x86_64": {"upward": 0x800, "downward": 0x400, "towardzero": 0xC00},
    "AMD64": {"upward": 0x800, "downward": 0x400, "towardzero": 0xC00},
    "aarch64": {"upward": 0x400000, "downward": 0x800000, "towardzero": 0xC00000},
}.get(platform.machine())


def _values(dtype, n):
    """Products that are subnormal, subnormal inputs of both signs, normal values."""
    tiny = np.finfo(dtype).tiny
    rng = np.random.default_rng(7)
    x = rng.standard_normal(n).astype(dtype)
    x[0::4] = -tiny * 2           # alpha * x is subnormal: flushed under FTZ
    x[1::4] = tiny / 4            # a positive subnormal: zero under DAZ
    x[2::4] = -tiny / 8           # a negative subnormal
    return x


def _check_all(dtype, size):
    """Every CPU backend against the reference computed here, now."""
    x = _values(dtype, size)
    g = np.full(size, 3.0, dtype)
    mismatches = {}
    for name in CPU_BACKENDS:
        for op, args, ref in (
            (fastleaky.leaky_relu, (x,), reference.leaky_relu),
            (fastleaky.leaky_relu_backward, (g, x), reference.leaky_relu_backward),
        ):
            want = ref(*args, 0.01)
            got = op(*args, 0.01, backend=name)
            bad = int(np.count_nonzero(got.view(f"u{got.itemsize}") != want.view(f"u{want.itemsize}")))
            if bad:
                mismatches[(name, op.__name__)] = bad
    return mismatches


def _start_threads():
    for name in CPU_BACKENDS:
        fastleaky.leaky_relu(np.ones(PARALLEL, np.float32), backend=name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES, ids=list(SIZES))
def test_flush_to_zero_in_every_thread(dtype, size, pool):
    torch = pytest.importorskip("torch")
    _start_threads()
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU has no flush-to-zero mode")
    try:
        # the mode is on: the reference flushes (else the test proves nothing)
        assert reference.leaky_relu(_values(dtype, 4), 0.01)[0] == 0
        mismatches = _check_all(dtype, SIZES[size])
    finally:
        torch.set_flush_denormal(False)
    assert not mismatches


@pytest.mark.skipif(_ROUNDING is None, reason="fesetround's constants unknown on this platform")
@pytest.mark.parametrize("mode", ["upward", "downward", "towardzero"])
@pytest.mark.parametrize("size", SIZES, ids=list(SIZES))
def test_rounding_mode_in_every_thread(mode, size, pool):
    libm = ctypes.CDLL(ctypes.util.find_library("m"))
    _start_threads()
    before = libm.fegetround()
    assert libm.fesetround(_ROUNDING[mode]) == 0
    try:
        mismatches = _check_all(np.float32, SIZES[size])
        mismatches.update({(k, "float64"): v for k, v in _check_all(np.float64, SIZES[size]).items()})
    finally:
        libm.fesetround(before)
    assert not mismatches


def test_mode_reaches_the_fast_entry_too():
    """The plain call (the compiled fast entry) after FTZ: no subnormal out."""
    torch = pytest.importorskip("torch")
    if registry.fast_entry("auto") is None:
        pytest.skip("no fast entry here")
    _start_threads()
    x = np.full(600_000, -1e-38, np.float32)
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU has no flush-to-zero mode")
    try:
        got = fastleaky.leaky_relu(x, 0.01)
        want = reference.leaky_relu(x, 0.01)
    finally:
        torch.set_flush_denormal(False)
    assert np.count_nonzero(want) == 0
    assert np.count_nonzero(got) == 0
