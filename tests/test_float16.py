"""float16: every bit pattern through every CPU backend, the Cython loops
for each instruction set the CPU has, the compiled fast entry (float16 and
backward's float16/float32 mixes), and alpha's rounding to half."""

import functools

import numpy as np
import pytest

import fastleaky
from fastleaky import cases, ops, reference, registry, threads
from fastleaky.testing import assert_bitwise_equal

HALF_BITS = np.arange(1 << 16, dtype=np.uint16)
EVERY = HALF_BITS.view(np.float16)
SHUFFLED = np.random.default_rng(0).permutation(HALF_BITS).view(np.float16)


def _loop():
    from fastleaky._backends import cython_backend

    if cython_backend._loop is None or not cython_backend._loop.HAVE_FLOAT16:
        pytest.skip("the Cython extension has no float16 loops here")
    return cython_backend._loop


def _half_pairings():
    """(grad_output, x): every float16 value in both places, and every
    grad_output against a positive and a negative x."""
    return [(SHUFFLED, EVERY), (EVERY, SHUFFLED),
            (EVERY, np.full_like(EVERY, 1.0)), (EVERY, np.full_like(EVERY, -1.0))]


def _mixed_partner(dtype, seed):
    """A float32 partner for the float16 values: normal values with zeros of
    both signs, infinities and NaNs spread through them."""
    p = np.random.default_rng(seed).standard_normal(EVERY.size).astype(dtype)
    p[::7], p[3::11], p[5::13], p[9::17], p[2::19] = 0.0, -0.0, np.inf, -np.inf, np.nan
    return p


@functools.cache
def _every_value_cases():
    """(op, inputs, alpha, the reference's result), computed once."""
    found = []
    for alpha in cases.ALPHAS:
        for op in (ops.FORWARD, ops.GRAD):
            found.append((op, (EVERY,), alpha, op.reference(EVERY, alpha)))
        for g, x in _half_pairings():
            found.append((ops.BACKWARD, (g, x), alpha, ops.BACKWARD.reference(g, x, alpha)))
    return found


def _check_every_value(compute):
    """``compute(op, inputs, alpha)`` against the reference, bit for bit."""
    for op, inputs, alpha, expected in _every_value_cases():
        assert_bitwise_equal(compute(op, inputs, alpha), expected)


@pytest.fixture(params=["generic", "f16c", "avx512", "avx512fp16"])
def half_isa(request):
    """Each float16 loop of the Cython extension that this CPU can run."""
    loop = _loop()
    if request.param not in loop.half_isas():
        pytest.skip(f"this CPU cannot run the {request.param} float16 loops")
    before = loop.half_isa()
    loop.set_half_isa(request.param)
    yield loop
    loop.set_half_isa(before)


# ---------------------------------------------------------------- every value

@pytest.mark.parametrize("nthreads", [threads.SERIAL, threads.RUNTIME_DEFAULT])
def test_every_value_each_isa_run(half_isa, nthreads):
    def compute(op, inputs, alpha):
        out = np.empty_like(inputs[-1])
        half_isa.run(op.code, inputs[0], inputs[-1], np.float16(alpha), out, nthreads)
        return out

    _check_every_value(compute)


def test_every_value_each_isa_fast_entry(half_isa):
    from fastleaky._backends import cython_backend

    plain = cython_backend.plain_entry()

    def compute(op, inputs, alpha):
        result = plain(op.code, inputs[0], inputs[-1], alpha, None)
        assert result is not NotImplemented  # float16 takes the compiled path
        return result

    _check_every_value(compute)


@pytest.mark.parametrize("name", ["auto", "cython", "numba-cpu", "numba-parallel", "numpy"])
def test_every_value_every_backend(require, name):
    require(name)
    public = {op.name: getattr(fastleaky, op.public) for op in ops.OPS}

    def compute(op, inputs, alpha):
        return public[op.name](*inputs, alpha, backend=name)

    _check_every_value(compute)


