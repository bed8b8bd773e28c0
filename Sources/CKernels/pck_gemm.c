// A matrix product against a weight packed once at load time, with the layer's epilogue fused:
//   y[r, n] = act(bias[n] + sum_k x[r, k] * w[n, k] (+ residual[r, n]))
// for 1x1 convolutions over channels-last pixels and for linear layers.
//
// Why not sgemm: sgemm packs the weight again on every call, writes its output, and then the
// epilogue (bias, residual, ReLU6) reads and writes that output a second time. The weights of a
// model never change, so they are packed once, and each output tile is finished in registers and
// stored once.
//
// The packed weight is a row of panels of 16 output channels: panel p holds, for every input k,
// the 16 weights w[16p .. 16p+15, k] side by side (zeros past the last channel). The micro-kernel
// multiplies up to 6 rows of x by one panel: per input k it broadcasts 6 values of x and loads
// the panel's 16 weights as two vectors, so 12 accumulators (6 rows x 2 vectors) take 12 FMAs for
// every 8 loads, which keeps the FMA units busy rather than the loads.
//
// On CPUs with AVX-512 the same packed weight goes through a wider body (pck_gemm_avx512.c).
//
// Blocking: the panels are taken in groups whose weights fit in L2 (about 256 KB); for each group,
// the rows go by in blocks of 6, and each block's rows stay in L1 while every panel of the group
// passes over them. The first block of a group prefetches its weights ahead (PCK_PREFETCH_STEPS).
#include "pck_kernels.h"
#include "pck_math.h"
#include "pck_gemm_common.h"

// Panel width, prefetch distance and group size are shared with the AVX-512 body (pck_gemm_common.h).
enum { BLOCK_ROWS = 6 };

size_t pck_packed_weight_count(size_t out_channels, size_t in_channels) {
    return (out_channels + PCK_PANEL - 1) / PCK_PANEL * PCK_PANEL * in_channels;
}

void pck_pack_weight(const float *weight, size_t out_channels, size_t in_channels, float *packed) {
    const size_t panels = (out_channels + PCK_PANEL - 1) / PCK_PANEL;
    for (size_t p = 0; p < panels; p++) {
        float *panel = packed + p * in_channels * PCK_PANEL;
        for (size_t k = 0; k < in_channels; k++) {
            for (size_t j = 0; j < PCK_PANEL; j++) {
                const size_t n = p * PCK_PANEL + j;
                panel[k * PCK_PANEL + j] = n < out_channels ? weight[n * in_channels + k] : 0.0f;
            }
        }
    }
}

static inline float finish_scalar(float v, int act) {
    return act == PCK_ACT_RELU6 ? (v < 0 ? 0 : (v > 6 ? 6 : v)) : v;
}

static void gemm_portable(const float *x, size_t rows, size_t in, const float *packed, const float *bias,
                          const float *residual, size_t out, int act, float *y) {
    for (size_t r = 0; r < rows; r++) {
        for (size_t n = 0; n < out; n++) {
            const float *column = packed + (n / PCK_PANEL) * in * PCK_PANEL + n % PCK_PANEL;
            float acc = 0;
            for (size_t k = 0; k < in; k++) acc += x[r * in + k] * column[k * PCK_PANEL];
            acc += bias ? bias[n] : 0;
            if (residual) acc += residual[r * out + n];
            y[r * out + n] = finish_scalar(acc, act);
        }
    }
}

PCK_AVX2 static inline __m256 finish8(__m256 v, __m256 bias, const float *residual, __m256i mask, int full, int act) {
    v = _mm256_add_ps(v, bias);
    if (residual) v = _mm256_add_ps(v, full ? _mm256_loadu_ps(residual) : _mm256_maskload_ps(residual, mask));
    if (act == PCK_ACT_RELU6) v = _mm256_min_ps(_mm256_max_ps(v, _mm256_setzero_ps()), _mm256_set1_ps(6.0f));
    return v;
}

/// Lanes [0, valid) of a vector of 8 (valid may be 0 or 8).
PCK_AVX2 static inline __m256i lane_mask(size_t valid) {
    const __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)valid), index);
}

