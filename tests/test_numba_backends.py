"""The Numba backends (numba-cpu, numba-parallel) through their protocol
(``run``, ``plain_call``), their float16 loops bit for bit over every
float16 value, and the cuda kernels' lowering for a real GPU."""

import os
import subprocess
import tempfile
import sys
import textwrap

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from fastleaky import cases, ops, threads  # noqa: E402
from fastleaky._backends import numba_loops  # noqa: E402
from fastleaky.testing import assert_bitwise_equal  # noqa: E402

BACKENDS = {"numba-cpu": numba_loops.CPU, "numba-parallel": numba_loops.PARALLEL}
HALF_BITS = np.arange(1 << 16, dtype=np.uint16)


@pytest.fixture(params=list(BACKENDS))
def impl(request, require):
    require(request.param)
    return BACKENDS[request.param]


def _run(impl, op, inputs, alpha, nthreads=threads.RUNTIME_DEFAULT, out=None):
    dtype = inputs[-1].dtype
    out = np.empty_like(inputs[-1]) if out is None else out
    impl.run(op, inputs, dtype.type(alpha), out, nthreads)
    return out


# ---------------------------------------------------------------- float16, exhaustively

def _half_pairings():
    """(grad_output, x) pairs covering every float16 value in both places,
    and every grad_output against a positive and a negative x."""
    every = HALF_BITS.view(np.float16)
    shuffled = np.random.default_rng(0).permutation(HALF_BITS).view(np.float16)
    return [(shuffled, every), (every, shuffled),
            (every, np.full_like(every, 1.0)), (every, np.full_like(every, -1.0))]


@pytest.mark.parametrize("nthreads", [threads.SERIAL, threads.RUNTIME_DEFAULT])
def test_float16_every_value(impl, nthreads):
    every = HALF_BITS.view(np.float16)
    for alpha in cases.ALPHAS:
        for op in (ops.FORWARD, ops.GRAD):
            assert_bitwise_equal(_run(impl, op, (every,), alpha, nthreads),
                                 op.reference(every, alpha))
        for g, x in _half_pairings():
            assert_bitwise_equal(_run(impl, ops.BACKWARD, (g, x), alpha, nthreads),
                                 ops.BACKWARD.reference(g, x, alpha))


def test_float16_is_native(impl):
    assert np.float16 in impl.native_dtypes()


def _elementwise(convert):
    @numba.njit
    def loop(values, out):
        for i in range(values.size):
            out[i] = convert(values[i])

    return loop


def _conversions():
    from fastleaky._backends import _numba_kernels as k

    pairs = [("arithmetic", k.widen_by_arithmetic, k.narrow_by_arithmetic)]
    if k.HALF_BY_INSTRUCTION:
        pairs.append(("instruction", k.widen_by_instruction, k.narrow_by_instruction))
    return pairs


@pytest.mark.parametrize("kind, widen, narrow", _conversions(),
                         ids=lambda v: getattr(v, "__name__", v))
def test_float16_conversions_match_numpy(kind, widen, narrow):
    # widening: every float16; a NaN keeps sign, quiet bit and payload
    wide = np.empty(HALF_BITS.size, np.float32)
    _elementwise(widen)(HALF_BITS, wide)
    halves = HALF_BITS.view(np.float16)
    with np.errstate(invalid="ignore"):  # a conversion may quieten signalling NaNs
        expected = halves.astype(np.float32)
    nan = np.isnan(halves)
    h = HALF_BITS[nan].astype(np.uint32)
    expected[nan] = (((h & 0x8000) << 16) | 0x7F800000 | ((h & 0x3FF) << 13)).view(np.float32)
    assert_bitwise_equal(wide, expected)
    # narrowing gives every float16 back as it was, signalling NaNs included
    back = np.empty_like(HALF_BITS)
    _elementwise(narrow)(wide, back)
    assert_bitwise_equal(back, HALF_BITS)
    # narrowing rounds like NumPy: a spread of float32 values, with every
    # float16 rounding midpoint (a multiple of 2**12 in the bits) and its
    # neighbours; NaN inputs are quiet NaNs here, as the loops produce them
    spread = np.arange(0, 1 << 32, 1021, dtype=np.uint64)
    midpoints = np.arange(0, 1 << 32, 1 << 12, dtype=np.uint64)
    bits = np.concatenate([spread, midpoints, midpoints + 1, midpoints[1:] - 1]).astype(np.uint32)
    values = bits.view(np.float32)
    values = values[~np.isnan(values) | (bits & 0x400000 != 0)]
    narrowed = np.empty(values.size, np.uint16)
    _elementwise(narrow)(values, narrowed)
    with np.errstate(over="ignore", invalid="ignore"):
        expected = values.astype(np.float16).view(np.uint16)
    assert_bitwise_equal(narrowed, expected)


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.uname().machine != "x86_64",
                    reason="NUMBA_CPU_NAME=generic means no F16C on x86-64 only")
