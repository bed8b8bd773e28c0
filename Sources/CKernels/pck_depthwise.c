// One output row of a depthwise k x k convolution over channels-last rows, with bias and optional
// ReLU6 (EfficientNet-Lite's depthwise layers).
//
// The caller (DepthwiseConv.swift) hands the k input rows under the output row, straight from the
// feature map (a row of zeros stands for each row of padding above or below), so nothing is copied.
// Output pixels whose window lies inside the row (all but the first and last one or two) take the
// fast path: channels are the SIMD dimension (8 per AVX2 register), and eight output pixels are
// computed together (four at a row's end), so each tap's weights are loaded once for eight FMAs
// and eight FMA chains are in flight. The few pixels whose window hangs over the left or right
// padding skip the taps outside the row. CPUs with AVX-512 take pck_depthwise_avx512.c instead.
#include "pck_kernels.h"
#include "pck_math.h"

static inline float clamp6(float v) { return v < 0 ? 0 : (v > 6 ? 6 : v); }

// One output pixel whose window starts at input column x0 (possibly negative), channels [first, c).
static void pixel_scalar(const float *const *rows, size_t k, const float *weight, const float *bias,
                         size_t c, size_t first, ptrdiff_t x0, size_t width, int relu6, float *out) {
    for (size_t ch = first; ch < c; ch++) {
        float acc = bias[ch];
        for (size_t ky = 0; ky < k; ky++) {
            for (size_t kx = 0; kx < k; kx++) {
                const ptrdiff_t ix = x0 + (ptrdiff_t)kx;
                if (ix >= 0 && ix < (ptrdiff_t)width) acc += weight[(ky * k + kx) * c + ch] * rows[ky][(size_t)ix * c + ch];
            }
        }
        out[ch] = relu6 ? clamp6(acc) : acc;
    }
}

static void row_portable(const float *const *rows, size_t k, const float *weight, const float *bias, size_t c,
                         size_t width, size_t pad_left, size_t stride, size_t out_width, int relu6, float *out) {
    for (size_t ox = 0; ox < out_width; ox++) {
        pixel_scalar(rows, k, weight, bias, c, 0, (ptrdiff_t)(ox * stride) - (ptrdiff_t)pad_left, width, relu6, out + ox * c);
    }
}

PCK_AVX2 static inline __m256 finish8(__m256 v, int relu6) {
    if (!relu6) return v;
    return _mm256_min_ps(_mm256_max_ps(v, _mm256_setzero_ps()), _mm256_set1_ps(6.0f));
}

// A pixel whose window hangs over the row's ends: the taps outside are skipped. Rows of 7 pixels
// with a 5 x 5 kernel are all edge pixels, so this path carries a whole stage of the network:
// 32 channels go at once, four FMA chains in flight, or one chain would wait on each FMA's latency.
PCK_AVX2 static void edge_pixel_avx2(const float *const *rows, size_t k, const float *weight, const float *bias,
                                     size_t c, ptrdiff_t x0, size_t width, int relu6, float *out) {
    const size_t kx_first = x0 < 0 ? (size_t)(-x0) : 0;
    const ptrdiff_t room = (ptrdiff_t)width - x0;
    const size_t kx_end = room < (ptrdiff_t)k ? (room > 0 ? (size_t)room : 0) : k;
    size_t ch = 0;
    for (; ch + 32 <= c; ch += 32) {
        __m256 acc[4];
        for (size_t g = 0; g < 4; g++) acc[g] = _mm256_loadu_ps(bias + ch + 8 * g);
        for (size_t ky = 0; ky < k; ky++) {
            for (size_t kx = kx_first; kx < kx_end; kx++) {
                const float *tap = rows[ky] + (size_t)(x0 + (ptrdiff_t)kx) * c + ch;
                const float *w = weight + (ky * k + kx) * c + ch;
                for (size_t g = 0; g < 4; g++) {
                    acc[g] = _mm256_fmadd_ps(_mm256_loadu_ps(w + 8 * g), _mm256_loadu_ps(tap + 8 * g), acc[g]);
                }
            }
        }
        for (size_t g = 0; g < 4; g++) _mm256_storeu_ps(out + ch + 8 * g, finish8(acc[g], relu6));
    }
    for (; ch + 8 <= c; ch += 8) {
        __m256 acc = _mm256_loadu_ps(bias + ch);
        for (size_t ky = 0; ky < k; ky++) {
            for (size_t kx = kx_first; kx < kx_end; kx++) {
                const float *tap = rows[ky] + (size_t)(x0 + (ptrdiff_t)kx) * c + ch;
                acc = _mm256_fmadd_ps(_mm256_loadu_ps(weight + (ky * k + kx) * c + ch), _mm256_loadu_ps(tap), acc);
            }
        }
        _mm256_storeu_ps(out + ch, finish8(acc, relu6));
    }
    pixel_scalar(rows, k, weight, bias, c, ch, x0, width, relu6, out);
}

