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

/* float16 loops where the compiler has C's _Float16 (GCC >= 12, Clang >= 15
 * on x86-64/aarch64), for its conversions in the portable loop and for
 * alpha; the float16 section below says why they are bit-exact. */
#if defined(__FLT16_MAX__) && !defined(FASTLEAKY_NO_FLOAT16)
#  define FASTLEAKY_HAVE_FLOAT16 1
#else
#  define FASTLEAKY_HAVE_FLOAT16 0
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
enum { FL_FORWARD = 0, FL_GRAD = 1, FL_BACKWARD = 2 }; /* backward: the one with two inputs */

/* ---- streaming stores for arrays far larger than the caches -------------
 * The same loops writing with non-temporal stores, which skip the read of
 * each output line that a plain store does first: for outputs well beyond
 * what the caches hold, one of three memory streams less.  Below that they
 * lose (the output would have stayed in cache, and the next reader finds it
 * in memory instead), so the caller uses them only from a size
 * (``config.STREAM_MIN_BYTES``; docs/design-measurements.md has the
 * crossover).  x86-64 only: SSE2's 16-byte streaming stores, four to a
 * line so that each line leaves the write-combining buffer whole; the
 * element expressions are SSE2 selects with the same bits as the scalar
 * ones (v > 0 is an ordered compare: NaN and both zeros take the multiply,
 * which is one IEEE multiply either way).  The head is written with plain
 * stores up to out's first 64-byte boundary, the tail after its last.
 * Each loop ends with a store fence, so its writes are visible before the
 * thread reports the work done. */
#if (defined(__x86_64__) || defined(_M_X64)) && !defined(FASTLEAKY_NO_STREAM)
#  define FASTLEAKY_HAVE_STREAM 1
#  include <emmintrin.h>
#  include <stdint.h>

#  define FL_SEL_ps(m, p, q) _mm_or_ps(_mm_and_ps(m, p), _mm_andnot_ps(m, q))
#  define FL_SEL_pd(m, p, q) _mm_or_pd(_mm_and_pd(m, p), _mm_andnot_pd(m, q))
#  define FL_POS(S, v) _mm_cmpgt_##S(v, _mm_setzero_##S())
/* One vector of each operation; gp points at grad_output's lanes (read by
 * backward only), v holds x's lanes, va alpha in every lane. */
#  define FL_VEC_forward(S, gp, v, va) FL_SEL_##S(FL_POS(S, v), v, _mm_mul_##S(v, va))
#  define FL_VEC_grad(S, gp, v, va) FL_SEL_##S(FL_POS(S, v), _mm_set1_##S(1), va)
#  define FL_VEC_backward(S, gp, v, va) \
    FL_SEL_##S(FL_POS(S, v), _mm_loadu_##S(gp), _mm_mul_##S(_mm_loadu_##S(gp), va))

#  define FL_STREAM_LOOP(OP, SUFFIX, T, S, VT, LANES)                                   \
    FL_CLONES static void fl_##OP##_##SUFFIX##_stream(const T *g, const T *x, T a,      \
                                                      T *out, ptrdiff_t n)              \
    {                                                                                   \
        const VT va = _mm_set1_##S(a);                                                  \
        ptrdiff_t i = 0, k;                                                             \
        (void)g;                                                                        \
        (void)va;                                                                       \
        for (; i < n && ((uintptr_t)(out + i) & 63) != 0; i++)                          \
            out[i] = (T)FL_ELEMENT_##OP(g[i], x[i], a);                                 \
        for (; i + 4 * (LANES) <= n; i += 4 * (LANES)) {                                \
            for (k = 0; k < 4 * (LANES); k += (LANES)) {                                \
                VT v = _mm_loadu_##S(x + i + k);                                        \
                _mm_stream_##S(out + i + k, FL_VEC_##OP(S, g + i + k, v, va));          \
            }                                                                           \
        }                                                                               \
        for (; i < n; i++)                                                              \
            out[i] = (T)FL_ELEMENT_##OP(g[i], x[i], a);                                 \
        _mm_sfence();                                                                   \
    }
