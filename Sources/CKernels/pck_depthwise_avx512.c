// The AVX-512 body of pck_depthwise_row: the same paths as the AVX2 body in pck_depthwise.c (groups
// of eight or four inside pixels sharing each tap's weights, edge pixels that skip the taps outside
// the row), with 16 channels per register. A channel count that is not a multiple of 16 finishes
// with one masked vector instead of a scalar loop.
//
// The 3x3 and 5x5 kernels at stride 1 and 2 on rows of 7 or more outputs (every depthwise layer of
// EfficientNet-Lite0) take `row_slices` for the whole row instead: one 16-channel slice across the
// row at a time, and within a group of pixels each input column loaded once per row of taps,
// feeding every pixel whose window covers it. The general path walks all channels of one group
// before the next, touching k x 12 columns x (channels / 16) cache lines at a time (160 KB for
// 5 x 5 over 672 channels, beyond L1) at strides no prefetcher follows; it also loads once per FMA.
#include "pck_kernels.h"
#include "pck_math.h"

#define PCK_UNROLL8 _Pragma("GCC unroll 8")

PCK_AVX512 static inline __m512 finish16(__m512 v, int relu6) {
    if (!relu6) return v;
    return _mm512_min_ps(_mm512_max_ps(v, _mm512_setzero_ps()), _mm512_set1_ps(6.0f));
}

// A pixel whose window starts at input column x0 (possibly negative) and hangs over the row's ends.
// Four vectors (64 channels) go at once, so that four FMA chains are in flight.
PCK_AVX512 static void edge_pixel(const float *const *rows, size_t k, const float *weight, const float *bias,
                                  size_t c, ptrdiff_t x0, size_t width, int relu6, float *out) {
    const size_t kx_first = x0 < 0 ? (size_t)(-x0) : 0;
    const ptrdiff_t room = (ptrdiff_t)width - x0;
    const size_t kx_end = room < (ptrdiff_t)k ? (room > 0 ? (size_t)room : 0) : k;
    size_t ch = 0;
    for (; ch + 64 <= c; ch += 64) {
        __m512 acc[4];
        for (size_t g = 0; g < 4; g++) acc[g] = _mm512_loadu_ps(bias + ch + 16 * g);
        for (size_t ky = 0; ky < k; ky++) {
            for (size_t kx = kx_first; kx < kx_end; kx++) {
                const float *tap = rows[ky] + (size_t)(x0 + (ptrdiff_t)kx) * c + ch;
                const float *w = weight + (ky * k + kx) * c + ch;
                for (size_t g = 0; g < 4; g++) {
                    acc[g] = _mm512_fmadd_ps(_mm512_loadu_ps(w + 16 * g), _mm512_loadu_ps(tap + 16 * g), acc[g]);
                }
            }
        }
        for (size_t g = 0; g < 4; g++) _mm512_storeu_ps(out + ch + 16 * g, finish16(acc[g], relu6));
    }
    for (; ch < c; ch += 16) {
        const __mmask16 m = pck_lanes16(c - ch);
        __m512 acc = _mm512_maskz_loadu_ps(m, bias + ch);
        for (size_t ky = 0; ky < k; ky++) {
            for (size_t kx = kx_first; kx < kx_end; kx++) {
                const float *tap = rows[ky] + (size_t)(x0 + (ptrdiff_t)kx) * c + ch;
                acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, weight + (ky * k + kx) * c + ch),
                                      _mm512_maskz_loadu_ps(m, tap), acc);
            }
        }
        _mm512_mask_storeu_ps(out + ch, m, finish16(acc, relu6));
    }
}

