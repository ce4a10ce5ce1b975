# distutils: language = c++
# cython: language_level=3
"""oneTBB's work-stealing scheduler for the C loops of ``_cython_loop``.

Built only where TBB's headers were found at build time (PyPI's
``tbb-devel``); it links ``libtbb.so.12``, which ``cython_backend`` loads
first from PyPI's ``tbb`` (the library Numba's TBB layer uses, so both
share one pool of threads).  Without it the loops use OpenMP.
"""

from cpython.pycapsule cimport PyCapsule_New

cdef extern from "_tbb_pool.h":
    ctypedef void (*fl_chunk_body)(void *ctx, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil
    int fl_tbb_parallel_for(fl_chunk_body body, void *ctx, Py_ssize_t nchunks,
                            int nthreads) noexcept nogil
    int fl_tbb_concurrency() noexcept nogil
    const char *fl_tbb_version() noexcept nogil

# The name ``_cython_loop.use_pool`` checks before it calls the pointer.
CAPSULE_NAME = b"fastleaky.parallel_for"
cdef const char *_capsule_name = "fastleaky.parallel_for"


def parallel_for():
    """A capsule holding ``fl_tbb_parallel_for`` (see ``_tbb_pool.h``)."""
    return PyCapsule_New(<void *>fl_tbb_parallel_for, _capsule_name, NULL)


def concurrency():
    """Threads TBB runs a loop on by default (the cores this process may use)."""
    return fl_tbb_concurrency()


def version():
    """The version of the TBB library loaded at run time."""
    return fl_tbb_version().decode()
