#!/usr/bin/env bash
# Microbenchmarks of two kernels, for the widest kernel body of this CPU and for the AVX2 one, one
# thread: the packed product (bench/kernels/packed_product.c: GFLOP/s on the shapes of MiniLM and
# EfficientNet-Lite0, ms per pass over six MiniLM layers) and the depthwise rows
# (bench/kernels/depthwise.c: GFLOP/s on each depthwise layer of EfficientNet-Lite0, ms per
# image). First, the compute peak these GFLOP/s are shares of: bench/kernels/fma_peak.c, a loop of
# independent FMAs on one core, for the widest body and for AVX2 + FMA. Last, the bf16 packed
# product against the fp32 one (bench/kernels/bf16_product.c: rounds alternated, medians; it names
# the bf16 body, portable where the CPU lacks AVX512-BF16). About two minutes; needs clang only.
# Usage: bench/kernels/run.sh [TREE]
#   TREE: another checkout whose Sources/CKernels to measure instead (a before/after of a kernel
#   change: `git worktree add /tmp/before <commit> && bench/kernels/run.sh /tmp/before`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TREE="$(cd "${1:-$ROOT}" && pwd)"
OUT="$ROOT/.build-model/kernels"
mkdir -p "$OUT"
clang -O2 -I "$TREE/Sources/CKernels/include" "$ROOT/bench/kernels/packed_product.c" "$TREE"/Sources/CKernels/*.c \
    -lm -o "$OUT/packed-product"
clang -O2 -I "$TREE/Sources/CKernels/include" "$ROOT/bench/kernels/depthwise.c" "$TREE"/Sources/CKernels/*.c \
    -lm -o "$OUT/depthwise"
clang -O2 -I "$TREE/Sources/CKernels/include" "$ROOT/bench/kernels/bf16_product.c" "$TREE"/Sources/CKernels/*.c \
    -lm -o "$OUT/bf16-product"
clang -O2 -I "$ROOT/bench/kernels" "$ROOT/bench/kernels/fma_peak.c" -lpthread -o "$OUT/fma-peak"
echo "compute peak, one core: widest body $(env -u KERNELS "$OUT/fma-peak" 1); AVX2 + FMA $(KERNELS=avx2 "$OUT/fma-peak" 1)"
echo "kernels of $TREE ($(git -C "$TREE" rev-parse --short HEAD 2>/dev/null || echo 'not a git tree'))"
"$OUT/packed-product"
echo
"$OUT/depthwise"
echo
"$OUT/bf16-product"