// `P` (4 or 8, a literal after inlining) output pixels whose windows start at input column x0 and
// lie inside the row, pixels `stride` columns apart.
PCK_AVX512 static inline __attribute__((always_inline))
void inside_pixels(const size_t P, const float *const *rows, size_t k, const float *weight, const float *bias,
                   size_t c, size_t stride, size_t x0, int relu6, float *out) {
    const size_t step = stride * c;
    for (size_t ch = 0; ch < c; ch += 16) {
        const __mmask16 m = pck_lanes16(c - ch);
        __m512 acc[8];
        const __m512 b = _mm512_maskz_loadu_ps(m, bias + ch);
        PCK_UNROLL8 for (size_t p = 0; p < P; p++) acc[p] = b;
        for (size_t ky = 0; ky < k; ky++) {
            const float *tap = rows[ky] + x0 * c + ch;
            const float *w = weight + ky * k * c + ch;
            for (size_t kx = 0; kx < k; kx++, tap += c, w += c) {
                const __m512 wv = _mm512_maskz_loadu_ps(m, w);
                PCK_UNROLL8 for (size_t p = 0; p < P; p++) {
                    acc[p] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, tap + p * step), acc[p]);
                }
            }
        }
        PCK_UNROLL8 for (size_t p = 0; p < P; p++) _mm512_mask_storeu_ps(out + p * c + ch, m, finish16(acc[p], relu6));
    }
}

// One group of P output pixels (window starts x0, x0 + S, ...; x0 may be negative) for one
// 16-channel slice, a K x K kernel at stride S, all literals after inlining. For each row of taps
// the group reads input columns j = 0 ..< (P - 1) S + K once; column j feeds pixel p through tap
// kx = j - S p where 0 <= kx < K, from the row's K weights held in registers: for eight pixels,
// 7 S + 2 K loads go with 8 K FMAs where inside_pixels does 9 K loads. With `edges`, columns outside the row are
// padding and skipped; without, the caller has checked that there are none (the check in every
// column halves the speed of the groups inside the row).
PCK_AVX512 static inline __attribute__((always_inline))
void group_slice(const size_t P, const size_t K, const size_t S, const int edges, const float *const *rows,
                 const float *weight, __m512 b, __mmask16 m, size_t c, size_t ch, size_t width, ptrdiff_t x0,
                 int relu6, float *out) {
    __m512 acc[P];
    PCK_UNROLL8 for (size_t p = 0; p < P; p++) acc[p] = b;
    for (size_t ky = 0; ky < K; ky++) {
        __m512 wv[K];
        _Pragma("GCC unroll 5") for (size_t kx = 0; kx < K; kx++) {
            wv[kx] = _mm512_maskz_loadu_ps(m, weight + (ky * K + kx) * c + ch);
        }
        const float *row = rows[ky] + ch;
        _Pragma("GCC unroll 24") for (size_t j = 0; j < (P - 1) * S + K; j++) {
            const ptrdiff_t ix = x0 + (ptrdiff_t)j;
            if (edges && (ix < 0 || ix >= (ptrdiff_t)width)) continue;
            const __m512 v = _mm512_maskz_loadu_ps(m, row + ix * (ptrdiff_t)c);
            PCK_UNROLL8 for (size_t p = 0; p < P; p++) {
                if (j >= S * p && j - S * p < K) acc[p] = _mm512_fmadd_ps(wv[j - S * p], v, acc[p]);
            }
        }
    }
    PCK_UNROLL8 for (size_t p = 0; p < P; p++) _mm512_mask_storeu_ps(out + p * c + ch, m, finish16(acc[p], relu6));
}

// Output pixels [0, out_width) of the row (at least P of them), slice after slice, in groups of P
// (the last group overlapping the one before).
PCK_AVX512 static inline __attribute__((always_inline))
void row_slices(const size_t P, const size_t K, const size_t S, const float *const *rows, const float *weight,
                const float *bias, size_t c, size_t width, size_t pad_left, size_t out_width, int relu6, float *out) {
    const ptrdiff_t span = (ptrdiff_t)((P - 1) * S + K);
    for (size_t ch = 0; ch < c; ch += 16) {
        const __mmask16 m = pck_lanes16(c - ch);
        const __m512 b = _mm512_maskz_loadu_ps(m, bias + ch);
        for (size_t ox = 0; ox < out_width; ox += P) {
            const size_t first = ox + P <= out_width ? ox : out_width - P;
            const ptrdiff_t x0 = (ptrdiff_t)(first * S) - (ptrdiff_t)pad_left;
            // Groups whose columns all lie inside the row take the copy without the checks.
            if (x0 >= 0 && x0 + span <= (ptrdiff_t)width) {
                group_slice(P, K, S, 0, rows, weight, b, m, c, ch, width, x0, relu6, out + first * c);
            } else {
                group_slice(P, K, S, 1, rows, weight, b, m, c, ch, width, x0, relu6, out + first * c);
            }
        }
    }
}

