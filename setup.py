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
- ``-mprefer-vector-width=256`` (x86-64, where the compiler takes it): the
  AVX-512 variant of the float32/float64 loops works on 256-bit registers,
  with AVX-512's masks.  On 512-bit registers the loops were no faster
  alone, and a PyTorch forward + backward around them was a few percent
  slower (docs/design-measurements.md): an Intel core lowers its clock for
  a while after 512-bit instructions, which slows the Python code around
  every call as well.  GCC's tunings for Intel's AVX-512 CPUs prefer
  256 bits for that reason.  The float16 loops' intrinsics stay 512-bit.
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
- TBB (``fastleaky._backends._tbb_pool``, C++): where TBB's headers and
  ``libtbb.so.12`` are found (PyPI's ``tbb-devel`` and ``tbb``, a build
  requirement on x86_64; or ``FASTLEAKY_TBB_ROOT`` with ``include/`` and
  ``lib/``), the parallel loops run on TBB's work-stealing scheduler instead
  of an OpenMP team (see ``_tbb_pool.h`` for why).  The extension links
  ``libtbb.so.12`` without an rpath: ``cython_backend`` loads PyPI's copy by
  path first, as Numba does, so one TBB serves both; where none can be
  loaded the loops use OpenMP.  ``FASTLEAKY_NO_TBB=1`` builds without it.
"""

import importlib.metadata
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup


_OPENMP_PROBE = "#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n"
_TBB_PROBE = (
    "#include <tbb/parallel_for.h>\n#include <tbb/task_arena.h>\n"
    "int main() { int s = 0; tbb::parallel_for(0, 2, [&](int i) { if (i == 5) s = i; });"
    " return s + (tbb::this_task_arena::max_concurrency() > 0 ? 0 : 1); }\n"
)


def _compiler_accepts(flags, src=_OPENMP_PROBE, suffix=".c", compiler="CC", libraries=()):
    """True when the C (or C++) compiler compiles and links ``src`` with
    ``flags`` (and ``libraries``, linked after it)."""
    cc = os.environ.get(compiler) or sysconfig.get_config_var(compiler) or compiler.lower()
    cc = cc.split()
    if shutil.which(cc[0]) is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe" + suffix)
        with open(path, "w") as f:
            f.write(src)
        result = subprocess.run(
            [*cc, *flags, path, *libraries, "-o", os.path.join(tmp, "probe")],
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


def _tbb_paths():
    """(include directory, path of libtbb.so.12) of a TBB this build can
    use, or None: ``FASTLEAKY_TBB_ROOT`` if set, else the files of PyPI's
    ``tbb-devel`` / ``tbb`` in this environment."""
    if os.environ.get("FASTLEAKY_NO_TBB") or sys.platform != "linux":
        return None
    include = library = None
    root = os.environ.get("FASTLEAKY_TBB_ROOT")
    if root:
        include = os.path.join(root, "include")
        library = os.path.join(root, "lib", "libtbb.so.12")
    else:
        for name in ("tbb-devel", "tbb"):
            try:
                files = importlib.metadata.distribution(name).files or []
            except importlib.metadata.PackageNotFoundError:
                continue
            for f in files:
                path = str(f).replace(os.sep, "/")
                if path.endswith("include/tbb/parallel_for.h") and "oneapi" not in path:
                    include = os.path.dirname(os.path.dirname(str(f.locate())))
                elif path.endswith("/libtbb.so.12") and library is None:
                    library = str(f.locate())
    if not (include and library and os.path.exists(os.path.join(include, "tbb", "parallel_for.h"))
            and os.path.exists(library)):
        return None
    include, library = os.path.normpath(include), os.path.normpath(library)
    if not _compiler_accepts(["-std=c++17", "-I" + include], _TBB_PROBE, ".cpp", "CXX",
                             [library]):
        return None
    return include, library


unix = sys.platform != "win32"
openmp = _openmp_flags()
tbb = _tbb_paths() if unix else None
compile_args = (["-O3", "-fno-trapping-math"] if unix else ["/O2"]) + openmp
if unix and _compiler_accepts(["-mprefer-vector-width=256"], "int main(void){return 0;}\n"):
    compile_args.append("-mprefer-vector-width=256")
link_args = openmp if unix else []
options = {}
sanitize = []
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
if tbb is not None:
    extensions.append(Extension(
        "fastleaky._backends._tbb_pool",
        ["fastleaky/_backends/_tbb_pool.pyx"],
        language="c++",
        include_dirs=[tbb[0], "fastleaky/_backends"],
        extra_compile_args=["-std=c++17", "-O2"] + sanitize,
        extra_link_args=[tbb[1]] + sanitize,
        depends=["fastleaky/_backends/_tbb_pool.h"],
    ))

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={"language_level": "3"},
    ),
    options=options,
)
