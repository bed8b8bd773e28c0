// The AMX body of pck_gemm_packed_bf16 (see pck_gemm_bf16.c for the packed layout and the
// rounding).
//
// Why: on cores where vdpbf16ps runs at half the FMA's instruction rate (Intel Xeon Sapphire and
// Emerald Rapids: pck_bf16_rate 0.5), bf16 only pays through the tile unit. One tdpbf16ps
// multiplies a 16 x 32 tile of bf16 rows by a 32 x 16 tile of weights into a 16 x 16 fp32 tile:
// 8,192 multiply-adds.
//
// The packed layout is already what the tile unit takes as its second operand: step kk of a
// panel is one 64-byte row holding the 16 channels' pairs (2kk, 2kk + 1), so 16 steps (32 inputs)
// of a panel are one tile, rows 64 bytes apart (the inputs are padded to whole tiles). The rows
// of x, rounded to bf16 (as for the AVX512-BF16 body, zero inputs up to the padded width and zero
// rows up to a multiple of 16), give the first operand: 16 rows of 32 inputs. Eight tiles: four fp32 accumulators (32 rows x 32 channels),
// two of rows and two of weights. The accumulators go to a scratch block, and the epilogue (bias,
// residual, ReLU6) runs from there with AVX-512, storing only the real rows and channels.
// Panels are taken in groups that fit in L2, as in the other bodies.
#include "pck_kernels.h"
#include "pck_math.h"
#include "pck_gemm_common.h"

#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define PCK_AMX __attribute__((target("amx-tile,amx-bf16,avx512bf16,avx512f,avx512bw,avx512vl,avx2,fma")))

enum { TILE_ROWS = 16, TILE_INPUTS = 32, ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };

/// The 64-byte tile configuration LDTILECFG reads (palette 1).
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t bytes_per_row[16];
    uint8_t rows[16];
} tile_config;

int pck_amx_bf16_os_ready(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    const int amx_bf16 = (d >> 22) & 1, amx_tile = (d >> 24) & 1;
    if (!amx_bf16 || !amx_tile) return 0;
    // Linux hands out the 8 KB tile state only to processes that ask (since 5.16); asking again
    // is harmless. Elsewhere (or refused) the AVX512-BF16 body runs instead.
#if defined(__linux__)
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return 0;
#else
    return 0;
#endif
    // XCR0 bits 17 (tile configuration) and 18 (tile data) set: the OS saves the tiles.
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & (3u << 17)) == (3u << 17);
}

PCK_AMX static void epilogue(const float *c, size_t rows, size_t cols, const float *bias32, const float *residual,
                             size_t ld, int act, float *y) {
    const __mmask16 m0 = pck_lanes16(cols), m1 = pck_lanes16(cols > PCK_PANEL ? cols - PCK_PANEL : 0);
    const __m512 b0 = _mm512_loadu_ps(bias32), b1 = _mm512_loadu_ps(bias32 + PCK_PANEL);
    for (size_t r = 0; r < rows; r++) {
        for (int half = 0; half < 2; half++) {
            const __mmask16 m = half ? m1 : m0;
            if (!m) continue;
            __m512 v = _mm512_add_ps(_mm512_loadu_ps(c + r * 2 * PCK_PANEL + half * PCK_PANEL), half ? b1 : b0);
            if (residual) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, residual + r * ld + half * PCK_PANEL));
            if (act == PCK_ACT_RELU6) v = _mm512_min_ps(_mm512_max_ps(v, _mm512_setzero_ps()), _mm512_set1_ps(6.0f));
            _mm512_mask_storeu_ps(y + r * ld + half * PCK_PANEL, m, v);
        }
    }
}