def test_float16_without_conversion_instructions(tmp_path):
    """Numba's target without float16 instructions (a portable cache) takes
    the integer conversions instead of crashing on LLVM's runtime calls."""
    code = textwrap.dedent("""
        import numpy as np
        from fastleaky import ops
        from fastleaky._backends import numba_loops, _numba_kernels
        assert not _numba_kernels.HALF_BY_INSTRUCTION
        every = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
        g = every[::-1].copy()
        for alpha in (0.0, 0.01, 1.5, -0.5):
            a = np.float16(alpha)
            for op, inputs in ((ops.FORWARD, (every,)), (ops.GRAD, (every,)),
                               (ops.BACKWARD, (g, every))):
                out = np.empty_like(every)
                numba_loops.CPU.run(op, inputs, a, out, 1)
                expected = op.reference(*inputs, alpha)
                assert np.array_equal(out.view(np.uint16), expected.view(np.uint16)), op.name
        print("ok")
    """)
    env = dict(os.environ, NUMBA_CPU_NAME="generic", NUMBA_CACHE_DIR=str(tmp_path))
    env.pop("NUMBA_CPU_FEATURES", None)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=300, cwd=tempfile.gettempdir())
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"


# ---------------------------------------------------------------- run

@pytest.mark.parametrize("nthreads", [threads.SERIAL, threads.RUNTIME_DEFAULT, 2])
@pytest.mark.parametrize("dtype", cases.DTYPES)
def test_run_every_op(impl, dtype, nthreads):
    x = cases.sample(dtype, 5000)
    g = cases.sample(dtype, 5000, seed=3)
    for alpha in cases.ALPHAS:
        for op in ops.OPS:
            inputs = (g, x) if op.arity == 2 else (x,)
            assert_bitwise_equal(_run(impl, op, inputs, alpha, nthreads),
                                 op.reference(*inputs, alpha))


@pytest.mark.parametrize("dtype", cases.DTYPES)
def test_run_in_place(impl, dtype):
    x = cases.sample(dtype, 3000)
    expected = ops.FORWARD.reference(x, 0.2)
    _run(impl, ops.FORWARD, (x,), 0.2, out=x)
    assert_bitwise_equal(x, expected)
    g, x = cases.sample(dtype, 3000, seed=1), cases.sample(dtype, 3000, seed=2)
    expected = ops.BACKWARD.reference(g, x, 0.2)
    _run(impl, ops.BACKWARD, (g, x), 0.2, out=g)
    assert_bitwise_equal(g, expected)


def test_run_empty(impl):
    for dtype in cases.DTYPES:
        out = _run(impl, ops.FORWARD, (np.empty(0, dtype),), 0.1)
        assert out.size == 0


def test_protocol_surface():
    assert numba_loops.CPU.parallel is False and numba_loops.PARALLEL.parallel is True
    for impl in BACKENDS.values():
        ok, reason = impl.available()
        assert ok and "@njit" in reason and "vectorize" not in reason, reason


# ---------------------------------------------------------------- plain_call

def test_plain_call_matches_run(impl):
    for dtype in ("float32", "float64"):
        x = cases.sample(dtype, 4000).reshape(40, 100)
        g = cases.sample(dtype, 4000, seed=9).reshape(40, 100)
        for alpha in cases.ALPHAS:
            for op in ops.OPS:
                first = g if op.arity == 2 else x
                got = impl.plain_call(op.code, first, x, alpha, None)
                assert got.shape == x.shape
                inputs = (first.ravel(), x.ravel()) if op.arity == 2 else (x.ravel(),)
                assert_bitwise_equal(got.ravel(), _run(impl, op, inputs, alpha))


