"""Array kinds at the boundary: subclasses, masked arrays, pandas, mixed
kinds, and memory that a kernel must never write past.

Each kind comes back as a NumPy ufunc would give it, on every backend, and
no backend writes outside ``out`` whatever array kind it is handed.
"""

import importlib.util
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import fastleaky
from fastleaky import cases, config, reference, registry
from fastleaky.testing import assert_bitwise_equal

# np.matrix's constructor warns that the class is not recommended; it is
# exactly the kind these tests must handle.
pytestmark = pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")

HAVE_PANDAS = importlib.util.find_spec("pandas") is not None
HAVE_DASK = importlib.util.find_spec("dask") is not None
HAVE_XARRAY = importlib.util.find_spec("xarray") is not None
HAVE_TORCH = importlib.util.find_spec("torch") is not None

OPS = {
    "forward": (lambda x, a, **kw: fastleaky.leaky_relu(x, a, **kw),
                lambda x, a: reference.leaky_relu(x, a)),
    "grad": (lambda x, a, **kw: fastleaky.leaky_relu_grad(x, a, **kw),
             lambda x, a: reference.leaky_relu_grad(x, a)),
    "backward": (lambda x, a, **kw: fastleaky.leaky_relu_backward(x[::-1].copy(), x, a, **kw),
                 lambda x, a: reference.leaky_relu_backward(x[::-1].copy(), x, a)),
}


@pytest.fixture(params=list(OPS))
def op(request):
    return OPS[request.param]


# ---------------------------------------------------------------- never past out

@pytest.mark.parametrize("dtype", cases.DTYPES)
def test_matrix_out_inside_a_bigger_buffer(backend, op, dtype):
    """A matrix view of the head of a buffer: only its 6 elements change.
    (``reshape(-1)`` of a matrix stays 2-D; a loop over it wrote rows.)"""
    fn, _ = op
    buf = np.full(40, 7, dtype)
    out = buf[:6].reshape(2, 3).view(np.matrix)
    x = np.arange(-2, 4, dtype=dtype).reshape(2, 3)
    assert fn(x, 0.1, out=out, backend=backend) is out
    assert type(out) is np.matrix
    assert (buf[6:] == 7).all()
    _, ref = op
    assert_bitwise_equal(np.asarray(out), ref(x, 0.1))


def test_matrix_out_for_backward_with_matrix_inputs(backend):
    buf = np.full(40, 7, np.float32)
    out = buf[:6].reshape(2, 3).view(np.matrix)
    g = np.asmatrix(np.arange(6, dtype=np.float32).reshape(2, 3))
    x = np.asmatrix(np.arange(-3, 3, dtype=np.float32).reshape(2, 3))
    fastleaky.leaky_relu_backward(g, x, 0.5, out=out, backend=backend)
    assert (buf[6:] == 7).all()
    assert_bitwise_equal(np.asarray(out),
                         reference.leaky_relu_backward(np.asarray(g), np.asarray(x), 0.5))


# ---------------------------------------------------------------- subclasses

@pytest.mark.parametrize("dtype", cases.DTYPES)
def test_matrix_stays_a_matrix(backend, op, dtype):
    fn, ref = op
    x = np.asmatrix(cases.sample(dtype, 60).reshape(6, 10))
    got = fn(x, 0.2, backend=backend)
    assert type(got) is np.matrix and got.shape == (6, 10)
    assert_bitwise_equal(np.asarray(got), ref(np.asarray(x), 0.2))


def test_large_matrix_on_the_block_loop():
    """The NumPy backend's blocks slice a flat base array, not the matrix's rows."""
    x = np.asmatrix(np.random.default_rng(0).random((200, 200)) - 0.5)
    got = fastleaky.leaky_relu(x, 0.1, backend="numpy")
    assert type(got) is np.matrix
    assert_bitwise_equal(np.asarray(got), reference.leaky_relu(np.asarray(x), 0.1))


def test_memmap_gives_an_ndarray(tmp_path, backend):
    """As a ufunc gives: a new result is not a view of the file."""
    m = np.memmap(tmp_path / "x.bin", dtype=np.float32, mode="w+", shape=(100,))
    m[:] = cases.sample("float32", 100)
    got = fastleaky.leaky_relu(m, 0.2, backend=backend)
    assert type(got) is np.ndarray
    assert_bitwise_equal(got, reference.leaky_relu(np.asarray(m), 0.2))


