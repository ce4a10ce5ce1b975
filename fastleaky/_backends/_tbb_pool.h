/* Work-stealing parallel loops for the C loops of _cython_loop, on oneTBB.
 *
 * Why TBB and not an OpenMP fork-join team: a static OpenMP team waits at
 * its closing barrier for its slowest thread, and on a machine with other
 * work a descheduled helper costs a whole time slice (a 1e6-element call
 * 30-90x slower than its median).  Under TBB the calling thread takes part
 * in the work and a helper joins only when it actually runs, so a helper
 * that is not scheduled leaves its share to the caller instead of stalling
 * it (docs/design-measurements.md has the figures).
 *
 * fl_tbb_parallel_for(body, ctx, nchunks, nthreads) calls
 * body(ctx, lo, hi) over chunk ranges covering [0, nchunks), each chunk once,
 * on at most nthreads threads (the caller included), with the caller's
 * floating-point mode (rounding, flush-to-zero, denormals-are-zero) in
 * every thread.  It returns when every chunk is done.  Should TBB fail
 * (no threads can be started), the chunks it did not run are run on the
 * calling thread: each chunk runs exactly once, which matters for in-place
 * calls (out == x).
 */
#ifndef FASTLEAKY_TBB_POOL_H
#define FASTLEAKY_TBB_POOL_H

#include <Python.h>

#include <memory>
#include <mutex>
#include <new>

#include <tbb/blocked_range.h>
#include <tbb/info.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>
#include <tbb/version.h>

typedef void (*fl_chunk_body)(void *ctx, Py_ssize_t lo, Py_ssize_t hi);

/* Arenas for a team smaller than the machine (thread_limit(k), or cores
 * taken by other calls in flight): one per size, made on first use and
 * kept for the life of the process (an arena is cheap to keep, costly to
 * make per call). */
#define FL_TBB_MAX_ARENAS 1024
static tbb::task_arena *fl_tbb_arenas[FL_TBB_MAX_ARENAS + 1];
static std::mutex fl_tbb_arenas_lock;

static int fl_tbb_concurrency(void) { return tbb::info::default_concurrency(); }

static const char *fl_tbb_version(void) { return TBB_runtime_version(); }

static tbb::task_arena *fl_tbb_arena(int nthreads) {
    std::lock_guard<std::mutex> hold(fl_tbb_arenas_lock);
    if (fl_tbb_arenas[nthreads] == nullptr) {
        auto arena = std::make_unique<tbb::task_arena>(nthreads);
        arena->initialize();
        fl_tbb_arenas[nthreads] = arena.release();
    }
    return fl_tbb_arenas[nthreads];
}

static int fl_tbb_parallel_for(fl_chunk_body body, void *ctx, Py_ssize_t nchunks,
                               int nthreads) noexcept {
    std::unique_ptr<unsigned char[]> done;
    try {
        done.reset(new unsigned char[nchunks]());
        unsigned char *flags = done.get();
        /* fp_settings: the context captures the calling thread's FP control
         * state now and every task of the loop runs under it. */
        tbb::task_group_context group(tbb::task_group_context::bound,
                                      tbb::task_group_context::default_traits |
                                          tbb::task_group_context::fp_settings);
        auto loop = [&] {
            tbb::parallel_for(
                tbb::blocked_range<Py_ssize_t>(0, nchunks, 1),
                [=](const tbb::blocked_range<Py_ssize_t> &r) {
                    body(ctx, r.begin(), r.end());
                    for (Py_ssize_t c = r.begin(); c < r.end(); c++) flags[c] = 1;
                },
                tbb::auto_partitioner(), group);
        };
        if (nthreads >= fl_tbb_concurrency() || nthreads > FL_TBB_MAX_ARENAS)
            loop();
        else
            fl_tbb_arena(nthreads)->execute(loop);
        return 0;
    } catch (...) {
        /* parallel_for has waited for every task it started: the chunks
         * not marked done were never started. */
        if (!done) {
            body(ctx, 0, nchunks);
        } else {
            for (Py_ssize_t c = 0; c < nchunks; c++)
                if (!done[c]) body(ctx, c, c + 1);
        }
        return -1;
    }
}

#endif
