# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Compiled LeakyReLU loops: serial, and OpenMP-parallel over contiguous chunks.

The per-element loops live in ``_select.h`` (compiled once per ISA and
picked at load time); this module only splits the work across threads and
hands raw pointers over.  Callers (``fastleaky.api``) guarantee contiguous,
native-order arrays of one dtype and the same size, with ``x`` and ``out``
either the same memory or not overlapping.
"""

cimport numpy as cnp
from cython.parallel cimport prange

cnp.import_array()

cdef extern from "_select.h" nogil:
    ctypedef unsigned short fl_half
    ctypedef void (*fl_loop_f32)(const float *, const float *, float, float *, Py_ssize_t)
    ctypedef void (*fl_loop_f64)(const double *, const double *, double, double *, Py_ssize_t)
    int FASTLEAKY_ISA_DISPATCH
    int FASTLEAKY_HAVE_FLOAT16
    int FL_NUM_OPS
    int FL_BACKWARD
    const char *fl_op_names[]
    fl_loop_f32 fl_loops_f32[]
    fl_loop_f64 fl_loops_f64[]

# float16 goes through C's _Float16; Cython has no half type, so the values
# cross as raw 16-bit patterns.
cdef extern from *:
    """
    #include <string.h>
    #include "_select.h"
    static void fl_run_f16_bits(int op, const unsigned short *g, const unsigned short *x,
                                unsigned short a, unsigned short *out, Py_ssize_t n) {
        fl_half ah; memcpy(&ah, &a, sizeof ah);
        fl_run_f16(op, (const fl_half *)g, (const fl_half *)x, ah, (fl_half *)out, n);
    }
    """
    void fl_run_f16_bits(int op, const unsigned short *g, const unsigned short *x,
                         unsigned short a, unsigned short *out, Py_ssize_t n) nogil

cdef extern from *:
    """
    #if FASTLEAKY_HAVE_OPENMP
    #include <omp.h>
    static int fl_max_threads(void) { return omp_get_max_threads(); }
    #else
    static int fl_max_threads(void) { return 1; }
    #endif
    """
    int FASTLEAKY_HAVE_OPENMP
    int fl_max_threads() nogil

HAVE_OPENMP = bool(FASTLEAKY_HAVE_OPENMP)
ISA_DISPATCH = bool(FASTLEAKY_ISA_DISPATCH)
HAVE_FLOAT16 = bool(FASTLEAKY_HAVE_FLOAT16)

# Chunks handed to threads are whole multiples of this many elements, so no
# two threads write the same cache line (64 B = 16 float32).
DEF CHUNK_ALIGN = 64


def max_threads():
    """Threads an OpenMP region would use now (OMP_NUM_THREADS, omp_set_num_threads)."""
    return fl_max_threads()


# GNU OpenMP (libgomp) is not fork-safe: a forked child inherits the
# runtime's record of its thread pool but not the threads, and its next
# parallel region waits for them forever (measured here: a fork pool whose
# parent had run one parallel call hung in every child).  So the loops
# remember whether this process started OpenMP threads, and in a forked
# child of such a process (see ``cython_backend``) they run serially.
cdef bint _openmp_started = False
cdef bint _serial_only = False


def openmp_started():
    """True once a parallel region ran in this process (or in the parent it was forked from)."""
    return _openmp_started


def serial_only():
    """True when the loops ignore ``nthreads`` (a forked child of an OpenMP process)."""
    return _serial_only


def set_serial_only(bint value):
    """Run every call on the calling thread (True), or allow OpenMP again (False)."""
    global _serial_only
    _serial_only = value


cdef inline Py_ssize_t _chunk(Py_ssize_t n, int nthreads) noexcept nogil:
    cdef Py_ssize_t c = (n + nthreads - 1) // nthreads
    return ((c + CHUNK_ALIGN - 1) // CHUNK_ALIGN) * CHUNK_ALIGN


cdef void _run(int op, int typenum, char *g, char *x, double a, char *out,
               Py_ssize_t n) noexcept nogil:
    """One contiguous block, dispatched on dtype and operation (the C tables)."""
    if typenum == cnp.NPY_FLOAT32:
        fl_loops_f32[op](<float *>g, <float *>x, <float>a, <float *>out, n)
    elif typenum == cnp.NPY_FLOAT64:
        fl_loops_f64[op](<double *>g, <double *>x, a, <double *>out, n)


cdef void _run_f16(int op, char *g, char *x, unsigned short a, char *out,
                   Py_ssize_t n) noexcept nogil:
    fl_run_f16_bits(op, <unsigned short *>g, <unsigned short *>x, a, <unsigned short *>out, n)


cdef void _split(int op, int typenum, char *gp, char *xp, double a64, unsigned short a16,
                 char *op_, Py_ssize_t n, Py_ssize_t itemsize, int nthreads) noexcept:
    """Run the loop on ``nthreads`` contiguous chunks (serially when 1); GIL released."""
    global _openmp_started
    cdef Py_ssize_t chunk, c, lo, hi, nchunks
    cdef bint half = typenum == cnp.NPY_FLOAT16
    if nthreads <= 1 or n < 2 * CHUNK_ALIGN or not FASTLEAKY_HAVE_OPENMP or _serial_only:
        with nogil:
            if half:
                _run_f16(op, gp, xp, a16, op_, n)
            else:
                _run(op, typenum, gp, xp, a64, op_, n)
        return
    _openmp_started = True
    chunk = _chunk(n, nthreads)
    nchunks = (n + chunk - 1) // chunk
    for c in prange(nchunks, nogil=True, num_threads=nthreads, schedule="static"):
        lo = c * chunk
        hi = min(lo + chunk, n)
        if half:
            _run_f16(op, gp + lo * itemsize, xp + lo * itemsize, a16, op_ + lo * itemsize, hi - lo)
        else:
            _run(op, typenum, gp + lo * itemsize if gp != NULL else NULL, xp + lo * itemsize,
                 a64, op_ + lo * itemsize, hi - lo)


# The operation numbers of the C tables, by name (``fastleaky.ops`` must agree).
OP_CODES = {fl_op_names[i].decode(): i for i in range(FL_NUM_OPS)}


cdef int _threads_for(int nthreads) noexcept:
    """``threads.for_call``'s answer as a thread count: 0 is the runtime's
    own count; a cap above it is the runtime's count (no oversubscription)."""
    cdef int runtime = fl_max_threads()
    if runtime < 1:
        runtime = 1
    if nthreads <= 0 or nthreads > runtime:
        return runtime
    return nthreads


