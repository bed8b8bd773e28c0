// The AVX512-BF16 body of pck_gemm_packed_bf16 (see pck_gemm_bf16.c for the packed layout and the
// rounding, pck_gemm_avx512.c for the fp32 body this one follows).
//
// The rows of x are first rounded to bf16 (vcvtneps2bf16, 16 values an instruction) into `xb`,
// rows of the padded width. The micro-kernel then multiplies a block of at most 12 rows by two
// panels (32 output channels): per step of two inputs it loads each panel's 32 bf16 weights as one
// vector, broadcasts each row's pair of bf16 inputs as one 32-bit value, and vdpbf16ps adds both
// products of the pair into each of the 16 fp32 lanes: 24 accumulators take 24 instructions that
// each do 32 multiply-adds, for every 14 loads, twice the work per instruction of the fp32 body's
// step and half its weight bytes. Rows are cut into blocks as evenly as possible, panels are
// taken in groups that fit in L2, and the first block of a group prefetches the group's weights,
// as in the fp32 body (pck_gemm_common.h). The epilogue (bias, residual, ReLU6) runs in fp32 on
// the accumulators, and partial panels store through a lane mask.
#include "pck_kernels.h"
#include "pck_math.h"
#include "pck_gemm_common.h"

#include <time.h>

enum { BLOCK_ROWS = 12 };
#define PCK_UNROLL _Pragma("GCC unroll 12")

/// `ROWS` (1 to 12) bf16 rows (`a`, rows `lda` values apart) against `PANELS` (1 or 2) panels of
/// `steps` pairs of inputs, both literals after inlining. `cols` (1 to 16 * PANELS) of the panels'
/// channels are real; `bias32` holds their biases, zero-padded.
PCK_AVX512_BF16 static inline __attribute__((always_inline))
void micro_bf16(const size_t ROWS, const size_t PANELS, const uint16_t *a, size_t lda, size_t steps,
                const uint16_t *panel0, const uint16_t *panel1, const float *bias32, const float *residual, size_t ld,
                size_t cols, int act, int prefetch, float *y) {
    // Fully unrolled row loops keep the accumulators in registers (see pck_gemm_avx512.c).
    __m512 c0[BLOCK_ROWS], c1[BLOCK_ROWS];
    PCK_UNROLL for (size_t r = 0; r < ROWS; r++) { c0[r] = _mm512_setzero_ps(); c1[r] = _mm512_setzero_ps(); }
    for (size_t kk = 0; kk < steps; kk++) {
        const size_t step = kk * 2 * PCK_PANEL;
        if (prefetch) {
            _mm_prefetch((const char *)(panel0 + step + PCK_PREFETCH_STEPS * 2 * PCK_PANEL), _MM_HINT_T0);
            if (PANELS == 2) _mm_prefetch((const char *)(panel1 + step + PCK_PREFETCH_STEPS * 2 * PCK_PANEL), _MM_HINT_T0);
        }
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(panel0 + step);
        const __m512bh b1 = PANELS == 2 ? (__m512bh)_mm512_loadu_si512(panel1 + step) : (__m512bh)_mm512_setzero_si512();
        PCK_UNROLL for (size_t r = 0; r < ROWS; r++) {
            uint32_t pair;
            memcpy(&pair, a + r * lda + 2 * kk, sizeof pair);
            const __m512bh x = (__m512bh)_mm512_set1_epi32((int)pair);
            c0[r] = _mm512_dpbf16_ps(c0[r], x, b0);
            if (PANELS == 2) c1[r] = _mm512_dpbf16_ps(c1[r], x, b1);
        }
    }
    const __mmask16 m0 = pck_lanes16(cols), m1 = pck_lanes16(cols > PCK_PANEL ? cols - PCK_PANEL : 0);
    const __m512 bias0 = _mm512_loadu_ps(bias32), bias1 = _mm512_loadu_ps(bias32 + PCK_PANEL);
    PCK_UNROLL for (size_t r = 0; r < ROWS; r++) {
        const float *res = residual ? residual + r * ld : NULL;
        _mm512_mask_storeu_ps(y + r * ld, m0, pck_finish16(c0[r], bias0, res, m0, act));
        if (PANELS == 2) _mm512_mask_storeu_ps(y + r * ld + PCK_PANEL, m1, pck_finish16(c1[r], bias1, res ? res + PCK_PANEL : NULL, m1, act));
    }
}