#  define FL_STREAM_F32(OP, UNUSED) FL_STREAM_LOOP(OP, f32, float, ps, __m128, 4)
#  define FL_STREAM_F64(OP, UNUSED) FL_STREAM_LOOP(OP, f64, double, pd, __m128d, 2)
#  define FL_STREAM_ENTRY(OP, SUFFIX) fl_##OP##_##SUFFIX##_stream,
FL_OPS(FL_STREAM_F32, 0)
FL_OPS(FL_STREAM_F64, 0)
static const fl_loop_f32 fl_stream_f32[] = {FL_OPS(FL_STREAM_ENTRY, f32)};
static const fl_loop_f64 fl_stream_f64[] = {FL_OPS(FL_STREAM_ENTRY, f64)};
#else
#  define FASTLEAKY_HAVE_STREAM 0
/* No streaming loops: the plain ones in their place. */
static const fl_loop_f32 *const fl_stream_f32 = fl_loops_f32;
static const fl_loop_f64 *const fl_stream_f64 = fl_loops_f64;
#endif

#if FASTLEAKY_HAVE_FLOAT16
/* ---- float16 ---------------------------------------------------------
 * Half values cross as their 16-bit patterns.  Every half loop is one select:
 *
 *     out = x > 0 ? v : round_half(v * a)
 *
 * with v = x (forward) or grad_output (backward); the gradient needs no
 * arithmetic at all.  Why this is bit-exact with NumPy's half arithmetic:
 * the product of two halves is exact in float (11-bit significands, and
 * 2**-48 is far above float's smallest normal), so rounding it once to half,
 * to nearest even, is what NumPy's half multiply gives, and what a native
 * half multiply (AVX512-FP16 `vmulph`) gives.  NaN takes the multiply
 * branch, which quiets it and keeps its payload on every path.  The branch
 * x > 0 copies v's 16 bits, so a signalling NaN in grad_output stays
 * signalling there, as NumPy's select keeps it.
 *
 * x > 0 is decided on the bits: as a signed 16-bit integer, 0 < x <= 0x7c00
 * (+inf); zeros, negatives and NaNs fail, as the float compare does.
 *
 * Loops, one per instruction set, the best the CPU has picked at load time
 * (fl_half_init); all convert, multiply and narrow in registers:
 *   avx512fp16  native half multiply, 32 lanes, masked tail
 *   avx512      vcvtph2ps / vcvtps2ph on 16 floats, 32 lanes, masked tail
 *   f16c        AVX2 + F16C, 16 lanes; the tail through a 16-lane buffer
 *   generic     one element at a time through C's _Float16 conversions
 */
#include <stdint.h>

typedef void (*fl_loop_h)(const uint16_t *v, const uint16_t *x, uint16_t a, uint16_t *out,
                          ptrdiff_t n);
typedef void (*fl_loop_mixed)(const void *g, const void *x, float a, float *out, ptrdiff_t n);

#define FL_H_ONE 0x3c00
#define FL_H_POSITIVE(h) ((int16_t)(h) > 0 && (int16_t)(h) <= 0x7c00)

static inline float fl_h2f(uint16_t h)
{
    _Float16 v;
    memcpy(&v, &h, sizeof v);
    return (float)v;
}
static inline uint16_t fl_f2h(float f)
{
    _Float16 v = (_Float16)f;
    uint16_t h;
    memcpy(&h, &v, sizeof h);
    return h;
}
/* alpha for a half call: a double rounded once to half, to nearest even, as
 * NumPy casts a Python float (a cast through float would round twice). */
static inline uint16_t fl_double_to_half_bits(double d)
{
    _Float16 v = (_Float16)d;
    uint16_t h;
    memcpy(&h, &v, sizeof h);
    return h;
}
#define FL_H_FINITE(h) (((h) & 0x7c00) != 0x7c00)

/* The half widened to float as NumPy casts it: exact, and a NaN keeps its
 * sign and payload and stays signalling if it was (F16C and C's _Float16
 * conversion quiet it). */
