// The AVX-512 bodies of pck_gelu and pck_bias_gelu: the formula of pck_elementwise.c (Abramowitz &
// Stegun's erfc and exp_avx512 of pck_math.h), 16 values per register, a row's tail through a lane
// mask instead of a scalar loop. At tweet lengths GELU is a few percent of a BERT pass. Also the
// row softmax of pck_softmax_rows and of the AVX-512 attention body.
#include "pck_kernels.h"
#include "pck_math.h"

PCK_AVX512 static inline __m512 gelu16(__m512 v) {
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 z = _mm512_mul_ps(_mm512_abs_ps(v), _mm512_set1_ps(0.70710678118654752f));
    const __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(z, _mm512_set1_ps(0.3275911f), one));
    __m512 p = _mm512_set1_ps(1.061405429f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
    const __m512 erfc = _mm512_mul_ps(_mm512_mul_ps(p, t), exp_avx512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(z, z))));
    // erf(x / sqrt 2) carries the sign of x: 1 - erfc where x >= 0, erfc - 1 below.
    const __mmask16 negative = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
    const __m512 magnitude = _mm512_sub_ps(one, erfc);
    const __m512 signed_erf = _mm512_mask_sub_ps(magnitude, negative, _mm512_setzero_ps(), magnitude);
    return _mm512_mul_ps(_mm512_mul_ps(v, _mm512_set1_ps(0.5f)), _mm512_add_ps(one, signed_erf));
}

PCK_AVX512 void pck_gelu_avx512(float *x, size_t count) {
    for (size_t i = 0; i < count; i += 16) {
        const __mmask16 m = pck_lanes16(count - i);
        _mm512_mask_storeu_ps(x + i, m, gelu16(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

PCK_AVX512 void pck_bias_gelu_avx512(float *x, size_t rows, size_t width, const float *bias) {
    for (size_t r = 0; r < rows; r++) {
        float *row = x + r * width;
        for (size_t j = 0; j < width; j += 16) {
            const __mmask16 m = pck_lanes16(width - j);
            const __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, row + j), _mm512_maskz_loadu_ps(m, bias + j));
            _mm512_mask_storeu_ps(row + j, m, gelu16(v));
        }
    }
}

/// softmax(s + mask) over the first `width` values of a row, in place; lanes past `width` in the
/// last vector are neither read into the max and sum nor written.
PCK_AVX512 void pck_softmax_row_avx512(float *s, size_t width, const float *mask) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (size_t j = 0; j < width; j += 16) {
        const __mmask16 lanes = pck_lanes16(width - j);
        __m512 x = _mm512_maskz_loadu_ps(lanes, s + j);
        if (mask) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(lanes, mask + j));
        _mm512_mask_storeu_ps(s + j, lanes, x);
        mx = _mm512_mask_max_ps(mx, lanes, mx, x);
    }
    const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    __m512 sum = _mm512_setzero_ps();
    for (size_t j = 0; j < width; j += 16) {
        const __mmask16 lanes = pck_lanes16(width - j);
        const __m512 e = _mm512_maskz_mov_ps(lanes, exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(lanes, s + j), m)));
        _mm512_mask_storeu_ps(s + j, lanes, e);
        sum = _mm512_add_ps(sum, e);
    }
    const __m512 inv = _mm512_set1_ps(1 / _mm512_reduce_add_ps(sum));
    for (size_t j = 0; j < width; j += 16) {
        const __mmask16 lanes = pck_lanes16(width - j);
        _mm512_mask_storeu_ps(s + j, lanes, _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, s + j), inv));
    }
}