/// One block of `block` rows (1 to 12) against `PANELS` panels: the switch makes the row count a
/// literal, so that each case inlines micro_bf16 with its accumulators in registers.
PCK_AVX512_BF16 static inline __attribute__((always_inline))
void micro_bf16_rows(size_t block, const size_t PANELS, const uint16_t *a, size_t lda, size_t steps,
                     const uint16_t *p0, const uint16_t *p1, const float *bias32, const float *res, size_t ld,
                     size_t cols, int act, int prefetch, float *y) {
    switch (block) {
    case 12: micro_bf16(12, PANELS, a, lda, steps, p0, p1, bias32, res, ld, cols, act, prefetch, y); break;
    case 11: micro_bf16(11, PANELS, a, lda, steps, p0, p1, bias32, res, ld, cols, act, prefetch, y); break;
    case 10: micro_bf16(10, PANELS, a, lda, steps, p0, p1, bias32, res, ld, cols, act, prefetch, y); break;
    case 9: micro_bf16(9, PANELS, a, lda, steps, p0, p1, bias32, res, ld, cols, act, prefetch, y); break;
    case 8: micro_bf16(8, PANELS, a, lda, steps, p0, p1, bias32, res, ld, cols, act, prefetch, y); break;
    case 7: micro_bf16(7, PANELS, a, lda, steps, p0, p1, bias32, res, ld, cols, act, prefetch, y); break;
    case 6: micro_bf16(6, PANELS, a, lda, steps, p0, p1, bias32, res, ld, cols, act, prefetch, y); break;
    case 5: micro_bf16(5, PANELS, a, lda, steps, p0, p1, bias32, res, ld, cols, act, prefetch, y); break;
    case 4: micro_bf16(4, PANELS, a, lda, steps, p0, p1, bias32, res, ld, cols, act, prefetch, y); break;
    case 3: micro_bf16(3, PANELS, a, lda, steps, p0, p1, bias32, res, ld, cols, act, prefetch, y); break;
    case 2: micro_bf16(2, PANELS, a, lda, steps, p0, p1, bias32, res, ld, cols, act, prefetch, y); break;
    default: micro_bf16(1, PANELS, a, lda, steps, p0, p1, bias32, res, ld, cols, act, prefetch, y); break;
    }
}

/// Rounds `rows` rows of `in` floats to bf16 rows of `lda` (pck_bf16_padded_inputs) values,
/// the padding zero.
PCK_AVX512_BF16 static void convert_rows(const float *x, size_t rows, size_t in, size_t lda, uint16_t *xb) {
    for (size_t r = 0; r < rows; r++) {
        const float *src = x + r * in;
        uint16_t *dst = xb + r * lda;
        for (size_t k = 0; k < lda; k += 16) {
            // Lanes past `in` load as zero; those past `lda` are not stored.
            const __m512 v = _mm512_maskz_loadu_ps(pck_lanes16(in - (k < in ? k : in)), src + k);
            _mm256_mask_storeu_epi16(dst + k, pck_lanes16(lda - k), (__m256i)_mm512_cvtneps_pbh(v));
        }
    }
}

PCK_AVX512_BF16 void pck_gemm_packed_bf16_avx512(const float *x, uint16_t *xb, size_t rows, size_t in,
                                                 const uint16_t *packed, const float *bias, const float *residual,
                                                 size_t out, int act, float *y) {
    // The steps past the inputs would only add zeros: the loop stops at the last pair.
    const size_t lda = pck_bf16_padded_inputs(in), steps = (in + 1) / 2;
    convert_rows(x, rows, in, lda, xb);
    // Blocks of at most 12 rows, as even as possible: block i starts at i * size + min(i, larger).
    const size_t count = (rows + BLOCK_ROWS - 1) / BLOCK_ROWS, size = rows / count, larger = rows % count;
    const size_t panels = (out + PCK_PANEL - 1) / PCK_PANEL, panel_values = lda * PCK_PANEL;
    // Groups of an even number of panels whose weights fit in L2, so that pairs never straddle groups.
    size_t group = pck_group_bytes / (panel_values * sizeof(uint16_t));
    group = group < 2 ? 2 : group & ~(size_t)1;
    for (size_t g = 0; g < panels; g += group) {
        const size_t g_end = g + group < panels ? g + group : panels;
        for (size_t i = 0; i < count; i++) {
            const size_t r = i * size + (i < larger ? i : larger), block = size + (i < larger ? 1 : 0);
            const uint16_t *a = xb + r * lda;
            for (size_t p = g; p < g_end; p += 2) {
                // Two panels at a time; a group's odd last panel alone.
                const size_t n = p * PCK_PANEL, cols = out - n < 2 * PCK_PANEL ? out - n : 2 * PCK_PANEL;
                float bias32[2 * PCK_PANEL] = {0};
                if (bias) memcpy(bias32, bias + n, cols * sizeof(float));
                const uint16_t *p0 = packed + p * panel_values, *p1 = p0 + panel_values;
                const float *res = residual ? residual + r * out + n : NULL;
                float *yr = y + r * out + n;
                if (p + 1 < g_end) micro_bf16_rows(block, 2, a, lda, steps, p0, p1, bias32, res, out, cols, act, i == 0, yr);
                else micro_bf16_rows(block, 1, a, lda, steps, p0, NULL, bias32, res, out, cols, act, i == 0, yr);
            }
        }
    }
}