static inline uint32_t fl_h2f_bits_exact(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = h & 0x7c00, sig = h & 0x03ff;
    if (exp == 0x7c00)
        return sign | 0x7f800000u | (sig << 13);
    if (exp == 0) {
        if (sig == 0)
            return sign;
        /* subnormal: normalise */
        int shift = 0;
        while (!(sig & 0x0400)) {
            sig <<= 1;
            shift++;
        }
        return sign | ((uint32_t)(113 - shift) << 23) | ((sig & 0x03ff) << 13);
    }
    return sign | ((exp >> 10) + 112u) << 23 | (sig << 13);
}

/* grad: x > 0 ? 1 : a, integers only; cloned like the float loops. */
FL_CLONES static void fl_h_grad(const uint16_t *v, const uint16_t *x, uint16_t a, uint16_t *out,
                                ptrdiff_t n)
{
    (void)v;
    for (ptrdiff_t i = 0; i < n; i++)
        out[i] = FL_H_POSITIVE(x[i]) ? FL_H_ONE : a;
}

static void fl_h_select_generic(const uint16_t *v, const uint16_t *x, uint16_t a, uint16_t *out,
                                ptrdiff_t n)
{
    float af = fl_h2f(a);
    for (ptrdiff_t i = 0; i < n; i++) {
        uint16_t vi = v[i];
        out[i] = FL_H_POSITIVE(x[i]) ? vi : fl_f2h(fl_h2f(vi) * af);
    }
}

/* backward with float32 grad_output and half x (result float32): no
 * conversion at all, the x > 0 test on the bits. */
FL_CLONES static void fl_g32x16(const void *g_, const void *x_, float a, float *out, ptrdiff_t n)
{
    const float *g = (const float *)g_;
    const uint16_t *x = (const uint16_t *)x_;
    for (ptrdiff_t i = 0; i < n; i++)
        out[i] = FL_H_POSITIVE(x[i]) ? g[i] : g[i] * a;
}

/* backward with half grad_output and float32 x (result float32): g widened
 * as NumPy widens it, then the float32 select. */
static void fl_g16x32_generic(const void *g_, const void *x_, float a, float *out, ptrdiff_t n)
{
    const uint16_t *g = (const uint16_t *)g_;
    const float *x = (const float *)x_;
    for (ptrdiff_t i = 0; i < n; i++) {
        uint32_t bits = fl_h2f_bits_exact(g[i]);
        float gf;
        memcpy(&gf, &bits, sizeof gf);
        out[i] = x[i] > 0 ? gf : gf * a;
    }
}

#define FL_H_GENERIC 0
#define FL_H_F16C 1
#define FL_H_AVX512 2
#define FL_H_AVX512FP16 3
#define FL_H_NUM_ISAS 4
static const char *const fl_h_isa_names[FL_H_NUM_ISAS] = {"generic", "f16c", "avx512",
                                                          "avx512fp16"};

#if defined(__GNUC__) && defined(__x86_64__) && !defined(FASTLEAKY_NO_CLONES)
#  define FL_H_X86 1
#  include <immintrin.h>
#  if (!defined(__clang__) && __GNUC__ >= 12) || (defined(__clang__) && __clang_major__ >= 16)
#    define FL_H_HAVE_FP16_INTRINSICS 1
#  else
#    define FL_H_HAVE_FP16_INTRINSICS 0
#  endif
#  define FL_RNE (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
/* Half elements before out's first ``align``-byte boundary: the vector loops
 * store whole aligned vectors (a store split across two cache lines costs
 * about two), and NumPy's large arrays start 16 bytes into a line. */
static inline ptrdiff_t fl_head(const void *out, size_t align, ptrdiff_t n)
{
    ptrdiff_t head = (ptrdiff_t)(((align - ((uintptr_t)out & (align - 1))) & (align - 1)) / 2);
    return head < n ? head : n;
}