def test_mixed_every_value_each_isa(half_isa):
    """backward with float16 grad_output and float32 x, and the reverse:
    float32 results, every float16 value (signalling NaNs included) on
    either side of the select."""
    from fastleaky._backends import cython_backend

    plain = cython_backend.plain_entry()
    partners = [_mixed_partner(np.float32, 1), np.full(EVERY.size, 2.0, np.float32),
                np.full(EVERY.size, -2.0, np.float32)]
    for alpha in cases.ALPHAS:
        for p in partners:
            for g, x in ((EVERY, p), (p, EVERY)):
                got = plain(ops.BACKWARD.code, g, x, alpha, None)
                assert got is not NotImplemented  # computed without a converted copy
                assert got.dtype == np.float32
                assert_bitwise_equal(got, reference.leaky_relu_backward(g, x, alpha))
                assert_bitwise_equal(fastleaky.leaky_relu_backward(g, x, alpha), got)


# ---------------------------------------------------------------- tails, threads, out

@pytest.mark.parametrize("n", [*range(0, 70), 127, 129, 1000, 65_536 * 2 + 13])
def test_sizes_and_tails_write_only_their_elements(half_isa, n):
    """Every tail length of every loop, and a threaded split whose chunks
    end mid-vector: right values, and nothing written past the end."""
    x = cases.sample("float16", n, seed=n)
    g = cases.sample("float16", n, seed=n + 1)
    alpha = 0.2
    for op, inputs in ((ops.FORWARD, (x,)), (ops.GRAD, (x,)), (ops.BACKWARD, (g, x)),
                       (ops.BACKWARD, (g.astype(np.float32), x)),
                       (ops.BACKWARD, (g, x.astype(np.float32)))):
        expected = op.reference(*inputs, alpha)
        buf = np.full(n + 40, 12345, dtype=expected.dtype)
        out = buf[:n]
        for nthreads in (1, 2):
            with fastleaky.thread_limit(nthreads):
                got = getattr(fastleaky, op.public)(*inputs, alpha, out=out)
            assert got is out
            assert_bitwise_equal(out, expected)
            assert (buf[n:] == 12345).all()


def test_in_place(half_isa):
    for op in (ops.FORWARD, ops.GRAD):
        x = SHUFFLED.copy()
        assert getattr(fastleaky, op.public)(x, 0.2, out=x) is x
        assert_bitwise_equal(x, op.reference(SHUFFLED, 0.2))
    g = EVERY.copy()
    assert fastleaky.leaky_relu_backward(g, SHUFFLED, 0.2, out=g) is g
    assert_bitwise_equal(g, reference.leaky_relu_backward(EVERY, SHUFFLED, 0.2))
    # mixed: out may be the float32 input itself
    x32 = _mixed_partner(np.float32, 2)
    expected = reference.leaky_relu_backward(EVERY, x32, 0.2)
    assert fastleaky.leaky_relu_backward(EVERY, x32, 0.2, out=x32) is x32
    assert_bitwise_equal(x32, expected)


def test_fast_entry_declines_what_it_cannot_prove():
    """Strided, byteswapped or overlapping float16, an out of another dtype,
    and float16 with float64: the general path computes them (same bits)."""
    from fastleaky._backends import cython_backend

    _loop()
    plain = cython_backend.plain_entry()
    x = cases.sample("float16", 1000)
    assert plain(0, x[::2], x[::2], 0.01, None) is NotImplemented
    swapped = x.byteswap().view(x.dtype.newbyteorder())
    assert plain(0, swapped, swapped, 0.01, None) is NotImplemented
    assert plain(2, swapped, x, 0.01, None) is NotImplemented
    assert plain(0, x[1:], x[1:], 0.01, x[:-1]) is NotImplemented
    assert plain(0, x, x, 0.01, np.empty(x.shape, np.float32)) is NotImplemented
    assert plain(2, x.astype(np.float64), x, 0.01, None) is NotImplemented
    assert plain(2, x, x.astype(np.float32), 0.01, np.empty(x.shape, np.float16)) is NotImplemented
    assert_bitwise_equal(fastleaky.leaky_relu(x[::2], 0.01), reference.leaky_relu(x[::2], 0.01))
    assert_bitwise_equal(fastleaky.leaky_relu_backward(x.astype(np.float64), x, 0.01),
                         reference.leaky_relu_backward(x.astype(np.float64), x, 0.01))


