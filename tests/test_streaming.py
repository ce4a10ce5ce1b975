"""The Cython loops' streaming-store variants (results of
``config.STREAM_MIN_BYTES`` and more, written into the caller's ``out``): the same bits as the reference, every
operation, every head/tail split around out's 64-byte boundaries, in place
and not, serial and on each parallel runtime, nothing written outside out.

The threshold is lowered to one byte here so that small arrays take the
streaming loops; the decision itself (the size, the dtypes) is checked too.
"""

import numpy as np
import pytest

import fastleaky
from fastleaky import ops, reference
from fastleaky.cases import edge_values

_loop = pytest.importorskip("fastleaky._backends._cython_loop")

pytestmark = pytest.mark.skipif(not _loop.HAVE_STREAM, reason="no streaming loops in this build")

GUARD = 16  # elements of sentinel on each side of out


@pytest.fixture
def streaming():
    from fastleaky import config

    _loop.set_stream_min_bytes(1)
    try:
        yield
    finally:
        _loop.set_stream_min_bytes(config.STREAM_MIN_BYTES)


def _inputs(dtype, n, rng):
    base = np.concatenate([edge_values(dtype), rng.standard_normal(n).astype(dtype)])
    x = np.resize(base, n).astype(dtype)
    rng.shuffle(x)
    g = rng.standard_normal(n).astype(dtype)
    g[: min(n, 7)] = np.array([np.nan, -0.0, 0.0, np.inf, -np.inf, 1e-45, -1e-300])[: min(n, 7)]
    return g, x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", ops.OPS, ids=lambda op: op.name)
@pytest.mark.parametrize("n", [1, 3, 15, 16, 17, 31, 33, 63, 64, 65, 130, 1000, 4099])
def test_streaming_loops_match_the_reference(streaming, op, dtype, n):
    rng = np.random.default_rng(n)
    itemsize = np.dtype(dtype).itemsize
    for offset in range(0, 64 // itemsize + 1, 3):  # every head length modulo a line
        g, x = _inputs(dtype, n, rng)
        buf = np.full(n + 2 * GUARD + offset, 7.0, dtype)
        out = buf[GUARD + offset: GUARD + offset + n]
        args = (g, x) if op.arity == 2 else (x,)
        expected = op.reference(*args, dtype(0.1))
        with fastleaky.thread_limit(1):
            op_call = getattr(fastleaky, op.public)
            op_call(*args, 0.1, out=out, backend="cython")
        np.testing.assert_array_equal(out.view(f"u{itemsize}"), expected.view(f"u{itemsize}"))
        assert (buf[: GUARD + offset] == 7).all() and (buf[GUARD + offset + n:] == 7).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", ops.OPS, ids=lambda op: op.name)
def test_streaming_in_place_and_parallel(streaming, pool, op, dtype):
    n = 300_001  # parallel at the pinned thresholds; an odd tail
    rng = np.random.default_rng(1)
    g, x = _inputs(dtype, n, rng)
    args = (g, x) if op.arity == 2 else (x,)
    expected = op.reference(*args, dtype(0.2))
    op_call = getattr(fastleaky, op.public)
    out = np.full(n, 7.0, dtype)  # the caller's memory: the streaming loops
    op_call(*args, 0.2, out=out, backend="cython")
    np.testing.assert_array_equal(out.view(f"u{out.itemsize}"),
                                  expected.view(f"u{expected.itemsize}"))
    target = x.copy()  # in place and freshly allocated: the plain loops
    args_in_place = (g, target) if op.arity == 2 else (target,)
    op_call(*args_in_place, 0.2, out=target, backend="cython")
    np.testing.assert_array_equal(target.view(f"u{target.itemsize}"),
                                  expected.view(f"u{expected.itemsize}"))
    np.testing.assert_array_equal(op_call(*args, 0.2, backend="cython"), expected)


def test_the_threshold_is_checked_and_kept():
    with pytest.raises(ValueError, match="negative"):
        _loop.set_stream_min_bytes(-1)
    _loop.set_stream_min_bytes(1 << 40)  # no array here is that large: plain stores
    try:
        x = np.linspace(-1, 1, 1001)
        np.testing.assert_array_equal(fastleaky.leaky_relu(x, backend="cython"),
                                      reference.leaky_relu(x))
    finally:
        from fastleaky import config

        _loop.set_stream_min_bytes(config.STREAM_MIN_BYTES)


def test_float16_never_streams_and_stays_exact(streaming):
    x = np.linspace(-3, 3, 5001).astype(np.float16)
    np.testing.assert_array_equal(fastleaky.leaky_relu(x, 0.1, backend="cython").view("u2"),
                                  reference.leaky_relu(x, np.float16(0.1)).view("u2"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_streaming_loops_follow_the_callers_flush_mode(streaming, pool, dtype):
    """SSE selects and multiplies under the caller's FTZ/DAZ, in every thread."""
    torch = pytest.importorskip("torch")
    n = 300_001
    fastleaky.leaky_relu(np.ones(n, dtype), backend="cython")  # the threads exist
    tiny = np.finfo(dtype).tiny
    x = np.resize(np.array([-tiny * 2, tiny / 4, -tiny / 8, 1.5], dtype), n)
    g = np.full(n, 3.0, dtype)
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU has no flush-to-zero mode")
    try:
        assert reference.leaky_relu(x[:1], dtype(0.01))[0] == 0  # the mode is on
        for op, args in ((ops.FORWARD, (x,)), (ops.BACKWARD, (g, x))):
            want = op.reference(*args, dtype(0.01))
            got = getattr(fastleaky, op.public)(*args, 0.01, out=np.empty(n, dtype),
                                                backend="cython")
            np.testing.assert_array_equal(got.view(f"u{got.itemsize}"), want.view(f"u{want.itemsize}"))
    finally:
        torch.set_flush_denormal(False)
