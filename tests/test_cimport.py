"""A user's own Cython extension that cimports fastleaky.kernels, built with
plain cythonize against the installed package."""

import importlib.util
import shutil
import subprocess
import sys
import sysconfig
import textwrap

import numpy as np
import pytest

import fastleaky
from fastleaky import cases, reference
from fastleaky.testing import assert_bitwise_equal

pytest.importorskip("Cython")

USER_PYX = """
# cython: language_level=3, boundscheck=False, wraparound=False
from cython.parallel cimport prange
from fastleaky.kernels cimport floating, leaky_relu, leaky_relu_grad, leaky_relu_backward

def forward(floating[::1] x, floating alpha, floating[::1] out):
    cdef Py_ssize_t i
    with nogil:
        for i in range(x.shape[0]):
            out[i] = leaky_relu(x[i], alpha)

def grad(floating[::1] x, floating alpha, floating[::1] out):
    cdef Py_ssize_t i
    with nogil:
        for i in range(x.shape[0]):
            out[i] = leaky_relu_grad(x[i], alpha)

def backward(floating[::1] g, floating[::1] x, floating alpha, floating[::1] out):
    cdef Py_ssize_t i
    for i in prange(x.shape[0], nogil=True):
        out[i] = leaky_relu_backward(g[i], x[i], alpha)
"""

USER_SETUP = """
import fastleaky
from Cython.Build import cythonize
from setuptools import setup

setup(ext_modules=cythonize("user_kernels.pyx", include_path=[fastleaky.get_include()]))
"""


@pytest.fixture(scope="module")
def user_kernels(tmp_path_factory):
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        pytest.skip(f"no C compiler ({cc})")
    src = tmp_path_factory.mktemp("user_ext")
    (src / "user_kernels.pyx").write_text(textwrap.dedent(USER_PYX))
    (src / "setup.py").write_text(textwrap.dedent(USER_SETUP))
    proc = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"],
                          cwd=src, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (built,) = src.glob("user_kernels*.so") or src.glob("user_kernels*.pyd")
    spec = importlib.util.spec_from_file_location("user_kernels", built)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_get_include_holds_the_pxd():
    import os

    assert os.path.isfile(os.path.join(fastleaky.get_include(), "fastleaky", "kernels.pxd"))


@pytest.mark.parametrize("alpha", cases.ALPHAS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_user_extension_is_bit_exact(user_kernels, dtype, alpha):
    x = cases.sample(dtype, 3000)
    g = cases.sample(dtype, 3000, seed=6)
    a = np.dtype(dtype).type(alpha)  # cast alpha to the array's type, as documented
    out = np.empty_like(x)
    user_kernels.forward(x, a, out)
    assert_bitwise_equal(out, reference.leaky_relu(x, alpha))
    user_kernels.grad(x, a, out)
    assert_bitwise_equal(out, reference.leaky_relu_grad(x, alpha))
    user_kernels.backward(g, x, a, out)
    assert_bitwise_equal(out, reference.leaky_relu_backward(g, x, alpha))