# ---------------------------------------------------------------- alpha

def _tricky_alphas():
    """Doubles around float16 rounding boundaries: midpoints and one step
    either side (a cast through float32 would round some of them twice),
    subnormal halves, the largest half and the first value that overflows."""
    rng = np.random.default_rng(5)
    halves = np.concatenate([EVERY[np.isfinite(EVERY)], rng.standard_normal(200).astype(np.float16)])
    halves = halves.astype(np.float64)
    with np.errstate(over="ignore"):  # the largest half's neighbour is inf
        nxt = np.nextafter(halves.astype(np.float16), np.float16(np.inf)).astype(np.float64)
    mid = (halves + nxt) / 2
    mid = mid[np.isfinite(mid)]
    values = np.concatenate([
        mid, np.nextafter(mid, np.inf), np.nextafter(mid, -np.inf),
        mid + np.abs(mid) * 2.0 ** -40, mid - np.abs(mid) * 2.0 ** -40,
        rng.standard_normal(2000) * 10.0 ** rng.integers(-9, 5, 2000),
        [5.960464477539063e-08, 2.9802322387695312e-08, 2.98023223876953e-08, 1e-9,
         65504.0, 65519.99, -65519.99],
    ])
    return [float(v) for v in values]


def test_alpha_rounds_once_to_nearest_even():
    """alpha reaches the float16 loops as NumPy casts the Python float:
    leaky_relu_grad returns it where x <= 0."""
    from fastleaky._backends import cython_backend

    _loop()
    plain = cython_backend.plain_entry()
    x = np.array([-1.0], np.float16)
    alphas = _tricky_alphas()
    got = np.concatenate([plain(ops.GRAD.code, x, x, a, None) for a in alphas])
    expected = np.array([np.float16(a) for a in alphas], np.float16)
    assert_bitwise_equal(got, expected)


@pytest.mark.parametrize("alpha", [1e5, 65520.0, -65520.0, 1e300, float("inf"), float("nan")])
def test_alpha_overflowing_float16_raises(alpha):
    """An alpha that is not finite in float16 is not taken by the fast entry;
    the general path raises, as for every other path."""
    from fastleaky._backends import cython_backend

    _loop()
    x = cases.sample("float16", 100)
    assert cython_backend.plain_entry()(0, x, x, alpha, None) is NotImplemented
    with pytest.raises(ValueError, match="alpha"):
        fastleaky.leaky_relu(x, alpha)
    # backward with float32 in it computes in float32, where 1e5 is finite
    if alpha in (1e5, 65520.0, -65520.0):
        got = fastleaky.leaky_relu_backward(x, x.astype(np.float32), alpha)
        assert_bitwise_equal(got, reference.leaky_relu_backward(x, x.astype(np.float32), alpha))


# ---------------------------------------------------------------- selection

def test_best_isa_is_picked_at_load():
    import subprocess
    import sys
    import tempfile

    loop = _loop()
    code = "from fastleaky._backends import _cython_loop as L; print(L.half_isa())"
    # cwd elsewhere: "python -c" would import the checkout, not the installed package
    picked = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=tempfile.gettempdir()).stdout.strip()
    assert picked == loop.half_isas()[-1]
    assert f"native float16 ({picked})" in registry.availability("cython")[1]
    with pytest.raises(ValueError, match="cannot run here"):
        loop.set_half_isa("no-such-loops")
