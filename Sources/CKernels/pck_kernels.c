// Element-wise kernels: GELU and masked row softmax, each as a scalar body and an AVX2 + FMA body.
//
// The formulas are the ones the Swift engine used before these kernels existed (VecMath.swift):
//   exp(x):  range reduction x = n ln2 + r, |r| <= ln2/2 (ln2 split in two parts so r is exact
//            enough), a degree-6 Taylor polynomial for e^r, then 2^n built in the exponent bits.
//            Inputs are clamped to [-87, 88] so 2^n stays normal; below -87 the result is exactly 0.
//   GELU:    erfc from Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7):
//            erfc(z) = t P(t) e^(-z^2), t = 1 / (1 + 0.3275911 z), z = |x| / sqrt 2,
//            then 1 + erf(x / sqrt 2) = 1 + sign(x) (1 - erfc(z)).
#include "pck_kernels.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <immintrin.h>

// ---- scalar bodies -------------------------------------------------------------------------

static inline float bits_to_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t float_to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static inline float exp_scalar(float x) {
    float xc = fminf(fmaxf(x, -87.0f), 88.0f);
    const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer in the low bits
    float shifted = xc * 1.4426950408889634f + magic;
    float n = shifted - magic;
    float r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;
    float p = 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1;
    p = p * r + 1;
    uint32_t exponent = (float_to_bits(shifted) - float_to_bits(magic) + 127u) << 23;
    return x < -87.0f ? 0.0f : p * bits_to_float(exponent);
}

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

static void softmax_row_portable(float *s, size_t width, const float *mask) {
    if (mask) for (size_t j = 0; j < width; j++) s[j] += mask[j];
    float m = s[0];
    for (size_t j = 1; j < width; j++) m = s[j] > m ? s[j] : m;
    float total = 0;
    for (size_t j = 0; j < width; j++) { s[j] = exp_scalar(s[j] - m); total += s[j]; }
    float inv = 1 / total;
    for (size_t j = 0; j < width; j++) s[j] *= inv;
}

// ---- AVX2 + FMA bodies ---------------------------------------------------------------------

#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static inline __m256 exp_avx2(__m256 x) {
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    __m256 xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
    __m256 shifted = _mm256_fmadd_ps(xc, _mm256_set1_ps(1.4426950408889634f), magic);
    __m256 n = _mm256_sub_ps(shifted, magic);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_castps_si256(magic));
    e = _mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(127)), 23);
    __m256 result = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    // x >= -87 keeps the value; below, the lane becomes exactly 0.
    return _mm256_and_ps(result, _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_GE_OQ));
}

AVX2 static void gelu_avx2(float *x, size_t count) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 one = _mm256_set1_ps(1.0f);
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
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
        __m256 half_x = _mm256_mul_ps(v, _mm256_set1_ps(0.5f));
        _mm256_storeu_ps(x + i, _mm256_mul_ps(half_x, _mm256_add_ps(one, signed_erf)));
    }
    for (; i < count; i++) x[i] = gelu_scalar(x[i]);
}

AVX2 static inline float hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

AVX2 static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

AVX2 static void softmax_row_avx2(float *s, size_t width, const float *mask) {
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

static int has_avx2_fma(void) {
    if (force_portable) return 0;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

int pck_uses_avx2(void) { return has_avx2_fma(); }

void pck_gelu(float *x, size_t count) {
    if (has_avx2_fma()) gelu_avx2(x, count); else gelu_portable(x, count);
}

void pck_softmax_rows(float *scores, size_t rows, size_t width, const float *mask) {
    if (width == 0) return;
    int wide = has_avx2_fma();
    for (size_t r = 0; r < rows; r++) {
        float *s = scores + r * width;
        if (wide) softmax_row_avx2(s, width, mask); else softmax_row_portable(s, width, mask);
    }
}
