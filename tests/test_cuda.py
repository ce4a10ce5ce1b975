"""The cuda backend: the shared case list with host input (``backend="cuda"``)
and with Numba device arrays, bit for bit; the device-array contract; the
device functions for users' kernels.

Runs under the Numba CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, see
``ci/sim``) and unchanged on a real GPU (``ci/gpu``); skips where cuda is
unavailable unless ``FASTLEAKY_REQUIRE_BACKENDS`` names it.
"""

import os
import sys
import warnings

import numpy as np
import pytest

import fastleaky
from fastleaky import cases, reference
from fastleaky.testing import assert_bitwise_equal

SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM", "") not in ("", "0")
pytestmark = pytest.mark.gpu if not SIMULATOR else pytest.mark.cudasim



def forward_ref(xs, alpha):
    return reference.leaky_relu(xs[-1], alpha)


def grad_ref(xs, alpha):
    return reference.leaky_relu_grad(xs[-1], alpha)


def backward_ref(xs, alpha):
    return reference.leaky_relu_backward(*xs, alpha)


OPS = {
    "forward": (lambda xs, **kw: fastleaky.leaky_relu(xs[-1], kw.pop("alpha"), **kw),
                forward_ref),
    "grad": (lambda xs, **kw: fastleaky.leaky_relu_grad(xs[-1], kw.pop("alpha"), **kw),
             grad_ref),
    "backward": (lambda xs, **kw: fastleaky.leaky_relu_backward(*xs, kw.pop("alpha"), **kw),
                 backward_ref),
}


REQUIRED = {n for n in os.environ.get("FASTLEAKY_REQUIRE_BACKENDS", "").split(",") if n}


@pytest.fixture(scope="module")
def cuda():
    """numba.cuda, once the cuda backend is known to run here."""
    from fastleaky import registry

    ok, reason = registry.availability("cuda")
    if not ok:
        if "cuda" in REQUIRED:
            pytest.fail(f"backend 'cuda' is required here but unavailable: {reason}")
        pytest.skip(f"backend 'cuda' unavailable: {reason}")
    from numba import cuda

    return cuda


def _inputs(op, dtype, layout, n=300):
    xs = [cases.make(dtype, layout, n)]
    if op == "backward":
        xs.insert(0, cases.make(dtype, layout, n, seed=1))
    return xs


def to_device(cuda, dtype, layout, n=300, seed=0):
    """The case list's layout, built on the device (strided views are sliced
    there: only contiguous host arrays can be transferred)."""
    flat = cases.sample(dtype, n, seed)
    if layout == "strided":
        return cuda.to_device(flat)[::3]
    if layout == "negative-stride":
        return cuda.to_device(flat)[::-1]
    if layout == "transposed-slice":
        return cuda.to_device(cases.LAYOUTS["c-2d"](flat))[1::2, ::2].T
    return cuda.to_device(cases.LAYOUTS[layout](flat))


def _is_device_array(obj):
    return not isinstance(obj, np.ndarray) and hasattr(obj, "copy_to_host")


# ---------------------------------------------------------------- host input

@pytest.mark.parametrize("alpha", cases.ALPHAS)
@pytest.mark.parametrize("layout", list(cases.LAYOUTS))
@pytest.mark.parametrize("dtype", cases.DTYPES)
@pytest.mark.parametrize("op", list(OPS))
def test_host_input(cuda, op, dtype, layout, alpha):
    fn, ref = OPS[op]
    xs = _inputs(op, dtype, layout)
    before = [x.copy() for x in xs]
    got = fn(xs, alpha=alpha, backend="cuda")
    assert isinstance(got, np.ndarray)
    assert_bitwise_equal(got, ref(xs, alpha))
    for x, b in zip(xs, before):
        assert_bitwise_equal(x, b)