def test_plain_call_out_and_in_place(impl):
    x = cases.sample("float32", 1000)
    expected = ops.FORWARD.reference(x, 0.2)
    out = np.empty_like(x)
    assert impl.plain_call(ops.FORWARD.code, x, x, 0.2, out) is out
    assert_bitwise_equal(out, expected)
    assert impl.plain_call(ops.FORWARD.code, x, x, 0.2, x) is x
    assert_bitwise_equal(x, expected)


def test_plain_call_above_the_parallel_threshold(impl):
    from fastleaky import config

    n = config.parallel_min_for(np.dtype(np.float64)) + 7
    x = cases.sample("float64", n)
    assert_bitwise_equal(impl.plain_call(ops.FORWARD.code, x, x, 0.01, None),
                         ops.FORWARD.reference(x, 0.01))
    with threads.thread_limit(1):
        assert_bitwise_equal(impl.plain_call(ops.BACKWARD.code, x, x, 0.01, None),
                             ops.BACKWARD.reference(x, x, 0.01))


def _refused_calls():
    x = cases.sample("float32", 100)
    return {
        "float16": (cases.sample("float16", 100), 0.1, None),
        "strided": (x[::2], 0.1, None),
        "int alpha": (x, 1, None),
        "numpy alpha": (x, np.float32(0.1), None),
        "alpha overflows": (x, 1e300, None),
        "subclass": (x.view(np.matrix), 0.1, None),
        "overlapping out": (x[:50], 0.1, x[1:51]),
        "wrong out dtype": (x, 0.1, np.empty(100, np.float64)),
    }


@pytest.mark.parametrize("case", list(_refused_calls()))
def test_plain_call_refuses_what_plain_out_refuses(impl, case):
    x, alpha, out = _refused_calls()[case]
    assert impl.plain_call(ops.FORWARD.code, x, x, alpha, out) is NotImplemented


# ---------------------------------------------------------------- compiled copies

def test_definition_digests_are_stable_across_processes():
    """The digest is part of the loops' cache names: a new process must
    find the same names (else it recompiles), a changed definition not."""
    code = ("from fastleaky import ops; from fastleaky._backends import numba_loops as n; "
            "print([n.definitions_digest(op.scalar) for op in ops.OPS])")
    here = [numba_loops.definitions_digest(op.scalar) for op in ops.OPS]
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, cwd=tempfile.gettempdir()).stdout.strip()
    assert there == repr(here)
    assert len(set(here)) == len(here)


# ---------------------------------------------------------------- cuda kernels, no GPU

def _cuda_compiler():
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
        pytest.skip("the CUDA simulator compiles nothing")
    try:
        from numba.cuda import compiler
    except ImportError as exc:
        pytest.skip(f"numba-cuda cannot be imported: {exc}")
    return compiler


def _cuda_signature(op, dtype):
    from numba.cuda.types import float16, float32, float64, int64

    element = {np.float16: float16, np.float32: float32, np.float64: float64}[dtype]
    return (*([element[::1]] * op.arity), element[::1], element, int64)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("op", ops.OPS, ids=lambda op: op.name)
def test_cuda_kernels_lower_for_a_gpu(op, dtype):
    """Every kernel lowers to NVVM IR without a driver, calling nothing but
    LLVM/NVVM intrinsics (no C++ shims for float16)."""
    compiler = _cuda_compiler()
    from fastleaky._backends import _cuda_kernels

    result = compiler.compile_cuda(_cuda_kernels.kernel_function(op, dtype), None,
                                   _cuda_signature(op, dtype), cc=(9, 0))
    declared = [line for line in result.library.get_llvm_str().splitlines()
                if line.startswith("declare")]
    assert all(("@llvm." in line or '@"llvm.' in line) for line in declared), declared


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("op", ops.OPS, ids=lambda op: op.name)
def test_cuda_ptx_has_no_float64(op, dtype):
    """float16 and float32 kernels compute without float64 (needs NVVM)."""
    _cuda_compiler()
    from numba import cuda

    from fastleaky._backends import _cuda_kernels

    try:
        ptx, _ = cuda.compile_ptx(_cuda_kernels.kernel_function(op, dtype),
                                  _cuda_signature(op, dtype), cc=(9, 0))
    except Exception as exc:  # noqa: BLE001 - NVVM/NVRTC missing shows as many types
        if "nvvm" in str(exc).lower() or "nvrtc" in str(exc).lower():
            pytest.skip(f"no NVVM here: {exc}")
        raise
    assert ".f64" not in ptx
