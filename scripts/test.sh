#!/usr/bin/env bash
# The test command: installs what is missing, prepares models and reference outputs, then runs
# the whole suite. The Kafka integration tests run against the embedded broker, and also against
# a real one when KAFKA_BOOTSTRAP is set; when it is not, this script starts noida-db itself.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=lib/noida.sh
source scripts/lib/noida.sh

bash scripts/install-deps.sh
bash scripts/setup-models.sh
# The training toolkit's PyTorch (models/.venv-train): the training-to-serving tests train small
# heads with it and fail without it.
bash tools/train/setup-venv.sh

if [[ -z "${KAFKA_BOOTSTRAP:-}" ]]; then
    trap noida_stop EXIT
    noida_start
    export KAFKA_BOOTSTRAP="$NOIDA_BOOTSTRAP"
fi
echo "[test] Kafka integration tests run on the embedded broker and on $KAFKA_BOOTSTRAP" >&2
swift build --build-tests
# Serially: the suites start brokers and daemons, and 2 cores are all a CI machine has.
swift test --skip-build --no-parallel "$@"
if [[ $# -eq 0 ]]; then
    # The README's main command, bounded: the daemon on its embedded broker with the default bundle
    # labels every demo post and dead-letters the bad one (the script fails otherwise). The debug
    # build just made is reused rather than building release too.
    echo "[test] the demo, bounded" >&2
    POSTCLASSD_DEMO_BUILD=debug POSTCLASSD_DEMO_METRICS=127.0.0.1:0 bash scripts/demo.sh --bounded
fi
