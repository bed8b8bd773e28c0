// Private to CKernels: what the two bodies of pck_gemm_packed (pck_gemm.c: portable and AVX2,
// pck_gemm_avx512.c: AVX-512) must agree on, so that one packed weight serves both and a tuning
// change reaches both. The block of rows each micro-kernel takes (BLOCK_ROWS) is the body's own:
// it follows from its register count.
#ifndef PCK_GEMM_COMMON_H
#define PCK_GEMM_COMMON_H

#include <stddef.h>

#include "pck_kernels.h"
#include "pck_math.h"

// PCK_PANEL: output channels per panel of a packed weight. pck_pack_weight writes panels of this
// many channels (zeros past the last one) and both bodies read them as one or two vectors per
// step of k: two AVX2 vectors, one AVX-512 vector.
//
// PCK_PREFETCH_STEPS: how far ahead (in steps of k, one 64-byte line of a panel each) the first
// block of rows of a group prefetches the group's weights. That block reads them from memory, and
// with a dozen rows or fewer there is too little arithmetic between loads for the hardware
// prefetcher alone to hide the latency; the later blocks find the group in L2 and do not prefetch.
// 64 was the fastest distance tried on short inputs. Past the end of the weights the hint is
// harmless (prefetches do not fault). Tuned with bench/kernels/run.sh (six MiniLM layers'
// distinct weights, streamed from memory); the figures are in bench/kernels/README.md.
enum { PCK_PANEL = 16, PCK_PREFETCH_STEPS = 64 };

// The panels are taken in groups whose weights fit in L2 (about 256 KB), so that every block of
// rows of a group finds the group's weights there.
static const size_t pck_group_bytes = 256 * 1024;

// The epilogue of 16 output channels in the AVX-512 bodies (fp32 and bf16 products): bias, the
// residual's masked lanes when there is one, then the activation.
PCK_AVX512 static inline __m512 pck_finish16(__m512 v, __m512 bias, const float *residual, __mmask16 lanes, int act) {
    v = _mm512_add_ps(v, bias);
    if (residual) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(lanes, residual));
    if (act == PCK_ACT_RELU6) v = _mm512_min_ps(_mm512_max_ps(v, _mm512_setzero_ps()), _mm512_set1_ps(6.0f));
    return v;
}

#endif
