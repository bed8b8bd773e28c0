#!/usr/bin/env bash
# End-to-end benchmark with the default model bundle (issue 8): `postclassd run --model
# models/default` (release build) against a Python service doing the same work (bench/e2e/
# pyservice.py: confluent-kafka, Pillow, ONNX Runtime, numpy heads, the same micro-batching and
# at-least-once), both measured in the same run, on the same embedded broker, by the same feeder
# and reader (bench/e2e/cell.py). Cells: text-only posts and posts with a 1200x900 q85 JPEG, at
# batch sizes 1, 8 and 32; per cell posts/s at saturation, then p50/p99 end-to-end latency at a
# common paced rate, plus per-stage times and CPU per post. The report (markdown) has the
# Swift/Python ratios: per round against the best Python variant of that round, then the median.
#
# Python variants (--py-variants; the baseline per cell is the best of them, named in the report):
#   loop       the single loop: one batch at a time, ONNX Runtime splitting every op over one
#              intra-op thread per core, spinning off (the service before issue 29)
#   loop-spin  the same with ONNX Runtime's spinning on (session.intra_op.allow_spinning=1)
#   pool       one worker thread per core, each running whole batches with one intra-op thread
#              (ONNX Runtime releases the GIL): postclassd's shape, one batch per core
#   pool-spin  pool with spinning on: not in the default list, since one intra-op thread has no
#              thread pool to spin (kept for checking that)
# Rounds (--rounds, default 3) alternate the systems: odd rounds run the Python variants first
# (their order rotating), even rounds postclassd first. Round 1 runs every Python variant; later
# rounds only the cell's best variant of round 1 (a round of every variant takes ~26 minutes
# here), unless --all-variants. The paced rate of every cell is half the
# best Python variant's saturated rate in round 1, the same for every system in every later round
# (in round 1 each Python variant is paced at half its own rate, so the best one is at the common
# rate; the report takes latencies at the common rate only).
#
# Both systems get --kafka fetch.wait.max.ms=10: the embedded (mock) broker answers a fetch only
# when fetch.wait.max.ms has passed, not when data arrives as a real broker does, which with the
# default 500 ms adds ~250 ms per hop to every latency (measured: Python p50 490 -> 138 ms).
# --diagnose adds postclassd with OPENBLAS_NUM_THREADS=1 at batch 32 (each of postclassd's worker
# threads otherwise calls a 2-thread OpenBLAS: see the report's CPU per post).
# --precision-ab adds postclassd with --precision fp32 to every cell, beside the default (auto:
# bf16 text-encoder products where the CPU has AVX512-BF16), in the same rounds.
#
# Usage: bench/e2e/run.sh [--duration S] [--latency-duration S] [--rounds N] [--kinds text,image]
#                         [--batches 1,8,32] [--py-variants loop,loop-spin,pool] [--all-variants] [--diagnose] [--precision-ab]
# Results: bench/results/e2e-<timestamp>.jsonl, .md and -logs/ (each system's log per cell; git-ignored).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

DURATION=15
LATENCY_DURATION=10
ROUNDS=3
PY_VARIANTS="loop,loop-spin,pool"
DIAGNOSE=0
PRECISION_AB=0
ALL_VARIANTS=0
KINDS="text,image"
BATCHES="1,8,32"
PARTITIONS=16
while (($#)); do
    case "$1" in
        --duration) DURATION="$2"; shift 2 ;;
        --latency-duration) LATENCY_DURATION="$2"; shift 2 ;;
        --kinds) KINDS="$2"; shift 2 ;;
        --batches) BATCHES="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --py-variants) PY_VARIANTS="$2"; shift 2 ;;
        --diagnose) DIAGNOSE=1; shift ;;
        --precision-ab) PRECISION_AB=1; shift ;;
        --all-variants) ALL_VARIANTS=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done