def run(int op, cnp.ndarray g, cnp.ndarray x, alpha, cnp.ndarray out, int nthreads):
    """The kernel of operation ``op`` (``ops.Op.code``) on flat contiguous
    arrays of out's dtype; ``g`` is read by backward only; ``alpha`` a scalar
    of out's dtype; ``nthreads`` as ``threads.for_call`` gives it."""
    cdef int typenum = cnp.PyArray_TYPE(out)
    cdef double a64 = 0.0
    cdef unsigned short a16 = 0
    if op < 0 or op >= FL_NUM_OPS:
        raise ValueError(f"unknown operation code {op}")
    if typenum == cnp.NPY_FLOAT16:
        a16 = alpha.view("uint16")
    else:
        a64 = alpha
    _split(op, typenum, <char *>cnp.PyArray_DATA(g), <char *>cnp.PyArray_DATA(x), a64, a16,
           <char *>cnp.PyArray_DATA(out), cnp.PyArray_SIZE(out), cnp.PyArray_ITEMSIZE(out),
           1 if nthreads == 1 else _threads_for(nthreads))


# ---- the plain-call fast path ---------------------------------------------
# The common call spends more time in Python checks than a small array spends
# in the loop, and at large sizes they are still a measurable share of a
# threaded call.  ``plain_call`` does the checks of ``boundary.plain_out`` in
# C for the one case it can prove simple -- exact ndarrays, C-contiguous and aligned,
# native float32 or float64, a Python-float alpha, no out or a contiguous out
# that is x itself or disjoint from the inputs -- picks the thread count by
# the rules of ``threads.for_call`` and runs the loop.  For anything else it
# returns NotImplemented and the caller takes the general path (same bits).

from cpython.contextvars cimport get_value
from cpython.float cimport PyFloat_CheckExact, PyFloat_AS_DOUBLE
from libc.float cimport FLT_MAX
from libc.math cimport isfinite
from libc.stdlib cimport getenv

cdef Py_ssize_t _parallel_min_f32 = 0
cdef Py_ssize_t _parallel_min_f64 = 0
cdef object _limit_var = None  # fastleaky.threads' context variable
cdef bytes _env_threads = b""  # the environment variable that caps threads


def set_plain_call_config(Py_ssize_t parallel_min_f32, Py_ssize_t parallel_min_f64,
                          limit_var, str env_threads):
    """Sizes from which ``plain_call`` uses threads, and where the thread cap lives."""
    global _parallel_min_f32, _parallel_min_f64, _limit_var, _env_threads
    _parallel_min_f32 = parallel_min_f32
    _parallel_min_f64 = parallel_min_f64
    _limit_var = limit_var
    _env_threads = env_threads.encode()


