// Element-wise kernels for the inference engine, in C so that they run at full speed in every build
// (the package's debug builds compile Swift without optimisation; this target is always -O2).
//
// Each kernel has a portable scalar body and an AVX2 + FMA body, chosen once at run time from CPUID,
// so one binary runs on any x86-64 and uses the wide path where the CPU has it. Both bodies compute
// the same formulas (pck_elementwise.c, pck_attention.c); they differ only by FMA rounding.
#ifndef PCK_KERNELS_H
#define PCK_KERNELS_H

#include <stddef.h>

/// Replaces each of the `count` values at `x` with GELU(x) = x/2 * (1 + erf(x / sqrt 2)).
/// Absolute error below |x| * 2e-7 against the exact erf.
void pck_gelu(float *x, size_t count);

/// `rows` x `width` values at `x` become GELU(x + bias), `bias` holding one value per column:
/// a linear layer's bias and its activation in one pass over the output.
void pck_bias_gelu(float *x, size_t rows, size_t width, const float *bias);

/// Replaces each row s of `rows` x `width` values at `scores` with softmax(s + mask).
/// `mask` holds `width` additive values shared by every row (0 keeps a key, a large negative value
/// hides it), or is NULL. Hidden keys (below -87 after the max subtraction) get exactly 0.
void pck_softmax_rows(float *scores, size_t rows, size_t width, const float *mask);

/// Scaled dot-product attention of one head of one post, written for short sequences (the
/// per-(post, head) products are too small for sgemm's packing to pay off):
///   out[i] = sum_j softmax_j(scale * q[i] . k[j] + mask[j]) v[j]   for i, j < length.
/// `q`, `k` and `v` point at row 0 of each operand, rows `ld` floats apart (the fused QKV layout);
/// `out` rows are `ldo` floats apart. `mask` holds `length` additive values. `scratch` needs
/// pck_attention_scratch(length, head_width) floats.
void pck_attention_head(const float *q, const float *k, const float *v, size_t ld,
                        size_t length, size_t head_width, float scale, const float *mask,
                        float *out, size_t ldo, float *scratch);

/// Floats of scratch that pck_attention_head needs.
size_t pck_attention_scratch(size_t length, size_t head_width);

/// One output row of a depthwise `kernel` x `kernel` convolution over channels-last maps:
/// out[ox, ch] = act(bias[ch] + sum_{ky,kx} weight[ky * kernel + kx][ch] * rows[ky][(ox * stride + kx) * channels + ch])
/// for ox < out_width, act ReLU6 when `relu6` is non-zero. `rows` holds `kernel` pointers to padded
/// input rows (zeros already in place of the padding); `weight` is tap-major, [kernel * kernel][channels].
void pck_depthwise_row(const float *const *rows, size_t kernel, const float *weight, const float *bias,
                       size_t channels, size_t stride, size_t out_width, int relu6, float *out);

/// A 1x1 convolution over `rows` channels-last pixels, for few input channels:
/// y[r, n] = act(bias[n] + sum_k x[r, k] * weight_in_major[k * out_channels + n] (+ residual[r, n])),
/// act ReLU6 when `relu6` is non-zero; `residual` may be NULL. Each output value is stored once.
void pck_pointwise_conv(const float *x, size_t rows, size_t in_channels, const float *weight_in_major,
                        const float *bias, const float *residual, size_t out_channels, int relu6, float *y);

/// 1 when the AVX2 + FMA bodies are in use, 0 for the portable ones (for logs and benchmarks).
int pck_uses_avx2(void);

/// With a non-zero argument, every kernel takes its portable body from the next call on, so that
/// tests can hold both bodies to the same reference. Not for concurrent use; 0 restores dispatch.
void pck_force_portable(int on);

#endif
