// One head of scaled dot-product attention for one post: scores, masked softmax, weighted values.
//
// Why not sgemm: a MiniLM head is a 64 x 64 x 32 product and a 64 x 32 x 64 one, and at that
// size OpenBLAS spends more on packing and dispatch than on arithmetic. Here K is transposed once
// into scratch (so a score row is a sum of broadcast q values times contiguous K columns), the
// scores stay in scratch for the softmax, and both products run in tiles of two query rows.
#include "pck_kernels.h"
#include "pck_math.h"

size_t pck_attention_scratch(size_t length, size_t head_width) {
    size_t lp = pck_attention_padded(length);
    return head_width * lp + length * lp;  // K^T, then the score rows
}

// ---- portable body -------------------------------------------------------------------------

static void attention_portable(const float *q, const float *k, const float *v, size_t ld, size_t n,
                               size_t dh, float scale, const float *mask, float *out, size_t ldo,
                               float *scratch) {
    float *scores = scratch;
    for (size_t i = 0; i < n; i++) {
        float *s = scores + i * n;
        for (size_t j = 0; j < n; j++) {
            float dot = 0;
            for (size_t d = 0; d < dh; d++) dot += q[i * ld + d] * k[j * ld + d];
            s[j] = dot * scale;
        }
        pck_softmax_row_portable(s, n, mask);
        for (size_t d = 0; d < dh; d++) {
            float acc = 0;
            for (size_t j = 0; j < n; j++) acc += s[j] * v[j * ld + d];
            out[i * ldo + d] = acc;
        }
    }
}

// ---- AVX2 + FMA body (head width a multiple of 8) -----------------------------------------

// rows (1 or 2) query rows against blocks (1 to 4) groups of 8 keys of K^T.
PCK_AVX2 static inline __attribute__((always_inline))
void score_tile(const float *q, size_t ld, size_t rows, const float *kt, size_t lp, size_t blocks,
                size_t dh, float scale, float *s, size_t lds) {
    __m256 a0[4], a1[4];
    for (size_t b = 0; b < 4; b++) { a0[b] = _mm256_setzero_ps(); a1[b] = _mm256_setzero_ps(); }
    pck_tile_2x8n(q, rows == 2 ? q + ld : q, dh, kt, lp, blocks, a0, a1);
    const __m256 sv = _mm256_set1_ps(scale);
    for (size_t b = 0; b < blocks; b++) {
        _mm256_storeu_ps(s + 8 * b, _mm256_mul_ps(a0[b], sv));
        if (rows == 2) _mm256_storeu_ps(s + lds + 8 * b, _mm256_mul_ps(a1[b], sv));
    }
}

// rows (1 or 2) probability rows against blocks (1 to 4) groups of 8 value columns.
PCK_AVX2 static inline __attribute__((always_inline))
void value_tile(const float *p, size_t lp, size_t rows, const float *v, size_t ld, size_t blocks,
                size_t n, float *out, size_t ldo) {
    __m256 a0[4], a1[4];
    for (size_t b = 0; b < 4; b++) { a0[b] = _mm256_setzero_ps(); a1[b] = _mm256_setzero_ps(); }
    pck_tile_2x8n(p, rows == 2 ? p + lp : p, n, v, ld, blocks, a0, a1);
    for (size_t b = 0; b < blocks; b++) {
        _mm256_storeu_ps(out + 8 * b, a0[b]);
        if (rows == 2) _mm256_storeu_ps(out + ldo + 8 * b, a1[b]);
    }
}

PCK_AVX2 static void attention_avx2(const float *q, const float *k, const float *v, size_t ld, size_t n,
                                    size_t dh, float scale, const float *mask, float *out, size_t ldo,
                                    float *scratch) {
    const size_t lp = pck_attention_padded(n);
    float *kt = scratch;                // [dh][lp], zero past column n
    float *scores = scratch + dh * lp;  // [n][lp]
    pck_transpose_keys(k, ld, n, dh, lp, kt);
    // Scores in tiles of up to 2 query rows x 32 keys (eight accumulators, so the FMA chains
    // overlap): s[i, j..j+8] = scale sum_d q[i, d] K^T[d, j..j+8].
    for (size_t i = 0; i < n; i += 2) {
        const size_t rows = n - i >= 2 ? 2 : 1;
        // Literal block counts, so that after inlining the accumulators live in registers.
        size_t j = 0;
        for (; j + 32 <= lp; j += 32) score_tile(q + i * ld, ld, rows, kt + j, lp, 4, dh, scale, scores + i * lp + j, lp);
        for (; j < lp; j += 8) score_tile(q + i * ld, ld, rows, kt + j, lp, 1, dh, scale, scores + i * lp + j, lp);
    }
    for (size_t r = 0; r < n; r++) pck_softmax_row_avx2(scores + r * lp, n, mask);
    // Values in tiles of up to 2 query rows x 32 value columns: out[i, c..c+8] = sum_j p[i, j] v[j, c..c+8].
    for (size_t i = 0; i < n; i += 2) {
        const size_t rows = n - i >= 2 ? 2 : 1;
        size_t c = 0;
        for (; c + 32 <= dh; c += 32) value_tile(scores + i * lp, lp, rows, v + c, ld, 4, n, out + i * ldo + c, ldo);
        for (; c < dh; c += 8) value_tile(scores + i * lp, lp, rows, v + c, ld, 1, n, out + i * ldo + c, ldo);
    }
}

void pck_attention_head(const float *q, const float *k, const float *v, size_t ld,
                        size_t length, size_t head_width, float scale, const float *mask,
                        float *out, size_t ldo, float *scratch) {
    if (length == 0 || head_width == 0) return;
    if (pck_has_avx512() && head_width % 16 == 0) {
        pck_attention_avx512(q, k, v, ld, length, head_width, scale, mask, out, ldo, scratch);
    } else if (pck_has_avx2_fma() && head_width % 8 == 0) {
        attention_avx2(q, k, v, ld, length, head_width, scale, mask, out, ldo, scratch);
    } else {
        attention_portable(q, k, v, ld, length, head_width, scale, mask, out, ldo, scratch);
    }
}
