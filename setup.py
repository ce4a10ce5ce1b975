"""Build the Cython extension; all metadata lives in pyproject.toml.

Compiler flags, and why:
- ``-O3 -fno-trapping-math``: under GCC's default ``-ftrapping-math`` the
  select ``x > 0 ? x : x * a`` keeps a branch per element (computing ``x * a``
  for every element could raise an FP exception the branchy code would not),
  and with random signs that branch mispredicts half the time: 1.8 GB/s on
  1e7 float32 against 46.8 GB/s with the flag, on a 2-core EPYC.  The flag
  changes no result (unlike ``-ffast-math`` it keeps NaN, signed zeros and
  rounding), so the kernels stay bit-exact with the NumPy reference.
- no ``-march=native``: a wheel built here must be fast elsewhere; the ISA
  variants are chosen at run time (see ``fastleaky/_backends/_select.h``).
- OpenMP when the compiler has it (``prange``); otherwise the same loops
  compile serial and the extension reports that it has no OpenMP.
- ``FASTLEAKY_SANITIZE=1`` (``bash ci/sanitize``; GCC/Clang only) adds
  ``-fsanitize=address,undefined -fno-omit-frame-pointer
  -fno-sanitize-recover=undefined`` to compiling and linking: the C loops
  trust their caller (see ``_select.h``), so an out-of-bounds read or write
  or undefined behaviour there would otherwise corrupt memory silently; under
  the sanitizers the test suite fails at the first one, with a stack trace
  (frame pointers), and UBSan stops instead of recovering.  ``-O3`` stays, so
  the instrumented code is the vectorized, ISA-cloned code that ships.  Such
  an extension loads only with the ASan runtime preloaded (``LD_PRELOAD``, see
  ci/sanitize) and runs slower: never ship one.  Any other value
  or an unset variable builds exactly the flags above.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup


def _compiler_accepts(flags):
    """True when the C compiler compiles and links a test program with ``flags``."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    cc = cc.split()
    if shutil.which(cc[0]) is None:
        return False
    src = "#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe.c")
        with open(path, "w") as f:
            f.write(src)
        result = subprocess.run(
            [*cc, *flags, path, "-o", os.path.join(tmp, "probe")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    return result.returncode == 0


def _openmp_flags():
    if os.environ.get("FASTLEAKY_NO_OPENMP"):
        return []
    if sys.platform == "win32":
        return ["/openmp"]
    return ["-fopenmp"] if _compiler_accepts(["-fopenmp"]) else []


openmp = _openmp_flags()
unix = sys.platform != "win32"
compile_args = (["-O3", "-fno-trapping-math"] if unix else ["/O2"]) + openmp
link_args = openmp if unix else []
options = {}
if os.environ.get("FASTLEAKY_SANITIZE") == "1":
    if not unix:
        sys.exit("FASTLEAKY_SANITIZE=1 needs GCC or Clang (-fsanitize)")
    sanitize = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                "-fno-sanitize-recover=undefined"]
    compile_args = compile_args + sanitize
    link_args = link_args + sanitize
    # Its own build directory: setuptools reuses an extension in build/ that
    # is newer than its sources, whatever flags built it.
    options = {"build": {"build_base": os.path.join("build", "sanitize")}}

extensions = [
    Extension(
        "fastleaky._backends._cython_loop",
        ["fastleaky/_backends/_cython_loop.pyx"],
        include_dirs=[np.get_include(), "fastleaky/_backends"],
        define_macros=[
            ("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION"),
            ("FASTLEAKY_HAVE_OPENMP", "1" if openmp else "0"),
        ],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
        depends=["fastleaky/_backends/_select.h", "fastleaky/kernels.pxd"],
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={"language_level": "3"},
    ),
    options=options,
)
