#!/usr/bin/env bash
# End-to-end benchmark with the default model bundle (issue 8): `postclassd run --model
# models/default` (release build) against a Python service doing the same work (bench/e2e/
# pyservice.py: confluent-kafka, Pillow, ONNX Runtime, numpy heads, the same micro-batching and
# at-least-once), both measured in the same run, on the same embedded broker, by the same feeder
# and reader (bench/e2e/cell.py). Cells: text-only posts and posts with a 1200x900 q85 JPEG, at
# batch sizes 1, 8 and 32; per cell posts/s at saturation, then p50/p99 end-to-end latency at a
# common paced rate (half the Python baseline's saturated rate, so both are measured at the same
# load), plus per-stage times and CPU per post. The report (markdown) has the Swift/Python ratios.
#
# Both systems get --kafka fetch.wait.max.ms=10: the embedded (mock) broker answers a fetch only
# when fetch.wait.max.ms has passed, not when data arrives as a real broker does, which with the
# default 500 ms adds ~250 ms per hop to every latency (measured: Python p50 490 -> 138 ms).
# --diagnose adds postclassd with OPENBLAS_NUM_THREADS=1 at batch 32 (each of postclassd's worker
# threads otherwise calls a 2-thread OpenBLAS: see the report's CPU per post).
#
# Usage: bench/e2e/run.sh [--duration S] [--latency-duration S] [--kinds text,image] [--batches 1,8,32] [--diagnose]
# Results: bench/results/e2e-<timestamp>.jsonl, .md and -logs/ (each system's log per cell; git-ignored).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
DURATION=15
LATENCY_DURATION=10
DIAGNOSE=0
KINDS="text,image"
BATCHES="1,8,32"
PARTITIONS=16
while (($#)); do
    case "$1" in
        --duration) DURATION="$2"; shift 2 ;;
        --latency-duration) LATENCY_DURATION="$2"; shift 2 ;;
        --kinds) KINDS="$2"; shift 2 ;;
        --batches) BATCHES="$2"; shift 2 ;;
        --diagnose) DIAGNOSE=1; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
bash scripts/install-deps.sh
[[ -f models/default/manifest.json ]] || scripts/setup-models.sh
PY="$ROOT/models/.venv/bin/python"
PINS="onnxruntime==1.32.0 onnx==1.23.2"
# shellcheck disable=SC2086
"$PY" -c "import onnxruntime, onnx" 2>/dev/null || "$ROOT/models/.venv/bin/pip" install --quiet --disable-pip-version-check $PINS
# The MiniLM ONNX graph is the one bench/model exports once with torch.onnx (torch lives in
# models/.bench-venv only); export it there if this machine has not run that bench yet.
[[ -f models/all-MiniLM-L6-v2/bench/model.onnx ]] || bench/model/run.sh
swift build -c release --product postclassd >&2
BIN="$(swift build -c release --show-bin-path)"

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
        systems="python postclassd"
        ((DIAGNOSE)) && [[ "$batch" == 32 ]] && systems+=" postclassd-blas1"
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

for kind in ${KINDS//,/ }; do
    for batch in ${BATCHES//,/ }; do
        common=(--kind "$kind" --batch "$batch" --brokers "$BOOTSTRAP" --partitions "$PARTITIONS" --bin "$BIN"
                --duration "$DURATION" --latency-duration "$LATENCY_DURATION" --work "$WORK" --results "$RESULTS"
                --kafka fetch.wait.max.ms=10)
        echo "[bench] $kind batch $batch: python baseline (load $(cut -d' ' -f1 /proc/loadavg))" >&2
        "$PY" bench/e2e/cell.py --system python "${common[@]}" || { cat "$WORK/python-$kind-$batch.log" >&2; exit 1; }
        # postclassd's latency is measured at the rate the baseline's was.
        rate="$("$PY" -c "import json,sys; print([r for r in map(json.loads, open(sys.argv[1])) if r.get('system') == 'python'][-1]['latency_rate'])" "$RESULTS")"
        echo "[bench] $kind batch $batch: postclassd (load $(cut -d' ' -f1 /proc/loadavg))" >&2
        "$PY" bench/e2e/cell.py --system postclassd --rate "$rate" "${common[@]}" || { cat "$WORK/postclassd-$kind-$batch.log" >&2; exit 1; }
        if ((DIAGNOSE)) && [[ "$batch" == 32 ]]; then
            echo "[bench] $kind batch $batch: postclassd with OPENBLAS_NUM_THREADS=1 (diagnostic)" >&2
            "$PY" bench/e2e/cell.py --system postclassd --variant blas1 --env OPENBLAS_NUM_THREADS=1 --rate "$rate" "${common[@]}" \
                || { cat "$WORK/postclassd-blas1-$kind-$batch.log" >&2; exit 1; }
        fi
    done
done
"$PY" - "$RESULTS" <<'PY'
import json, sys
open(sys.argv[1], "a").write(json.dumps({"meta": True, "loadavg_end": open("/proc/loadavg").read().split()[:3]}) + "\n")
PY
"$PY" bench/e2e/report.py "$RESULTS" | tee "${RESULTS%.jsonl}.md"