def test_a_user_subclass_comes_back_as_itself(backend):
    class Tagged(np.ndarray):
        def __array_finalize__(self, obj):
            self.tag = getattr(obj, "tag", "none")

    x = np.linspace(-1, 1, 11).view(Tagged)
    x.tag = "mine"
    got = fastleaky.leaky_relu(x, 0.5, backend=backend)
    assert type(got) is Tagged and got.tag == "mine"
    assert_bitwise_equal(got.view(np.ndarray), reference.leaky_relu(x.view(np.ndarray), 0.5))


# ---------------------------------------------------------------- masked arrays

def _masked(dtype="float64"):
    data = cases.sample(dtype, 12)
    return np.ma.MaskedArray(data, mask=[i % 3 == 0 for i in range(12)])


@pytest.mark.parametrize("name", ["forward", "grad"])
def test_masked_array_keeps_its_mask(backend, name):
    fn, ref = OPS[name]
    x = _masked()
    got = fn(x, 0.2, backend=backend)
    assert isinstance(got, np.ma.MaskedArray)
    np.testing.assert_array_equal(np.ma.getmaskarray(got), np.ma.getmaskarray(x))
    assert got.mask is not x.mask  # a copy: the caller's mask is not shared
    assert_bitwise_equal(got.data, ref(x.data, 0.2))


def test_masked_array_whatever_ran_before():
    """Every backend, before and after plain-array calls, gives the same answer."""
    results = []
    for name in [b.name for b in fastleaky.backends() if b.available and b.device == "cpu"]:
        for _ in range(2):
            x = _masked("float32")
            results.append(fastleaky.leaky_relu(x, 0.1, backend=name))
            fastleaky.leaky_relu(np.ones(10, np.float32), 0.1, backend=name)
    for r in results:
        assert isinstance(r, np.ma.MaskedArray)
        assert_bitwise_equal(r.data, results[0].data)
        np.testing.assert_array_equal(r.mask, results[0].mask)


def test_masked_backward_ors_the_masks(backend):
    g = np.ma.MaskedArray(np.ones(4), mask=[1, 0, 0, 0])
    x = np.ma.MaskedArray(np.array([-1.0, 2.0, -3.0, 4.0]), mask=[0, 0, 1, 0])
    got = fastleaky.leaky_relu_backward(g, x, 0.5, backend=backend)
    np.testing.assert_array_equal(got.mask, [True, False, True, False])
    np.testing.assert_array_equal(got.data, [0.5, 1.0, 0.5, 1.0])


def test_masked_out_gets_the_mask(backend):
    x = _masked()
    out = np.ma.MaskedArray(np.zeros(12), mask=np.ones(12, bool))
    assert fastleaky.leaky_relu(x, 0.2, out=out, backend=backend) is out
    np.testing.assert_array_equal(out.mask, np.ma.getmaskarray(x))
    assert_bitwise_equal(out.data, reference.leaky_relu(x.data, 0.2))


# ---------------------------------------------------------------- pandas

@pytest.mark.skipif(not HAVE_PANDAS, reason="pandas is not installed")
def test_series_keeps_index_and_name(backend, op):
    import pandas as pd

    fn, ref = op
    s = pd.Series(cases.sample("float64", 8), index=list("abcdefgh"), name="signal")
    got = fn(s, 0.2, backend=backend)
    assert isinstance(got, pd.Series) and got.name == "signal"
    assert list(got.index) == list("abcdefgh")
    assert_bitwise_equal(got.to_numpy(), ref(s.to_numpy(), 0.2))


@pytest.mark.skipif(not HAVE_PANDAS, reason="pandas is not installed")
def test_dataframe_keeps_index_and_columns(backend):
    import pandas as pd

    df = pd.DataFrame(cases.sample("float32", 12).reshape(4, 3), index=[10, 20, 30, 40],
                      columns=["a", "b", "c"])
    got = fastleaky.leaky_relu(df, 0.2, backend=backend)
    assert isinstance(got, pd.DataFrame)
    assert list(got.columns) == ["a", "b", "c"] and list(got.index) == [10, 20, 30, 40]
    assert_bitwise_equal(got.to_numpy(), reference.leaky_relu(df.to_numpy(), 0.2))


# ---------------------------------------------------------------- wrong types

@pytest.mark.parametrize("alpha", [np.timedelta64(1), np.datetime64("2020-01-01")])
def test_time_alpha_is_a_type_error(alpha):
    with pytest.raises(TypeError, match="alpha must be a real number"):
        fastleaky.leaky_relu(np.ones(3), alpha)


@pytest.mark.parametrize("n", ["2", None, 1.5, True, [2]])
def test_thread_limit_needs_an_integer(n):
    with pytest.raises(TypeError, match="whole number"):
        with fastleaky.thread_limit(n):
            pass


