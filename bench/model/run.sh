#!/usr/bin/env bash
# Encoder throughput: Swift engine (OpenBLAS) vs ONNX Runtime and PyTorch CPU on all-MiniLM-L6-v2,
# 64 tokens per sentence, batch 1, 8 and 32, 2 threads; plus the GFLOP/s the Swift encoder reaches
# against this CPU's compute peak measured in the same round (bench/kernels/fma_peak.c: a loop of
# independent FMAs on `threads` threads, AVX-512 where the CPU has it, else AVX2 + FMA), and, for
# reference, against OpenBLAS's sgemm (held to its Haswell kernels where OPENBLAS_CORETYPE=Haswell,
# so not a peak on an AVX-512 CPU).
#
# Optional and heavy: the baselines install torch (gigabytes) into models/.bench-venv. Never in CI.
# Usage: [ROUNDS=3] [KERNELS=avx2] bench/model/run.sh [threads]   Results: bench/results/model-<timestamp>.json + a table.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0; fi
THREADS="${1:-2}"
MODEL="$ROOT/models/all-MiniLM-L6-v2"
VENV="$ROOT/models/.bench-venv"

[[ -f "$MODEL/model.safetensors" ]] || scripts/setup-models.sh --no-goldens
bench/model/venv.sh

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

clang -O2 -I bench/kernels bench/kernels/fma_peak.c -lpthread -o .build-model/bench/fma-peak

# swift_round: the encoder's JSON with the compute peak of this round added as "fma_peak". The
# peak is the CPU's, so KERNELS=avx2 (which holds the encoder to its AVX2 bodies) does not apply.
swift_round() {
    local swift peak
    peak="$(env -u KERNELS .build-model/bench/fma-peak "$THREADS")"
    swift="$(OPENBLAS_NUM_THREADS="$THREADS" .build-model/bench/encoder-bench "$MODEL" "$THREADS")"
    python3 -c 'import json, sys
s = json.loads(sys.argv[1]); s["fma_peak"] = json.loads(sys.argv[2]); print(json.dumps(s))' "$swift" "$peak"
}

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="bench/results/model-$STAMP.json"
# Rounds alternate the engines (odd rounds Swift first, even rounds the baselines first) so that
# load from other processes, and going first, hit them alike; the summary quotes medians over
# rounds of each ratio taken within a round.
ROUNDS="${ROUNDS:-3}"
ARGS=()
baselines_round() { "$VENV/bin/python" bench/model/baselines.py --model "$MODEL" --threads "$THREADS" 2>/dev/null; }
for round in $(seq 1 "$ROUNDS"); do
    if ((round % 2)); then
        echo "[bench] round $round/$ROUNDS: swift, then onnxruntime + pytorch" >&2
        swift="$(swift_round)"; base="$(baselines_round)"
    else
        echo "[bench] round $round/$ROUNDS: onnxruntime + pytorch, then swift" >&2
        base="$(baselines_round)"; swift="$(swift_round)"
    fi
    ARGS+=("$swift" "$base")
done
"$VENV/bin/python" bench/model/summarize.py "$OUT" "${ARGS[@]}"
