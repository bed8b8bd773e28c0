// The packed-weight product in bfloat16: the same contract as pck_gemm_packed (pck_gemm.c), with
// the weight packed once to bf16 and each row of x rounded to bf16 before the product; products
// are summed in fp32. bf16 is the top half of an fp32 (8 exponent bits, 7 mantissa bits), so the
// weight takes half the memory and bandwidth, AVX512-BF16's vdpbf16ps does 32 multiply-adds per
// instruction where an fp32 FMA does 16 (pck_gemm_bf16_avx512.c; whether that is faster depends
// on the core: pck_bf16_rate), and AMX's tdpbf16ps does 8,192 (pck_gemm_bf16_amx.c).
//
// Layout: panels of 16 output channels, like the fp32 packing, but the inputs go in pairs: step
// kk of panel p holds, for each of the 16 channels j, the two weights w[16p + j, 2kk] and
// w[16p + j, 2kk + 1] side by side (32 bf16, one 64-byte line). That is the operand vdpbf16ps
// takes: each fp32 lane j adds the products of one pair, and 16 steps are the weight tile of
// tdpbf16ps. The inputs are padded with zero weights to a multiple of 32 (whole tiles), the
// channels past the last with zero weights; the bodies other than AMX skip the padding steps.
//
// Rounding: to nearest, ties to even (what vcvtneps2bf16 does), NaN kept NaN. The portable body
// below sums in the instruction's order (per pair: the odd input, then the even one), and a
// product of two bf16 values is exact in fp32, so the two bodies give the same sums for normal
// numbers; they may differ on subnormals, which the instruction treats as zero. The tile unit
// adds the products in its own order: the AMX body agrees with the others to float32 rounding.
#include "pck_kernels.h"
#include "pck_math.h"
#include "pck_gemm_common.h"

#include <stdlib.h>

uint16_t pck_float_to_bf16(float value) {
    const uint32_t u = float_to_bits(value);
    // A NaN stays a NaN (quiet) even when its payload lies only in the low half.
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x0040u);
    // Adds just under half a unit of the last kept place, plus one when that place is odd:
    // ties round to even, everything else to nearest; an overflow carries into the exponent
    // (the largest finite values round to infinity, as they should).
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

float pck_bf16_to_float(uint16_t value) { return bits_to_float((uint32_t)value << 16); }

size_t pck_packed_bf16_count(size_t out_channels, size_t in_channels) {
    return (out_channels + PCK_PANEL - 1) / PCK_PANEL * PCK_PANEL * pck_bf16_padded_inputs(in_channels);
}

void pck_pack_weight_bf16(const float *weight, size_t out_channels, size_t in_channels, uint16_t *packed) {
    const size_t panels = (out_channels + PCK_PANEL - 1) / PCK_PANEL, steps = pck_bf16_padded_inputs(in_channels) / 2;
    for (size_t p = 0; p < panels; p++) {
        uint16_t *panel = packed + p * steps * 2 * PCK_PANEL;
        for (size_t kk = 0; kk < steps; kk++) {
            for (size_t j = 0; j < PCK_PANEL; j++) {
                const size_t n = p * PCK_PANEL + j;
                for (size_t half = 0; half < 2; half++) {
                    const size_t k = 2 * kk + half;
                    const float w = n < out_channels && k < in_channels ? weight[n * in_channels + k] : 0.0f;
                    panel[kk * 2 * PCK_PANEL + 2 * j + half] = pck_float_to_bf16(w);
                }
            }
        }
    }
}

static inline float finish_scalar(float v, int act) {
    return act == PCK_ACT_RELU6 ? (v < 0 ? 0 : (v > 6 ? 6 : v)) : v;
}