// ---- how fast vdpbf16ps is here ------------------------------------------------------------
//
// Whether bf16 products pay depends on the core: some run vdpbf16ps (32 multiply-adds) at the
// rate of an fp32 FMA (16), others at half that rate, where bf16 is slower than fp32 whenever the
// weights are in cache (bench/kernels/bf16_product.c). So the rate is measured: twelve independent
// chains of each instruction on registers, the two loops in turn, best of five.

enum { RATE_CHAINS = 12, RATE_STEPS = 20000 };

static double seconds_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/// Seconds for RATE_STEPS x RATE_CHAINS vdpbf16ps; `sink` keeps the sums alive.
PCK_AVX512_BF16 __attribute__((noinline)) static double time_dpbf16(float *sink) {
    __m512 c[RATE_CHAINS];
    __m512bh a = (__m512bh)_mm512_set1_epi32(0x3F803F80), b = (__m512bh)_mm512_set1_epi32(0x3A803A80);
    for (int i = 0; i < RATE_CHAINS; i++) c[i] = _mm512_setzero_ps();
    const double t0 = seconds_now();
    for (int s = 0; s < RATE_STEPS; s++) {
        __asm__ volatile("" : "+v"(a));  // a fresh operand each step, so the loop is not folded
        PCK_UNROLL for (int i = 0; i < RATE_CHAINS; i++) c[i] = _mm512_dpbf16_ps(c[i], a, b);
    }
    const double t = seconds_now() - t0;
    for (int i = 1; i < RATE_CHAINS; i++) c[0] = _mm512_add_ps(c[0], c[i]);
    *sink += _mm512_reduce_add_ps(c[0]);
    return t;
}

/// Seconds for RATE_STEPS x RATE_CHAINS fp32 FMAs on 16 lanes.
PCK_AVX512_BF16 __attribute__((noinline)) static double time_fma(float *sink) {
    __m512 c[RATE_CHAINS];
    __m512 a = _mm512_set1_ps(1e-3f), b = _mm512_set1_ps(0.5f);
    for (int i = 0; i < RATE_CHAINS; i++) c[i] = _mm512_setzero_ps();
    const double t0 = seconds_now();
    for (int s = 0; s < RATE_STEPS; s++) {
        __asm__ volatile("" : "+v"(a));
        PCK_UNROLL for (int i = 0; i < RATE_CHAINS; i++) c[i] = _mm512_fmadd_ps(a, b, c[i]);
    }
    const double t = seconds_now() - t0;
    for (int i = 1; i < RATE_CHAINS; i++) c[0] = _mm512_add_ps(c[0], c[i]);
    *sink += _mm512_reduce_add_ps(c[0]);
    return t;
}

PCK_AVX512_BF16 double pck_bf16_rate_avx512(void) {
    float sink = 0;
    double dot = 1e30, fma = 1e30;
    for (int round = 0; round < 5; round++) {
        const double f = time_fma(&sink), d = time_dpbf16(&sink);
        if (f < fma) fma = f;
        if (d < dot) dot = d;
    }
    // Multiply-adds per second: 32 per vdpbf16ps, 16 per FMA. `sink` is finite; the test only
    // keeps the compiler from dropping the loops.
    return sink == sink && dot > 0 ? (32.0 / dot) / (16.0 / fma) : 0;
}
