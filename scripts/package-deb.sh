#!/usr/bin/env bash
# Builds the Debian packages, with dpkg-deb, into OUT (default .build/deb):
#   postclassd_<version>_<arch>.deb      the release binary (Swift runtime and Foundation linked
#                                        statically), the systemd unit, /etc/postclassd, the man page
#   postclassd-models_<version>_all.deb  the default model bundle, /usr/share/postclassd/models/default
# The bundle (about 190 MB of weights) is a package of its own: it is the same on every
# architecture, changes far less often than the binary (an upgrade of the daemon need not
# download it again), and hosts that serve their own bundle do without it (postclassd only
# Recommends it).
#
# Usage: scripts/package-deb.sh [OUT]
#   POSTCLASSD_DEB_VERSION overrides the version (default 0.0~git<commit date>.<commit>, +dirty
#   when the tree has uncommitted changes).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="$(mkdir -p "${1:-.build/deb}" && cd "${1:-.build/deb}" && pwd)"
log() { printf '[package-deb] %s\n' "$*" >&2; }
die() { printf '[package-deb] error: %s\n' "$*" >&2; exit 1; }

for tool in dpkg-deb dpkg-shlibdeps gzip swift; do
    command -v "$tool" >/dev/null || die "$tool is missing (dpkg-dev for dpkg-shlibdeps)"
done
ARCH="$(dpkg --print-architecture)"
if [[ -n "${POSTCLASSD_DEB_VERSION:-}" ]]; then
    VERSION="$POSTCLASSD_DEB_VERSION"
else
    VERSION="0.0~git$(git log -1 --format=%cd --date=format:%Y%m%d).$(git rev-parse --short=7 HEAD)"
    git diff --quiet HEAD -- Sources Package.swift systemd packaging scripts/package-deb.sh scripts/lib/manpage.sh README.md || VERSION+="+dirty"
fi
MAINTAINER="${POSTCLASSD_DEB_MAINTAINER:-postclassd maintainers <postclassd@localhost>}"

# --- the binary ---------------------------------------------------------------------------------
# --static-swift-stdlib links the Swift runtime, Dispatch and Foundation (with ICU's data) into
# the binary, so no Swift toolchain is needed on the host and no runtime .so files need an rpath.
log "release build of postclassd (statically linked Swift runtime; several minutes on 2 cores)"
start=$SECONDS
rm -f "$OUT"/postclassd_*.deb "$OUT"/postclassd-models_*.deb
if ! swift build -c release --product postclassd --static-swift-stdlib > "$OUT/build.log" 2>&1; then
    grep -E "error:" "$OUT/build.log" >&2 || tail -20 "$OUT/build.log" >&2
    die "the release build failed (whole log: $OUT/build.log)"
fi
BIN="$(swift build -c release --show-bin-path)/postclassd"
log "built in $((SECONDS - start)) s: $BIN"
if ldd "$BIN" | grep -Eq 'libswift|libFoundation|libdispatch|libBlocksRuntime|/opt/swift|not found'; then
    ldd "$BIN" >&2
    die "the binary still needs Swift runtime libraries (or misses one): it would not run on a host without the toolchain"
fi

STAGE="$(mktemp -d "$OUT/stage.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT

# Writes DEBIAN/md5sums for a staged package tree.
md5sums() {
    (cd "$1" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 -r md5sum) > "$1/DEBIAN/md5sums"
}

# A changelog.Debian.gz, which every Debian package carries.
changelog() {
    local package=$1 dest=$2
    printf '%s (%s) unstable; urgency=medium\n\n  * Built from postclassd commit %s by scripts/package-deb.sh.\n\n -- %s  %s\n' \
        "$package" "$VERSION" "$(git rev-parse HEAD)" "$MAINTAINER" "$(date -R)" | gzip -9n > "$dest/changelog.Debian.gz"
}

PKG="$STAGE/postclassd"
install -D -m 0755 "$BIN" "$PKG/usr/bin/postclassd"
strip --strip-unneeded "$PKG/usr/bin/postclassd"