// `P` (4 or 8, a literal after inlining) output pixels whose windows start at input column x0 and
// lie inside the row, pixels `stride` columns apart.
PCK_AVX2 static inline __attribute__((always_inline))
void pixels_avx2(const size_t P, const float *const *rows, size_t k, const float *weight, const float *bias,
                 size_t c, size_t stride, size_t x0, size_t width, int relu6, float *out) {
    const size_t step = stride * c;
    size_t ch = 0;
    for (; ch + 8 <= c; ch += 8) {
        __m256 acc[8];
        const __m256 b = _mm256_loadu_ps(bias + ch);
        for (size_t p = 0; p < P; p++) acc[p] = b;
        for (size_t ky = 0; ky < k; ky++) {
            const float *tap = rows[ky] + x0 * c + ch;
            const float *w = weight + ky * k * c + ch;
            for (size_t kx = 0; kx < k; kx++, tap += c, w += c) {
                const __m256 wv = _mm256_loadu_ps(w);
                for (size_t p = 0; p < P; p++) acc[p] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(tap + p * step), acc[p]);
            }
        }
        for (size_t p = 0; p < P; p++) _mm256_storeu_ps(out + p * c + ch, finish8(acc[p], relu6));
    }
    for (size_t p = 0; p < P; p++) {
        pixel_scalar(rows, k, weight, bias, c, ch, (ptrdiff_t)(x0 + p * stride), width, relu6, out + p * c);
    }
}

PCK_AVX2 static void row_avx2(const float *const *rows, size_t k, const float *weight, const float *bias, size_t c,
                              size_t width, size_t pad_left, size_t stride, size_t out_width, int relu6, float *out) {
    // Inside pixels: ox * stride >= pad_left and ox * stride - pad_left + k <= width.
    size_t lo = (pad_left + stride - 1) / stride, hi = width + pad_left >= k ? (width + pad_left - k) / stride + 1 : 0;
    if (hi > out_width) hi = out_width;
    if (lo > hi) lo = hi;
    if (hi - lo < 4) lo = hi;  // too few for the grouped path: all pixels take the edge path
    for (size_t ox = 0; ox < lo; ox++) {
        edge_pixel_avx2(rows, k, weight, bias, c, (ptrdiff_t)(ox * stride) - (ptrdiff_t)pad_left, width, relu6, out + ox * c);
    }
    size_t ox = lo;
    for (; ox + 8 <= hi; ox += 8) pixels_avx2(8, rows, k, weight, bias, c, stride, ox * stride - pad_left, width, relu6, out + ox * c);
    // The rest in groups of four, the last one overlapping the one before when the count is not a
    // multiple of four (7 = 0...3, 3...6): recomputing a pixel costs less than a one-pixel loop.
    while (ox < hi) {
        const size_t first = ox + 4 <= hi ? ox : hi - 4;
        pixels_avx2(4, rows, k, weight, bias, c, stride, first * stride - pad_left, width, relu6, out + first * c);
        ox = first + 4;
    }
    for (ox = hi; ox < out_width; ox++) {
        edge_pixel_avx2(rows, k, weight, bias, c, (ptrdiff_t)(ox * stride) - (ptrdiff_t)pad_left, width, relu6, out + ox * c);
    }
}

void pck_depthwise_row(const float *const *rows, size_t kernel, const float *weight, const float *bias,
                       size_t channels, size_t width, size_t pad_left, size_t stride, size_t out_width, int relu6,
                       float *out) {
    if (pck_has_avx512()) pck_depthwise_row_avx512(rows, kernel, weight, bias, channels, width, pad_left, stride, out_width, relu6, out);
    else if (pck_has_avx2_fma()) row_avx2(rows, kernel, weight, bias, channels, width, pad_left, stride, out_width, relu6, out);
    else row_portable(rows, kernel, weight, bias, channels, width, pad_left, stride, out_width, relu6, out);
}