#  define FL_TARGET_F16C __attribute__((target("avx2,f16c")))
/* 16 halves: x > 0 as a mask of 16-bit lanes, and v * a rounded to half. */
FL_TARGET_F16C static inline __m256i fl_h16_select_f16c(__m256i v, __m256i x, __m256 af)
{
    __m256 lo = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(v)), af);
    __m256 hi = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(v, 1)), af);
    __m256i prod = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm256_cvtps_ph(lo, FL_RNE)),
                                           _mm256_cvtps_ph(hi, FL_RNE), 1);
    __m256i positive = _mm256_and_si256(_mm256_cmpgt_epi16(x, _mm256_setzero_si256()),
                                        _mm256_cmpgt_epi16(_mm256_set1_epi16(0x7c01), x));
    return _mm256_blendv_epi8(prod, v, positive);
}
/* The first m (< 16) elements, through 16-lane buffers: the same
 * instructions, no access past the arrays. */
FL_TARGET_F16C static void fl_h_partial_f16c(const uint16_t *v, const uint16_t *x, __m256 af,
                                             uint16_t *out, ptrdiff_t m)
{
    uint16_t vb[16] = {0}, xb[16] = {0}, ob[16];
    size_t bytes = (size_t)m * sizeof *v;
    memcpy(vb, v, bytes);
    memcpy(xb, x, bytes);
    _mm256_storeu_si256((__m256i *)ob,
                        fl_h16_select_f16c(_mm256_loadu_si256((const __m256i *)vb),
                                           _mm256_loadu_si256((const __m256i *)xb), af));
    memcpy(out, ob, bytes);
}
FL_TARGET_F16C static void fl_h_select_f16c(const uint16_t *v, const uint16_t *x, uint16_t a,
                                            uint16_t *out, ptrdiff_t n)
{
    __m256 af = _mm256_set1_ps(fl_h2f(a));
    ptrdiff_t i = fl_head(out, 32, n);
    if (i > 0)
        fl_h_partial_f16c(v, x, af, out, i);
    for (; i + 16 <= n; i += 16) {
        __m256i r = fl_h16_select_f16c(_mm256_loadu_si256((const __m256i *)(v + i)),
                                       _mm256_loadu_si256((const __m256i *)(x + i)), af);
        _mm256_store_si256((__m256i *)(out + i), r);
    }
    if (i < n)
        fl_h_partial_f16c(v + i, x + i, af, out + i, n - i);
}
/* 8 halves widened as NumPy widens them: F16C sets a signalling NaN's quiet
 * bit (float bit 22); put the half's own quiet bit (bit 9) back. */
FL_TARGET_F16C static inline __m256 fl_h8_widen_exact_f16c(__m128i h)
{
    __m256 f = _mm256_cvtph_ps(h);
    __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(f, f, _CMP_UNORD_Q));
    __m256i quiet = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 13);
    __m256i clear = _mm256_andnot_si256(quiet, _mm256_and_si256(nan, _mm256_set1_epi32(0x00400000)));
    return _mm256_castsi256_ps(_mm256_xor_si256(_mm256_castps_si256(f), clear));
}
FL_TARGET_F16C static inline __m256 fl_g16x32_8_f16c(__m128i g, __m256 x, __m256 af)
{
    __m256 gf = fl_h8_widen_exact_f16c(g);
    return _mm256_blendv_ps(_mm256_mul_ps(gf, af), gf, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ));
}
FL_TARGET_F16C static void fl_g16x32_f16c(const void *g_, const void *x_, float a, float *out,
                                          ptrdiff_t n)
{
    const uint16_t *g = (const uint16_t *)g_;
    const float *x = (const float *)x_;
    __m256 af = _mm256_set1_ps(a);
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, fl_g16x32_8_f16c(_mm_loadu_si128((const __m128i *)(g + i)),
                                                   _mm256_loadu_ps(x + i), af));
    fl_g16x32_generic(g + i, x + i, a, out + i, n - i);
}