cdef inline bint _plain(object a, int typenum):
    return (cnp.PyArray_CheckExact(a)
            and cnp.PyArray_TYPE(<cnp.ndarray>a) == typenum
            and cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>a)
            and cnp.PyArray_ISALIGNED(<cnp.ndarray>a)
            and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>a))


cdef inline bint _disjoint(cnp.ndarray a, cnp.ndarray b):
    cdef char *pa = <char *>cnp.PyArray_DATA(a)
    cdef char *pb = <char *>cnp.PyArray_DATA(b)
    return pa + cnp.PyArray_NBYTES(a) <= pb or pb + cnp.PyArray_NBYTES(b) <= pa


cdef long _parse_threads(const char *text) noexcept:
    """``threads.parse_env_threads`` in C: ASCII digits with spaces or tabs
    around them; 0 for a blank value (no cap), -1 for anything that is not a
    whole number >= 1.  Huge values saturate (they cap at the runtime's count)."""
    cdef long n = 0
    cdef int i = 0, digits = 0
    while text[i] == 32 or text[i] == 9:
        i += 1
    while 48 <= text[i] <= 57:
        if n < 1000000000:
            n = n * 10 + (text[i] - 48)
        digits += 1
        i += 1
    while text[i] == 32 or text[i] == 9:
        i += 1
    if text[i] != 0:
        return -1
    if digits == 0:
        return 0
    return n if n >= 1 else -1


def parse_env_threads(bytes text):
    """``_parse_threads`` for tests (the C and Python readers must agree)."""
    return _parse_threads(text)


cdef int _thread_count():
    """fastleaky.threads.get(max_threads()) in C, or -1 when Python must decide
    (an environment value that is not a whole number >= 1: the general path
    raises the error saying so)."""
    cdef long cap = 0
    cdef char *text
    cdef int runtime = fl_max_threads()
    if runtime < 1:
        runtime = 1
    limit = get_value(_limit_var) if _limit_var is not None else None
    if limit is not None:  # a whole number >= 1 (thread_limit checks), maybe huge
        return <int>limit if limit < runtime else runtime
    text = getenv(_env_threads)
    if text != NULL:
        cap = _parse_threads(text)
        if cap < 0:
            return -1
        if 0 < cap < runtime:
            return <int>cap
    return runtime


def plain_call_threads():
    """Threads ``plain_call`` would use now for a parallel-size array (-1: it defers)."""
    return _thread_count()


def plain_call(int op, object g, object x, object alpha, object out):
    """op: the operation number (g ignored unless backward)."""
    cdef cnp.ndarray xa, ga, oa
    cdef int typenum, nthreads = 1
    cdef double a
    cdef Py_ssize_t n
    if op < 0 or op >= FL_NUM_OPS:
        return NotImplemented
    if not cnp.PyArray_CheckExact(x) or not PyFloat_CheckExact(alpha):
        return NotImplemented
    xa = <cnp.ndarray>x
    typenum = cnp.PyArray_TYPE(xa)
    a = PyFloat_AS_DOUBLE(alpha)
    n = cnp.PyArray_SIZE(xa)
    if typenum == cnp.NPY_FLOAT32:
        if not (-FLT_MAX <= a <= FLT_MAX):
            return NotImplemented
        if n >= _parallel_min_f32:
            nthreads = 0
    elif typenum == cnp.NPY_FLOAT64:
        if not isfinite(a):
            return NotImplemented
        if n >= _parallel_min_f64:
            nthreads = 0
    else:
        return NotImplemented
    if not _plain(x, typenum):
        return NotImplemented
    ga = xa
    if op == FL_BACKWARD:
        if not _plain(g, typenum) or not cnp.PyArray_SAMESHAPE(<cnp.ndarray>g, xa):
            return NotImplemented
        ga = <cnp.ndarray>g
    if out is not None:
        if not _plain(out, typenum) or not cnp.PyArray_SAMESHAPE(<cnp.ndarray>out, xa):
            return NotImplemented
        oa = <cnp.ndarray>out
        if not cnp.PyArray_ISWRITEABLE(oa):
            return NotImplemented
        if oa is not xa and not _disjoint(oa, xa):
            return NotImplemented
        if op == FL_BACKWARD and oa is not ga and not _disjoint(oa, ga):
            return NotImplemented
    if nthreads == 0:
        nthreads = _thread_count()
        if nthreads < 0:
            return NotImplemented
    if out is None:
        oa = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(xa), cnp.PyArray_DIMS(xa), typenum, 0)
    # a C double cast to float rounds like NumPy's float64 -> float32 cast
    _split(op, typenum, <char *>cnp.PyArray_DATA(ga), <char *>cnp.PyArray_DATA(xa), a, 0,
           <char *>cnp.PyArray_DATA(oa), n, cnp.PyArray_ITEMSIZE(oa), nthreads)
    return oa