@pytest.mark.parametrize("n", [1, 3, 31, 32, 33, 64, 65, 1000])
def test_host_sizes_around_the_tile(cuda, n):
    # the simulator's tile is 8 threads x 4 elements = 32
    x = cases.sample("float32", n, seed=n)
    g = cases.sample("float32", n, seed=n + 1)
    assert_bitwise_equal(fastleaky.leaky_relu(x, 0.2, backend="cuda"),
                         forward_ref([x], 0.2))
    assert_bitwise_equal(fastleaky.leaky_relu_backward(g, x, 0.2, backend="cuda"),
                         backward_ref([g, x], 0.2))


def test_host_out_and_in_place(cuda):
    x = cases.sample("float32", 500)
    expected = forward_ref([x], 0.2)
    out = np.empty_like(x)
    assert fastleaky.leaky_relu(x, 0.2, out=out, backend="cuda") is out
    assert_bitwise_equal(out, expected)
    assert fastleaky.leaky_relu(x, 0.2, out=x, backend="cuda") is x
    assert_bitwise_equal(x, expected)


def _every_nan(dtype) -> np.ndarray:
    """NaNs of every kind: quiet and signalling, both signs, the smallest
    and largest payloads."""
    info = np.finfo(dtype)
    nbits = 8 * np.dtype(dtype).itemsize
    exponent = ((1 << info.nexp) - 1) << info.nmant
    quiet = 1 << (info.nmant - 1)
    payloads = (1, 2, 5, quiet - 1, quiet, quiet | 1, quiet | 5, (1 << info.nmant) - 1)
    bits = [sign | exponent | p for sign in (0, 1 << (nbits - 1)) for p in payloads]
    return np.array(bits, f"u{nbits // 8}").view(dtype)


def _bits(a):
    a = np.asarray(a)
    return a.view(f"u{a.dtype.itemsize}")


@pytest.mark.parametrize("alpha", [0.0, 0.2, 1.0, -0.5])
@pytest.mark.parametrize("dtype", cases.DTYPES)
def test_nan_bits_are_the_references(cuda, dtype, alpha):
    nans = _every_nan(dtype)
    quiet = 1 << (np.finfo(dtype).nmant - 1)
    # forward: a NaN is multiplied: its quiet bit set, payload and sign kept
    got = fastleaky.leaky_relu(nans, alpha, backend="cuda")
    assert_bitwise_equal(got, reference.leaky_relu(nans, alpha))
    assert np.array_equal(_bits(got), _bits(nans) | quiet)
    # backward: grad_output selected where x > 0 (bits unchanged, signalling
    # or not), multiplied where x <= 0 or x is NaN (quieted)
    for x_value, expected in ((1.0, _bits(nans)), (-1.0, _bits(nans) | quiet),
                              (np.nan, _bits(nans) | quiet)):
        x = np.full_like(nans, x_value)
        got = fastleaky.leaky_relu_backward(nans, x, alpha, backend="cuda")
        assert_bitwise_equal(got, reference.leaky_relu_backward(nans, x, alpha))
        assert np.array_equal(_bits(got), expected)
    # the grad of a NaN is alpha
    assert_bitwise_equal(fastleaky.leaky_relu_grad(nans, alpha, backend="cuda"),
                         reference.leaky_relu_grad(nans, alpha))


@pytest.mark.parametrize("dtype", cases.DTYPES)
def test_nan_made_from_numbers_is_the_references(cuda, dtype):
    # -inf * 0: the host's NaN for it, not the GPU's canonical one
    x = np.array([-np.inf, np.inf, -1.0], dtype)
    assert_bitwise_equal(fastleaky.leaky_relu(x, 0.0, backend="cuda"),
                         reference.leaky_relu(x, 0.0))
    g = np.array([-np.inf, np.inf, np.inf], dtype)
    assert_bitwise_equal(fastleaky.leaky_relu_backward(g, -x, 0.0, backend="cuda"),
                         reference.leaky_relu_backward(g, -x, 0.0))


@pytest.mark.parametrize("op", list(OPS))
def test_host_longdouble_is_computed_by_the_reference(cuda, op):
    # as on every named CPU backend: the kernels have no longdouble
    fn, ref = OPS[op]
    xs = [np.array([-2.0, -0.0, 0.0, 3.0, np.nan, -np.inf, np.inf], np.longdouble)]
    if op == "backward":
        xs.insert(0, np.linspace(-3, 3, 7).astype(np.longdouble))
    got = fn(xs, alpha=0.2, backend="cuda")
    assert_bitwise_equal(got, ref(xs, 0.2))


