#!/usr/bin/env bash
# Installs what postclassd needs to build, test and benchmark on a fresh Debian machine:
# the system libraries it links (librdkafka, libjpeg, OpenBLAS), kcat, Prometheus (promtool),
# dpkg-dev (for the Debian packages), and the stand-alone Kafka-compatible broker noida-db from
# PyPI. Skips what is already there.
set -euo pipefail

log() { printf '[install-deps] %s\n' "$*" >&2; }

# dpkg-dev: dpkg-shlibdeps, which scripts/package-deb.sh reads the package's dependencies with.
APT_PACKAGES=(librdkafka-dev libjpeg-dev libopenblas-dev kcat prometheus python3-confluent-kafka systemd dpkg-dev)
NOIDA_VERSION="0.2.3"

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    SUDO=""
    [[ $(id -u) == 0 ]] || SUDO="sudo"
    log "installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    log "Debian packages present: ${APT_PACKAGES[*]}"
fi

if [[ "$(noida-db version 2>/dev/null | grep -o '[0-9][0-9.]*' | head -1)" != "$NOIDA_VERSION" ]]; then
    log "installing noida-db==$NOIDA_VERSION from PyPI"
    python3 -m pip install --quiet --disable-pip-version-check "noida-db==$NOIDA_VERSION"
else
    log "noida-db $NOIDA_VERSION present"
fi
