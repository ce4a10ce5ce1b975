"""xarray objects in, the same kind out, with dims, coords, name and attrs."""

import numpy as np
import pytest

xr = pytest.importorskip("xarray")

import fastleaky  # noqa: E402
from fastleaky import cases, reference  # noqa: E402
from fastleaky.testing import assert_bitwise_equal  # noqa: E402


def _data_array(dtype="float32"):
    values = cases.sample(dtype, 60).reshape(6, 10)
    return xr.DataArray(
        values, dims=("time", "x"),
        coords={"time": np.arange(6), "x": np.linspace(0, 1, 10), "label": ("x", list("abcdefghij"))},
        name="signal", attrs={"units": "V"},
    )


@pytest.mark.parametrize("dtype", cases.DTYPES)
def test_data_array(dtype):
    a = _data_array(dtype)
    for func in (fastleaky.leaky_relu, fastleaky.leaky_relu_grad):
        r = func(a, 0.2)
        assert isinstance(r, xr.DataArray)
        assert r.name == "signal" and r.attrs == {"units": "V"} and r.dims == a.dims
        xr.testing.assert_identical(r.coords.to_dataset(), a.coords.to_dataset())
        assert_bitwise_equal(r.values, getattr(reference, func.__name__)(a.values, 0.2))
    g = fastleaky.leaky_relu_backward(a, a, 0.2)
    assert_bitwise_equal(g.values, reference.leaky_relu_backward(a.values, a.values, 0.2))


def test_dataset():
    a = _data_array()
    ds = xr.Dataset({"signal": a, "count": ("time", np.arange(-3, 3), {"kind": "int"})},
                    attrs={"title": "run 1"})
    r = fastleaky.leaky_relu(ds, 0.5)
    assert isinstance(r, xr.Dataset)
    assert r.attrs == {"title": "run 1"}
    assert r["signal"].attrs == {"units": "V"} and r["count"].attrs == {"kind": "int"}
    assert r["count"].dtype == np.float64
    np.testing.assert_array_equal(r["count"].values, [-1.5, -1.0, -0.5, 0.0, 1.0, 2.0])
    assert_bitwise_equal(r["signal"].values, reference.leaky_relu(a.values, 0.5))


def test_dask_backed_stays_lazy():
    pytest.importorskip("dask.array")
    a = _data_array().chunk({"time": 2})
    r = fastleaky.leaky_relu(a, 0.2)
    assert r.chunks == a.chunks
    assert type(r.data).__module__.startswith("dask")
    assert r.attrs == {"units": "V"}
    assert_bitwise_equal(r.compute().values, reference.leaky_relu(a.values, 0.2))


def test_bad_input():
    a = _data_array()
    with pytest.raises(ValueError, match="finite"):
        fastleaky.leaky_relu(a, float("nan"))
    with pytest.raises(TypeError, match="out= is not supported"):
        fastleaky.leaky_relu(a, out=a.values)
    with np.errstate(invalid="ignore"):  # casting its signalling NaNs
        complex_array = a.astype(complex)
    with pytest.raises(TypeError, match="complex"):
        fastleaky.leaky_relu(complex_array)


def test_import_fastleaky_loads_no_integration():
    import subprocess
    import sys
    import tempfile

    code = (
        "import sys, numpy, fastleaky\n"
        "fastleaky.leaky_relu(numpy.ones(3))\n"
        "print([m for m in ('xarray', 'distributed', 'dask', 'torch', 'numba') if m in sys.modules])"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=tempfile.gettempdir())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