class _DeviceArrayOfDtype:
    """A device array as any library exports it (only its description is
    read before the dtype is refused)."""

    def __init__(self, dtype, shape):
        self.__cuda_array_interface__ = {
            "shape": shape, "typestr": np.dtype(dtype).str, "data": (0, False),
            "strides": None, "version": 3,
        }


@pytest.mark.parametrize("op", list(OPS))
def test_device_longdouble_is_a_type_error(cuda, op):
    fn, _ = OPS[op]
    xs = [_DeviceArrayOfDtype(np.longdouble, (4,)) for _ in range(2 if op == "backward" else 1)]
    with pytest.raises(TypeError, match="longdouble"):
        fn(xs, alpha=0.2)
    if SIMULATOR:  # the simulator's own device arrays take the same path
        x = cuda.to_device(np.ones(4, np.longdouble))
        with pytest.raises(TypeError, match="longdouble"):
            fn([x] * len(xs), alpha=0.2)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_fast_launch_packs_alpha_in_the_arrays_dtype(dtype):
    # cuda.core packs a Python float as a double: a float32 kernel would
    # read another number
    from fastleaky._backends import numba_cuda

    for alpha in (0.2, np.float64(0.2), dtype(0.2)):
        args = numba_cuda.fast_launch_args(dtype, 10, [111], 222, alpha)
        assert len(args) == 2 * 7 + 2
        assert type(args[-2]) is dtype and args[-2] == dtype(0.2)
        assert type(args[-1]) is np.int64 and args[-1] == 10
        assert args[4] == 111 and args[11] == 222  # the data pointers


def test_auto_keeps_host_arrays_on_the_host(cuda):
    from fastleaky import registry

    x = cases.sample("float32", 100)
    name = registry.auto_host(np.float32, x.size)
    assert registry.device(name) == "cpu"


# ---------------------------------------------------------------- device input

DEVICE_LAYOUTS = [name for name in cases.LAYOUTS if name != "byteswapped"]


@pytest.mark.parametrize("alpha", cases.ALPHAS)
@pytest.mark.parametrize("layout", DEVICE_LAYOUTS)
@pytest.mark.parametrize("dtype", cases.DTYPES)
@pytest.mark.parametrize("op", list(OPS))
def test_device_input(cuda, op, dtype, layout, alpha):
    fn, ref = OPS[op]
    host = _inputs(op, dtype, layout)
    dev = [to_device(cuda, dtype, layout, seed=1 if (op == "backward" and i == 0) else 0)
           for i in range(len(host))]
    got = fn(dev, alpha=alpha)
    assert _is_device_array(got), type(got)
    assert_bitwise_equal(got.copy_to_host(), ref(host, alpha))
    for d, h in zip(dev, host):  # input untouched
        assert_bitwise_equal(d.copy_to_host(), h)


def test_byteswapped_is_host_only():
    # Device arrays hold native byte order; the host path covers byte-swapped data.
    assert "byteswapped" in cases.LAYOUTS


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_])
def test_device_int_and_bool_give_float64(cuda, dtype):
    host = np.array([-2, -1, 0, 1, 2]).astype(dtype)
    got = fastleaky.leaky_relu(cuda.to_device(host), 0.5)
    assert got.dtype == np.float64
    assert_bitwise_equal(got.copy_to_host(), forward_ref([host.astype(np.float64)], 0.5))


def test_device_mixed_dtype_backward_promotes(cuda):
    g = np.array([1.0, -2.0, 3.0], np.float32)
    x = np.array([-1.0, 2.0, -3.0], np.float16)
    got = fastleaky.leaky_relu_backward(cuda.to_device(g), cuda.to_device(x), 0.1)
    assert got.dtype == np.float32
    assert_bitwise_equal(got.copy_to_host(), reference.leaky_relu_backward(g, x, 0.1))


