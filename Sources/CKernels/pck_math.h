// Private to CKernels: the exp shared by the kernels (scalar, AVX2 + FMA and AVX-512 versions), the
// row softmax both kernels files use, the AVX-512 lane mask, and the CPU checks.
//
//   exp(x): range reduction x = n ln2 + r, |r| <= ln2/2 (ln2 split in two parts so r is exact
//           enough), a degree-6 Taylor polynomial for e^r, then 2^n built in the exponent bits.
//           Inputs are clamped to [-87, 88] so 2^n stays normal; below -87 the result is exactly 0
//           (so masked keys get probability 0).
#ifndef PCK_MATH_H
#define PCK_MATH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <immintrin.h>

#define PCK_AVX2 __attribute__((target("avx2,fma")))
#define PCK_AVX512 __attribute__((target("avx512f,avx2,fma")))
// The bf16 product's body: vdpbf16ps and vcvtneps2bf16 (AVX512-BF16), 16-bit masked stores (BW).
#define PCK_AVX512_BF16 __attribute__((target("avx512bf16,avx512f,avx512bw,avx512vl,avx2,fma")))

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

PCK_AVX2 static inline __m256 exp_avx2(__m256 x) {
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

/// Lanes [0, valid) of a 16-lane AVX-512 mask (valid may exceed 16: all lanes): the tails of the
/// AVX-512 bodies load and store through it.
static inline __mmask16 pck_lanes16(size_t valid) {
    return valid >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << valid) - 1u);
}

/// The exp above, 16 lanes at a time (the AVX-512 bodies).
PCK_AVX512 static inline __m512 exp_avx512(__m512 x) {
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    __m512 xc = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
    __m512 shifted = _mm512_fmadd_ps(xc, _mm512_set1_ps(1.4426950408889634f), magic);
    __m512 n = _mm512_sub_ps(shifted, magic);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    __m512i e = _mm512_sub_epi32(_mm512_castps_si512(shifted), _mm512_castps_si512(magic));
    e = _mm512_slli_epi32(_mm512_add_epi32(e, _mm512_set1_epi32(127)), 23);
    __m512 result = _mm512_mul_ps(p, _mm512_castsi512_ps(e));
    // x >= -87 keeps the value; below, the lane becomes exactly 0.
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_GE_OQ), result);
}

/// The micro-kernel of attention's small products: two rows of A against
/// `blocks` (1 to 4) groups of 8 columns of B, `acc0[j] += sum_k a0[k] b[k * ldb + 8j]` and the same
/// for a1. Called with a literal `blocks`, so that after inlining the eight accumulators live in
/// registers and their FMA chains overlap; each loaded B vector feeds both rows.
PCK_AVX2 static inline __attribute__((always_inline))
void pck_tile_2x8n(const float *a0, const float *a1, size_t depth, const float *b, size_t ldb, size_t blocks,
                   __m256 acc0[4], __m256 acc1[4]) {
    for (size_t k = 0; k < depth; k++) {
        __m256 s0 = _mm256_set1_ps(a0[k]), s1 = _mm256_set1_ps(a1[k]);
        const float *row = b + k * ldb;
        for (size_t j = 0; j < blocks; j++) {
            __m256 bv = _mm256_loadu_ps(row + 8 * j);
            acc0[j] = _mm256_fmadd_ps(s0, bv, acc0[j]);
            acc1[j] = _mm256_fmadd_ps(s1, bv, acc1[j]);
        }
    }
}

/// 1 when the CPU has AVX2 and FMA and pck_force_portable is off.
int pck_has_avx2_fma(void);

/// 1 when the CPU (and the OS) has AVX-512F as well, and neither pck_force_portable nor
/// pck_force_avx2 is on.
int pck_has_avx512(void);

/// The AVX-512 bodies of pck_gelu and pck_bias_gelu (pck_elementwise_avx512.c); same contracts.
PCK_AVX512 void pck_gelu_avx512(float *x, size_t count);
PCK_AVX512 void pck_bias_gelu_avx512(float *x, size_t rows, size_t width, const float *bias);