def test_thread_limit_takes_numpy_integers():
    from fastleaky import threads

    with fastleaky.thread_limit(np.int64(2)):
        assert threads.limit() == 2 and type(threads.limit()) is int
    with pytest.raises(ValueError, match=">= 1"):
        with fastleaky.thread_limit(np.int32(0)):
            pass


def test_reference_is_reachable_after_import():
    proc = subprocess.run(
        [sys.executable, "-c", "import fastleaky; print(fastleaky.reference.leaky_relu(-2.0, 0.5))"],
        capture_output=True, text=True, timeout=120, cwd=tempfile.gettempdir())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "-1.0"


def test_backends_describe_what_runs():
    for b in fastleaky.backends():
        assert "@vectorize" not in b.reason and "@vectorize" not in b.summary


# ---------------------------------------------------------------- mixed kinds

@pytest.mark.skipif(not (HAVE_DASK and HAVE_XARRAY), reason="dask/xarray not installed")
def test_mixed_kinds_follow_priority_not_order():
    import dask.array as da
    import xarray as xr

    x = xr.DataArray(np.array([-1.0, 2.0]), dims="t", name="x", attrs={"u": "V"})
    for g in (np.ones(2), da.ones(2, chunks=1)):
        got = fastleaky.leaky_relu_backward(g, x, 0.5)
        assert isinstance(got, xr.DataArray) and got.dims == ("t",)
        np.testing.assert_array_equal(got.values, [0.5, 1.0])
    xd = da.from_array(np.array([-1.0, 2.0]), chunks=1)
    for args in ((np.ones(2), xd), (da.ones(2, chunks=1), np.array([-1.0, 2.0]))):
        got = fastleaky.leaky_relu_backward(*args, 0.5)
        assert isinstance(got, da.Array)
        np.testing.assert_array_equal(got.compute(), [0.5, 1.0])


@pytest.mark.skipif(not (HAVE_DASK and HAVE_TORCH), reason="dask/torch not installed")
def test_torch_with_dask_is_a_clear_type_error():
    import dask.array as da
    import torch

    x = da.from_array(np.arange(-2.0, 2.0), chunks=2)
    t = torch.ones(4, dtype=torch.float64)
    for args in ((t, x), (x, t)):
        with pytest.raises(TypeError, match="torch.Tensor with a dask array|dask array with a torch"):
            fastleaky.leaky_relu_backward(*args, 0.5)


@pytest.mark.skipif(not (HAVE_XARRAY and HAVE_TORCH), reason="xarray/torch not installed")
def test_torch_with_xarray_is_a_clear_type_error():
    import torch
    import xarray as xr

    x = xr.DataArray(np.array([-1.0, 2.0]), dims="t")
    for args in ((torch.ones(2, dtype=torch.float64), x), (x, torch.ones(2, dtype=torch.float64))):
        with pytest.raises(TypeError, match="no library defines that mix"):
            fastleaky.leaky_relu_backward(*args, 0.5)


@pytest.mark.skipif(not HAVE_DASK, reason="dask is not installed")
def test_unknown_chunk_sizes():
    import dask.array as da

    x = da.from_array(np.arange(-5.0, 5.0), chunks=3)
    g = da.ones(10, chunks=3)
    m = x > -100
    got = fastleaky.leaky_relu_backward(g[m], x[m], 0.5)
    np.testing.assert_array_equal(got.compute(),
                                  reference.leaky_relu_backward(np.ones(10), np.arange(-5.0, 5.0), 0.5))


# ---------------------------------------------------------------- overlap and threads

@pytest.mark.parametrize("shift", [1, 7, 64, -3, -65])
def test_backward_partial_overlap_with_both_inputs(backend, shift):
    """``out`` overlapping x and grad_output at an offset, either direction."""
    buf = cases.sample("float32", 3000)
    lo = 200
    g = buf[lo:lo + 2000]
    x = buf[lo + 3:lo + 2003]
    out = buf[lo + shift:lo + shift + 2000]
    expected = reference.leaky_relu_backward(g.copy(), x.copy(), 0.3)
    fastleaky.leaky_relu_backward(g, x, 0.3, out=out, backend=backend)
    assert_bitwise_equal(out, expected)


