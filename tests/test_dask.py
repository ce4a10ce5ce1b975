"""dask arrays: lazy results, checks at call time, and a real distributed cluster."""

import sys

import numpy as np
import pytest

da = pytest.importorskip("dask.array")

import fastleaky  # noqa: E402
from fastleaky import cases, reference, registry  # noqa: E402
from fastleaky.testing import assert_bitwise_equal  # noqa: E402


def _poisoned(shape=(40, 30), chunks=(16, 7), dtype="float32"):
    """A dask array whose computation raises: proves nothing was computed."""

    def boom(block):
        raise AssertionError("computed")

    return da.zeros(shape, chunks=chunks, dtype=dtype).map_blocks(boom, dtype=dtype)


@pytest.mark.parametrize("func", [fastleaky.leaky_relu, fastleaky.leaky_relu_grad])
def test_lazy_dtype_and_chunks_kept(func):
    x = _poisoned()
    y = func(x, 0.2)
    assert isinstance(y, da.Array)
    assert y.dtype == np.float32 and y.chunks == x.chunks
    assert y.name.startswith(func.__name__ + "-")
    g = fastleaky.leaky_relu_backward(_poisoned(), x, 0.2)
    assert isinstance(g, da.Array) and g.chunks == x.chunks


@pytest.mark.parametrize("dtype", cases.DTYPES)
def test_computed_blocks_match_the_reference(dtype):
    x = cases.sample(dtype, 600).reshape(20, 30)
    g = cases.sample(dtype, 600, seed=4).reshape(20, 30)
    dx = da.from_array(x, chunks=(7, 11))
    dg = da.from_array(g, chunks=(5, 30))  # different chunks: aligned by dask
    for alpha in (0.01, -0.5):
        assert_bitwise_equal(fastleaky.leaky_relu(dx, alpha).compute(),
                             reference.leaky_relu(x, alpha))
        assert_bitwise_equal(fastleaky.leaky_relu_grad(dx, alpha).compute(),
                             reference.leaky_relu_grad(x, alpha))
        assert_bitwise_equal(fastleaky.leaky_relu_backward(dg, dx, alpha).compute(),
                             reference.leaky_relu_backward(g, x, alpha))


def test_mixed_kinds_and_promotion():
    x = np.array([-2, 0, 3])
    y = fastleaky.leaky_relu(da.from_array(x, chunks=2), 0.5)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y.compute(), [-1.0, 0.0, 3.0])
    g = fastleaky.leaky_relu_backward(np.ones(3, np.float32), da.from_array(x, chunks=2), 0.5)
    assert isinstance(g, da.Array) and g.dtype == np.float64
    np.testing.assert_array_equal(g.compute(), [0.5, 0.5, 1.0])


def test_bad_input_raises_at_call_time():
    x = _poisoned()
    with pytest.raises(ValueError, match="finite"):
        fastleaky.leaky_relu(x, float("inf"))
    with pytest.raises(TypeError, match="real number"):
        fastleaky.leaky_relu(x, "0.1")
    with pytest.raises(ValueError, match="not finite in float16"):
        fastleaky.leaky_relu(_poisoned(dtype="float16"), 1e6)
    with pytest.raises(TypeError, match="complex128"):
        fastleaky.leaky_relu(_poisoned(dtype="complex128"))
    with pytest.raises(ValueError, match="must match"):
        fastleaky.leaky_relu_backward(_poisoned(shape=(40, 29)), x)
    with pytest.raises(ValueError, match="unknown fastleaky backend"):
        fastleaky.leaky_relu(x, backend="fortran")
    with pytest.raises(TypeError, match="out= is not supported"):
        fastleaky.leaky_relu(x, out=np.empty(x.shape, x.dtype))


def test_backend_is_resolved_at_call_time(monkeypatch):
    monkeypatch.setitem(registry._availability, "numba-cpu", (False, "switched off (test)"))
    x = da.from_array(np.array([-1.0, 1.0]), chunks=1)
    with fastleaky.use_backend("numba-cpu"):
        y = fastleaky.leaky_relu(x)
    # the context is gone when the tasks run; the tasks still name its backend
    with pytest.raises(fastleaky.BackendUnavailableError, match="switched off"):
        y.compute(scheduler="synchronous")
    np.testing.assert_array_equal(fastleaky.leaky_relu(x).compute(), [-0.01, 1.0])


# ------------------------------------------------ a real distributed cluster

def _worker_state():
    """Runs on each worker: which backends were loaded, and was Numba imported."""
    return {
        "auto": registry.auto_host(np.float32, 10**6),
        "loaded": sorted(registry._loaded),
        "numba_imported": "numba" in sys.modules,
    }


def _worker_compiles():
    """Runs on each worker: Numba compilations for the Numba backends' first
    use here, and for a fresh uncached function (which must compile)."""
    import numba
    from numba.core import event

    x = np.linspace(-1, 1, 10, dtype=np.float32)
    with event.install_recorder("numba:compile") as ours:
        fastleaky.leaky_relu(x, backend="numba-cpu")
        fastleaky.leaky_relu(x, backend="numba-parallel")
    with event.install_recorder("numba:compile") as control:
        numba.njit(lambda v: v + 1)(1)
    return len(ours.buffer), len(control.buffer)


@pytest.mark.timeout(180)
def test_local_cluster_with_worker_processes():
    distributed = pytest.importorskip("distributed")
    import cloudpickle

    # the worker functions above live in this test module, which the worker
    # processes cannot import: ship them by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    numba_ok = registry.availability("numba-cpu")[0]
    if numba_ok:
        # compiles here, or loads from the disk cache: either way the cache
        # is warm for the workers afterwards
        fastleaky.leaky_relu(np.ones(2, np.float32), backend="numba-cpu")
        fastleaky.leaky_relu(np.ones(2, np.float32), backend="numba-parallel")

    x_np = cases.sample("float32", 40_000)
    x = da.from_array(x_np, chunks=5_000)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        assert_bitwise_equal(fastleaky.leaky_relu(x, 0.1).compute(),
                             reference.leaky_relu(x_np, 0.1))
        states = client.run(_worker_state)
        assert len(states) == 2
        if registry.availability("cython")[0]:
            # "auto" runs the ahead-of-time Cython loops: no JIT on workers at all
            for state in states.values():
                assert state["auto"] == "cython"
                assert not state["numba_imported"], state
        if numba_ok:
            for ours, control in client.run(_worker_compiles).values():
                assert control >= 1  # the recorder sees compilations
                assert ours == 0  # fastleaky's ufuncs came from the disk cache
            y = fastleaky.leaky_relu_backward(x, x, 0.1, backend="numba-parallel")
            assert_bitwise_equal(y.compute(), reference.leaky_relu_backward(x_np, x_np, 0.1))
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
