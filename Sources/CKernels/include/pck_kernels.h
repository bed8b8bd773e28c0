// Element-wise kernels for the inference engine, in C so that they run at full speed in every build
// (the package's debug builds compile Swift without optimisation; this target is always -O2).
//
// Each kernel has a portable scalar body and an AVX2 + FMA body, chosen once at run time from CPUID,
// so one binary runs on any x86-64 and uses the wide path where the CPU has it. Both bodies compute
// the same formulas (see pck_kernels.c); they differ only by FMA rounding, within a few ulp.
#ifndef PCK_KERNELS_H
#define PCK_KERNELS_H

#include <stddef.h>

/// Replaces each of the `count` values at `x` with GELU(x) = x/2 * (1 + erf(x / sqrt 2)).
/// Absolute error below |x| * 2e-7 against the exact erf.
void pck_gelu(float *x, size_t count);

/// Replaces each row s of `rows` x `width` values at `scores` with softmax(s + mask).
/// `mask` holds `width` additive values shared by every row (0 keeps a key, a large negative value
/// hides it), or is NULL. Hidden keys (below -87 after the max subtraction) get exactly 0.
void pck_softmax_rows(float *scores, size_t rows, size_t width, const float *mask);

/// 1 when the AVX2 + FMA bodies are in use, 0 for the portable ones (for logs and benchmarks).
int pck_uses_avx2(void);

/// With a non-zero argument, every kernel takes its portable body from the next call on, so that
/// tests can hold both bodies to the same reference. Not for concurrent use; 0 restores dispatch.
void pck_force_portable(int on);

#endif