/// Rounds `rows` rows of `in` floats to bf16 rows of `lda` values (a multiple of 32; zeros past
/// `in`), then zero rows up to `padded_rows`.
PCK_AMX static void convert_rows(const float *x, size_t rows, size_t padded_rows, size_t in, size_t lda, uint16_t *xb) {
    for (size_t r = 0; r < rows; r++) {
        const float *src = x + r * in;
        for (size_t k = 0; k < lda; k += 32) {
            // Lanes past `in` load as zero.
            const size_t left = in - (k < in ? k : in);
            const __m512 lo = _mm512_maskz_loadu_ps(pck_lanes16(left), src + k);
            const __m512 hi = _mm512_maskz_loadu_ps(pck_lanes16(left > 16 ? left - 16 : 0), src + k + 16);
            _mm512_storeu_si512(xb + r * lda + k, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        }
    }
    memset(xb + rows * lda, 0, (padded_rows - rows) * lda * sizeof(uint16_t));
}

PCK_AMX void pck_gemm_packed_bf16_amx(const float *x, uint16_t *xb, size_t rows, size_t in, const uint16_t *packed,
                                      const float *bias, const float *residual, size_t out, int act, float *y) {
    const size_t padded_rows = (rows + TILE_ROWS - 1) / TILE_ROWS * TILE_ROWS, lda = pck_bf16_padded_inputs(in);
    convert_rows(x, rows, padded_rows, in, lda, xb);
    tile_config config = {.palette = 1};
    for (int t = 0; t < 8; t++) {
        config.rows[t] = TILE_ROWS;
        config.bytes_per_row[t] = 64;  // 16 fp32 channels, 32 bf16 inputs, or 16 pairs of weights
    }
    _tile_loadconfig(&config);
    const size_t panels = (out + PCK_PANEL - 1) / PCK_PANEL, panel_values = lda * PCK_PANEL;
    size_t group = pck_group_bytes / (panel_values * sizeof(uint16_t));
    group = group < 2 ? 2 : group & ~(size_t)1;
    float c[2 * TILE_ROWS * 2 * PCK_PANEL];  // the four accumulators: 32 rows of 32 channels
    const size_t stride_x = lda * sizeof(uint16_t), stride_c = 2 * PCK_PANEL * sizeof(float);
    for (size_t g = 0; g < panels; g += group) {
        const size_t g_end = g + group < panels ? g + group : panels;
        for (size_t r = 0; r < padded_rows; r += 2 * TILE_ROWS) {
            const int two_row_tiles = r + TILE_ROWS < padded_rows;
            const uint16_t *a = xb + r * lda;
            for (size_t p = g; p < g_end; p += 2) {
                const int two_panels = p + 1 < g_end;
                const uint16_t *p0 = packed + p * panel_values, *p1 = p0 + panel_values;
                _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
                for (size_t k = 0; k < lda; k += TILE_INPUTS) {
                    // Tiles 4, 5: rows r.., r + 16.. of x; 6, 7: panels p, p + 1 at inputs k..k+31.
                    _tile_loadd(4, a + k, stride_x);
                    _tile_loadd(6, p0 + k * PCK_PANEL, 64);
                    _tile_dpbf16ps(0, 4, 6);
                    if (two_panels) {
                        _tile_loadd(7, p1 + k * PCK_PANEL, 64);
                        _tile_dpbf16ps(1, 4, 7);
                    }
                    if (two_row_tiles) {
                        _tile_loadd(5, a + TILE_ROWS * lda + k, stride_x);
                        _tile_dpbf16ps(2, 5, 6);
                        if (two_panels) _tile_dpbf16ps(3, 5, 7);
                    }
                }
                // Accumulator (i, j) is rows 16i.., channels 16j.. of the scratch block.
                _tile_stored(0, c, stride_c);
                _tile_stored(1, c + PCK_PANEL, stride_c);
                _tile_stored(2, c + TILE_ROWS * 2 * PCK_PANEL, stride_c);
                _tile_stored(3, c + TILE_ROWS * 2 * PCK_PANEL + PCK_PANEL, stride_c);
                const size_t n = p * PCK_PANEL, width = two_panels ? 2 * PCK_PANEL : PCK_PANEL;
                const size_t cols = out - n < width ? out - n : width;
                const size_t real_rows = rows - r < 2 * TILE_ROWS ? rows - r : 2 * TILE_ROWS;
                float bias32[2 * PCK_PANEL] = {0};
                if (bias) memcpy(bias32, bias + n, cols * sizeof(float));
                epilogue(c, real_rows, cols, bias32, residual ? residual + r * out + n : NULL, out, act, y + r * out + n);
            }
        }
    }
    _tile_release();
}
