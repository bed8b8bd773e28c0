#!/usr/bin/env bash
# Encoder throughput: Swift engine (OpenBLAS) vs ONNX Runtime and PyTorch CPU on all-MiniLM-L6-v2,
# 64 tokens per sentence, batch 1, 8 and 32, 2 threads; plus the GFLOP/s the Swift encoder reaches
# against OpenBLAS's sgemm peak measured in the same run.
#
# Optional and heavy: the baselines install torch (gigabytes) into models/.bench-venv. Never in CI.
# Usage: [ROUNDS=3] bench/model/run.sh [threads]   Results: bench/results/model-<timestamp>.json + a table.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
THREADS="${1:-2}"
MODEL="$ROOT/models/all-MiniLM-L6-v2"
VENV="$ROOT/models/.bench-venv"
PINS="numpy==2.4.6 safetensors==0.8.0 tokenizers==0.23.3 onnxruntime==1.32.0 onnx==1.23.2 torch==2.15.0 transformers==5.23.0"

[[ -f "$MODEL/model.safetensors" ]] || scripts/setup-models.sh --no-goldens
if [[ ! -f "$VENV/.pins" || "$(cat "$VENV/.pins")" != "$PINS" ]]; then
    echo "[bench] installing baselines into $VENV: $PINS" >&2
    python3 -m venv "$VENV"
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install --quiet --disable-pip-version-check $PINS
    echo "$PINS" > "$VENV/.pins"
fi

echo "[bench] building the Swift encoder benchmark (swiftc -O)" >&2
mkdir -p .build-model/bench bench/results
# The Model module links libjpeg through the CJPEG shim: compile the shim, hand swiftc a module map.
printf 'module CJPEG { header "%s/Sources/CJPEG/include/pcd_jpeg.h" export * }\n' "$PWD" > .build-model/bench/CJPEG.modulemap
clang -O2 -c Sources/CJPEG/pcd_jpeg.c -I Sources/CJPEG/include -o .build-model/bench/pcd_jpeg.o
# ... and the element-wise kernels through the CKernels shim.
printf 'module CKernels { header "%s/Sources/CKernels/include/pck_kernels.h" export * }\n' "$PWD" > .build-model/bench/CKernels.modulemap
rm -f .build-model/bench/pck_*.o  # objects of renamed sources would link twice
for c in Sources/CKernels/*.c; do
    clang -O2 -c "$c" -I Sources/CKernels/include -o ".build-model/bench/$(basename "$c" .c).o"
done
# shellcheck disable=SC2046
swiftc -O -wmo -module-name ModelBench -I Sources/COpenBLAS -Xcc -fmodule-map-file=.build-model/bench/CJPEG.modulemap \
    -Xcc -fmodule-map-file=.build-model/bench/CKernels.modulemap \
    $(find Sources/Model -name '*.swift' | sort) bench/model/main.swift .build-model/bench/pcd_jpeg.o \
    .build-model/bench/pck_*.o -lopenblas -ljpeg -o .build-model/bench/encoder-bench

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="bench/results/model-$STAMP.json"
# Rounds alternate the engines so that load from other processes hits them alike; the summary
# quotes medians over rounds of each ratio taken within a round.
ROUNDS="${ROUNDS:-3}"
ARGS=()
for round in $(seq 1 "$ROUNDS"); do
    echo "[bench] round $round/$ROUNDS: swift" >&2
    ARGS+=("$(OPENBLAS_NUM_THREADS="$THREADS" .build-model/bench/encoder-bench "$MODEL" "$THREADS")")
    echo "[bench] round $round/$ROUNDS: onnxruntime + pytorch" >&2
    ARGS+=("$("$VENV/bin/python" bench/model/baselines.py --model "$MODEL" --threads "$THREADS" 2>/dev/null)")
done
"$VENV/bin/python" bench/model/summarize.py "$OUT" "${ARGS[@]}"
