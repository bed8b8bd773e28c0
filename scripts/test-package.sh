#!/usr/bin/env bash
# CI step: builds the Debian packages (scripts/package-deb.sh), installs them with apt-get as an
# operator would, and checks the installed daemon: `postclassd check` against an embedded broker
# with the installed settings, credentials and bundle, `postclassd run` with the service's
# settings labelling a post, `postclassd classify` on sample posts with the installed bundle,
# `systemd-analyze verify` on the installed unit. Then it removes the
# packages (settings, secrets and cache must stay) and purges them (nothing may stay).
# Whatever happens, the machine is left as it was: the packages are purged on every exit path.
#
# Needs root (it installs packages) and the runtime libraries already installed
# (scripts/install-deps.sh): apt-get runs without package sources, so it works offline and fails
# rather than fetch anything.
# Usage: scripts/test-package.sh [DEB_DIR]   DEB_DIR: test the packages already built there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { printf '[test-package] %s\n' "$*" >&2; }
die() { printf '[test-package] FAILED: %s\n' "$*" >&2; exit 1; }
PACKAGES=(postclassd postclassd-models)
BIN=/usr/bin/postclassd
BUNDLE=/usr/share/postclassd/models/default
UNIT=/lib/systemd/system/postclassd.service
CACHE=/var/cache/private/postclassd

[[ $(id -u) == 0 ]] || die "run it as root: it installs and purges packages"
# Never touch an installation this script did not make.
for package in "${PACKAGES[@]}"; do
    if dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null | grep -qv '^not-installed$'; then
        die "$package is already installed (or its configuration is): purge it first (apt-get purge $package)"
    fi
done
for path in /etc/postclassd "$CACHE" /var/cache/postclassd; do
    [[ ! -e "$path" ]] || die "$path exists before the test: remove it first"
done

