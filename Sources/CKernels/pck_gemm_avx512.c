// The AVX-512 body of pck_gemm_packed (see pck_gemm.c for the packed layout and the epilogue).
//
// Why a second body: on CPUs that run 512-bit FMAs at the rate of 256-bit ones (AMD Zen 5, Intel
// server parts), a 16-wide FMA does twice the work per instruction (bench/kernels/README.md has
// the figures of the development machine).
//
// The rows of x are cut into blocks of at most 12, as evenly as possible. The micro-kernel
// multiplies a block by two panels (32 output channels): per input k it loads the two panels' 16
// weights as one vector each and broadcasts 12 values of x, read in place from the 12 rows, so 24
// accumulators take 24 FMAs for every 14 loads; the weights are prefetched ahead
// (pck_gemm_common.h). The rows are read in place rather than first interleaved step by step: that
// scalar transpose cost a noticeable share of a product with 384 outputs (bench/kernels/run.sh;
// figures in its README). AVX-512 has 32 vector registers, which is what lets the tile be four
// times the AVX2 one. A group's odd last panel takes 24 rows at a time. The epilogue (bias,
// residual, ReLU6) runs on the accumulators, and partial panels store through a lane mask.
#include "pck_kernels.h"
#include "pck_math.h"
#include "pck_gemm_common.h"

// Panel width, prefetch distance and group size are shared with the AVX2 body (pck_gemm_common.h).
enum { BLOCK_ROWS = 12 };
#define PCK_UNROLL _Pragma("GCC unroll 12")
#define PCK_UNROLL24 _Pragma("GCC unroll 24")

