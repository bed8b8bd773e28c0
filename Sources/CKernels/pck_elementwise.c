// Element-wise kernels: GELU and masked row softmax, each as a scalar body and an AVX2 + FMA body.
//
// The formulas are the ones the Swift engine used before these kernels existed:
//   GELU: erfc from Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7):
//         erfc(z) = t P(t) e^(-z^2), t = 1 / (1 + 0.3275911 z), z = |x| / sqrt 2,
//         then 1 + erf(x / sqrt 2) = 1 + sign(x) (1 - erfc(z)).
//   exp:  see pck_math.h.
#include "pck_kernels.h"
#include "pck_math.h"

// ---- scalar bodies -------------------------------------------------------------------------

static inline float gelu_scalar(float x) {
    float z = fabsf(x) * 0.70710678118654752f;
    float t = 1 / (1 + 0.3275911f * z);
    float p = 1.061405429f;
    p = p * t - 1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t - 0.284496736f;
    p = p * t + 0.254829592f;
    float erfc = p * t * exp_scalar(-z * z);
    float one_plus_erf = 1 + copysignf(1 - erfc, x);
    return 0.5f * x * one_plus_erf;
}

static void gelu_portable(float *x, size_t count) {
    for (size_t i = 0; i < count; i++) x[i] = gelu_scalar(x[i]);
}

static void bias_gelu_portable(float *x, size_t rows, size_t width, const float *bias) {
    for (size_t r = 0; r < rows; r++) {
        for (size_t j = 0; j < width; j++) x[r * width + j] = gelu_scalar(x[r * width + j] + bias[j]);
    }
}

void pck_softmax_row_portable(float *s, size_t width, const float *mask) {
    if (mask) for (size_t j = 0; j < width; j++) s[j] += mask[j];
    float m = s[0];
    for (size_t j = 1; j < width; j++) m = s[j] > m ? s[j] : m;
    float total = 0;
    for (size_t j = 0; j < width; j++) { s[j] = exp_scalar(s[j] - m); total += s[j]; }
    float inv = 1 / total;
    for (size_t j = 0; j < width; j++) s[j] *= inv;
}

// ---- AVX2 + FMA bodies ---------------------------------------------------------------------

PCK_AVX2 static inline __m256 gelu8(__m256 v) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 z = _mm256_mul_ps(_mm256_andnot_ps(sign, v), _mm256_set1_ps(0.70710678118654752f));
    __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(z, _mm256_set1_ps(0.3275911f), one));
    __m256 p = _mm256_set1_ps(1.061405429f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
    __m256 negz2 = _mm256_xor_ps(_mm256_mul_ps(z, z), sign);
    __m256 erfc = _mm256_mul_ps(_mm256_mul_ps(p, t), exp_avx2(negz2));
    __m256 signed_erf = _mm256_or_ps(_mm256_sub_ps(one, erfc), _mm256_and_ps(v, sign));
    return _mm256_mul_ps(_mm256_mul_ps(v, _mm256_set1_ps(0.5f)), _mm256_add_ps(one, signed_erf));
}

PCK_AVX2 static void gelu_avx2(float *x, size_t count) {
    size_t i = 0;
    for (; i + 8 <= count; i += 8) _mm256_storeu_ps(x + i, gelu8(_mm256_loadu_ps(x + i)));
    for (; i < count; i++) x[i] = gelu_scalar(x[i]);
}

PCK_AVX2 static void bias_gelu_avx2(float *x, size_t rows, size_t width, const float *bias) {
    for (size_t r = 0; r < rows; r++) {
        float *row = x + r * width;
        size_t j = 0;
        for (; j + 8 <= width; j += 8) {
            _mm256_storeu_ps(row + j, gelu8(_mm256_add_ps(_mm256_loadu_ps(row + j), _mm256_loadu_ps(bias + j))));
        }
        for (; j < width; j++) row[j] = gelu_scalar(row[j] + bias[j]);
    }
}

PCK_AVX2 static inline float hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

PCK_AVX2 static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

PCK_AVX2 void pck_softmax_row_avx2(float *s, size_t width, const float *mask) {
    size_t vec = width & ~(size_t)7;
    if (mask) {
        size_t j = 0;
        for (; j < vec; j += 8) _mm256_storeu_ps(s + j, _mm256_add_ps(_mm256_loadu_ps(s + j), _mm256_loadu_ps(mask + j)));
        for (; j < width; j++) s[j] += mask[j];
    }
    float m = s[0];
    if (vec) {
        __m256 acc = _mm256_loadu_ps(s);
        for (size_t j = 8; j < vec; j += 8) acc = _mm256_max_ps(acc, _mm256_loadu_ps(s + j));
        m = hmax(acc);
    }
    for (size_t j = vec; j < width; j++) m = s[j] > m ? s[j] : m;
    const __m256 mv = _mm256_set1_ps(m);
    __m256 acc = _mm256_setzero_ps();
    size_t j = 0;
    for (; j < vec; j += 8) {
        __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(s + j), mv));
        _mm256_storeu_ps(s + j, e);
        acc = _mm256_add_ps(acc, e);
    }
    float total = hsum(acc);
    for (; j < width; j++) { s[j] = exp_scalar(s[j] - m); total += s[j]; }
    const __m256 inv = _mm256_set1_ps(1 / total);
    for (j = 0; j < vec; j += 8) _mm256_storeu_ps(s + j, _mm256_mul_ps(_mm256_loadu_ps(s + j), inv));
    for (; j < width; j++) s[j] *= 1 / total;
}

// ---- dispatch ------------------------------------------------------------------------------

static int force_portable = 0;

void pck_force_portable(int on) { force_portable = on; }

int pck_has_avx2_fma(void) {
    if (force_portable) return 0;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

int pck_uses_avx2(void) { return pck_has_avx2_fma(); }

static int force_avx2 = 0;

void pck_force_avx2(int on) { force_avx2 = on; }

int pck_has_avx512(void) {
    if (force_avx2 || !pck_has_avx2_fma()) return 0;
    // The compiler's check includes the OS's: XCR0 must save the opmask and zmm registers.
    return __builtin_cpu_supports("avx512f");
}

int pck_uses_avx512(void) { return pck_has_avx512(); }

void pck_gelu(float *x, size_t count) {
    if (pck_has_avx512()) pck_gelu_avx512(x, count);
    else if (pck_has_avx2_fma()) gelu_avx2(x, count);
    else gelu_portable(x, count);
}

void pck_bias_gelu(float *x, size_t rows, size_t width, const float *bias) {
    if (pck_has_avx512()) pck_bias_gelu_avx512(x, rows, width, bias);
    else if (pck_has_avx2_fma()) bias_gelu_avx2(x, rows, width, bias);
    else bias_gelu_portable(x, rows, width, bias);
}

void pck_softmax_rows(float *scores, size_t rows, size_t width, const float *mask) {
    if (width == 0) return;
    const int widest = pck_has_avx512() ? 2 : pck_has_avx2_fma();
    for (size_t r = 0; r < rows; r++) {
        float *s = scores + r * width;
        if (widest == 2) pck_softmax_row_avx512(s, width, mask);
        else if (widest == 1) pck_softmax_row_avx2(s, width, mask);
        else pck_softmax_row_portable(s, width, mask);
    }
}
