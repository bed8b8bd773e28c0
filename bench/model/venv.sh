#!/usr/bin/env bash
# The Python baselines' virtual environment, models/.bench-venv (PyTorch CPU, transformers, ONNX
# Runtime at pinned versions), installed once per change of pins; bench/model/run.sh and
# bench/e2e/run.sh call this. Usage: bench/model/venv.sh   (prints nothing on success)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/models/.bench-venv"
PINS="numpy==2.4.6 safetensors==0.8.0 tokenizers==0.23.3 onnxruntime==1.32.0 onnx==1.23.2 torch==2.15.0 transformers==5.23.0"
if [[ ! -f "$VENV/.pins" || "$(cat "$VENV/.pins")" != "$PINS" ]]; then
    echo "[bench] installing baselines into $VENV: $PINS" >&2
    python3 -m venv "$VENV"
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install --quiet --disable-pip-version-check $PINS
    echo "$PINS" > "$VENV/.pins"
fi