/// `ROWS` (1 to 6, a literal after inlining) rows of x against one panel; `cols` (1 to 16) of the
/// panel's channels are real. `bias16` holds the panel's 16 biases (zero-padded).
PCK_AVX2 static inline __attribute__((always_inline))
void micro(const size_t ROWS, const float *x, size_t in, const float *panel, const float *bias16,
           const float *residual, size_t ld, size_t cols, int act, int prefetch, float *y) {
    __m256 c0[BLOCK_ROWS], c1[BLOCK_ROWS];
    for (size_t r = 0; r < ROWS; r++) { c0[r] = _mm256_setzero_ps(); c1[r] = _mm256_setzero_ps(); }
    for (size_t k = 0; k < in; k++) {
        if (prefetch) _mm_prefetch((const char *)(panel + (k + PCK_PREFETCH_STEPS) * PCK_PANEL), _MM_HINT_T0);
        const __m256 b0 = _mm256_loadu_ps(panel + k * PCK_PANEL), b1 = _mm256_loadu_ps(panel + k * PCK_PANEL + 8);
        for (size_t r = 0; r < ROWS; r++) {
            const __m256 a = _mm256_broadcast_ss(x + r * in + k);
            c0[r] = _mm256_fmadd_ps(a, b0, c0[r]);
            c1[r] = _mm256_fmadd_ps(a, b1, c1[r]);
        }
    }
    const __m256 bias0 = _mm256_loadu_ps(bias16), bias1 = _mm256_loadu_ps(bias16 + 8);
    if (cols == PCK_PANEL) {
        const __m256i none = _mm256_setzero_si256();
        for (size_t r = 0; r < ROWS; r++) {
            const float *res = residual ? residual + r * ld : NULL;
            _mm256_storeu_ps(y + r * ld, finish8(c0[r], bias0, res, none, 1, act));
            _mm256_storeu_ps(y + r * ld + 8, finish8(c1[r], bias1, res ? res + 8 : NULL, none, 1, act));
        }
        return;
    }
    const __m256i m0 = lane_mask(cols >= 8 ? 8 : cols), m1 = lane_mask(cols > 8 ? cols - 8 : 0);
    for (size_t r = 0; r < ROWS; r++) {
        const float *res = residual ? residual + r * ld : NULL;
        _mm256_maskstore_ps(y + r * ld, m0, finish8(c0[r], bias0, res, m0, 0, act));
        _mm256_maskstore_ps(y + r * ld + 8, m1, finish8(c1[r], bias1, res ? res + 8 : NULL, m1, 0, act));
    }
}

PCK_AVX2 static void gemm_avx2(const float *x, size_t rows, size_t in, const float *packed, const float *bias,
                               const float *residual, size_t out, int act, float *y) {
    const size_t panels = (out + PCK_PANEL - 1) / PCK_PANEL;
    const size_t panel_bytes = in * PCK_PANEL * sizeof(float);
    size_t group = panel_bytes ? pck_group_bytes / panel_bytes : panels;
    if (group < 1) group = 1;
    for (size_t g = 0; g < panels; g += group) {
        const size_t g_end = g + group < panels ? g + group : panels;
        for (size_t r = 0; r < rows; r += BLOCK_ROWS) {
            const size_t block = rows - r < BLOCK_ROWS ? rows - r : BLOCK_ROWS;
            const float *xr = x + r * in;
            for (size_t p = g; p < g_end; p++) {
                const size_t n = p * PCK_PANEL, cols = out - n < PCK_PANEL ? out - n : PCK_PANEL;
                float bias16[PCK_PANEL] = {0};
                if (bias) memcpy(bias16, bias + n, cols * sizeof(float));
                const float *panel = packed + p * in * PCK_PANEL;
                const float *res = residual ? residual + r * out + n : NULL;
                float *yr = y + r * out + n;
                // Literal row counts, so that each call inlines with its accumulators in registers.
                switch (block) {
                case 6: micro(6, xr, in, panel, bias16, res, out, cols, act, r == 0, yr); break;
                case 5: micro(5, xr, in, panel, bias16, res, out, cols, act, r == 0, yr); break;
                case 4: micro(4, xr, in, panel, bias16, res, out, cols, act, r == 0, yr); break;
                case 3: micro(3, xr, in, panel, bias16, res, out, cols, act, r == 0, yr); break;
                case 2: micro(2, xr, in, panel, bias16, res, out, cols, act, r == 0, yr); break;
                default: micro(1, xr, in, panel, bias16, res, out, cols, act, r == 0, yr); break;
                }
            }
        }
    }
}

void pck_gemm_packed(const float *x, size_t rows, size_t in_channels, const float *packed, const float *bias,
                     const float *residual, size_t out_channels, int act, float *y) {
    if (rows == 0 || out_channels == 0) return;
    if (pck_has_avx512()) pck_gemm_packed_avx512(x, rows, in_channels, packed, bias, residual, out_channels, act, y);
    else if (pck_has_avx2_fma()) gemm_avx2(x, rows, in_channels, packed, bias, residual, out_channels, act, y);
    else gemm_portable(x, rows, in_channels, packed, bias, residual, out_channels, act, y);
}