/// The AVX-512 body of pck_depthwise_row (pck_depthwise_avx512.c); same contract.
PCK_AVX512 void pck_depthwise_row_avx512(const float *const *rows, size_t k, const float *weight, const float *bias,
                                         size_t c, size_t width, size_t pad_left, size_t stride, size_t out_width,
                                         int relu6, float *out);

/// The AVX-512 body of pck_gemm_packed (pck_gemm_avx512.c); same contract.
PCK_AVX512 void pck_gemm_packed_avx512(const float *x, size_t rows, size_t in, const float *packed, const float *bias,
                                        const float *residual, size_t out, int act, float *y);

/// 1 when the CPU has AVX512-BF16 (and AVX512-BW) as well as pck_has_avx512's AVX-512F, and
/// neither pck_force_portable, pck_force_avx2 nor pck_force_portable_bf16 is on.
int pck_has_avx512_bf16(void);

/// Inputs per row of a bf16 packed weight or bf16 row of x: `in` rounded up to a multiple of 32,
/// the padding zero (the AVX512-BF16 body takes inputs in pairs, the AMX body in tiles of 32).
static inline size_t pck_bf16_padded_inputs(size_t in) { return (in + 31) & ~(size_t)31; }

/// The AVX512-BF16 body of pck_gemm_packed_bf16 (pck_gemm_bf16_avx512.c); same contract, with
/// `xb` room for rows * pck_bf16_padded_inputs(in) bf16 values (x rounded to bf16, written here).
PCK_AVX512_BF16 void pck_gemm_packed_bf16_avx512(const float *x, uint16_t *xb, size_t rows, size_t in,
                                                 const uint16_t *packed, const float *bias, const float *residual,
                                                 size_t out, int act, float *y);

/// The AMX body of pck_gemm_packed_bf16 (pck_gemm_bf16_amx.c); same contract, with `xb` room for
/// (rows rounded up to 16) x pck_bf16_padded_inputs(in) bf16 values.
void pck_gemm_packed_bf16_amx(const float *x, uint16_t *xb, size_t rows, size_t in, const uint16_t *packed,
                              const float *bias, const float *residual, size_t out, int act, float *y);

/// 1 when the CPU has AMX-BF16 and AMX-TILE and the OS has given this process the tile state
/// (asks Linux for it; pck_gemm_bf16_amx.c).
int pck_amx_bf16_os_ready(void);

/// pck_bf16_rate's measurement (pck_gemm_bf16_avx512.c).
PCK_AVX512_BF16 double pck_bf16_rate_avx512(void);

/// Columns of attention's K^T and score rows: `length` rounded up to 16, so that neither the AVX2
/// body (8 lanes) nor the AVX-512 one (16) runs off a row.
static inline size_t pck_attention_padded(size_t length) { return (length + 15) & ~(size_t)15; }

/// K^T for attention's score products: kt[d * lp + j] = k[j * ld + d] for j < n, zero up to lp.
static inline void pck_transpose_keys(const float *k, size_t ld, size_t n, size_t dh, size_t lp, float *kt) {
    for (size_t d = 0; d < dh; d++) {
        for (size_t j = 0; j < n; j++) kt[d * lp + j] = k[j * ld + d];
        for (size_t j = n; j < lp; j++) kt[d * lp + j] = 0;
    }
}

/// The AVX-512 body of pck_attention_head (pck_attention_avx512.c), for head widths that are a
/// multiple of 16; same contract.
PCK_AVX512 void pck_attention_avx512(const float *q, const float *k, const float *v, size_t ld, size_t n, size_t dh,
                                     float scale, const float *mask, float *out, size_t ldo, float *scratch);

/// softmax(s + mask) over one row of `width` (>= 1) values, in place; `mask` may be NULL.
void pck_softmax_row_portable(float *s, size_t width, const float *mask);
PCK_AVX2 void pck_softmax_row_avx2(float *s, size_t width, const float *mask);
PCK_AVX512 void pck_softmax_row_avx512(float *s, size_t width, const float *mask);

#endif