# The unit, for the packaged paths; its header of manual install steps gives way to a pointer.
install -d "$PKG/lib/systemd/system"
{
    echo "# postclassd: classifies posts from Kafka and produces labelled records."
    echo "# Installed by the postclassd package: settings in /etc/postclassd/postclassd.env, secrets in"
    echo "# /etc/postclassd/credentials (LoadCredential=). Check them with \`postclassd check\`, then"
    echo "# \`systemctl enable --now postclassd\`. man postclassd; /usr/share/doc/postclassd/README.md."
    echo
    sed -n '/^\[Unit\]/,$p' systemd/postclassd.service \
        | sed -e 's|^Documentation=.*|Documentation=man:postclassd(8) file:/usr/share/doc/postclassd/README.md|' \
              -e 's|/usr/local/bin/postclassd|/usr/bin/postclassd|g' \
              -e 's|/usr/local/share/postclassd|/usr/share/postclassd|g'
} > "$PKG/lib/systemd/system/postclassd.service"
grep -q '^ExecStart=/usr/bin/postclassd run$' "$PKG/lib/systemd/system/postclassd.service" || die "ExecStart was not adjusted"

# Settings: every one commented at its default, except the model, which a service must name.
install -d -m 0755 "$PKG/etc/postclassd"
sed 's|^#POSTCLASSD_MODEL=/usr/share/postclassd/models/default$|POSTCLASSD_MODEL=/usr/share/postclassd/models/default|' \
    systemd/postclassd.env.example > "$PKG/etc/postclassd/postclassd.env"
grep -q '^POSTCLASSD_MODEL=/usr/share/postclassd/models/default$' "$PKG/etc/postclassd/postclassd.env" || die "the model line was not set"
chmod 0644 "$PKG/etc/postclassd/postclassd.env"
# The credential sources the unit lists: root-only, empty (unused) until filled in. Conffiles,
# so dpkg keeps an operator's secrets over upgrades and removes them only on purge.
install -d -m 0700 "$PKG/etc/postclassd/credentials"
install -m 0600 /dev/null "$PKG/etc/postclassd/credentials/kafka-sasl-password"
install -m 0600 /dev/null "$PKG/etc/postclassd/credentials/kafka-tls-key"

# The man page: the binary's own --help for each command, so it says what --help says.
install -d "$PKG/usr/share/man/man8"
bash scripts/lib/manpage.sh "$PKG/usr/bin/postclassd" "$VERSION" | gzip -9n > "$PKG/usr/share/man/man8/postclassd.8.gz"

DOC="$PKG/usr/share/doc/postclassd"
install -D -m 0644 README.md "$DOC/README.md"
install -m 0644 systemd/README.md "$DOC/systemd.md"
install -m 0644 packaging/deb/postclassd.copyright "$DOC/copyright"
changelog postclassd "$DOC"

install -d "$PKG/DEBIAN"
install -m 0755 packaging/deb/postclassd.postinst "$PKG/DEBIAN/postinst"
install -m 0755 packaging/deb/postclassd.prerm "$PKG/DEBIAN/prerm"
install -m 0755 packaging/deb/postclassd.postrm "$PKG/DEBIAN/postrm"
printf '%s\n' /etc/postclassd/postclassd.env /etc/postclassd/credentials/kafka-sasl-password \
    /etc/postclassd/credentials/kafka-tls-key > "$PKG/DEBIAN/conffiles"

