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

from libc.stdint cimport uint16_t
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_New

cdef extern from "_select.h" nogil:
    ctypedef void (*fl_loop_f32)(const float *, const float *, float, float *, Py_ssize_t)
    ctypedef void (*fl_loop_f64)(const double *, const double *, double, double *, Py_ssize_t)
    ctypedef void (*fl_loop_mixed)(const void *, const void *, float, float *, Py_ssize_t)
    int FASTLEAKY_ISA_DISPATCH
    int FASTLEAKY_HAVE_FLOAT16
    int FL_NUM_OPS
    int FL_BACKWARD
    const char *fl_op_names[]
    fl_loop_f32 fl_loops_f32[]
    fl_loop_f64 fl_loops_f64[]
    int FASTLEAKY_HAVE_STREAM
    const fl_loop_f32 *fl_stream_f32
    const fl_loop_f64 *fl_stream_f64
    # float16: Cython has no half type, so the values cross as 16-bit patterns
    int FL_H_NUM_ISAS
    const char *fl_h_isa_names[]
    int fl_h_isa
    int fl_h_cpu_has(int isa)
    int fl_half_set_isa(int isa)
    void fl_half_init()
    uint16_t fl_double_to_half_bits(double d)
    bint FL_H_FINITE(uint16_t h)
    void fl_run_f16(int op, const uint16_t *g, const uint16_t *x, uint16_t a, uint16_t *out,
                    Py_ssize_t n)
    void fl_g32x16(const void *g, const void *x, float a, float *out, Py_ssize_t n)
    fl_loop_mixed fl_g16x32

