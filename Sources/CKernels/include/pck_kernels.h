// The inference engine's C kernels: the packed-weight matrix product with its fused epilogue
// (linear layers, 1x1 convolutions), the depthwise convolution rows, per-head attention for short
// sequences, GELU and row softmax. In C so that they run at full speed in every build (the
// package's debug builds compile Swift without optimisation; this target is always -O2).
//
// Each kernel has a portable scalar body and an AVX2 + FMA body, chosen once at run time from CPUID,
// so one binary runs on any x86-64 and uses the wide path where the CPU has it; the packed product,
// the depthwise rows, GELU, softmax and attention also have an AVX-512 body. All bodies compute
// the same formulas; they differ only by FMA rounding. The packed product also comes in bf16
// (pck_gemm_packed_bf16: an AVX512-BF16 body and a portable one). The benchmarks that tune them are in
// bench/kernels (the packed product, the depthwise rows) and bench/model, bench/image (whole passes).
#ifndef PCK_KERNELS_H
#define PCK_KERNELS_H

#include <stddef.h>
#include <stdint.h>

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
/// out[ox, ch] = act(bias[ch] + sum_{ky,kx} weight[ky * kernel + kx][ch] * rows[ky][(ox * stride + kx - pad_left) * channels + ch])
/// for ox < out_width, taps outside [0, width) counting as zero, act ReLU6 when `relu6` is non-zero.
/// `rows` holds `kernel` pointers to input rows of `width` pixels (a row of zeros for each row of
/// padding above or below); `weight` is tap-major, [kernel * kernel][channels].
void pck_depthwise_row(const float *const *rows, size_t kernel, const float *weight, const float *bias,
                       size_t channels, size_t width, size_t pad_left, size_t stride, size_t out_width, int relu6,
                       float *out);

/// Epilogues of pck_gemm_packed.
enum { PCK_ACT_NONE = 0, PCK_ACT_RELU6 = 1 };

/// Floats that pck_pack_weight writes for a `[out_channels, in_channels]` weight: panels of 16
/// output channels, the last one zero-padded.
size_t pck_packed_weight_count(size_t out_channels, size_t in_channels);

/// Packs a row-major `[out_channels, in_channels]` weight (PyTorch's layout) for pck_gemm_packed:
/// panel p holds w[16p .. 16p+15, k] side by side for each k. Done once, at load.
void pck_pack_weight(const float *weight, size_t out_channels, size_t in_channels, float *packed);

/// y[r, n] = act(bias[n] + sum_k x[r, k] w[n, k] (+ residual[r, n])) for `rows` rows of
/// `in_channels` values, with `packed` from pck_pack_weight; `bias` and `residual` may be NULL,
/// `act` is PCK_ACT_NONE or PCK_ACT_RELU6. Each output value is computed in registers and stored
/// once. Rows are contiguous: x is [rows, in_channels], residual and y [rows, out_channels].
void pck_gemm_packed(const float *x, size_t rows, size_t in_channels, const float *packed, const float *bias,
                     const float *residual, size_t out_channels, int act, float *y);

/// bfloat16 values (uint16_t) that pck_pack_weight_bf16 writes for a `[out_channels, in_channels]`
/// weight: panels of 16 output channels, the inputs padded with zeros to a multiple of 32.
size_t pck_packed_bf16_count(size_t out_channels, size_t in_channels);

/// Packs a row-major `[out_channels, in_channels]` weight for pck_gemm_packed_bf16, each value
/// rounded to bf16 (pck_float_to_bf16): panel p holds, for each pair of inputs (2kk, 2kk + 1),
/// the pairs of w[16p .. 16p+15] side by side. Done once, at load.
void pck_pack_weight_bf16(const float *weight, size_t out_channels, size_t in_channels, uint16_t *packed);

/// pck_gemm_packed's product with a bf16 weight from pck_pack_weight_bf16: each value of x is
/// rounded to bf16, the products are summed in fp32, and bias, residual and ReLU6 are added in
/// fp32. Runs the AMX body where the CPU and the OS allow it (pck_uses_amx_bf16), else the
/// AVX512-BF16 body where the CPU has it (pck_uses_avx512_bf16), else
/// a portable one; the last two give the same sums for normal numbers.
void pck_gemm_packed_bf16(const float *x, size_t rows, size_t in_channels, const uint16_t *packed, const float *bias,
                          const float *residual, size_t out_channels, int act, float *y);

/// `value` rounded to bfloat16 (its top 16 bits) to nearest, ties to even; NaN stays NaN.
uint16_t pck_float_to_bf16(float value);

/// The float a bfloat16 value stands for (exact).
float pck_bf16_to_float(uint16_t value);

/// 1 when pck_gemm_packed_bf16 runs its AVX512-BF16 body, 0 for the portable one.
int pck_uses_avx512_bf16(void);

/// Multiply-adds per second of vdpbf16ps over those of fp32 FMAs on this core (about 2 where it
/// runs at the FMA's instruction rate, 1 where at half of it), measured in about a millisecond on
/// registers; 0 without the AVX512-BF16 body. Decides whether bf16 products can pay here.
double pck_bf16_rate(void);

/// 1 when pck_gemm_packed_bf16 runs its AMX body (tile multiply-adds, Intel Sapphire Rapids on).
int pck_uses_amx_bf16(void);

/// With a non-zero argument, pck_gemm_packed_bf16 takes its AVX512-BF16 body rather than the AMX
/// one from the next call on (tests hold both to the portable body; benchmarks compare them).
/// Not for concurrent use; 0 restores dispatch.
void pck_force_avx512_bf16(int on);

/// With a non-zero argument, pck_gemm_packed_bf16 takes its portable body from the next call on
/// while the other kernels keep theirs (tests compare the two bf16 bodies on a whole encoder).
/// Not for concurrent use; 0 restores dispatch.
void pck_force_portable_bf16(int on);

/// glibc's malloc keeps freed blocks of up to `mmap_threshold` bytes for reuse (rather than
/// unmapping them) and trims its heap only past `trim_threshold` free bytes. 1 when both settings
/// took, 0 otherwise (another C library, or a refusal): the defaults then stay, which are correct.
int pck_keep_freed_memory(size_t mmap_threshold, size_t trim_threshold);

/// 1 when the AVX2 + FMA bodies are in use, 0 for the portable ones (for logs and benchmarks).
int pck_uses_avx2(void);

/// 1 when the kernels that have an AVX-512 body (packed product, depthwise rows, GELU, softmax,
/// attention) run it (for logs and benchmarks).
int pck_uses_avx512(void);

/// With a non-zero argument, kernels that have an AVX-512 body take their AVX2 one instead from
/// the next call on (tests hold both to the same reference; benchmarks compare them). Not for
/// concurrent use; 0 restores dispatch.
void pck_force_avx2(int on);

/// With a non-zero argument, every kernel takes its portable body from the next call on, so that
/// tests can hold both bodies to the same reference. Not for concurrent use; 0 restores dispatch.
void pck_force_portable(int on);

#endif