# The shared libraries the binary really links (librdkafka, libjpeg, OpenBLAS, libc, libstdc++,
# ...), with the versions their symbols need, as dpkg-shlibdeps reads them from the installed
# packages. It wants a debian/control to read; a stub will do.
mkdir -p "$STAGE/shlibs/debian"
printf 'Source: postclassd\n\nPackage: postclassd\nArchitecture: any\n' > "$STAGE/shlibs/debian/control"
DEPENDS="$(cd "$STAGE/shlibs" && dpkg-shlibdeps -O "$PKG/usr/bin/postclassd" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')"
[[ -n "$DEPENDS" ]] || die "dpkg-shlibdeps found no dependencies: run it by hand on $PKG/usr/bin/postclassd"
log "Depends: $DEPENDS"
cat > "$PKG/DEBIAN/control" <<EOF
Package: postclassd
Version: $VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $(du -sk --exclude=DEBIAN "$PKG" | cut -f1)
Depends: $DEPENDS
Recommends: postclassd-models
Suggests: kcat
Section: net
Priority: optional
Description: streaming multimodal post classifier for Kafka
 A daemon that reads social-media posts (text and an optional JPEG) from Kafka, labels them
 for sarcasm and image-text correlation in micro-batches, and writes labelled records back to
 Kafka, with a dead-letter topic, Prometheus metrics and a hardened systemd unit.
 .
 The service is installed but neither enabled nor started: set the brokers in
 /etc/postclassd/postclassd.env, run "postclassd check", then "systemctl enable --now postclassd".
EOF
md5sums "$PKG"
# xz -3: 18.6 MB in 17 s here; the default -6 saves 1.8 MB more for a minute of CPU (2 busy cores).
dpkg-deb --root-owner-group -Zxz -z3 --build "$PKG" "$OUT/postclassd_${VERSION}_${ARCH}.deb" >&2

# --- the default model bundle --------------------------------------------------------------------
log "the default model bundle (scripts/setup-models.sh places it in models/default when missing)"
bash scripts/setup-models.sh --no-goldens >&2
BUNDLE_VERSION="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' models/default/manifest.json)"
MODELS_VERSION="${BUNDLE_VERSION}+${VERSION#0.0~}"
MPKG="$STAGE/postclassd-models"
DEST="$MPKG/usr/share/postclassd/models/default"
# The manifest and the files directly inside each component folder, which is all a bundle's
# loader reads. models/default links its encoders from beside it (the package holds real
# files), and those folders may also hold the tests' reference outputs and benchmarks' exports
# in subfolders, and setup stamps: none of that is part of the bundle. The package test loads
# the installed bundle, so a file missed here fails CI.
install -D -m 0644 models/default/manifest.json "$DEST/manifest.json"
for part in models/default/*/; do
    install -d "$DEST/$(basename "$part")"
    find -L "$part" -maxdepth 1 -type f ! -name '.*' -exec install -m 0644 -t "$DEST/$(basename "$part")" {} +
done
install -D -m 0644 packaging/deb/postclassd-models.copyright "$MPKG/usr/share/doc/postclassd-models/copyright"
changelog postclassd-models "$MPKG/usr/share/doc/postclassd-models"
install -d "$MPKG/DEBIAN"
cat > "$MPKG/DEBIAN/control" <<EOF
Package: postclassd-models
Version: $MODELS_VERSION
Architecture: all
Maintainer: $MAINTAINER
Installed-Size: $(du -sk --exclude=DEBIAN "$MPKG" | cut -f1)
Enhances: postclassd
Section: science
Priority: optional
Description: default model bundle for postclassd
 The bundle postclassd serves by default, in /usr/share/postclassd/models/default: the
 all-MiniLM-L6-v2 text encoder, the EfficientNet-Lite0 image encoder, GloVe 6B-50d word
 vectors, a CLFA sarcasm head trained on iSarcasmEval and a zero-shot correlation head.
EOF
md5sums "$MPKG"
# gzip, not xz: float32 weights hardly compress, and xz would spend minutes finding that out.
dpkg-deb --root-owner-group -Zgzip -z6 --build "$MPKG" "$OUT/postclassd-models_${MODELS_VERSION}_all.deb" >&2

ls -l "$OUT"/*.deb >&2
printf '%s\n' "$OUT/postclassd_${VERSION}_${ARCH}.deb" "$OUT/postclassd-models_${MODELS_VERSION}_all.deb"
