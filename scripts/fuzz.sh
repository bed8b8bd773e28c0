#!/usr/bin/env bash
# Builds the libFuzzer targets in Tests/Fuzz and runs each for SECONDS (default 60) on a copy of
# its committed seed corpus. Prints one line per target (runs, execs/s, result) and exits non-zero
# if any target crashed, leaked, timed out or ran out of memory; the input that did it is saved
# under .build-libfuzzer/artifacts/ and its path printed.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     targets: records base64 jpeg tokenizer manifest
#
# The targets are not SwiftPM targets (Package.swift names its targets, so Tests/Fuzz is ignored):
# each is compiled here with swiftc or clang, -sanitize=fuzzer,address, from the few source files
# it tests. Needs the Swift toolchain's clang (libFuzzer) and libjpeg-dev.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECONDS_EACH="${1:-60}"
shift || true
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(records base64 jpeg tokenizer manifest)
[[ "$SECONDS_EACH" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: SECONDS must be a whole number, got '$SECONDS_EACH'" >&2; exit 64; }

OUT="$ROOT/.build-libfuzzer"
ARTIFACTS="$OUT/artifacts"
mkdir -p "$OUT" "$ARTIFACTS"
SWIFT_FLAGS=(-parse-as-library -O -g -sanitize=fuzzer,address -use-ld=lld)
C_FLAGS=(-O1 -g -fsanitize=fuzzer,address -fuse-ld=lld)
S=Sources

build() {
    local target="$1"
    case "$target" in
    records)
        # InputRecord.swift imports Model for `Post` only: a Model module of Classifier.swift stands in.
        mkdir -p "$OUT/records-model"
        swiftc -parse-as-library -sanitize=address -emit-module -emit-library -static -module-name Model \
            -emit-module-path "$OUT/records-model/Model.swiftmodule" \
            "$S/Model/Classifier.swift" -o "$OUT/records-model/libModel.a"
        swiftc "${SWIFT_FLAGS[@]}" -I "$OUT/records-model" -L "$OUT/records-model" -lModel \
            "$S/Daemon/Records/Base64.swift" "$S/Daemon/Records/JSONScanner.swift" \
            "$S/Daemon/Records/InputRecord.swift" Tests/Fuzz/records/FuzzRecords.swift -o "$OUT/fuzz-records" ;;
    base64)
        swiftc "${SWIFT_FLAGS[@]}" "$S/Daemon/Records/Base64.swift" Tests/Fuzz/base64/FuzzBase64.swift \
            -o "$OUT/fuzz-base64" ;;
    jpeg)
        clang "${C_FLAGS[@]}" -I "$S/CJPEG/include" "$S/CJPEG/pcd_jpeg.c" Tests/Fuzz/jpeg/fuzz_jpeg.c \
            -ljpeg -o "$OUT/fuzz-jpeg" ;;
    tokenizer)
        swiftc "${SWIFT_FLAGS[@]}" "$S"/Model/Tokenizer/*.swift Tests/Fuzz/tokenizer/FuzzTokenizer.swift \
            -o "$OUT/fuzz-tokenizer" ;;
    manifest)
        swiftc "${SWIFT_FLAGS[@]}" "$S/Model/Bundle/BundleManifest.swift" "$S/Model/Bundle/JSONValue.swift" \
            "$S/Model/Errors/ModelLoadError.swift" Tests/Fuzz/manifest/*.swift -o "$OUT/fuzz-manifest" ;;
    *)
        echo "fuzz.sh: unknown target '$target' (known: records base64 jpeg tokenizer manifest)" >&2
        exit 64 ;;
    esac
}

# The tokenizer loads the real vocabulary when scripts/setup-models.sh has fetched it.
export FUZZ_VOCAB="$ROOT/models/all-MiniLM-L6-v2/vocab.txt"
[[ -f "$FUZZ_VOCAB" ]] || FUZZ_VOCAB="$ROOT/Tests/ModelTests/Fixtures/tiny-bert/vocab.txt"

for target in "${TARGETS[@]}"; do
    echo "fuzz.sh: building $target" >&2
    build "$target"
done

failed=0
summary=()
for target in "${TARGETS[@]}"; do
    corpus="$(mktemp -d "${TMPDIR:-/tmp}/fuzz-$target.XXXXXX")"
    cp Tests/Fuzz/"$target"/corpus/* "$corpus"/
    log="$OUT/$target.log"
    extra=()
    # Long texts only slow the tokenizer down without reaching new code.
    [[ "$target" == tokenizer ]] && extra=(-max_len=1024)
    echo "fuzz.sh: running $target for ${SECONDS_EACH}s" >&2
    status=0
    "$OUT/fuzz-$target" -max_total_time="$SECONDS_EACH" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$ARTIFACTS/$target-" "${extra[@]}" "$corpus" >"$log" 2>&1 || status=$?
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    if [[ $status -eq 0 ]]; then
        result="ok"
    else
        failed=1
        artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)"
        reason="$(grep -m1 -E 'ERROR: (AddressSanitizer|libFuzzer)|^fuzz_[a-z0-9]+:|SUMMARY:' "$log" || echo "exit $status")"
        result="FAILED ($reason) input: ${artifact:-none}, log: $log"
    fi
    rm -rf "$corpus"
    summary+=("$(printf '%-10s %10s runs %8s execs/s  %s' "$target" "${runs:-?}" "${rate:-?}" "$result")")
done

printf '%s\n' "${summary[@]}"
exit "$failed"