cdef extern from *:
    """
    #include <fenv.h>
    #if FASTLEAKY_HAVE_OPENMP
    #include <omp.h>
    static int fl_omp_max_threads(void) { return omp_get_max_threads(); }
    static int fl_omp_thread_num(void) { return omp_get_thread_num(); }
    #else
    static int fl_omp_max_threads(void) { return 1; }
    static int fl_omp_thread_num(void) { return 0; }
    #endif

    /* The work-stealing pool (_tbb_pool.h), when one is installed. */
    typedef void (*fl_chunk_body)(void *ctx, Py_ssize_t lo, Py_ssize_t hi);
    typedef int (*fl_parallel_for_fn)(fl_chunk_body, void *, Py_ssize_t, int);
    static fl_parallel_for_fn fl_pool = NULL;
    static int fl_pool_threads = 0;

    /* The runtime's count: OMP_NUM_THREADS / omp_set_num_threads, which
     * the loops follow whatever runs them, within the pool's cores. */
    static int fl_max_threads(void) {
        int n;
        if (fl_pool == NULL) return fl_omp_max_threads();
    #if FASTLEAKY_HAVE_OPENMP
        n = omp_get_max_threads();
        return n < fl_pool_threads ? n : fl_pool_threads;
    #else
        n = fl_pool_threads;
        return n;
    #endif
    }

    /* Another library's OpenMP team, for calls made on that library's data
     * (PyTorch's intra-op threads for tensors): its GOMP_parallel entry and
     * thread queries, found at run time, so that a torch operator built on
     * these loops runs on torch's own threads whichever OpenMP runtime this
     * extension was linked with.  Each thread of the team, the caller
     * included, first claims the chunks of its own contiguous share, half
     * of what is left at a time (the share torch's own static split gives
     * it, so data left in its core's cache by torch's previous op is found
     * there), then those left in the other shares, one at a time: a thread
     * the OS runs late finds its share done instead of holding it.
     * Non-calling threads take the caller's floating-point mode for the
     * chunks they run. */
    typedef void (*fl_gomp_parallel_f)(void (*)(void *), void *, unsigned, unsigned);
    typedef int (*fl_omp_int_f)(void);
    static fl_gomp_parallel_f fl_team_parallel = NULL;
    static fl_omp_int_f fl_team_thread_num = NULL;
    static fl_omp_int_f fl_team_max_threads = NULL;
    #if defined(_MSC_VER)
    #include <intrin.h>
    #define FL_CLAIM(p, n) _InterlockedExchangeAdd64((volatile __int64 *)(p), (n))
    #define FL_PEEK(p) (*(volatile Py_ssize_t *)(p))
    #else
    #define FL_CLAIM(p, n) __atomic_fetch_add((p), (n), __ATOMIC_RELAXED)
    #define FL_PEEK(p) __atomic_load_n((p), __ATOMIC_RELAXED)
    #endif
    /* A monotonic clock in seconds, for the team's stall check. */
    #if defined(_WIN32)
    static double fl_now(void) { return 0.0; }  /* no GNU OpenMP team there */
    #else
    #include <time.h>
    static double fl_now(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
    }
    #endif
    #define FL_TEAM_MAX 256
    #if defined(_MSC_VER)
    #define FL_CACHE_LINE __declspec(align(64))
    #else
    #define FL_CACHE_LINE __attribute__((aligned(64)))
    #endif
    /* One cache line each, and none shared with the job's other fields: a
     * thread claims chunks of its share with atomic adds, and a line that
     * another thread reads or writes meanwhile (the job's body and context,
     * read for every chunk) would move between the cores at each claim. */
    typedef struct FL_CACHE_LINE {
        Py_ssize_t next;  /* the next chunk of this share nobody has claimed */
        Py_ssize_t end;
    } fl_team_share;
    typedef struct {
        fl_chunk_body body;
        void *ctx;
        int nshares;
        fl_team_share share[FL_TEAM_MAX];
        double caller_done;  /* when the calling thread found no chunk left */
        fenv_t env;
    } fl_team_job;
    /* NumPy calls stay off the team until then: the last one waited for a
     * thread the OS did not run (another process has the core).  See
     * fl_team_parallel_for. */
    static double fl_team_stalled_until = 0.0;
    static double fl_team_backoff = 0.5;  /* seconds */
    static int fl_team_ready(void) { return fl_now() >= fl_team_stalled_until; }
    static void fl_team_body(void *p) {
        fl_team_job *job = (fl_team_job *)p;
        int id = fl_team_thread_num(), caller = id == 0, in_env = 0, i;
        fenv_t own;
        for (i = 0; i < job->nshares; i++) {  /* its own share first, then the others' */
            fl_team_share *s = &job->share[(id + i) % job->nshares];
            for (;;) {
                /* Of its own share a thread claims half of what is left at a
                 * time (an atomic add is a full barrier on x86: it waits for
                 * the stores of the chunk before to drain, so one per chunk
                 * costs time at every chunk); of another's, one chunk. */
                Py_ssize_t left = s->end - FL_PEEK(&s->next);
                Py_ssize_t take = (i == 0 && left > 2) ? (left + 1) / 2 : 1;
                Py_ssize_t c = FL_CLAIM(&s->next, take);
                if (c >= s->end) break;
                if (!caller && !in_env) {
                    fegetenv(&own);
                    fesetenv(&job->env);
                    in_env = 1;
                }
                job->body(job->ctx, c, c + take < s->end ? c + take : s->end);
            }
        }
        if (in_env) fesetenv(&own);
        if (caller) job->caller_done = fl_now();
    }
    static int fl_team_parallel_for(fl_chunk_body body, void *ctx, Py_ssize_t nchunks,
                                    int nthreads) {
        fl_team_job job;
        int i;
        if (nthreads > FL_TEAM_MAX) nthreads = FL_TEAM_MAX;
        job.body = body;
        job.ctx = ctx;
        job.nshares = nthreads;
        for (i = 0; i < nthreads; i++) {
            job.share[i].next = nchunks * i / nthreads;
            job.share[i].end = nchunks * (i + 1) / nthreads;
        }
        job.caller_done = 0.0;
        fegetenv(&job.env);
        double start = fl_now();
        fl_team_parallel(fl_team_body, &job, (unsigned)nthreads, 0);
        double end = fl_now();
        /* The calling thread ran out of chunks and then waited at the
         * team's closing barrier for a thread still inside a chunk or not
         * yet run: for a quarter of the call or more, the team is not
         * getting its cores, and NumPy calls use the work-stealing pool for
         * a while (fl_team_ready), which never waits for a helper. */
        if (job.caller_done > 0.0 && end - job.caller_done > 0.25 * (end - start)
                && end - job.caller_done > 1e-4)
            fl_team_stalled_until = end + fl_team_backoff;
        return 0;
    }
    static int fl_team_threads(void) { return fl_team_max_threads(); }

    /* Threads taken by fastleaky's parallel calls in flight in this process. */
    #if defined(_MSC_VER)
    #include <intrin.h>
    static volatile long fl_in_flight = 0;
    static long fl_in_flight_add(long d) { return _InterlockedExchangeAdd(&fl_in_flight, d); }
    #else
    static long fl_in_flight = 0;
    static long fl_in_flight_add(long d) { return __atomic_fetch_add(&fl_in_flight, d, __ATOMIC_RELAXED); }
    #endif
    """
    int FASTLEAKY_HAVE_OPENMP
    int fl_max_threads() nogil
    int fl_omp_thread_num() nogil
    ctypedef void (*fl_chunk_body)(void *ctx, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil
    ctypedef int (*fl_parallel_for_fn)(fl_chunk_body, void *, Py_ssize_t, int) noexcept nogil
    fl_parallel_for_fn fl_pool
    int fl_pool_threads
    ctypedef void (*fl_gomp_parallel_f)(void (*)(void *) noexcept nogil, void *, unsigned, unsigned) noexcept nogil
    ctypedef int (*fl_omp_int_f)() noexcept nogil
    fl_gomp_parallel_f fl_team_parallel
    fl_omp_int_f fl_team_thread_num
    fl_omp_int_f fl_team_max_threads
    int fl_team_parallel_for(fl_chunk_body, void *, Py_ssize_t, int) noexcept nogil
    int fl_team_threads() noexcept nogil
    int fl_team_ready() noexcept nogil
    double fl_team_stalled_until
    double fl_team_backoff
    long fl_in_flight_add(long d) nogil
    ctypedef struct fenv_t:
        pass
    int fegetenv(fenv_t *env) nogil
    int fesetenv(const fenv_t *env) nogil

HAVE_OPENMP = bool(FASTLEAKY_HAVE_OPENMP)
ISA_DISPATCH = bool(FASTLEAKY_ISA_DISPATCH)
HAVE_FLOAT16 = bool(FASTLEAKY_HAVE_FLOAT16)
HAVE_STREAM = bool(FASTLEAKY_HAVE_STREAM)

fl_half_init()  # the best float16 loops this CPU runs


def half_isa():
    """The float16 loops in use: ``"avx512fp16"``, ``"avx512"``, ``"f16c"``
    or ``"generic"`` (None without float16 loops)."""
    return fl_h_isa_names[fl_h_isa].decode() if FASTLEAKY_HAVE_FLOAT16 else None


def half_isas():
    """The float16 loops this CPU and build can run, the best last."""
    return [fl_h_isa_names[i].decode() for i in range(FL_H_NUM_ISAS) if fl_h_cpu_has(i)]


def set_half_isa(str name):
    """Use the float16 loops ``name`` (one of ``half_isas()``) from now on,
    in every thread: for tests and measurements, which check each one on a
    CPU that has several.  ValueError for loops this CPU cannot run."""
    for i in range(FL_H_NUM_ISAS):
        if fl_h_isa_names[i].decode() == name and fl_half_set_isa(i) == 0:
            return
    raise ValueError(f"float16 loops {name!r} cannot run here; available: {half_isas()}")

# Chunks handed to threads are whole multiples of this many elements, so no
# two threads write the same cache line (64 B = 16 float32).
DEF CHUNK_ALIGN = 64


def max_threads():
    """Threads a parallel call would use now: the OpenMP runtime's count
    (OMP_NUM_THREADS, omp_set_num_threads), within the work-stealing
    pool's cores when one is installed."""
    return fl_max_threads()


def use_pool(capsule, int concurrency):
    """Run parallel calls on the work-stealing pool in ``capsule``
    (``_tbb_pool.parallel_for()``) of ``concurrency`` threads from now on;
    ``use_pool(None, 0)``: on OpenMP again (tests and measurements)."""
    global fl_pool, fl_pool_threads
    if capsule is None:
        fl_pool, fl_pool_threads = NULL, 0
        return
    if concurrency < 1:
        raise ValueError(f"a pool needs at least one thread, got {concurrency}")
    fl_pool = <fl_parallel_for_fn>PyCapsule_GetPointer(capsule, b"fastleaky.parallel_for")
    fl_pool_threads = concurrency


def use_team(size_t gomp_parallel, size_t thread_num, size_t max_threads):
    """Run ``pointer_call``'s parallel calls on the OpenMP team of the runtime
    whose ``GOMP_parallel`` and ``omp_get_thread_num`` are at these
    addresses (from one loaded library); ``max_threads``: an ``int (void)``
    function giving the team's size for the calling thread
    (``omp_get_max_threads``, or the library's own setting);
    ``use_team(0, 0, 0)``: on the pool again."""
    global fl_team_parallel, fl_team_thread_num, fl_team_max_threads
    if not (gomp_parallel and thread_num and max_threads):
        fl_team_parallel = NULL
        return
    fl_team_thread_num = <fl_omp_int_f>thread_num
    fl_team_max_threads = <fl_omp_int_f>max_threads
    fl_team_parallel = <fl_gomp_parallel_f>gomp_parallel


# NumPy calls with results of this many bytes and more run on the team of
# ``use_team`` (PyTorch's) where there is one: for a call of several
# milliseconds a thread that the OS runs late delays it by a fraction of
# it, and next to torch's threads, still spinning after their last op, the
# pool's helper may not get a core (``config.TEAM_MIN_BYTES``; 0: never).
cdef Py_ssize_t _team_min_bytes = 0
# Called (no arguments) before such a call while no team is installed: it
# installs one if it can (PyTorch imported since); see ``set_team_rule``.
cdef object _team_finder = None


def set_team_rule(Py_ssize_t min_bytes, finder):
    """NumPy calls with results of ``min_bytes`` and more (0: none) run on
    the team of ``use_team``; ``finder()`` (or None) is called before such a
    call while no team is installed, to install one.  It must not raise."""
    global _team_min_bytes, _team_finder
    if min_bytes < 0:
        raise ValueError(f"a size cannot be negative, got {min_bytes}")
    _team_min_bytes, _team_finder = min_bytes, finder


cdef fl_parallel_for_fn _host_pool(Py_ssize_t nbytes):
    """What runs a NumPy call's parallel part, for a result of ``nbytes``."""
    if 0 < _team_min_bytes <= nbytes:
        if fl_team_parallel == NULL and _team_finder is not None:
            _team_finder()
        if fl_team_parallel != NULL and fl_team_ready():
            return <fl_parallel_for_fn>fl_team_parallel_for
    return fl_pool


cdef inline int _runtime_of(fl_parallel_for_fn pool) noexcept:
    """The thread count of ``pool`` (``_host_pool``'s answer)."""
    if pool != NULL and pool == <fl_parallel_for_fn>fl_team_parallel_for:
        return fl_team_threads()
    return fl_max_threads()


def team_stalled():
    """Whether NumPy calls are kept off the team now (it waited for a
    thread the OS did not run, within the back-off)."""
    return not fl_team_ready()


def set_team_backoff(double seconds):
    """How long NumPy calls stay off the team after it stalled; also ends
    the current back-off (tests)."""
    global fl_team_backoff, fl_team_stalled_until
    if not seconds >= 0:
        raise ValueError(f"a back-off cannot be negative, got {seconds}")
    fl_team_backoff, fl_team_stalled_until = seconds, 0.0


def team_threads():
    """Threads the team of ``use_team`` runs a call on now (0: none installed)."""
    return fl_team_threads() if fl_team_parallel != NULL else 0


def pool():
    """What runs the parallel calls: ``"tbb"``, ``"openmp"`` or ``"serial"``
    (a build without either)."""
    if fl_pool != NULL:
        return "tbb"
    return "openmp" if FASTLEAKY_HAVE_OPENMP else "serial"


def in_flight():
    """Threads that fastleaky's parallel calls take in this process right now."""
    return fl_in_flight_add(0)


# Neither GNU OpenMP (libgomp) nor TBB is fork-safe: a forked child inherits
# the runtime's record of its threads but not the threads, and with libgomp
# its next parallel region waits for them forever (measured here: a fork
# pool whose parent had run one parallel call hung in every child).  So the
# loops remember whether this process started threads, and in a forked
# child of such a process (see ``cython_backend``) they run serially.
cdef bint _threads_started = False
cdef bint _serial_only = False


def threads_started():
    """True once a parallel call ran in this process (or in the parent it was forked from)."""
    return _threads_started


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


# What a block computes: one dtype throughout, or backward's two mixes of
# float16 and float32 (result float32, as NumPy promotes).
cdef enum Kind:
    K_F32, K_F64, K_F16, K_G16_X32, K_G32_X16


cdef void _run(int op, Kind kind, char *g, char *x, double a64, uint16_t a16, char *out,
               Py_ssize_t n, bint stream=False) noexcept nogil:
    """One contiguous block, dispatched on kind and operation (the C tables);
    ``stream``: with streaming stores (float32 and float64)."""
    if kind == K_F32:
        (fl_stream_f32 if stream else fl_loops_f32)[op](<float *>g, <float *>x, <float>a64,
                                                        <float *>out, n)
    elif kind == K_F64:
        (fl_stream_f64 if stream else fl_loops_f64)[op](<double *>g, <double *>x, a64,
                                                        <double *>out, n)
    elif kind == K_F16:
        fl_run_f16(op, <uint16_t *>g, <uint16_t *>x, a16, <uint16_t *>out, n)
    elif kind == K_G16_X32:
        fl_g16x32(g, x, <float>a64, <float *>out, n)
    else:
        fl_g32x16(g, x, <float>a64, <float *>out, n)


# A parallel call takes its threads from what other parallel calls in
# this process leave free (``fl_in_flight``): several Python threads
# calling at once (a thread pool, dask's threaded scheduler) share the
# cores instead of each starting a full team (k x cores threads).  A call
# always keeps its own thread.
cdef inline int _reserve(int want, int runtime) noexcept nogil:
    cdef long busy = fl_in_flight_add(1)  # this call's own thread
    cdef long team = runtime - busy
    if team > want:
        team = want
    if team < 1:
        team = 1
    if team > 1:
        fl_in_flight_add(team - 1)
    return <int>team


def reserve_threads(int want):
    """Take threads for a call that wants ``want`` as ``_split`` does and
    return how many it got; give them back with ``release_threads``."""
    return _reserve(want, fl_max_threads())


def release_threads(int team):
    """Give back what ``reserve_threads`` returned."""
    fl_in_flight_add(-team)


# One call's arrays and parameters, for the pool's task body.
cdef struct Block:
    int op
    Kind kind
    char *g
    char *x
    char *out
    double a64
    uint16_t a16
    Py_ssize_t gsize, xsize, osize, n, chunk
    bint stream


cdef void _run_chunks(void *ctx, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    """Chunks ``lo`` to ``hi`` (exclusive) of a Block."""
    cdef Block *b = <Block *>ctx
    cdef Py_ssize_t start = lo * b.chunk
    cdef Py_ssize_t stop = min(hi * b.chunk, b.n)
    _run(b.op, b.kind, b.g + start * b.gsize, b.x + start * b.xsize, b.a64, b.a16,
         b.out + start * b.osize, stop - start, b.stream)


cdef void _run_chunk_in_env(Block *b, Py_ssize_t c, const fenv_t *caller) noexcept nogil:
    """Chunk ``c`` under the caller's floating-point environment (rounding,
    flush-to-zero, denormals-are-zero): an OpenMP worker keeps the mode it
    had when it started, not the one the caller has set since."""
    cdef fenv_t own
    if fl_omp_thread_num() == 0:  # the calling thread itself
        _run_chunks(b, c, c + 1)
        return
    fegetenv(&own)
    fesetenv(caller)
    _run_chunks(b, c, c + 1)
    fesetenv(&own)


# Chunks the pool hands out: this many bytes of the result each (a whole
# number of cache lines), set from ``config.POOL_CHUNK_BYTES``.
cdef Py_ssize_t _pool_chunk_bytes = 65536


# Results of this many bytes and more are written with streaming stores
# (``config.STREAM_MIN_BYTES``; 0: never).
cdef Py_ssize_t _stream_min_bytes = 0


def set_stream_min_bytes(Py_ssize_t nbytes):
    """The result size from which float32/float64 loops write with streaming
    stores (0: never); where the build has no streaming loops, ignored."""
    global _stream_min_bytes
    if nbytes < 0:
        raise ValueError(f"a size cannot be negative, got {nbytes}")
    _stream_min_bytes = nbytes


def set_pool_chunk_bytes(Py_ssize_t nbytes):
    """The size of the pieces the work-stealing pool hands out, in result bytes."""
    global _pool_chunk_bytes
    if nbytes < 64:
        raise ValueError(f"pool chunks must be at least 64 bytes, got {nbytes}")
    _pool_chunk_bytes = nbytes


cdef void _split(int op, Kind kind, char *gp, char *xp, double a64, uint16_t a16,
                 char *op_, Py_ssize_t n, Py_ssize_t gsize, Py_ssize_t xsize,
                 Py_ssize_t osize, int nthreads, fl_parallel_for_fn pool,
                 int runtime, bint stream_ok=False) noexcept:
    """Run the loop on up to ``nthreads`` threads (serially when 1); GIL
    released.  ``gsize``, ``xsize``, ``osize``: the arrays' item sizes.
    ``pool``: what runs a parallel call (NULL: this extension's OpenMP
    team), ``runtime``: its thread count.  ``stream_ok``: the result goes
    into memory the caller gave, apart from the inputs (not a fresh
    allocation, whose pages the kernel has just zeroed in cache, where
    streaming stores measured slower), so from ``_stream_min_bytes`` on it
    is written with streaming stores.

    On a pool the array is cut into chunks of ``_pool_chunk_bytes`` (that
    idle threads take, the caller included, on the work-stealing pool); on
    OpenMP, into one contiguous chunk per thread."""
    global _threads_started
    cdef Py_ssize_t c, nchunks
    cdef int team
    cdef fenv_t caller_env
    cdef Block b
    cdef bint stream = (stream_ok and FASTLEAKY_HAVE_STREAM
                        and 0 < _stream_min_bytes <= n * osize
                        and (kind == K_F32 or kind == K_F64))
    if (nthreads <= 1 or n < 2 * CHUNK_ALIGN or _serial_only
            or (pool == NULL and not FASTLEAKY_HAVE_OPENMP)):
        with nogil:
            _run(op, kind, gp, xp, a64, a16, op_, n, stream)
        return
    b.stream = stream
    b.op, b.kind, b.g, b.x, b.out, b.a64, b.a16 = op, kind, gp, xp, op_, a64, a16
    b.gsize, b.xsize, b.osize, b.n = gsize, xsize, osize, n
    if pool != NULL:
        b.chunk = max(CHUNK_ALIGN, (_pool_chunk_bytes // osize) // CHUNK_ALIGN * CHUNK_ALIGN)
    else:
        b.chunk = _chunk(n, nthreads)
    nchunks = (n + b.chunk - 1) // b.chunk
    team = _reserve(nthreads, runtime)
    if team <= 1 or nchunks <= 1:
        with nogil:
            _run(op, kind, gp, xp, a64, a16, op_, n, stream)
        fl_in_flight_add(-team)
        return
    _threads_started = True
    if pool != NULL:
        with nogil:
            pool(_run_chunks, &b, nchunks, team)
    else:
        if team < nthreads:
            b.chunk = _chunk(n, team)
            nchunks = (n + b.chunk - 1) // b.chunk
        fegetenv(&caller_env)
        for c in prange(nchunks, nogil=True, num_threads=team, schedule="static"):
            _run_chunk_in_env(&b, c, &caller_env)
    fl_in_flight_add(-team)


# The operation numbers of the C tables, by name (``fastleaky.ops`` must agree).
OP_CODES = {fl_op_names[i].decode(): i for i in range(FL_NUM_OPS)}


cdef int _threads_for(int nthreads, int runtime) noexcept:
    """``threads.for_call``'s answer as a thread count: 0 is the runtime's
    own count; a cap above it is the runtime's count (no oversubscription)."""
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
    cdef Kind kind
    cdef double a64 = 0.0
    cdef uint16_t a16 = 0
    cdef Py_ssize_t itemsize = cnp.PyArray_ITEMSIZE(out)
    if op < 0 or op >= FL_NUM_OPS:
        raise ValueError(f"unknown operation code {op}")
    if typenum == cnp.NPY_FLOAT16:
        kind = K_F16
        a16 = alpha.view("uint16")
    else:
        kind = K_F32 if typenum == cnp.NPY_FLOAT32 else K_F64
        a64 = alpha
    cdef fl_parallel_for_fn pool = _host_pool(cnp.PyArray_NBYTES(out))
    cdef int runtime = _runtime_of(pool)
    _split(op, kind, <char *>cnp.PyArray_DATA(g), <char *>cnp.PyArray_DATA(x), a64, a16,
           <char *>cnp.PyArray_DATA(out), cnp.PyArray_SIZE(out), itemsize, itemsize, itemsize,
           1 if nthreads == 1 else _threads_for(nthreads, runtime), pool, runtime)


# ---- the plain-call fast path ---------------------------------------------
# The common call spends more time in Python checks than a small array spends
# in the loop, and at large sizes they are still a measurable share of a
# threaded call.  ``plain_call`` does the checks of ``boundary.plain_out`` in
# C for the one case it can prove simple -- exact ndarrays, C-contiguous and aligned,
# native float16, float32 or float64 (and backward's float16/float32 mixes,
# computed in float32 as NumPy promotes them, without a converted copy), a
# Python-float alpha finite in the result dtype, no out or a contiguous out
# that is x itself or disjoint from the inputs -- picks the thread count by
# the rules of ``threads.for_call`` and runs the loop.  For anything else it
# returns NotImplemented and the caller takes the general path (same bits).

from cpython.contextvars cimport get_value
from cpython.float cimport PyFloat_CheckExact, PyFloat_AS_DOUBLE
from libc.float cimport FLT_MAX
from libc.math cimport isfinite
from libc.stdlib cimport getenv

cdef Py_ssize_t _parallel_min_f16 = 0
cdef Py_ssize_t _parallel_min_f32 = 0
cdef Py_ssize_t _parallel_min_f64 = 0
cdef object _limit_var = None  # fastleaky.threads' context variable
cdef bytes _env_threads = b""  # the environment variable that caps threads


def set_plain_call_config(Py_ssize_t parallel_min_f16, Py_ssize_t parallel_min_f32,
                          Py_ssize_t parallel_min_f64, limit_var, str env_threads):
    """Sizes from which ``plain_call`` uses threads (per result dtype), and
    where the thread cap lives."""
    global _parallel_min_f16, _parallel_min_f32, _parallel_min_f64, _limit_var, _env_threads
    _parallel_min_f16 = parallel_min_f16
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


cdef int _thread_count(int runtime):
    """fastleaky.threads.get(runtime) in C, or -1 when Python must decide
    (an environment value that is not a whole number >= 1: the general path
    raises the error saying so)."""
    cdef long cap = 0
    cdef char *text
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


cdef inline int _threads_for_size(Py_ssize_t n, Py_ssize_t minimum, int runtime):
    """The fast entries' thread choice: serial below the dtype's threshold,
    else ``_thread_count(runtime)`` (-1: Python must decide)."""
    return 1 if n < minimum else _thread_count(runtime)


def plain_call_threads():
    """Threads ``plain_call`` would use now for a parallel-size array (-1: it defers)."""
    return _thread_count(fl_max_threads())


def plain_call(int op, object g, object x, object alpha, object out):
    """op: the operation number (g ignored unless backward)."""
    cdef cnp.ndarray xa, ga, oa
    cdef int xtype, gtype, otype, nthreads, runtime
    cdef fl_parallel_for_fn pool
    cdef Kind kind
    cdef double a
    cdef uint16_t a16 = 0
    cdef Py_ssize_t n, minimum
    if op < 0 or op >= FL_NUM_OPS:
        return NotImplemented
    if not cnp.PyArray_CheckExact(x) or not PyFloat_CheckExact(alpha):
        return NotImplemented
    xa = <cnp.ndarray>x
    xtype = gtype = cnp.PyArray_TYPE(xa)
    if op == FL_BACKWARD:
        if not cnp.PyArray_CheckExact(g):
            return NotImplemented
        gtype = cnp.PyArray_TYPE(<cnp.ndarray>g)
    if gtype == xtype:
        otype = xtype
        if xtype == cnp.NPY_FLOAT32:
            kind, minimum = K_F32, _parallel_min_f32
        elif xtype == cnp.NPY_FLOAT64:
            kind, minimum = K_F64, _parallel_min_f64
        elif xtype == cnp.NPY_FLOAT16 and FASTLEAKY_HAVE_FLOAT16:
            kind, minimum = K_F16, _parallel_min_f16
        else:
            return NotImplemented
    elif FASTLEAKY_HAVE_FLOAT16 and gtype == cnp.NPY_FLOAT16 and xtype == cnp.NPY_FLOAT32:
        kind, otype, minimum = K_G16_X32, cnp.NPY_FLOAT32, _parallel_min_f32
    elif FASTLEAKY_HAVE_FLOAT16 and gtype == cnp.NPY_FLOAT32 and xtype == cnp.NPY_FLOAT16:
        kind, otype, minimum = K_G32_X16, cnp.NPY_FLOAT32, _parallel_min_f32
    else:
        return NotImplemented
    # alpha in the result dtype: a C double cast to float rounds like NumPy's
    # float64 -> float32 cast; to half, fl_double_to_half_bits rounds once,
    # like NumPy's float64 -> float16.  Overflow: the general path raises.
    a = PyFloat_AS_DOUBLE(alpha)
    if otype == cnp.NPY_FLOAT32:
        if not (-FLT_MAX <= a <= FLT_MAX):
            return NotImplemented
    elif otype == cnp.NPY_FLOAT64:
        if not isfinite(a):
            return NotImplemented
    else:
        a16 = fl_double_to_half_bits(a)
        if not FL_H_FINITE(a16):
            return NotImplemented
    n = cnp.PyArray_SIZE(xa)
    if not _plain(x, xtype):
        return NotImplemented
    ga = xa
    if op == FL_BACKWARD:
        if not _plain(g, gtype) or not cnp.PyArray_SAMESHAPE(<cnp.ndarray>g, xa):
            return NotImplemented
        ga = <cnp.ndarray>g
    if out is not None:
        if not _plain(out, otype) or not cnp.PyArray_SAMESHAPE(<cnp.ndarray>out, xa):
            return NotImplemented
        oa = <cnp.ndarray>out
        if not cnp.PyArray_ISWRITEABLE(oa):
            return NotImplemented
        if oa is not xa and not _disjoint(oa, xa):
            return NotImplemented
        if op == FL_BACKWARD and oa is not ga and not _disjoint(oa, ga):
            return NotImplemented
    pool = fl_pool
    if n >= minimum:  # a parallel size
        pool = _host_pool(n * (4 if otype == cnp.NPY_FLOAT32 else 8 if otype == cnp.NPY_FLOAT64 else 2))
    runtime = _runtime_of(pool)
    nthreads = _threads_for_size(n, minimum, runtime)
    if nthreads < 0:
        return NotImplemented
    if out is None:
        oa = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(xa), cnp.PyArray_DIMS(xa), otype, 0)
    _split(op, kind, <char *>cnp.PyArray_DATA(ga), <char *>cnp.PyArray_DATA(xa), a, a16,
           <char *>cnp.PyArray_DATA(oa), n, cnp.PyArray_ITEMSIZE(ga), cnp.PyArray_ITEMSIZE(xa),
           cnp.PyArray_ITEMSIZE(oa), nthreads, pool, runtime,
           out is not None and oa is not xa and oa is not ga)
    return oa


# ---- the raw-pointer entry (tensors) ----------------------------------------
# For callers that hold memory NumPy does not describe (a torch tensor's data
# pointer): no ndarray is built, so a small call costs a few hundred
# nanoseconds instead of the microseconds of ``numpy()`` views.  The caller
# guarantees what ``run`` requires (contiguous, native order, n elements of
# one dtype each, ``out`` either ``x`` / ``g`` itself or disjoint from them).

cdef int _pointer_run(int op, char *g, char *x, double alpha, char *out, Py_ssize_t n,
                      int typenum, bint stream_ok) except -1:
    """``pointer_call``'s work: 0 when done, 1 when Python must decide."""
    cdef Kind kind
    cdef uint16_t a16 = 0
    cdef Py_ssize_t minimum, itemsize
    cdef int nthreads, runtime
    cdef fl_parallel_for_fn pool = fl_pool
    if op < 0 or op >= FL_NUM_OPS:
        raise ValueError(f"unknown operation code {op}")
    if n < 0:
        raise ValueError(f"negative element count {n}")
    if typenum == cnp.NPY_FLOAT32:
        kind, minimum, itemsize = K_F32, _parallel_min_f32, 4
    elif typenum == cnp.NPY_FLOAT64:
        kind, minimum, itemsize = K_F64, _parallel_min_f64, 8
    elif typenum == cnp.NPY_FLOAT16 and FASTLEAKY_HAVE_FLOAT16:
        kind, minimum, itemsize = K_F16, _parallel_min_f16, 2
        a16 = fl_double_to_half_bits(alpha)
    else:
        raise TypeError(f"no compiled loop for NumPy type number {typenum}")
    if n == 0:
        return 0
    if fl_team_parallel != NULL:
        pool, runtime = fl_team_parallel_for, fl_team_threads()
    else:
        runtime = fl_max_threads()
    nthreads = _threads_for_size(n, minimum, runtime)
    if nthreads < 0:
        return 1
    _split(op, kind, g, x, alpha, a16, out, n,
           itemsize, itemsize, itemsize, nthreads, pool, runtime, stream_ok)
    return 0


cdef int _thread_cap_error() except -1:
    """Raise the error ``threads.limit`` raises for an invalid thread cap in
    the environment, the one reason ``_pointer_run`` leaves a call to Python."""
    from .. import threads
    threads.limit()
    raise AssertionError("a raw-pointer call deferred for a reason threads.limit accepts")


def pointer_call(int op, size_t g, size_t x, double alpha, size_t out, Py_ssize_t n,
                 int typenum, bint stream_ok=False):
    """The kernel of ``op`` on ``n`` elements at raw addresses, threads as
    ``plain_call`` picks them (serial below the dtype's threshold, else the
    runtime's count capped by ``thread_limit`` / the environment).

    ``typenum``: NumPy's number of float16, float32 or float64 (one dtype
    for every array); ``alpha`` is cast to it (rounded once).  An invalid
    thread cap in the environment raises the error ``threads.limit`` raises.
    ``stream_ok``: ``out`` is the caller's memory, apart from the inputs
    (large results may then be written with streaming stores).
    """
    if _pointer_run(op, <char *>g, <char *>x, alpha, <char *>out, n, typenum, stream_ok):
        _thread_cap_error()


# The same entry for compiled callers (the PyTorch autograd node), callable
# without the GIL: a serial-size call runs at once; a parallel-size one takes
# the GIL (the thread cap is a context variable).  Returns 0, or -1 with a
# Python exception set (an invalid thread cap in the environment raises the
# error ``threads.limit`` raises).
cdef int _tensor_call_with_gil(int op, const void *g, const void *x, double alpha, void *out,
                               Py_ssize_t n, int typenum) except -1 with gil:
    if _pointer_run(op, <char *>g, <char *>x, alpha, <char *>out, n, typenum, False):
        _thread_cap_error()
    return 0


cdef int _tensor_call(int op, const void *g, const void *x, double alpha, void *out,
                      Py_ssize_t n, int typenum) except -1 nogil:
    if 0 <= op < FL_NUM_OPS and n >= 0:
        if typenum == cnp.NPY_FLOAT32 and n < _parallel_min_f32:
            _run(op, K_F32, <char *>g, <char *>x, alpha, 0, <char *>out, n)
            return 0
        if typenum == cnp.NPY_FLOAT64 and n < _parallel_min_f64:
            _run(op, K_F64, <char *>g, <char *>x, alpha, 0, <char *>out, n)
            return 0
    return _tensor_call_with_gil(op, g, x, alpha, out, n, typenum)


def tensor_call_capsule():
    """``_tensor_call`` as a capsule named "fastleaky.tensor_call": ``int
    f(int op, const void *g, const void *x, double alpha, void *out,
    Py_ssize_t n, int typenum)``."""
    return PyCapsule_New(<void *>_tensor_call, b"fastleaky.tensor_call", NULL)
