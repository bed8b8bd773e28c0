#!/usr/bin/env bash
# Creates models/.venv-train, the training toolkit's own virtual environment (PyTorch on the CPU),
# apart from models/.venv so that the reference outputs' pinned packages never move with torch.
#
# Usage: tools/train/setup-venv.sh        (idempotent: a stamp file remembers what is installed)
# Then:  models/.venv-train/bin/python tools/train/train_sarcasm.py --help
#
# torch==2.13.0 is the CPU-only wheel that `pip config list` points pip at on these machines
# (find-links); elsewhere pip may pick a CUDA build of the same version, which also works but
# downloads gigabytes. Not part of the README's first command: serving never needs torch.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${POSTCLASSD_MODELS_DIR:-$ROOT/models}/.venv-train"
PYTHON="${PYTHON:-python3}"
PINS="torch==2.13.0 numpy==2.4.6 safetensors==0.8.0 tokenizers==0.23.3 pillow==13.0.0"

log() { printf '[setup-venv] %s\n' "$*" >&2; }

if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV"
    "$PYTHON" -m venv "$VENV" || { log "error: could not create a virtual environment with $PYTHON (install python3-venv)"; exit 1; }
fi
stamp="$VENV/.postclassd-pins"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$PINS" ]]; then
    log "already installed: $PINS"
    exit 0
fi
log "installing $PINS"
# shellcheck disable=SC2086
"$VENV/bin/pip" install --quiet --disable-pip-version-check $PINS
echo "$PINS" > "$stamp"
log "done: $VENV/bin/python"