@pytest.mark.skipif(not registry.availability("cython")[0], reason="Cython loops not built")
@pytest.mark.parametrize("case", ["float16-strided", "strided", "numpy-alpha"])
def test_cython_general_path_follows_thread_limit(monkeypatch, case):
    """Calls the C fast entry refuses still get their thread count from the policy."""
    cython_backend = registry.load("cython")
    seen = []
    real_run = cython_backend.run

    def spy(op, inputs, a, out, nthreads):
        seen.append(nthreads)
        return real_run(op, inputs, a, out, nthreads)

    monkeypatch.setattr(cython_backend, "run", spy)
    monkeypatch.delenv(config.ENV_THREADS, raising=False)
    dtype = "float16" if case.startswith("float16") else "float32"
    n = 2 * config.parallel_min_for(np.dtype(dtype)) + 2
    x = cases.sample(dtype, n)
    if case.endswith("strided"):
        x = np.repeat(x, 2)[::2]
    alpha = np.float32(0.25) if case == "numpy-alpha" else 0.25
    expected = reference.leaky_relu(x, alpha)
    assert_bitwise_equal(fastleaky.leaky_relu(x, alpha, backend="cython"), expected)
    with fastleaky.thread_limit(1):
        assert_bitwise_equal(fastleaky.leaky_relu(x, alpha, backend="cython"), expected)
    with fastleaky.thread_limit(3):
        assert_bitwise_equal(fastleaky.leaky_relu(x, alpha, backend="cython"), expected)
    assert seen == [0, 1, 3]


def _misaligned(values):
    """``values`` copied into a buffer at an odd byte offset (as arrays
    rebuilt from network frames or files can be): not aligned for the type."""
    raw = bytearray(values.nbytes + 1)
    a = np.frombuffer(raw, dtype=values.dtype, count=values.size, offset=1)
    a[...] = values
    assert not a.flags.aligned
    return a


@pytest.mark.parametrize("dtype", cases.DTYPES)
def test_misaligned_input_and_out(backend, op, dtype):
    """C requires a float pointer to be aligned: such arrays are copied (or
    computed into scratch) before a kernel sees them."""
    fn, ref = op
    x = _misaligned(cases.sample(dtype, 1000))
    want = ref(x.copy(), 0.2)
    assert_bitwise_equal(fn(x, 0.2, backend=backend), want)
    out = _misaligned(np.zeros(1000, dtype))
    assert fn(x, 0.2, out=out, backend=backend) is out
    assert_bitwise_equal(out, want)


# ---------------------------------------------------------------- found by adversarial use

def test_masked_out_sharing_an_inputs_mask_leaves_the_input_alone(backend):
    shared = np.array([True, False, False])
    x = np.ma.array([-1.0, 2.0, 3.0], mask=shared)
    out = np.ma.array(np.zeros(3), mask=shared)
    g = np.ma.array(np.ones(3), mask=[False, False, True])
    fastleaky.leaky_relu_backward(g, x, 0.5, out=out, backend=backend)
    np.testing.assert_array_equal(x.mask, [True, False, False])
    np.testing.assert_array_equal(shared, [True, False, False])
    np.testing.assert_array_equal(out.mask, [True, False, True])


def test_hard_masked_out_gets_the_result_mask(backend):
    out = np.ma.array(np.zeros(3), mask=[True, True, True], hard_mask=True)
    fastleaky.leaky_relu(np.array([-1.0, 2.0, 3.0]), 0.5, out=out, backend=backend)
    np.testing.assert_array_equal(np.ma.getmaskarray(out), [False, False, False])
    np.testing.assert_array_equal(out.data, [-0.5, 2.0, 3.0])
    assert out.hardmask


@pytest.mark.parametrize("alpha", [10**400, -(10**400)])
def test_alpha_beyond_any_float_is_a_value_error(alpha):
    with pytest.raises(ValueError, match="finite"):
        fastleaky.leaky_relu(np.ones(3), alpha)


def test_masked_alpha_is_a_type_error():
    with pytest.raises(TypeError, match="masked"):
        fastleaky.leaky_relu(np.ones(3), np.ma.masked)


def test_an_unhashable_backend_is_an_unknown_name():
    with pytest.raises(ValueError, match="unknown fastleaky backend"):
        fastleaky.leaky_relu(np.ones(3), backend=["numpy"])


def test_bad_thread_setting_raises_at_every_size(monkeypatch):
    monkeypatch.setenv(config.ENV_THREADS, "abc")
    registry.forget_decisions()
    try:
        for backend in ("numpy", "auto"):
            for n in (10, 2 * config.parallel_min_for(np.dtype(np.float32))):
                with pytest.raises(ValueError, match="FASTLEAKY_NUM_THREADS"):
                    fastleaky.leaky_relu(np.ones(n, np.float32)[::2], backend=backend)
    finally:
        monkeypatch.undo()
        registry.forget_decisions()


def test_a_priority_that_is_not_a_number_is_ignored():
    class Odd(np.ndarray):
        __array_priority__ = "bad"

    x = np.array([-1.0, 1.0]).view(Odd)
    got = fastleaky.leaky_relu(x, 0.5)
    assert type(got) is Odd
    np.testing.assert_array_equal(got.view(np.ndarray), [-0.5, 1.0])