/// The portable body: one row and one panel at a time, 16 fp32 sums per panel (a loop the
/// compiler can vectorise), each pair of inputs added odd first, as vdpbf16ps does.
static void gemm_bf16_portable(const float *x, size_t rows, size_t in, const uint16_t *packed, const float *bias,
                               const float *residual, size_t out, int act, float *y) {
    const size_t stride = pck_bf16_padded_inputs(in) * PCK_PANEL, steps = (in + 1) / 2;
    const size_t panels = (out + PCK_PANEL - 1) / PCK_PANEL;
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * in;
        for (size_t p = 0; p < panels; p++) {
            const uint16_t *panel = packed + p * stride;
            float acc[PCK_PANEL] = {0};
            for (size_t kk = 0; kk < steps; kk++) {
                const float x0 = pck_bf16_to_float(pck_float_to_bf16(xr[2 * kk]));
                const float x1 = 2 * kk + 1 < in ? pck_bf16_to_float(pck_float_to_bf16(xr[2 * kk + 1])) : 0.0f;
                const uint16_t *w = panel + kk * 2 * PCK_PANEL;
                for (size_t j = 0; j < PCK_PANEL; j++) {
                    acc[j] += x1 * pck_bf16_to_float(w[2 * j + 1]);
                    acc[j] += x0 * pck_bf16_to_float(w[2 * j]);
                }
            }
            for (size_t j = 0; j < PCK_PANEL && p * PCK_PANEL + j < out; j++) {
                const size_t n = p * PCK_PANEL + j;
                float v = acc[j] + (bias ? bias[n] : 0);
                if (residual) v += residual[r * out + n];
                y[r * out + n] = finish_scalar(v, act);
            }
        }
    }
}

static int force_portable_bf16 = 0;

void pck_force_portable_bf16(int on) { force_portable_bf16 = on; }

int pck_has_avx512_bf16(void) {
    if (force_portable_bf16 || !pck_has_avx512()) return 0;
    // pck_has_avx512 has checked that the OS saves the zmm state; the body also uses AVX512BW.
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw");
}

int pck_uses_avx512_bf16(void) { return pck_has_avx512_bf16(); }

static int force_no_amx = 0;

void pck_force_avx512_bf16(int on) { force_no_amx = on; }

/// 1 when the AMX body may run: the AVX512-BF16 one may (its conversions are used), the CPU has
/// AMX-BF16 and the OS gave this process the tile state (asked once; -1 until then).
static int has_amx_bf16(void) {
    static int ready = -1;
    if (force_no_amx || !pck_has_avx512_bf16()) return 0;
    int state = __atomic_load_n(&ready, __ATOMIC_RELAXED);
    if (state < 0) {
        // Threads that race here each ask the OS, which is harmless, and store the same answer.
        state = pck_amx_bf16_os_ready();
        __atomic_store_n(&ready, state, __ATOMIC_RELAXED);
    }
    return state;
}

int pck_uses_amx_bf16(void) { return has_amx_bf16(); }

double pck_bf16_rate(void) { return pck_has_avx512_bf16() ? pck_bf16_rate_avx512() : 0; }

void pck_gemm_packed_bf16(const float *x, size_t rows, size_t in_channels, const uint16_t *packed, const float *bias,
                          const float *residual, size_t out_channels, int act, float *y) {
    if (rows == 0 || out_channels == 0) return;
    if (has_amx_bf16()) {
        // The tile body reads whole tiles of 16 rows: x's bf16 rows, zero rows after the last.
        uint16_t *xb = malloc((rows + 15) / 16 * 16 * pck_bf16_padded_inputs(in_channels) * sizeof(uint16_t));
        if (xb) {
            pck_gemm_packed_bf16_amx(x, xb, rows, in_channels, packed, bias, residual, out_channels, act, y);
            free(xb);
            return;
        }
    }
    if (pck_has_avx512_bf16()) {
        // The AVX512-BF16 body reads x as bf16 rows of the padded width, converted once here. Without
        // memory for them the portable body, which converts as it goes, gives the same sums.
        uint16_t *xb = malloc(rows * pck_bf16_padded_inputs(in_channels) * sizeof(uint16_t));
        if (xb) {
            pck_gemm_packed_bf16_avx512(x, xb, rows, in_channels, packed, bias, residual, out_channels, act, y);
            free(xb);
            return;
        }
    }
    gemm_bf16_portable(x, rows, in_channels, packed, bias, residual, out_channels, act, y);
}