WORK="$(mktemp -d -t postclassd-test-package.XXXXXX)"
BROKER_PID=""
DAEMON_PID=""
cleanup() {
    local status=$?
    for pid in $DAEMON_PID $BROKER_PID; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    for package in "${PACKAGES[@]}"; do
        if dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null | grep -qv '^not-installed$'; then
            log "cleaning up: purging $package"
            DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "$package" >/dev/null 2>&1 || dpkg --purge "$package" >/dev/null 2>&1 || true
        fi
    done
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

TOTAL_START=$SECONDS
step_start=$SECONDS
timed() { log "$1 took $((SECONDS - step_start)) s"; step_start=$SECONDS; }

# --- build ---------------------------------------------------------------------------------------
if [[ -n "${1:-}" ]]; then
    # Absolute paths: apt-get takes an argument for a package file only when it has a slash.
    DEB="$(realpath "$1"/postclassd_*.deb)"
    MODELS_DEB="$(realpath "$1"/postclassd-models_*_all.deb)"
else
    mapfile -t debs < <(bash scripts/package-deb.sh "$WORK/debs")
    DEB="${debs[0]}"
    MODELS_DEB="${debs[1]}"
    timed "building the packages"
fi
log "packages: $(basename "$DEB") ($(du -h "$DEB" | cut -f1)), $(basename "$MODELS_DEB") ($(du -h "$MODELS_DEB" | cut -f1))"

# --- install -------------------------------------------------------------------------------------
# No package sources (an empty list): apt resolves the dependencies from what is installed and
# the two files alone, so it cannot download anything, and fails if a dependency is missing.
mkdir "$WORK/no-sources"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$WORK/no-sources" "$DEB" "$MODELS_DEB" \
    > "$WORK/apt-install.log" 2>&1 || { cat "$WORK/apt-install.log" >&2; die "apt-get install failed"; }
timed "apt-get install"
dpkg -L "${PACKAGES[@]}" | grep -vx "/\." | sort -u > "$WORK/files"
for path in "$BIN" "$UNIT" /etc/postclassd/postclassd.env "$BUNDLE/manifest.json" /usr/share/man/man8/postclassd.8.gz \
            /usr/share/doc/postclassd/copyright; do
    [[ -e "$path" ]] || die "$path was not installed"
done
[[ "$(stat -c %a /etc/postclassd/credentials)" == 700 ]] || die "/etc/postclassd/credentials is not mode 0700"
for name in kafka-sasl-password kafka-tls-key; do
    [[ "$(stat -c '%a %U' "/etc/postclassd/credentials/$name")" == "600 root" ]] || die "credential $name is not root's, mode 0600"
done
! ls /etc/systemd/system/*.wants/postclassd.service >/dev/null 2>&1 || die "the package enabled the service"
if ldd "$BIN" | grep -Eq 'libswift|libFoundation|/opt/swift|not found'; then
    ldd "$BIN" >&2; die "the installed binary needs libraries that are not installed, or the Swift toolchain's"
fi
zcat /usr/share/man/man8/postclassd.8.gz | grep -q '^\.SS postclassd check' || die "the man page does not describe check"

# --- postclassd check: the installed settings, credentials and bundle, against an embedded broker
"$BIN" broker --topics posts:3,labels:3,posts.dlq:1 --bootstrap-file "$WORK/bootstrap" >/dev/null 2>"$WORK/broker.log" &
BROKER_PID=$!
for _ in $(seq 1 100); do [[ -s "$WORK/bootstrap" ]] && break; sleep 0.1; done
[[ -s "$WORK/bootstrap" ]] || { cat "$WORK/broker.log" >&2; die "the installed postclassd broker did not start"; }
BOOTSTRAP="$(cat "$WORK/bootstrap")"
# A clean environment: what an operator's shell gives, no POSTCLASSD_* of CI's own.
if ! env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$BIN" check --brokers "$BOOTSTRAP" --write-test > "$WORK/check.out" 2>"$WORK/check.err"; then
    cat "$WORK/check.out" "$WORK/check.err" >&2
    die "postclassd check failed on a fresh install"
fi
sed 's/^/  /' "$WORK/check.out" >&2
for expected in "OK settings: resolved from defaults, /etc/postclassd/postclassd.env" "OK credentials in /etc/postclassd/credentials" \
                "OK model $BUNDLE: " "OK dead-letter topic posts.dlq: 1 partition(s), each with a leader; wrote a test record"; do
    grep -qF "$expected" "$WORK/check.out" || die "postclassd check printed no line with: $expected"
done
timed "postclassd check"

# --- postclassd run: the service's command with the service's settings labels a post -----------
# The environment the unit would give it (EnvironmentFile=), with the brokers and a free metrics port.
mapfile -t service_env < <(grep -E '^POSTCLASSD_[A-Z_]+=' /etc/postclassd/postclassd.env)
env -i PATH=/usr/bin:/bin "${service_env[@]}" "$BIN" run --brokers "$BOOTSTRAP" --metrics-address 127.0.0.1:0 \
    >"$WORK/run.out" 2>"$WORK/run.log" &
DAEMON_PID=$!
printf '%s\n' '{"id":"pkg-1","text":"oh great, another monday #sarcasm"}' | kcat -b "$BOOTSTRAP" -t posts -P -k pkg-1 \
    || die "kcat could not produce to the embedded broker"
# labels holds check's test record first, then the labelled post.
timeout 120 kcat -b "$BOOTSTRAP" -C -t labels -o beginning -c 2 -q -f '%s\n' > "$WORK/run-labels.jsonl" 2>/dev/null || true
python3 -c '
import json, sys
records = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
assert any(r.get("id") == "pkg-1" and r["labels"]["sarcasm"]["label"] in ("sarcastic", "not_sarcastic") for r in records), records
' "$WORK/run-labels.jsonl" || { tail -20 "$WORK/run.log" >&2; die "the installed postclassd run did not label a post within 120 s"; }
kill -TERM "$DAEMON_PID"
run_status=0; wait "$DAEMON_PID" || run_status=$?; DAEMON_PID=""
((run_status == 0)) || { tail -20 "$WORK/run.log" >&2; die "postclassd run exited $run_status on SIGTERM, not 0"; }
log "  run: labelled a post with the installed bundle and stopped cleanly on SIGTERM"
timed "postclassd run"

# --- postclassd classify with the installed bundle -----------------------------------------------
# The demo's posts; with their photos where scripts/setup-models.sh placed them, else text only.
python3 - "$WORK/posts.jsonl" <<'PY'
import base64, json, os, sys
with open("scripts/demo/posts.tsv") as f, open(sys.argv[1], "w") as out:
    for line in f:
        if not line.strip() or line.startswith("#"):
            continue
        pid, image, text = line.rstrip("\n").split("\t")
        post = {"id": pid, "text": text}
        path = os.path.join("models/demo-images", image)
        if image != "-" and os.path.exists(path):
            post["image"] = base64.b64encode(open(path, "rb").read()).decode()
        out.write(json.dumps(post) + "\n")
PY
env -i PATH=/usr/bin:/bin "$BIN" classify "$WORK/posts.jsonl" --model "$BUNDLE" > "$WORK/labelled.jsonl" 2>"$WORK/classify.err" \
    || { cat "$WORK/classify.err" >&2; die "postclassd classify failed with the installed bundle"; }
python3 - "$WORK/posts.jsonl" "$WORK/labelled.jsonl" <<'PY' || die "classify's records are not what the bundle gives"
import json, sys
posts = [json.loads(l) for l in open(sys.argv[1])]
records = {r["id"]: r for r in map(json.loads, open(sys.argv[2]))}
assert set(records) == {p["id"] for p in posts}, "records for %s, posts %s" % (sorted(records), [p["id"] for p in posts])
for post in posts:
    labels = records[post["id"]]["labels"]
    assert labels["sarcasm"]["label"] in ("sarcastic", "not_sarcastic"), labels
    expect_image = "image" in post
    assert (labels["correlation"]["label"] != "no_image") == expect_image, (post["id"], labels["correlation"])
assert records["demo-11"]["labels"]["correlation"]["label"] == "no_image"
with_images = sum("image" in p for p in posts)
if with_images:
    assert records["demo-03"]["labels"]["correlation"]["label"] == "explicit", records["demo-03"]["labels"]
print("[test-package]   classify: %d posts labelled (%d with images) by the installed bundle" % (len(posts), with_images), file=sys.stderr)
PY
timed "postclassd classify"

# --- the installed unit --------------------------------------------------------------------------
command -v systemd-analyze >/dev/null || die "systemd-analyze is not installed (apt-get install systemd): the unit cannot be verified here"
# verify loads the unit as systemd would (ExecStart must exist); it needs no running systemd.
verify="$(systemd-analyze verify "$UNIT" 2>&1)" || die "systemd-analyze verify rejected $UNIT: $verify"
[[ -z "$verify" ]] || die "systemd-analyze verify complained about $UNIT: $verify"
exposure="$(systemd-analyze security --offline=yes "$UNIT" 2>&1 | grep -o 'Overall exposure level for postclassd.service: [0-9.]*' | grep -o '[0-9.]*$')"
[[ -n "$exposure" ]] && awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' || die "the installed unit's exposure is '$exposure' (at most 2.0 expected)"
log "  systemd-analyze verify: clean; offline security exposure $exposure"
timed "systemd-analyze"

# --- remove: settings, secrets and data stay -----------------------------------------------------
kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null || true; BROKER_PID=""
# An operator enables the service (systemctl only makes links here, no systemd need run): the
# purge must take the link away too.
systemctl enable postclassd.service >/dev/null 2>&1 || die "systemctl enable postclassd failed"
[[ -L /etc/systemd/system/multi-user.target.wants/postclassd.service ]] || die "systemctl enable made no link"
echo "POSTCLASSD_BATCH_SIZE=16" >> /etc/postclassd/postclassd.env
echo "not-a-real-password" > /etc/postclassd/credentials/kafka-sasl-password
install -m 0600 /dev/null /etc/postclassd/credentials/kafka-oauth-client-secret   # one the package did not ship
mkdir -p "$CACHE" && echo derived > "$CACHE/marker" && ln -sfn private/postclassd /var/cache/postclassd  # as DynamicUser= lays it out
DEBIAN_FRONTEND=noninteractive apt-get remove -y -q "${PACKAGES[@]}" > "$WORK/apt-remove.log" 2>&1 \
    || { cat "$WORK/apt-remove.log" >&2; die "apt-get remove failed"; }
for path in "$BIN" "$UNIT" "$BUNDLE/manifest.json"; do [[ ! -e "$path" ]] || die "$path is still there after remove"; done
grep -qx "POSTCLASSD_BATCH_SIZE=16" /etc/postclassd/postclassd.env || die "remove lost the edited settings"
grep -qx "not-a-real-password" /etc/postclassd/credentials/kafka-sasl-password || die "remove lost a credential"
[[ -e /etc/postclassd/credentials/kafka-oauth-client-secret ]] || die "remove lost a credential the operator added"
[[ -f "$CACHE/marker" ]] || die "remove deleted the cache"
[[ "$(dpkg-query -W -f='${db:Status-Status}' postclassd)" == config-files ]] || die "postclassd is not in config-files state after remove"
timed "apt-get remove (settings, credentials and cache kept)"

# --- purge: nothing stays ------------------------------------------------------------------------
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "${PACKAGES[@]}" > "$WORK/apt-purge.log" 2>&1 \
    || { cat "$WORK/apt-purge.log" >&2; die "apt-get purge failed"; }
left=()
while read -r path; do
    [[ -e "$path" || -L "$path" ]] || continue
    # Directories other packages own too (/usr/bin, /lib/systemd/system, ...) stay, rightly.
    [[ -d "$path" ]] && dpkg-query -S "$path" >/dev/null 2>&1 && continue
    left+=("$path")
done < "$WORK/files"
for path in /etc/postclassd "$CACHE" /var/cache/postclassd /etc/systemd/system/multi-user.target.wants/postclassd.service \
            $(find /var/lib/systemd -name '*postclassd*' 2>/dev/null); do
    [[ -e "$path" || -L "$path" ]] && left+=("$path")
done
((${#left[@]} == 0)) || die "left behind after purge: ${left[*]}"
for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null | grep -q '^not-installed$' \
        || [[ -z "$(dpkg-query -W "$package" 2>/dev/null)" ]] || die "$package is still known to dpkg after purge"
done
timed "apt-get purge (nothing left of $(wc -l < "$WORK/files") installed paths)"
log "passed in $((SECONDS - TOTAL_START)) s"