// row_slices in groups of P (a literal after inlining) for the kernels and strides it is written
// out for (3 x 3 and 5 x 5 at stride 1 or 2): 1 when it ran, 0 for the others.
PCK_AVX512 static inline __attribute__((always_inline))
int row_slices_in_groups_of(const size_t P, const float *const *rows, size_t k, const float *weight,
                            const float *bias, size_t c, size_t width, size_t pad_left, size_t stride,
                            size_t out_width, int relu6, float *out) {
#define PCK_ROW_SLICES(K, S) row_slices(P, K, S, rows, weight, bias, c, width, pad_left, out_width, relu6, out)
    if (k == 3 && stride == 1) PCK_ROW_SLICES(3, 1);
    else if (k == 3 && stride == 2) PCK_ROW_SLICES(3, 2);
    else if (k == 5 && stride == 1) PCK_ROW_SLICES(5, 1);
    else if (k == 5 && stride == 2) PCK_ROW_SLICES(5, 2);
    else return 0;
#undef PCK_ROW_SLICES
    return 1;
}

// row_slices for the shapes it is written out for: groups of 8 on rows of at least 8 outputs,
// one group of 7 on rows of 7 (EfficientNet-Lite0's last stage). 1 when it ran, 0 for the others.
PCK_AVX512 static int row_slices_for(const float *const *rows, size_t k, const float *weight, const float *bias,
                                     size_t c, size_t width, size_t pad_left, size_t stride, size_t out_width,
                                     int relu6, float *out) {
    if (out_width >= 8) {
        return row_slices_in_groups_of(8, rows, k, weight, bias, c, width, pad_left, stride, out_width, relu6, out);
    }
    if (out_width == 7) {
        return row_slices_in_groups_of(7, rows, k, weight, bias, c, width, pad_left, stride, out_width, relu6, out);
    }
    return 0;
}

PCK_AVX512 void pck_depthwise_row_avx512(const float *const *rows, size_t k, const float *weight, const float *bias,
                                         size_t c, size_t width, size_t pad_left, size_t stride, size_t out_width,
                                         int relu6, float *out) {
    if (row_slices_for(rows, k, weight, bias, c, width, pad_left, stride, out_width, relu6, out)) return;
    // Inside pixels: ox * stride >= pad_left and ox * stride - pad_left + k <= width.
    size_t lo = (pad_left + stride - 1) / stride, hi = width + pad_left >= k ? (width + pad_left - k) / stride + 1 : 0;
    if (hi > out_width) hi = out_width;
    if (lo > hi) lo = hi;
    if (hi - lo < 4) lo = hi;  // too few for the grouped path: all pixels take the edge path
    for (size_t ox = 0; ox < lo; ox++) {
        edge_pixel(rows, k, weight, bias, c, (ptrdiff_t)(ox * stride) - (ptrdiff_t)pad_left, width, relu6, out + ox * c);
    }
    size_t ox = lo;
    for (; ox + 8 <= hi; ox += 8) inside_pixels(8, rows, k, weight, bias, c, stride, ox * stride - pad_left, relu6, out + ox * c);
    // The rest in groups of four, the last one overlapping the one before (see pck_depthwise.c).
    while (ox < hi) {
        const size_t first = ox + 4 <= hi ? ox : hi - 4;
        inside_pixels(4, rows, k, weight, bias, c, stride, first * stride - pad_left, relu6, out + first * c);
        ox = first + 4;
    }
    for (ox = hi; ox < out_width; ox++) {
        edge_pixel(rows, k, weight, bias, c, (ptrdiff_t)(ox * stride) - (ptrdiff_t)pad_left, width, relu6, out + ox * c);
    }
}