CORES="$(nproc)"
# variant_args NAME: pyservice.py's options for a Python variant.
variant_args() {
    case "$1" in
        loop) echo "--workers 0 --threads $CORES" ;;
        loop-spin) echo "--workers 0 --threads $CORES --spinning" ;;
        pool) echo "--workers $CORES --threads 1" ;;
        pool-spin) echo "--workers $CORES --threads 1 --spinning" ;;
        *) echo "unknown Python variant $1 (loop, loop-spin, pool, pool-spin)" >&2; return 2 ;;
    esac
}
for v in ${PY_VARIANTS//,/ }; do variant_args "$v" >/dev/null; done
bash scripts/install-deps.sh
[[ -f models/default/manifest.json ]] || scripts/setup-models.sh
PY="$ROOT/models/.venv/bin/python"
PINS="onnxruntime==1.32.0 onnx==1.23.2"
# shellcheck disable=SC2086
"$PY" -c "import onnxruntime, onnx" 2>/dev/null || "$ROOT/models/.venv/bin/pip" install --quiet --disable-pip-version-check $PINS
# The MiniLM ONNX graphs come from torch.onnx, which lives in models/.bench-venv only: the plain
# encoder is the one bench/model exports once; a sarcasm head with LoRA adapters (the default
# bundle's) gets the shared pass that keeps its first layer's input and its own adapted layers
# (bench/e2e/export_adapted.py, checked against transformers there).
bench/model/venv.sh
ADAPTERS="$("$PY" -c 'import json,sys; m=json.load(open(sys.argv[1])); print(" ".join(h["text_adapter"] for h in m["heads"] if h.get("text_adapter")))' models/default/manifest.json)"
if [[ -n "$ADAPTERS" ]]; then
    for adapter in $ADAPTERS; do
        models/.bench-venv/bin/python bench/e2e/export_adapted.py models/default/text-encoder "models/default/$adapter" 2>/dev/null >&2
    done
else
    [[ -f models/all-MiniLM-L6-v2/bench/model.onnx ]] || bench/model/run.sh
fi
swift build -c release --product postclassd >&2
BIN="$(swift build -c release --show-bin-path)"
# Both sides must do the same work: the Python service's labels against postclassd classify's.
"$PY" bench/e2e/check_mirror.py --bin "$BIN" >&2

mkdir -p bench/results
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
RESULTS="bench/results/e2e-$STAMP.jsonl"
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    mkdir -p "${RESULTS%.jsonl}-logs" && cp "$WORK"/*.log "${RESULTS%.jsonl}-logs/" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

TOPICS=""
for kind in ${KINDS//,/ }; do
    for batch in ${BATCHES//,/ }; do
        systems="postclassd"
        for v in ${PY_VARIANTS//,/ }; do systems+=" python-$v"; done
        ((DIAGNOSE)) && [[ "$batch" == 32 ]] && systems+=" postclassd-blas1"
        ((PRECISION_AB)) && systems+=" postclassd-fp32"
        for system in $systems; do
            TOPICS+="in-$system-$kind-$batch:$PARTITIONS,out-$system-$kind-$batch:$PARTITIONS,"
        done
    done
done
TOPICS+="dlq:1"
"$BIN/postclassd" broker --topics "$TOPICS" --bootstrap-file "$WORK/bootstrap" --log-level warning >/dev/null &
PIDS+=($!)
for _ in $(seq 1 600); do [[ -s "$WORK/bootstrap" ]] && break; sleep 0.1; done
[[ -s "$WORK/bootstrap" ]] || { echo "[bench] the embedded broker did not start within 60 s" >&2; exit 1; }
BOOTSTRAP="$(cat "$WORK/bootstrap")"
echo "[bench] embedded broker at $BOOTSTRAP; load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$PY" - "$RESULTS" <<'PY'
import json, os, subprocess, sys
row = {"meta": True, "cores": os.cpu_count(), "loadavg_start": open("/proc/loadavg").read().split()[:3],
       "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()}
open(sys.argv[1], "a").write(json.dumps(row) + "\n")
PY

# rotated N WORD...: the words starting at the N-th (mod their count), wrapping around.
rotated() {
    local n="$1"; shift
    local words=("$@") i
    for ((i = 0; i < ${#words[@]}; i++)); do echo "${words[(n + i) % ${#words[@]}]}"; done
}

# cell_best KIND BATCH: the best Python variant of round 1, and half its saturated posts/s.
cell_best() {
    "$PY" - "$RESULTS" "$1" "$2" <<'PY'
import json, sys
rows = [r for r in map(json.loads, open(sys.argv[1])) if r.get("system") == "python" and r.get("round") == 1
        and r["kind"] == sys.argv[2] and r["batch"] == int(sys.argv[3])]
best = max(rows, key=lambda r: r["posts_per_s"])
print(best["variant"], best["posts_per_s"] / 2)
PY
}

# run_cell ROUND SYSTEM KIND BATCH RATE: one system (postclassd, postclassd-blas1 or python-VARIANT)
# in one cell; RATE 0 paces the latency window at half the system's own saturated rate.
run_cell() {
    local round="$1" system="$2" kind="$3" batch="$4" rate="$5" args=()
    args=(--round "$round" --kind "$kind" --batch "$batch" --brokers "$BOOTSTRAP" --partitions "$PARTITIONS" --bin "$BIN"
          --duration "$DURATION" --latency-duration "$LATENCY_DURATION" --work "$WORK" --results "$RESULTS"
          --kafka fetch.wait.max.ms=10 --rate "$rate")
    case "$system" in
        postclassd) args+=(--system postclassd) ;;
        postclassd-blas1) args+=(--system postclassd --variant blas1 --env OPENBLAS_NUM_THREADS=1) ;;
        postclassd-fp32) args+=(--system postclassd --variant fp32 --env POSTCLASSD_PRECISION=fp32) ;;
        python-*) args+=(--system python --variant "${system#python-}" --py-args "$(variant_args "${system#python-}")") ;;
    esac
    echo "[bench] round $round, $kind batch $batch: $system (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    "$PY" bench/e2e/cell.py "${args[@]}" || { cat "$WORK/$system-$kind-$batch.log" >&2; exit 1; }
}

declare -A RATE BEST
for round in $(seq 1 "$ROUNDS"); do
    for kind in ${KINDS//,/ }; do
        for batch in ${BATCHES//,/ }; do
            mapfile -t pythons < <(rotated "$((round - 1))" $(for v in ${PY_VARIANTS//,/ }; do echo "python-$v"; done))
            ((round > 1 && !ALL_VARIANTS)) && pythons=("python-${BEST[$kind-$batch]}")
            if ((round == 1)); then
                # Round 1 sets the cell's paced rate: each variant at half its own, then the best's half.
                for system in "${pythons[@]}"; do run_cell 1 "$system" "$kind" "$batch" 0; done
                read -r best rate < <(cell_best "$kind" "$batch")
                BEST[$kind-$batch]="$best" RATE[$kind-$batch]="$rate"
                echo "[bench] $kind batch $batch: best Python variant of round 1 is $best" >&2
                order=(postclassd)
            elif ((round % 2 == 0)); then
                order=(postclassd "${pythons[@]}")
            else
                order=("${pythons[@]}" postclassd)
            fi
            ((DIAGNOSE)) && [[ "$batch" == 32 ]] && order+=(postclassd-blas1)
            ((PRECISION_AB)) && order+=(postclassd-fp32)
            for system in "${order[@]}"; do run_cell "$round" "$system" "$kind" "$batch" "${RATE[$kind-$batch]}"; done
        done
    done
done
"$PY" - "$RESULTS" <<'PY'
import json, sys
open(sys.argv[1], "a").write(json.dumps({"meta": True, "loadavg_end": open("/proc/loadavg").read().split()[:3]}) + "\n")
PY
"$PY" bench/e2e/report.py "$RESULTS" | tee "${RESULTS%.jsonl}.md"