#  define FL_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))
FL_TARGET_AVX512 static inline __m512i fl_h32_select_avx512(__m512i v, __m512i x, __m512 af)
{
    __m512 lo = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(v)), af);
    __m512 hi = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_extracti64x4_epi64(v, 1)), af);
    __m512i prod = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtps_ph(lo, FL_RNE)),
                                      _mm512_cvtps_ph(hi, FL_RNE), 1);
    __mmask32 positive = _mm512_cmpgt_epi16_mask(x, _mm512_setzero_si512())
                         & _mm512_cmpgt_epi16_mask(_mm512_set1_epi16(0x7c01), x);
    return _mm512_mask_blend_epi16(positive, prod, v);
}
FL_TARGET_AVX512 static inline void fl_h_masked_avx512(const uint16_t *v, const uint16_t *x,
                                                       __m512 af, uint16_t *out, ptrdiff_t m)
{
    __mmask32 k = m >= 32 ? (__mmask32)~0u : (__mmask32)((1u << m) - 1);
    __m512i r = fl_h32_select_avx512(_mm512_maskz_loadu_epi16(k, v), _mm512_maskz_loadu_epi16(k, x), af);
    _mm512_mask_storeu_epi16(out, k, r);
}
FL_TARGET_AVX512 static void fl_h_select_avx512(const uint16_t *v, const uint16_t *x, uint16_t a,
                                                uint16_t *out, ptrdiff_t n)
{
    __m512 af = _mm512_set1_ps(fl_h2f(a));
    ptrdiff_t i = fl_head(out, 64, n);
    if (i > 0)
        fl_h_masked_avx512(v, x, af, out, i);
    for (; i + 32 <= n; i += 32)
        _mm512_store_si512(out + i, fl_h32_select_avx512(_mm512_loadu_si512(v + i),
                                                         _mm512_loadu_si512(x + i), af));
    if (i < n)
        fl_h_masked_avx512(v + i, x + i, af, out + i, n - i);
}

#  if FL_H_HAVE_FP16_INTRINSICS
#    define FL_TARGET_FP16 __attribute__((target("avx512fp16,avx512f,avx512bw,avx512vl")))
/* Native half arithmetic: `vmulph` rounds the exact product once, to
 * nearest even (AVX512-FP16 ignores MXCSR's DAZ/FTZ for halves, so
 * subnormals are kept as NumPy keeps them). */
FL_TARGET_FP16 static inline __m512h fl_h32_select_fp16(__m512h v, __m512h x, __m512h a)
{
    __mmask32 positive = _mm512_cmp_ph_mask(x, _mm512_setzero_ph(), _CMP_GT_OQ);
    return _mm512_mask_mul_ph(v, (__mmask32)~positive, v, a); /* positive lanes keep v's bits */
}
/* The first m (<= 32) elements from i, masked: lanes past them are neither
 * read nor written. */
FL_TARGET_FP16 static inline void fl_h_masked_fp16(const uint16_t *v, const uint16_t *x, __m512h a,
                                                   uint16_t *out, ptrdiff_t m)
{
    __mmask32 k = m >= 32 ? (__mmask32)~0u : (__mmask32)((1u << m) - 1);
    __m512h r = fl_h32_select_fp16(_mm512_castsi512_ph(_mm512_maskz_loadu_epi16(k, v)),
                                   _mm512_castsi512_ph(_mm512_maskz_loadu_epi16(k, x)), a);
    _mm512_mask_storeu_epi16(out, k, _mm512_castph_si512(r));
}
FL_TARGET_FP16 static void fl_h_select_fp16(const uint16_t *v, const uint16_t *x, uint16_t a,
                                            uint16_t *out, ptrdiff_t n)
{
    __m512h av = _mm512_castsi512_ph(_mm512_set1_epi16((short)a));
    ptrdiff_t i = fl_head(out, 64, n);
    if (i > 0)
        fl_h_masked_fp16(v, x, av, out, i);
    for (; i + 64 <= n; i += 64) {
        __m512h r0 = fl_h32_select_fp16(_mm512_loadu_ph(v + i), _mm512_loadu_ph(x + i), av);
        __m512h r1 = fl_h32_select_fp16(_mm512_loadu_ph(v + i + 32), _mm512_loadu_ph(x + i + 32), av);
        _mm512_store_ph(out + i, r0);
        _mm512_store_ph(out + i + 32, r1);
    }
    for (; i < n; i += 32)
        fl_h_masked_fp16(v + i, x + i, av, out + i, n - i);
}
#  endif

