// A 1x1 convolution with few input channels over channels-last pixels, with bias, optional
// residual and optional ReLU6 fused in (EfficientNet-Lite's expand convs of the early stages, and
// the project convs with up to 128 inputs; PointwiseConv.directMaxInputs picks them).
//
// Why not sgemm: with 16 to 128 input channels the product is mostly the writing of its output
// (6x wider than its input), and sgemm writes it, then the epilogue reads and writes it again.
// Here each output value is computed in registers and stored once, finished. Weights are
// input-major ([in][out]) so one input value, broadcast, multiplies 8 contiguous output channels.
#include "pck_kernels.h"
#include "pck_math.h"

static inline float finish_scalar(float v, int relu6) { return relu6 ? (v < 0 ? 0 : (v > 6 ? 6 : v)) : v; }

// Output channels [first, out) of one pixel.
static void pixel_scalar(const float *x, size_t in, const float *wt, const float *bias, const float *residual,
                         size_t out, size_t first, int relu6, float *y) {
    for (size_t n = first; n < out; n++) {
        float acc = bias[n];
        for (size_t k = 0; k < in; k++) acc += x[k] * wt[k * out + n];
        if (residual) acc += residual[n];
        y[n] = finish_scalar(acc, relu6);
    }
}

static void pointwise_portable(const float *x, size_t rows, size_t in, const float *wt, const float *bias,
                               const float *residual, size_t out, int relu6, float *y) {
    for (size_t r = 0; r < rows; r++) {
        pixel_scalar(x + r * in, in, wt, bias, residual ? residual + r * out : NULL, out, 0, relu6, y + r * out);
    }
}

PCK_AVX2 static inline __m256 finish8(__m256 v, const float *residual, int relu6) {
    if (residual) v = _mm256_add_ps(v, _mm256_loadu_ps(residual));
    if (!relu6) return v;
    return _mm256_min_ps(_mm256_max_ps(v, _mm256_setzero_ps()), _mm256_set1_ps(6.0f));
}

// rows (1 or 2) pixels x blocks (1 or 4) groups of 8 output channels.
PCK_AVX2 static inline __attribute__((always_inline))
void tile(const float *x, size_t in, size_t rows, const float *wt, size_t out, const float *bias,
          const float *residual, size_t blocks, int relu6, float *y) {
    __m256 a0[4], a1[4];
    for (size_t b = 0; b < blocks; b++) { a0[b] = _mm256_loadu_ps(bias + 8 * b); a1[b] = a0[b]; }
    pck_tile_2x8n(x, rows == 2 ? x + in : x, in, wt, out, blocks, a0, a1);
    for (size_t b = 0; b < blocks; b++) {
        _mm256_storeu_ps(y + 8 * b, finish8(a0[b], residual ? residual + 8 * b : NULL, relu6));
        if (rows == 2) _mm256_storeu_ps(y + out + 8 * b, finish8(a1[b], residual ? residual + out + 8 * b : NULL, relu6));
    }
}

PCK_AVX2 static void pointwise_avx2(const float *x, size_t rows, size_t in, const float *wt, const float *bias,
                                    const float *residual, size_t out, int relu6, float *y) {
    for (size_t r = 0; r < rows; r += 2) {
        const size_t pair = rows - r >= 2 ? 2 : 1;
        const float *xr = x + r * in, *res = residual ? residual + r * out : NULL;
        float *yr = y + r * out;
        // Literal block counts, so that after inlining the accumulators live in registers.
        size_t n = 0;
        for (; n + 32 <= out; n += 32) tile(xr, in, pair, wt + n, out, bias + n, res ? res + n : NULL, 4, relu6, yr + n);
        for (; n + 8 <= out; n += 8) tile(xr, in, pair, wt + n, out, bias + n, res ? res + n : NULL, 1, relu6, yr + n);
        for (size_t p = 0; p < pair; p++) {
            pixel_scalar(xr + p * in, in, wt, bias, res ? res + p * out : NULL, out, n, relu6, yr + p * out);
        }
    }
}

void pck_pointwise_conv(const float *x, size_t rows, size_t in_channels, const float *weight_in_major,
                        const float *bias, const float *residual, size_t out_channels, int relu6, float *y) {
    if (pck_has_avx2_fma()) pointwise_avx2(x, rows, in_channels, weight_in_major, bias, residual, out_channels, relu6, y);
    else pointwise_portable(x, rows, in_channels, weight_in_major, bias, residual, out_channels, relu6, y);
}
