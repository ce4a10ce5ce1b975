/* The LeakyReLU loops of the Cython backend, written in C so that each one
 * is compiled for several instruction sets and the best is picked when the
 * extension loads (GCC/Clang `target_clones`, resolved through an ifunc).
 *
 * Why: a build without -march=native is otherwise limited to SSE2 (4 float32
 * lanes), and wheels cannot assume AVX2/AVX-512.  The loops are plain selects
 * `v > 0 ? v : v * a`; with -fno-trapping-math (setup.py) the compiler turns
 * them into compare + blend (or AVX-512 masked multiplies), which makes them
 * immune to branch mispredictions on random signs.
 *
 * The kernels trust their caller: contiguous arrays of n elements, x and out
 * either identical or not overlapping.
 *
 * Plain stores, at every size.  Non-temporal (streaming) stores, which skip
 * the read-for-ownership of each written line, were tried for large arrays
 * (blocks computed into an L1 buffer, then written with _mm_stream_ps/pd)
 * and lost at nearly every size (docs/design-measurements.md).
 */
#ifndef FASTLEAKY_SELECT_H
#define FASTLEAKY_SELECT_H

#include <stddef.h>
#include <string.h>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(_M_X64)) && defined(__linux__) \
    && !defined(FASTLEAKY_NO_CLONES)
#  define FL_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#  define FASTLEAKY_ISA_DISPATCH 1
#else
#  define FL_CLONES
#  define FASTLEAKY_ISA_DISPATCH 0
#endif

/* float16: native arithmetic through _Float16 where the compiler has it
 * (GCC >= 12, Clang >= 15 on x86-64/aarch64).  The product of two halves is
 * exact in float, so `(_Float16)((float)v * (float)a)` is rounded once, the
 * same as NumPy's half multiply: bit-exact with the reference. */
#if defined(__FLT16_MAX__) && !defined(FASTLEAKY_NO_FLOAT16)
#  define FASTLEAKY_HAVE_FLOAT16 1
typedef _Float16 fl_half;
#else
#  define FASTLEAKY_HAVE_FLOAT16 0
typedef unsigned short fl_half; /* placeholder; the loops below are not built */
#endif

/* The operations, as data: one element of each, with g the grad_output
 * element, v the x element and a alpha (all of the loop's type).  The list
 * order is the operation number (``fastleaky.ops.Op.code``; a test holds
 * them together).  A unary operation never evaluates g. */
#define FL_ELEMENT_forward(g, v, a) ((v) > 0 ? (v) : (v) * (a))
#define FL_ELEMENT_grad(g, v, a) ((v) > 0 ? 1 : (a))
#define FL_ELEMENT_backward(g, v, a) ((v) > 0 ? (g) : (g) * (a))
#define FL_OPS(X, ARG) X(forward, ARG) X(grad, ARG) X(backward, ARG)

/* One loop per operation and type, all with one signature so that a table
 * indexed by the operation number dispatches them. */
#define FL_LOOP(OP, SUFFIX, T)                                                    \
    FL_CLONES static void fl_##OP##_##SUFFIX(const T *g, const T *x, T a, T *out,  \
                                             ptrdiff_t n)                         \
    {                                                                             \
        (void)g;                                                                  \
        for (ptrdiff_t i = 0; i < n; i++) {                                       \
            out[i] = (T)FL_ELEMENT_##OP(g[i], x[i], a);                           \
        }                                                                         \
    }
#define FL_LOOP_F32(OP, UNUSED) FL_LOOP(OP, f32, float)
#define FL_LOOP_F64(OP, UNUSED) FL_LOOP(OP, f64, double)
#define FL_ENTRY(OP, SUFFIX) fl_##OP##_##SUFFIX,
#define FL_NAME(OP, UNUSED) #OP,

FL_OPS(FL_LOOP_F32, 0)
FL_OPS(FL_LOOP_F64, 0)

typedef void (*fl_loop_f32)(const float *, const float *, float, float *, ptrdiff_t);
typedef void (*fl_loop_f64)(const double *, const double *, double, double *, ptrdiff_t);
static const fl_loop_f32 fl_loops_f32[] = {FL_OPS(FL_ENTRY, f32)};
static const fl_loop_f64 fl_loops_f64[] = {FL_OPS(FL_ENTRY, f64)};
static const char *const fl_op_names[] = {FL_OPS(FL_NAME, 0)};
#define FL_NUM_OPS ((int)(sizeof fl_op_names / sizeof fl_op_names[0]))
enum { FL_BACKWARD = 2 }; /* the one operation with two inputs */