/// `ROWS` (1 to 12) rows of x (`a`, rows `in` floats apart) against `PANELS` (1 or 2) panels, both
/// literals after inlining. `cols` (1 to 16 * PANELS) of the panels' channels are real; `bias32`
/// holds their biases, zero-padded.
PCK_AVX512 static inline __attribute__((always_inline))
void micro512(const size_t ROWS, const size_t PANELS, const float *a, size_t in, const float *panel0,
              const float *panel1, const float *bias32, const float *residual, size_t ld, size_t cols, int act,
              int prefetch, float *y) {
    // The row loops must unroll fully, or the accumulators live in memory: clang stops unrolling on
    // its own at 12 x 2, which runs at well under half the speed (bench/kernels/README.md).
    __m512 c0[BLOCK_ROWS], c1[BLOCK_ROWS];
    PCK_UNROLL for (size_t r = 0; r < ROWS; r++) { c0[r] = _mm512_setzero_ps(); c1[r] = _mm512_setzero_ps(); }
    for (size_t k = 0; k < in; k++) {
        if (prefetch) {
            _mm_prefetch((const char *)(panel0 + (k + PCK_PREFETCH_STEPS) * PCK_PANEL), _MM_HINT_T0);
            if (PANELS == 2) _mm_prefetch((const char *)(panel1 + (k + PCK_PREFETCH_STEPS) * PCK_PANEL), _MM_HINT_T0);
        }
        const __m512 b0 = _mm512_loadu_ps(panel0 + k * PCK_PANEL);
        const __m512 b1 = PANELS == 2 ? _mm512_loadu_ps(panel1 + k * PCK_PANEL) : _mm512_setzero_ps();
        PCK_UNROLL for (size_t r = 0; r < ROWS; r++) {
            const __m512 x = _mm512_set1_ps(a[r * in + k]);
            c0[r] = _mm512_fmadd_ps(x, b0, c0[r]);
            if (PANELS == 2) c1[r] = _mm512_fmadd_ps(x, b1, c1[r]);
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

/// Two full blocks of rows (24 rows from `a` on) against one panel: the odd last
/// panel of a group, which would otherwise give each step 12 broadcasts for 12 FMAs. Narrow outputs
/// (16, 40, 80 or 112 channels in EfficientNet-Lite0's project convolutions) end in such a panel.
PCK_AVX512 static inline __attribute__((always_inline))
void micro512_single24(const float *a, size_t in, const float *panel, const float *bias16, const float *residual,
                       size_t ld, size_t cols, int act, int prefetch, float *y) {
    __m512 c[2 * BLOCK_ROWS];
    PCK_UNROLL24 for (size_t r = 0; r < 2 * BLOCK_ROWS; r++) c[r] = _mm512_setzero_ps();
    for (size_t k = 0; k < in; k++) {
        if (prefetch) _mm_prefetch((const char *)(panel + (k + PCK_PREFETCH_STEPS) * PCK_PANEL), _MM_HINT_T0);
        const __m512 b = _mm512_loadu_ps(panel + k * PCK_PANEL);
        PCK_UNROLL24 for (size_t r = 0; r < 2 * BLOCK_ROWS; r++) c[r] = _mm512_fmadd_ps(_mm512_set1_ps(a[r * in + k]), b, c[r]);
    }
    const __mmask16 m = pck_lanes16(cols);
    const __m512 bias0 = _mm512_loadu_ps(bias16);
    PCK_UNROLL24 for (size_t r = 0; r < 2 * BLOCK_ROWS; r++) {
        _mm512_mask_storeu_ps(y + r * ld, m, pck_finish16(c[r], bias0, residual ? residual + r * ld : NULL, m, act));
    }
}

/// One block of `block` rows (1 to 12) against `PANELS` (1 or 2, a literal at each call) panels.
/// The switch turns the row count into a literal, so that each case inlines micro512 with its
/// accumulators in registers; this dispatcher is itself always inlined, so it compiles to the
/// same code as the twelve cases written out at each call.
PCK_AVX512 static inline __attribute__((always_inline))
void micro512_rows(size_t block, const size_t PANELS, const float *a, size_t in, const float *p0, const float *p1,
                   const float *bias32, const float *res, size_t ld, size_t cols, int act, int prefetch, float *y) {
    switch (block) {
    case 12: micro512(12, PANELS, a, in, p0, p1, bias32, res, ld, cols, act, prefetch, y); break;
    case 11: micro512(11, PANELS, a, in, p0, p1, bias32, res, ld, cols, act, prefetch, y); break;
    case 10: micro512(10, PANELS, a, in, p0, p1, bias32, res, ld, cols, act, prefetch, y); break;
    case 9: micro512(9, PANELS, a, in, p0, p1, bias32, res, ld, cols, act, prefetch, y); break;
    case 8: micro512(8, PANELS, a, in, p0, p1, bias32, res, ld, cols, act, prefetch, y); break;
    case 7: micro512(7, PANELS, a, in, p0, p1, bias32, res, ld, cols, act, prefetch, y); break;
    case 6: micro512(6, PANELS, a, in, p0, p1, bias32, res, ld, cols, act, prefetch, y); break;
    case 5: micro512(5, PANELS, a, in, p0, p1, bias32, res, ld, cols, act, prefetch, y); break;
    case 4: micro512(4, PANELS, a, in, p0, p1, bias32, res, ld, cols, act, prefetch, y); break;
    case 3: micro512(3, PANELS, a, in, p0, p1, bias32, res, ld, cols, act, prefetch, y); break;
    case 2: micro512(2, PANELS, a, in, p0, p1, bias32, res, ld, cols, act, prefetch, y); break;
    default: micro512(1, PANELS, a, in, p0, p1, bias32, res, ld, cols, act, prefetch, y); break;
    }
}

/// How rows are cut into blocks of at most 12: as evenly as possible, so that a short input (one
/// post of 14 tokens) runs as 7 + 7 rows (14 FMA chains each) rather than 12 + 2 (4 chains, which
/// wait on the FMA latency). Block b starts at row b * size + min(b, larger) and holds
/// size + (b < larger) rows.
typedef struct { size_t count, size, larger; } row_blocks;

static row_blocks cut_rows(size_t rows) {
    row_blocks b;
    b.count = (rows + BLOCK_ROWS - 1) / BLOCK_ROWS;
    b.size = b.count ? rows / b.count : 0;
    b.larger = b.count ? rows % b.count : 0;
    return b;
}

static size_t block_start(row_blocks b, size_t i) { return i * b.size + (i < b.larger ? i : b.larger); }
static size_t block_rows(row_blocks b, size_t i) { return b.size + (i < b.larger ? 1 : 0); }

PCK_AVX512 void pck_gemm_packed_avx512(const float *x, size_t rows, size_t in, const float *packed, const float *bias,
                                       const float *residual, size_t out, int act, float *y) {
    const row_blocks cut = cut_rows(rows);
    const size_t panels = (out + PCK_PANEL - 1) / PCK_PANEL;
    const size_t panel_bytes = in * PCK_PANEL * sizeof(float);
    // Groups of an even number of panels whose weights fit in L2, so that pairs never straddle groups.
    size_t group = panel_bytes ? pck_group_bytes / panel_bytes : panels;
    group = group < 2 ? 2 : group & ~(size_t)1;
    for (size_t g = 0; g < panels; g += group) {
        const size_t g_end = g + group < panels ? g + group : panels;
        const size_t pairs_end = g + ((g_end - g) & ~(size_t)1);
        for (size_t i = 0; i < cut.count; i++) {
            const size_t r = block_start(cut, i), block = block_rows(cut, i);
            const float *a = x + r * in;
            for (size_t p = g; p < pairs_end; p += 2) {
                const size_t n = p * PCK_PANEL, cols = out - n < 2 * PCK_PANEL ? out - n : 2 * PCK_PANEL;
                float bias32[2 * PCK_PANEL] = {0};
                if (bias) memcpy(bias32, bias + n, cols * sizeof(float));
                const float *p0 = packed + p * in * PCK_PANEL, *p1 = p0 + in * PCK_PANEL;
                const float *res = residual ? residual + r * out + n : NULL;
                float *yr = y + r * out + n;
                micro512_rows(block, 2, a, in, p0, p1, bias32, res, out, cols, act, i == 0, yr);
            }
        }
        if (pairs_end == g_end) continue;
        // The group's odd last panel, two full blocks of rows at a time where there are two.
        const size_t n = pairs_end * PCK_PANEL, cols = out - n;
        float bias32[2 * PCK_PANEL] = {0};
        if (bias) memcpy(bias32, bias + n, cols * sizeof(float));
        const float *p0 = packed + pairs_end * in * PCK_PANEL, *p1 = NULL;
        for (size_t i = 0; i < cut.count;) {
            const size_t r = block_start(cut, i), block = block_rows(cut, i);
            const float *a = x + r * in;
            const float *res = residual ? residual + r * out + n : NULL;
            float *yr = y + r * out + n;
            if (i + 1 < cut.count && block == BLOCK_ROWS && block_rows(cut, i + 1) == BLOCK_ROWS) {
                micro512_single24(a, in, p0, bias32, res, out, cols, act, i == 0, yr);
                i += 2;
            } else {
                micro512_rows(block, 1, a, in, p0, p1, bias32, res, out, cols, act, i == 0, yr);
                i += 1;
            }
        }
    }
}
