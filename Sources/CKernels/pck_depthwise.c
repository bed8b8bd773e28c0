// One output row of a depthwise k x k convolution over channels-last rows, with bias and optional
// ReLU6 (EfficientNet-Lite's depthwise layers).
//
// The caller (DepthwiseConv.swift) hands k padded input rows, so every window is whole and this
// kernel has no edge cases. Channels are the SIMD dimension (8 per AVX2 register); four output
// pixels are computed together, so each tap's weights are loaded once for four FMAs, which is
// what bounds this kernel (loads, not arithmetic).
#include "pck_kernels.h"
#include "pck_math.h"

static inline float clamp6(float v) { return v < 0 ? 0 : (v > 6 ? 6 : v); }

// One output pixel at padded column `column`, channels [first, c).
static void pixel_scalar(const float *const *rows, size_t k, const float *weight, const float *bias,
                         size_t c, size_t first, size_t column, int relu6, float *out) {
    for (size_t ch = first; ch < c; ch++) {
        float acc = bias[ch];
        for (size_t ky = 0; ky < k; ky++) {
            for (size_t kx = 0; kx < k; kx++) acc += weight[(ky * k + kx) * c + ch] * rows[ky][(column + kx) * c + ch];
        }
        out[ch] = relu6 ? clamp6(acc) : acc;
    }
}

static void row_portable(const float *const *rows, size_t k, const float *weight, const float *bias,
                         size_t c, size_t stride, size_t out_width, int relu6, float *out) {
    for (size_t ox = 0; ox < out_width; ox++) pixel_scalar(rows, k, weight, bias, c, 0, ox * stride, relu6, out + ox * c);
}

PCK_AVX2 static inline __m256 finish8(__m256 v, int relu6) {
    if (!relu6) return v;
    return _mm256_min_ps(_mm256_max_ps(v, _mm256_setzero_ps()), _mm256_set1_ps(6.0f));
}

// Four output pixels starting at padded column `column` (pixels `stride` columns apart).
PCK_AVX2 static void four_pixels_avx2(const float *const *rows, size_t k, const float *weight, const float *bias,
                                      size_t c, size_t stride, size_t column, int relu6, float *out) {
    const size_t step = stride * c;
    size_t ch = 0;
    for (; ch + 8 <= c; ch += 8) {
        __m256 a0 = _mm256_loadu_ps(bias + ch), a1 = a0, a2 = a0, a3 = a0;
        for (size_t ky = 0; ky < k; ky++) {
            const float *tap = rows[ky] + column * c + ch;
            const float *w = weight + ky * k * c + ch;
            for (size_t kx = 0; kx < k; kx++, tap += c, w += c) {
                __m256 wv = _mm256_loadu_ps(w);
                a0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(tap), a0);
                a1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(tap + step), a1);
                a2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(tap + 2 * step), a2);
                a3 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(tap + 3 * step), a3);
            }
        }
        _mm256_storeu_ps(out + ch, finish8(a0, relu6));
        _mm256_storeu_ps(out + c + ch, finish8(a1, relu6));
        _mm256_storeu_ps(out + 2 * c + ch, finish8(a2, relu6));
        _mm256_storeu_ps(out + 3 * c + ch, finish8(a3, relu6));
    }
    for (size_t p = 0; p < 4; p++) pixel_scalar(rows, k, weight, bias, c, ch, column + p * stride, relu6, out + p * c);
}

PCK_AVX2 static void row_avx2(const float *const *rows, size_t k, const float *weight, const float *bias,
                              size_t c, size_t stride, size_t out_width, int relu6, float *out) {
    if (out_width < 4) { row_portable(rows, k, weight, bias, c, stride, out_width, relu6, out); return; }
    // A width that is not a multiple of four ends with a group overlapping the one before
    // (7 = 0...3, 3...6): recomputing a pixel costs less than a one-pixel loop.
    for (size_t ox = 0; ox < out_width;) {
        size_t first = ox < out_width - 4 ? ox : out_width - 4;
        four_pixels_avx2(rows, k, weight, bias, c, stride, first * stride, relu6, out + first * c);
        ox = first + 4;
    }
}

void pck_depthwise_row(const float *const *rows, size_t kernel, const float *weight, const float *bias,
                       size_t channels, size_t stride, size_t out_width, int relu6, float *out) {
    if (pck_has_avx2_fma()) row_avx2(rows, kernel, weight, bias, channels, stride, out_width, relu6, out);
    else row_portable(rows, kernel, weight, bias, channels, stride, out_width, relu6, out);
}