#if FASTLEAKY_HAVE_FLOAT16
/* Half loops widen a block to float, run the float select, and narrow back.
 * Each product of two halves is exact in float and is rounded once on the
 * way back, as NumPy's half multiply does: bit-exact with the reference.
 * Written element by element, GCC keeps a scalar loop with a branch; in
 * blocks, the float select vectorizes and
 * the conversions use F16C where the CPU has it. */
#define FL_HALF_BLOCK 512
static void fl_widen_generic(const _Float16 *h, float *f, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++) f[i] = (float)h[i];
}
static void fl_narrow_generic(const float *f, _Float16 *h, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++) h[i] = (_Float16)f[i];
}
#if defined(__GNUC__) && defined(__x86_64__)
/* GCC 12 does not vectorize _Float16 conversions; F16C does 8 at a time
 * (round to nearest even, NaN payloads kept: the same bits as NumPy). */
#include <immintrin.h>
__attribute__((target("avx,f16c"))) static void fl_widen_f16c(const _Float16 *h, float *f,
                                                               ptrdiff_t n)
{
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(f + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    for (; i < n; i++) f[i] = (float)h[i];
}
__attribute__((target("avx,f16c"))) static void fl_narrow_f16c(const float *f, _Float16 *h,
                                                                ptrdiff_t n)
{
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(h + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(f + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) h[i] = (_Float16)f[i];
}
static int fl_has_f16c(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
    }
    return cached;
}
#define fl_widen(h, f, n) (fl_has_f16c() ? fl_widen_f16c(h, f, n) : fl_widen_generic(h, f, n))
#define fl_narrow(f, h, n) (fl_has_f16c() ? fl_narrow_f16c(f, h, n) : fl_narrow_generic(f, h, n))
#else
#define fl_widen fl_widen_generic
#define fl_narrow fl_narrow_generic
#endif
/* A unary half loop: each block widened, run through the float loop ``f32``
 * in place, narrowed back.  (One indirect call per 512 elements.) */
static void fl_unary_f16(fl_loop_f32 f32, const _Float16 *x, _Float16 a, _Float16 *out,
                         ptrdiff_t n)
{
    float buf[FL_HALF_BLOCK];
    for (ptrdiff_t i = 0; i < n; i += FL_HALF_BLOCK) {
        ptrdiff_t m = n - i < FL_HALF_BLOCK ? n - i : FL_HALF_BLOCK;
        fl_widen(x + i, buf, m);
        f32(NULL, buf, (float)a, buf, m);
        fl_narrow(buf, out + i, m);
    }
}
/* Where x > 0 the backward pass returns grad_output itself; copying its
 * 16 bits (rather than widening and narrowing it) keeps a signaling NaN
 * signaling, as NumPy's select does (F16C conversions quiet it). */
static void fl_select_bits_f16(const float *xf, const _Float16 *g, const _Float16 *p,
                               _Float16 *out, ptrdiff_t m)
{
    for (ptrdiff_t j = 0; j < m; j++) {
        unsigned short gb, pb, r;
        memcpy(&gb, g + j, sizeof gb);
        memcpy(&pb, p + j, sizeof pb);
        r = xf[j] > 0.0f ? gb : pb;
        memcpy(out + j, &r, sizeof r);
    }
}
static void fl_backward_f16(const _Float16 *g, const _Float16 *x, _Float16 a,
                            _Float16 *out, ptrdiff_t n)
{
    float gbuf[FL_HALF_BLOCK], xbuf[FL_HALF_BLOCK];
    _Float16 prod[FL_HALF_BLOCK];
    float af = (float)a;
    for (ptrdiff_t i = 0; i < n; i += FL_HALF_BLOCK) {
        ptrdiff_t m = n - i < FL_HALF_BLOCK ? n - i : FL_HALF_BLOCK;
        fl_widen(g + i, gbuf, m);
        fl_widen(x + i, xbuf, m);
        for (ptrdiff_t j = 0; j < m; j++) gbuf[j] *= af;
        fl_narrow(gbuf, prod, m);
        fl_select_bits_f16(xbuf, g + i, prod, out + i, m);
    }
}
/* Operation ``op`` on half arrays: the binary one has its own loop, every
 * unary one goes through its float loop. */
static void fl_run_f16(int op, const _Float16 *g, const _Float16 *x, _Float16 a,
                       _Float16 *out, ptrdiff_t n)
{
    if (op == FL_BACKWARD)
        fl_backward_f16(g, x, a, out, n);
    else
        fl_unary_f16(fl_loops_f32[op], x, a, out, n);
}
#else
static void fl_run_f16(int op, const fl_half *g, const fl_half *x, fl_half a, fl_half *out,
                       ptrdiff_t n) {}
#endif

#endif