@pytest.mark.parametrize("op", list(OPS))
def test_device_out_and_in_place(cuda, op):
    fn, ref = OPS[op]
    host = _inputs(op, "float32", "contiguous", 500)
    expected = ref(host, 0.2)
    dev = [cuda.to_device(h) for h in host]
    out = cuda.device_array(500, np.float32)
    assert fn(dev, alpha=0.2, out=out) is out
    assert_bitwise_equal(out.copy_to_host(), expected)
    assert fn(dev, alpha=0.2, out=dev[-1]) is dev[-1]
    assert_bitwise_equal(dev[-1].copy_to_host(), expected)


def test_device_strided_out(cuda):
    x = cases.sample("float32", 300)
    buf = cuda.to_device(np.full(600, 7.0, np.float32))
    out = buf[::2]
    assert fastleaky.leaky_relu(cuda.to_device(x), 0.3, out=out) is out
    assert_bitwise_equal(out.copy_to_host(), forward_ref([x], 0.3))
    assert np.all(buf.copy_to_host()[1::2] == 7.0)


@pytest.mark.parametrize("shift", [1, 7, -3])
def test_device_partial_overlap(cuda, shift):
    host = cases.sample("float32", 600)
    buf = cuda.to_device(host)
    x, out = buf[100:400], buf[100 + shift:400 + shift]
    fastleaky.leaky_relu(x, 0.3, out=out)
    assert_bitwise_equal(out.copy_to_host(), forward_ref([host[100:400]], 0.3))


def test_device_zero_d_and_empty(cuda):
    zero_d = fastleaky.leaky_relu(cuda.to_device(np.array(-4.0, np.float32)), 0.5)
    assert zero_d.shape == () and zero_d.copy_to_host() == -2.0
    empty = fastleaky.leaky_relu(cuda.device_array((0, 5), np.float64), 0.5)
    assert empty.shape == (0, 5) and empty.dtype == np.float64


def _host_error(call):
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - the type is what is compared
        return type(exc)
    return None


@pytest.mark.parametrize("bad", ["shape", "dtype", "host", "alpha-nan", "alpha-str",
                                 "complex", "grad-shape", "backend"])
def test_device_errors_match_host_and_come_before_any_write(cuda, bad):
    host = cases.sample("float32", 20)
    x = cuda.to_device(host)
    out = cuda.to_device(np.full(20, 7.0, np.float32))
    kwargs = {"alpha": 0.2, "out": out}
    call_args = (x,)
    fn = fastleaky.leaky_relu
    host_kwargs = {"alpha": 0.2, "out": np.full(20, 7.0, np.float32)}
    host_args = (host,)
    if bad == "shape":
        kwargs["out"] = cuda.device_array(21, np.float32)
        host_kwargs["out"] = np.empty(21, np.float32)
    elif bad == "dtype":
        kwargs["out"] = cuda.device_array(20, np.float64)
        host_kwargs["out"] = np.empty(20, np.float64)
    elif bad == "host":
        kwargs["out"] = np.empty(20, np.float32)
        host_kwargs["out"] = [0.0] * 20
    elif bad == "alpha-nan":
        kwargs["alpha"] = host_kwargs["alpha"] = float("nan")
    elif bad == "alpha-str":
        kwargs["alpha"] = host_kwargs["alpha"] = "0.1"
    elif bad == "complex":
        call_args = (cuda.to_device(host.astype(np.complex64)),)
        host_args = (host.astype(np.complex64),)
        kwargs.pop("out"), host_kwargs.pop("out")
    elif bad == "grad-shape":
        fn = fastleaky.leaky_relu_backward
        call_args = (cuda.to_device(host[:10]), x)
        host_args = (host[:10], host)
    elif bad == "backend":
        kwargs["backend"] = host_kwargs["backend"] = "no-such-backend"
    expected = _host_error(lambda: fn(*host_args, **host_kwargs))
    assert expected is not None
    with pytest.raises(expected):
        fn(*call_args, **kwargs)
    assert np.all(out.copy_to_host() == 7.0)
    assert_bitwise_equal(x.copy_to_host(), host)


