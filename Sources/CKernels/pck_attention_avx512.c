// The AVX-512 body of pck_attention_head (see pck_attention.c for the contract and the AVX2 body).
//
// Same three steps as the AVX2 body (K transposed into scratch, scores, masked softmax in place,
// weighted values), with 16-wide vectors and larger tiles: scores in tiles of 4 query rows x 64
// keys (16 accumulators; each step loads 4 key vectors and broadcasts 4 query values), values in
// tiles of 4 rows x up to 64 columns (a MiniLM head is 32 wide, a BERT-base one 64). Short edges
// (fewer rows, fewer key blocks) take literal cases, so every tile keeps its accumulators in
// registers; the keys past `length` in the last block are zero in K^T and left out of the
// softmax (pck_softmax_row_avx512, pck_elementwise_avx512.c) through a lane mask.
#include "pck_kernels.h"
#include "pck_math.h"

enum { LANES = 16, TILE_ROWS = 4, MAX_BLOCKS = 4 };
#define PCK_UNROLL4 _Pragma("GCC unroll 4")

/// `acc[r][b] += sum_k a[r * lda + k] * m[k * ldm + 16 b]` for ROWS (1 to 4) rows of a and BLOCKS
/// (1 to 4) blocks of 16 columns of m, over `depth` steps. Both counts are literals after inlining.
PCK_AVX512 static inline __attribute__((always_inline))
void tile512(const size_t ROWS, const size_t BLOCKS, const float *a, size_t lda, const float *m, size_t ldm,
             size_t depth, __m512 acc[TILE_ROWS][MAX_BLOCKS]) {
    PCK_UNROLL4 for (size_t r = 0; r < ROWS; r++) {
        PCK_UNROLL4 for (size_t b = 0; b < BLOCKS; b++) acc[r][b] = _mm512_setzero_ps();
    }
    for (size_t k = 0; k < depth; k++) {
        __m512 col[MAX_BLOCKS];
        PCK_UNROLL4 for (size_t b = 0; b < BLOCKS; b++) col[b] = _mm512_loadu_ps(m + k * ldm + LANES * b);
        PCK_UNROLL4 for (size_t r = 0; r < ROWS; r++) {
            const __m512 x = _mm512_set1_ps(a[r * lda + k]);
            PCK_UNROLL4 for (size_t b = 0; b < BLOCKS; b++) acc[r][b] = _mm512_fmadd_ps(x, col[b], acc[r][b]);
        }
    }
}

/// Score tile: s[r, 16b ..] = scale * q[r] . K^T[:, 16b ..] for ROWS query rows, BLOCKS key blocks.
PCK_AVX512 static inline __attribute__((always_inline))
void scores512(const size_t ROWS, const size_t BLOCKS, const float *q, size_t ld, const float *kt, size_t lp,
               size_t dh, float scale, float *s) {
    __m512 acc[TILE_ROWS][MAX_BLOCKS];
    tile512(ROWS, BLOCKS, q, ld, kt, lp, dh, acc);
    const __m512 sv = _mm512_set1_ps(scale);
    PCK_UNROLL4 for (size_t r = 0; r < ROWS; r++) {
        PCK_UNROLL4 for (size_t b = 0; b < BLOCKS; b++) _mm512_storeu_ps(s + r * lp + LANES * b, _mm512_mul_ps(acc[r][b], sv));
    }
}

/// Value tile: out[r, 16b ..] = sum_j p[r, j] v[j, 16b ..] over the first n keys.
PCK_AVX512 static inline __attribute__((always_inline))
void values512(const size_t ROWS, const size_t BLOCKS, const float *p, size_t lp, const float *v, size_t ld,
               size_t n, float *out, size_t ldo) {
    __m512 acc[TILE_ROWS][MAX_BLOCKS];
    tile512(ROWS, BLOCKS, p, lp, v, ld, n, acc);
    PCK_UNROLL4 for (size_t r = 0; r < ROWS; r++) {
        PCK_UNROLL4 for (size_t b = 0; b < BLOCKS; b++) _mm512_storeu_ps(out + r * ldo + LANES * b, acc[r][b]);
    }
}

/// One case per (rows, blocks) pair, so that each call of CALL (scores512 or values512) inlines
/// with literal counts.
#define PCK_TILE_CASES(CALL, ROWS, BLOCKS, ...)                                    \
    switch ((ROWS) * 8 + (BLOCKS)) {                                              \
    case 4 * 8 + 4: CALL(4, 4, __VA_ARGS__); break;                               \
    case 4 * 8 + 3: CALL(4, 3, __VA_ARGS__); break;                               \
    case 4 * 8 + 2: CALL(4, 2, __VA_ARGS__); break;                               \
    case 4 * 8 + 1: CALL(4, 1, __VA_ARGS__); break;                               \
    case 3 * 8 + 4: CALL(3, 4, __VA_ARGS__); break;                               \
    case 3 * 8 + 3: CALL(3, 3, __VA_ARGS__); break;                               \
    case 3 * 8 + 2: CALL(3, 2, __VA_ARGS__); break;                               \
    case 3 * 8 + 1: CALL(3, 1, __VA_ARGS__); break;                               \
    case 2 * 8 + 4: CALL(2, 4, __VA_ARGS__); break;                               \
    case 2 * 8 + 3: CALL(2, 3, __VA_ARGS__); break;                               \
    case 2 * 8 + 2: CALL(2, 2, __VA_ARGS__); break;                               \
    case 2 * 8 + 1: CALL(2, 1, __VA_ARGS__); break;                               \
    case 1 * 8 + 4: CALL(1, 4, __VA_ARGS__); break;                               \
    case 1 * 8 + 3: CALL(1, 3, __VA_ARGS__); break;                               \
    case 1 * 8 + 2: CALL(1, 2, __VA_ARGS__); break;                               \
    default: CALL(1, 1, __VA_ARGS__); break;                                      \
    }

PCK_AVX512 void pck_attention_avx512(const float *q, const float *k, const float *v, size_t ld, size_t n, size_t dh,
                                     float scale, const float *mask, float *out, size_t ldo, float *scratch) {
    const size_t lp = pck_attention_padded(n);
    float *kt = scratch;                // [dh][lp], zero past column n
    float *scores = scratch + dh * lp;  // [n][lp]
    pck_transpose_keys(k, ld, n, dh, lp, kt);
    const size_t key_blocks = lp / LANES;
    for (size_t i = 0; i < n; i += TILE_ROWS) {
        const size_t rows = n - i < TILE_ROWS ? n - i : TILE_ROWS;
        for (size_t b = 0; b < key_blocks; b += MAX_BLOCKS) {
            const size_t blocks = key_blocks - b < MAX_BLOCKS ? key_blocks - b : MAX_BLOCKS;
            PCK_TILE_CASES(scores512, rows, blocks, q + i * ld, ld, kt + LANES * b, lp, dh, scale,
                           scores + i * lp + LANES * b)
        }
    }
    for (size_t r = 0; r < n; r++) pck_softmax_row_avx512(scores + r * lp, n, mask);
    const size_t value_blocks = dh / LANES;
    for (size_t i = 0; i < n; i += TILE_ROWS) {
        const size_t rows = n - i < TILE_ROWS ? n - i : TILE_ROWS;
        for (size_t b = 0; b < value_blocks; b += MAX_BLOCKS) {
            const size_t blocks = value_blocks - b < MAX_BLOCKS ? value_blocks - b : MAX_BLOCKS;
            PCK_TILE_CASES(values512, rows, blocks, scores + i * lp, lp, v + LANES * b, ld, n,
                           out + i * ldo + LANES * b, ldo)
        }
    }
}
