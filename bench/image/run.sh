#!/usr/bin/env bash
# Image benchmark: decode + preprocess of a 1200x900 quality-85 JPEG to a
# 224x224 ViT input, Swift (release build) against Pillow in the same run.
# Bar (issue 6): Swift decode + preprocess at least 2x Pillow's decode + resize.
#
# Usage: bench/image/run.sh [iterations]     (default 300)
# Needs: Pillow (tools/images/requirements.txt), which scripts/setup-models.sh installs into
# models/.venv; set PYTHON to use another interpreter.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
ITER="${1:-300}"
OUT="$ROOT/bench/results"
mkdir -p "$OUT"
PY="${PYTHON:-$ROOT/models/.venv/bin/python}"
[[ -x "$PY" ]] || PY=python3

[[ -f models/test-images/coffee_1200x900_q85.jpg ]] || "$PY" tools/images/make_test_jpegs.py --no-small

# Release build; -enable-testing because the test target uses @testable imports.
POSTCLASSD_BENCH=1 POSTCLASSD_BENCH_ITERATIONS="$ITER" POSTCLASSD_BENCH_OUT="$OUT/image-swift.json" \
    swift test -c release -Xswiftc -enable-testing --scratch-path .build-image-release \
    --filter JPEGBenchTests 2>&1 | grep -E '^bench|error|passed|failed'
"$PY" bench/image/pillow_baseline.py --iterations "$ITER" --json "$OUT/image-pillow.json"

python3 - "$OUT/image-swift.json" "$OUT/image-pillow.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); p = json.load(open(sys.argv[2]))
swift = s["swift_decode_preprocess_dct"]
for name, base in sorted(p.items()):
    print(f"swift decode+preprocess (DCT scaling) / {name}: {swift / base:.2f}x")
print(f"swift full decode+preprocess / pillow_decode_resize: {s['swift_decode_preprocess_full'] / p['pillow_decode_resize']:.2f}x")
ok = swift >= 2 * p["pillow_decode_resize"]
print("bar (>= 2x Pillow decode + resize):", "met" if ok else "NOT met")
PY