static int fl_h_cpu_has(int isa)
{
    __builtin_cpu_init();
    switch (isa) {
    case FL_H_GENERIC:
        return 1;
    case FL_H_F16C:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
    case FL_H_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
               && __builtin_cpu_supports("avx512vl");
#  if FL_H_HAVE_FP16_INTRINSICS
    case FL_H_AVX512FP16:
        return __builtin_cpu_supports("avx512fp16") && __builtin_cpu_supports("avx512bw")
               && __builtin_cpu_supports("avx512vl");
#  endif
    }
    return 0;
}
static const fl_loop_h fl_h_select_loops[FL_H_NUM_ISAS] = {
    fl_h_select_generic, fl_h_select_f16c, fl_h_select_avx512,
#  if FL_H_HAVE_FP16_INTRINSICS
    fl_h_select_fp16,
#  else
    NULL,
#  endif
};
#else
#  define FL_H_X86 0
static int fl_h_cpu_has(int isa) { return isa == FL_H_GENERIC; }
static const fl_loop_h fl_h_select_loops[FL_H_NUM_ISAS] = {fl_h_select_generic};
#endif

/* The loops in use; fl_half_init picks the best the CPU has, and tests may
 * pick a lesser one (fl_half_set_isa) to check each. */
static int fl_h_isa = FL_H_GENERIC;
static fl_loop_h fl_h_select = fl_h_select_generic;
static fl_loop_mixed fl_g16x32 = fl_g16x32_generic;

static int fl_half_set_isa(int isa)
{
    if (isa < 0 || isa >= FL_H_NUM_ISAS || !fl_h_cpu_has(isa) || !fl_h_select_loops[isa])
        return -1;
    fl_h_isa = isa;
    fl_h_select = fl_h_select_loops[isa];
#if FL_H_X86
    fl_g16x32 = isa == FL_H_GENERIC ? fl_g16x32_generic : fl_g16x32_f16c;
#endif
    return 0;
}
static void fl_half_init(void)
{
    for (int isa = FL_H_NUM_ISAS - 1; isa >= 0; isa--)
        if (fl_half_set_isa(isa) == 0)
            return;
}

/* Operation ``op`` on half arrays (given as bits). */
static void fl_run_f16(int op, const uint16_t *g, const uint16_t *x, uint16_t a, uint16_t *out,
                       ptrdiff_t n)
{
    if (op == FL_BACKWARD)
        fl_h_select(g, x, a, out, n);
    else if (op == FL_FORWARD)
        fl_h_select(x, x, a, out, n);
    else
        fl_h_grad(x, x, a, out, n);
}
#else /* no half type in this compiler: float16 goes to NumPy; these are never called */
#include <stdint.h>
typedef void (*fl_loop_mixed)(const void *g, const void *x, float a, float *out, ptrdiff_t n);
#define FL_H_NUM_ISAS 1
static const char *const fl_h_isa_names[FL_H_NUM_ISAS] = {"none"};
static int fl_h_isa = 0;
static uint16_t fl_double_to_half_bits(double d) { (void)d; return 0x7c00; }
#define FL_H_FINITE(h) 0
static int fl_h_cpu_has(int isa) { (void)isa; return 0; }
static int fl_half_set_isa(int isa) { (void)isa; return -1; }
static void fl_half_init(void) {}
static void fl_g32x16(const void *g, const void *x, float a, float *out, ptrdiff_t n) {}
static fl_loop_mixed fl_g16x32 = fl_g32x16;
static void fl_run_f16(int op, const uint16_t *g, const uint16_t *x, uint16_t a, uint16_t *out,
                       ptrdiff_t n) {}
#endif

#endif