def test_device_array_with_a_host_backend_is_refused(cuda):
    with pytest.raises(ValueError, match="host"):
        fastleaky.leaky_relu(cuda.to_device(np.ones(4)), backend="numpy")


def test_mixing_host_and_device_is_refused(cuda):
    with pytest.raises(TypeError, match="mix"):
        fastleaky.leaky_relu_backward(np.ones(4), cuda.to_device(np.ones(4)))


def test_stream_of_a_device_array_is_used(cuda):
    stream = cuda.stream()
    x = cuda.to_device(cases.sample("float32", 100), stream=stream)
    got = fastleaky.leaky_relu(x, 0.2)
    stream.synchronize()
    assert_bitwise_equal(got.copy_to_host(), forward_ref([x.copy_to_host()], 0.2))


# ---------------------------------------------------------------- building blocks

try:  # a user kernel as in docs/guide/cuda.md; module level, as the simulator needs
    from numba import cuda as numba_cuda

    from fastleaky.cuda import (
        leaky_relu_backward_device,
        leaky_relu_device,
        leaky_relu_grad_device,
    )
except ImportError:
    numba_cuda = None


def _user_kernel(g, x, alpha, y, dy, dx):
    i = numba_cuda.grid(1)
    if i < x.size:
        y[i] = leaky_relu_device(x[i], alpha)
        dy[i] = leaky_relu_grad_device(x[i], alpha)
        dx[i] = leaky_relu_backward_device(g[i], x[i], alpha)


@pytest.mark.parametrize("alpha_type", ["dtype", "python float"])
def test_device_functions_in_a_user_kernel(cuda, alpha_type):
    # alpha of x's type, or a Python float (a float64 argument): either way
    # rounded to x's type first, as the reference does
    user_kernel = cuda.jit(_user_kernel)
    from numba.cuda.core.errors import NumbaPerformanceWarning

    for dtype in cases.DTYPES:
        x = cases.sample(dtype, 64)
        g = cases.sample(dtype, 64, seed=1)
        d = [cuda.to_device(a) for a in (g, x)] + [cuda.device_array(64, dtype) for _ in range(3)]
        alpha = np.dtype(dtype).type(0.2) if alpha_type == "dtype" else 0.2
        with warnings.catch_warnings():
            # the simulator computes with NumPy scalars, which warn on inf * 0;
            # a real GPU warns that 2 blocks under-use it
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", NumbaPerformanceWarning)
            user_kernel[2, 32](d[0], d[1], alpha, d[2], d[3], d[4])
        y, dy, dx = (a.copy_to_host() for a in d[2:])
        assert_bitwise_equal(y, forward_ref([x], 0.2))
        assert_bitwise_equal(dy, reference.leaky_relu_grad(x, 0.2))
        assert_bitwise_equal(dx, backward_ref([g, x], 0.2))


def test_import_fastleaky_imports_no_cuda():
    import subprocess
    import tempfile

    code = ("import sys, fastleaky; "
            "bad = [m for m in sys.modules if m.startswith(('numba', 'cuda', 'cupy', 'torch'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tempfile.gettempdir())


def test_kernel_without_a_writable_cache_compiles_in_memory(cuda, monkeypatch):
    """Where numba-cuda finds no writable cache folder (``cache=True`` raises
    "cannot cache function"), the kernel is compiled without the disk cache
    and the call still works; ``fastleaky info`` reports it."""
    from fastleaky._backends import numba_cuda, numba_loops

    real_jit = cuda.jit

    def jit_without_locator(*args, **kwargs):
        if kwargs.get("cache"):
            raise RuntimeError("cannot cache function 'k': no locator available for file 'x'")
        return real_jit(*args, **kwargs)

    monkeypatch.setattr(cuda, "jit", jit_without_locator)
    monkeypatch.setattr(numba_cuda, "_state", {})  # forget the kernels built so far
    x = cases.sample("float32", 100)
    got = fastleaky.leaky_relu(x, 0.2, backend="cuda")
    assert_bitwise_equal(got, reference.leaky_relu(x, 0.2))
    assert numba_loops.disk_cache_state()["uncached"]
