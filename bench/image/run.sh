#!/usr/bin/env bash
# Image benchmark: decode + preprocess of a 1200x900 quality-85 JPEG to a 224x224 ViT input
# (squash, bilinear, ImageNet normalisation, NCHW float32), Swift (release build) against Pillow,
# like for like: Swift with DCT scaling against Pillow with Image.draft() (libjpeg's DCT scaling),
# and both decoding at full size (bench/image/summarize_jpeg.py says why both).
# Bar (issue 6): Swift decode + preprocess at least 2x Pillow's decode + resize.
# ROUNDS (default 3) alternate the sides (odd rounds Swift first, even rounds Pillow first); the
# summary gives the median of the per-round ratios.
#
# Usage: [ROUNDS=3] bench/image/run.sh [iterations]     (default 300 per variant and round)
# Needs: Pillow (tools/images/requirements.txt), which scripts/setup-models.sh installs into
# models/.venv; set PYTHON to use another interpreter.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0; fi
ITER="${1:-300}"
ROUNDS="${ROUNDS:-3}"
OUT="$ROOT/bench/results"
mkdir -p "$OUT"
PY="${PYTHON:-$ROOT/models/.venv/bin/python}"
[[ -x "$PY" ]] || PY=python3

[[ -f models/test-images/coffee_1200x900_q85.jpg ]] || "$PY" tools/images/make_test_jpegs.py --no-small

# Release build; -enable-testing because the test target uses @testable imports. Built once,
# then each round runs the built tests (--skip-build).
SWIFT_TEST=(swift test -c release -Xswiftc -enable-testing --scratch-path .build-image-release --filter JPEGBenchTests)
echo "[bench] building the release test target" >&2
swift build -c release -Xswiftc -enable-testing --scratch-path .build-image-release --build-tests >&2

run_swift() {
    POSTCLASSD_BENCH=1 POSTCLASSD_BENCH_ITERATIONS="$ITER" POSTCLASSD_BENCH_OUT="$OUT/image-swift-$1.json" \
        "${SWIFT_TEST[@]}" --skip-build 2>&1 | grep -E '^bench|error|passed|failed'
}
run_pillow() {
    "$PY" bench/image/pillow_baseline.py --iterations "$ITER" --json "$OUT/image-pillow-$1.json"
}

ROUND_FILES=()
for round in $(seq 1 "$ROUNDS"); do
    echo "[bench] round $round/$ROUNDS" >&2
    if ((round % 2)); then run_swift "$round"; run_pillow "$round"; else run_pillow "$round"; run_swift "$round"; fi
    python3 -c 'import json, sys
print(json.dumps({"round": int(sys.argv[1]), "swift": json.load(open(sys.argv[2])), "pillow": json.load(open(sys.argv[3]))}))' \
        "$round" "$OUT/image-swift-$round.json" "$OUT/image-pillow-$round.json" > "$OUT/image-round-$round.json"
    ROUND_FILES+=("$OUT/image-round-$round.json")
done
python3 bench/image/summarize_jpeg.py "${ROUND_FILES[@]}"
