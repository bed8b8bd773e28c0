#!/usr/bin/env bash
# Builds the package and runs the whole test suite under AddressSanitizer and/or ThreadSanitizer,
# each in a scratch path of its own (.build-asan, .build-tsan), so neither disturbs .build.
#
#   scripts/sanitizers.sh [address|thread|all] [swift test arguments...]
#
#   address   ASan (with LeakSanitizer) into .build-asan
#   thread    TSan into .build-tsan
#   all       both, one after the other (the default); the exit status is non-zero if either failed
#   e.g.      scripts/sanitizers.sh thread --filter DaemonTests
#
# The setup is scripts/test.sh's: dependencies, models and reference outputs, and noida-db on
# loopback unless KAFKA_BOOTSTRAP names a broker.
#
# The daemon tests run the real `postclassd`: they find it next to the test runner
# (Binaries.postclassd, TestPaths.productsDirectory), which here is the sanitized build in the
# scratch path, so the daemon's own processes run sanitized as well; this script checks that it is.
# Every sanitized process (the test runner and each daemon it starts) writes its reports to a
# file of its own under <scratch>/sanitizer-reports/ (log_path): many tests throw a child's
# standard error away, so a report there would otherwise go unseen. A run fails when
# `swift test` fails or when any report file appears; the reports are printed at the end.
#
# Options:
#   ASan: halt_on_error=1 (the first error ends the process, which fails the test that ran it).
#         LeakSanitizer is on in every postclassd process and off in the test runner: XCTest on
#         Linux keeps its test case objects (and all they own) unreachable but alive at exit, so
#         the runner's leak report is the harness's, not ours (see RUNNER_OPTIONS below).
#   TSan: halt_on_error=0: a run takes long, so one run reports every race, not only the first;
#         each report still fails the run (its file, and TSan's exit status 66 at exit).
#   Both: handle_abort=1, so an abort (a failed librdkafka assertion, a Swift trap) prints the
#         sanitizer's stack into a report file too; Swift's own crash handler is switched off
#         (SWIFT_BACKTRACE): its helper process reads other threads' stacks, which trips ASan
#         (CHECK failed in asan_thread.cpp), and it kept `swift test`'s output open after the
#         crashed runner was gone, so the run hung instead of failing.
#   TSan: librdkafka (Debian's 2.0.2) makes its threads, locks and condition variables with C11
#         <threads.h> (thrd_create, mtx_lock, cnd_wait). glibc implements those without going
#         through the pthread symbols TSan intercepts, so TSan neither knows librdkafka's threads
#         (the first malloc on one crashes inside TSan: "SEGV on unknown address 0x000000000c38",
#         in the embedded broker's rdk:mock thread) nor sees its locks. A small preloaded library
#         (built below) implements those few C11 calls with pthreads, which TSan does intercept.
#         The same library makes Swift's Synchronization.Mutex visible to TSan: on Linux its
#         contended lock and unlock run out of line in libswiftSynchronization.so (not built with
#         TSan) through futex calls, so TSan saw no order between two threads' withLock bodies
#         and reported every contended Mutex-guarded access as a race (a two-thread counter under
#         Mutex.withLock is enough). The library wraps those three out-of-line functions and
#         tells TSan they acquire and release the lock word (__tsan_acquire/__tsan_release).
# Suppression files, if any, are scripts/sanitizers/{lsan,tsan}.supp, each entry with why it is
# not our bug. Extra options can be appended through SANITIZER_EXTRA_OPTIONS (colon-separated).
#
# Skipped under both sanitizers: FaultTests/byteLimitBoundsMemory, whose assertion is a bound
# on the daemon's resident memory; ASan's quarantine (256 MiB of freed blocks kept on purpose),
# redzones and shadow, and TSan's shadow memory, are what that number would measure.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=lib/noida.sh
source scripts/lib/noida.sh

log() { printf '[sanitizers] %s\n' "$*" >&2; }

WHICH="${1:-all}"
[[ $# -gt 0 ]] && shift
case "$WHICH" in
    address) SANITIZERS=(address) ;;
    thread) SANITIZERS=(thread) ;;
    all) SANITIZERS=(address thread) ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/!p}' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "usage: scripts/sanitizers.sh [address|thread|all] [swift test arguments...]" >&2; exit 64 ;;
esac

bash scripts/install-deps.sh
bash scripts/setup-models.sh

if [[ -z "${KAFKA_BOOTSTRAP:-}" ]]; then
    trap noida_stop EXIT
    noida_start
    export KAFKA_BOOTSTRAP="$NOIDA_BOOTSTRAP"
fi
log "Kafka integration tests run on the embedded broker and on $KAFKA_BOOTSTRAP"

# Reports have raw addresses unless the symbolizer is found: the toolchain's own (it reads the
# debug info its compilers write), else any on PATH.
SYMBOLIZER="$(dirname "$(readlink -f "$(command -v swift)")")/llvm-symbolizer"
[[ -x "$SYMBOLIZER" ]] || SYMBOLIZER="$(command -v llvm-symbolizer || true)"

# Checks that a binary carries the sanitizer's runtime (Swift links it statically).
has_runtime() {
    local binary="$1" symbol="$2" count
    # grep -c reads all of nm's output (grep -q would stop early, and pipefail would see nm's SIGPIPE).
    count="$(nm "$binary" 2>/dev/null | grep -c " T ${symbol}$" || true)"
    [[ "$count" -gt 0 ]]
}

# The library TSan runs preloaded (see the top of this file). First, C11 <threads.h> on pthreads:
# librdkafka's references to thrd_create, mtx_lock, ... bind to this unversioned library instead
# of glibc's, and its pthread calls reach TSan's interceptors in the runner and the daemon. Then
# Synchronization.Mutex's out-of-line slow paths, wrapped with TSan annotations; they take the
# handle in Swift's self register, hence clang's swiftcall and swift_context.
build_tsan_preload() {
    local out="$1" src="${1%.so}.c"
    cat >"$src" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

struct start { thrd_start_t func; void *arg; };

static void *trampoline(void *p) {
    struct start s = *(struct start *)p;
    free(p);
    return (void *)(intptr_t)s.func(s.arg);
}

int thrd_create(thrd_t *thr, thrd_start_t func, void *arg) {
    struct start *s = malloc(sizeof *s);
    if (!s) return thrd_nomem;
    s->func = func;
    s->arg = arg;
    int err = pthread_create((pthread_t *)thr, NULL, trampoline, s);
    if (err) { free(s); return err == ENOMEM ? thrd_nomem : thrd_error; }
    return thrd_success;
}
thrd_t thrd_current(void) { return (thrd_t)pthread_self(); }
int thrd_join(thrd_t thr, int *res) {
    void *value;
    if (pthread_join((pthread_t)thr, &value)) return thrd_error;
    if (res) *res = (int)(intptr_t)value;
    return thrd_success;
}
int mtx_init(mtx_t *m, int type) {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    if (type & mtx_recursive) pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    int err = pthread_mutex_init((pthread_mutex_t *)m, &attr);
    pthread_mutexattr_destroy(&attr);
    return err ? thrd_error : thrd_success;
}
int mtx_lock(mtx_t *m) { return pthread_mutex_lock((pthread_mutex_t *)m) ? thrd_error : thrd_success; }
int mtx_trylock(mtx_t *m) {
    int err = pthread_mutex_trylock((pthread_mutex_t *)m);
    return err == EBUSY ? thrd_busy : err ? thrd_error : thrd_success;
}
int mtx_unlock(mtx_t *m) { return pthread_mutex_unlock((pthread_mutex_t *)m) ? thrd_error : thrd_success; }
void mtx_destroy(mtx_t *m) { pthread_mutex_destroy((pthread_mutex_t *)m); }
int cnd_init(cnd_t *c) { return pthread_cond_init((pthread_cond_t *)c, NULL) ? thrd_error : thrd_success; }
int cnd_signal(cnd_t *c) { return pthread_cond_signal((pthread_cond_t *)c) ? thrd_error : thrd_success; }
int cnd_broadcast(cnd_t *c) { return pthread_cond_broadcast((pthread_cond_t *)c) ? thrd_error : thrd_success; }
int cnd_wait(cnd_t *c, mtx_t *m) {
    return pthread_cond_wait((pthread_cond_t *)c, (pthread_mutex_t *)m) ? thrd_error : thrd_success;
}
int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m, const struct timespec *restrict until) {
    int err = pthread_cond_timedwait((pthread_cond_t *)c, (pthread_mutex_t *)m, until);
    return err == ETIMEDOUT ? thrd_timedout : err ? thrd_error : thrd_success;
}
void cnd_destroy(cnd_t *c) { pthread_cond_destroy((pthread_cond_t *)c); }
void call_once(once_flag *flag, void (*func)(void)) { pthread_once((pthread_once_t *)flag, func); }

/* Synchronization.Mutex (Linux): _MutexHandle._lockSlow(_:), _tryLockSlow(), _unlockSlow(). */
#define SWIFTCALL __attribute__((swiftcall))
#define SWIFTSELF __attribute__((swift_context))
#define LOCK_SLOW "$s15Synchronization12_MutexHandleV9_lockSlowyys6UInt32VF"
#define TRY_LOCK_SLOW "$s15Synchronization12_MutexHandleV12_tryLockSlowSbyF"
#define UNLOCK_SLOW "$s15Synchronization12_MutexHandleV11_unlockSlowyyF"
void __tsan_acquire(void *addr) __attribute__((weak));
void __tsan_release(void *addr) __attribute__((weak));
typedef SWIFTCALL void (*lock_slow_t)(uint32_t, void *SWIFTSELF);
typedef SWIFTCALL bool (*try_lock_slow_t)(void *SWIFTSELF);
typedef SWIFTCALL void (*unlock_slow_t)(void *SWIFTSELF);
SWIFTCALL void lock_slow(uint32_t id, void *SWIFTSELF handle) __asm__(LOCK_SLOW);
SWIFTCALL bool try_lock_slow(void *SWIFTSELF handle) __asm__(TRY_LOCK_SLOW);
SWIFTCALL void unlock_slow(void *SWIFTSELF handle) __asm__(UNLOCK_SLOW);
SWIFTCALL void lock_slow(uint32_t id, void *SWIFTSELF handle) {
    static lock_slow_t real;
    if (!real) real = (lock_slow_t)dlsym(RTLD_NEXT, LOCK_SLOW);
    real(id, handle);
    if (__tsan_acquire) __tsan_acquire(handle);
}
SWIFTCALL bool try_lock_slow(void *SWIFTSELF handle) {
    static try_lock_slow_t real;
    if (!real) real = (try_lock_slow_t)dlsym(RTLD_NEXT, TRY_LOCK_SLOW);
    bool locked = real(handle);
    if (locked && __tsan_acquire) __tsan_acquire(handle);
    return locked;
}
SWIFTCALL void unlock_slow(void *SWIFTSELF handle) {
    static unlock_slow_t real;
    if (!real) real = (unlock_slow_t)dlsym(RTLD_NEXT, UNLOCK_SLOW);
    if (__tsan_release) __tsan_release(handle);
    real(handle);
}
C
    # The toolchain's clang: swiftcall is a clang extension.
    "$(dirname "$(readlink -f "$(command -v swift)")")/clang" -O1 -shared -fPIC -o "$out" "$src" -lpthread -ldl
}

# Runs one sanitizer end to end; returns non-zero on a failed build, failed tests or any report.
run_one() {
    local sanitizer="$1"; shift
    local short scratch reports options symbol
    case "$sanitizer" in
        address) short=asan; symbol=__asan_init ;;
        thread) short=tsan; symbol=__tsan_init ;;
    esac
    scratch="$ROOT/.build-$short"
    reports="$scratch/sanitizer-reports"

    log "[$short] building into $scratch"
    local started=$SECONDS
    if ! swift build --build-tests --sanitize="$sanitizer" --scratch-path "$scratch"; then
        log "[$short] FAILED: the build failed"
        return 1
    fi
    log "[$short] built in $((SECONDS - started)) s"

    local products daemon
    products="$(swift build --show-bin-path --sanitize="$sanitizer" --scratch-path "$scratch")"
    daemon="$products/postclassd"
    if ! has_runtime "$daemon" "$symbol"; then
        log "[$short] FAILED: $daemon has no $symbol: the daemon the tests start would not run sanitized"
        return 1
    fi
    log "[$short] the daemon under test is $daemon (links $symbol)"

    rm -rf "$reports" "$scratch/sanitizer-options"
    mkdir -p "$reports" "$scratch/sanitizer-options"
    # Per-executable options: the sanitizers read include_if_exists=<dir>/%b, %b being the
    # executable's name, so the test runner can differ from the daemons it starts (which
    # inherit the same environment).
    local per_binary="$scratch/sanitizer-options"
    local common="handle_abort=1:log_path=$reports/$short:log_exe_name=1:external_symbolizer_path=$SYMBOLIZER"
    common+=":include_if_exists=$per_binary/%b"
    case "$sanitizer" in
        address)
            options="halt_on_error=1:detect_leaks=1:check_initialization_order=1:strict_init_order=1:$common"
            # RUNNER_OPTIONS: the XCTest harness leaks (see the top of this file).
            echo "detect_leaks=0" >"$per_binary/postclassdPackageTests.xctest"
            export ASAN_OPTIONS="$options${SANITIZER_EXTRA_OPTIONS:+:$SANITIZER_EXTRA_OPTIONS}"
            log "[$short] ASAN_OPTIONS=$ASAN_OPTIONS"
            if [[ -f "$ROOT/scripts/sanitizers/lsan.supp" ]]; then
                export LSAN_OPTIONS="suppressions=$ROOT/scripts/sanitizers/lsan.supp:print_suppressions=0"
                log "[$short] LSAN_OPTIONS=$LSAN_OPTIONS"
            fi
            ;;
        thread)
            options="halt_on_error=0:second_deadlock_stack=1:history_size=4:$common"
            if [[ -f "$ROOT/scripts/sanitizers/tsan.supp" ]]; then
                options+=":suppressions=$ROOT/scripts/sanitizers/tsan.supp:print_suppressions=0"
            fi
            export TSAN_OPTIONS="$options${SANITIZER_EXTRA_OPTIONS:+:$SANITIZER_EXTRA_OPTIONS}"
            log "[$short] TSAN_OPTIONS=$TSAN_OPTIONS"
            ;;
    esac
    export SWIFT_BACKTRACE=enable=no
    if [[ "$sanitizer" == thread ]]; then
        build_tsan_preload "$scratch/tsan-preload.so"
        export LD_PRELOAD="$scratch/tsan-preload.so${LD_PRELOAD:+:$LD_PRELOAD}"
        log "[$short] LD_PRELOAD=$LD_PRELOAD"
    fi

    log "[$short] running the test suite"
    started=$SECONDS
    local status=0
    # Serially, as scripts/test.sh does: the suites start brokers and daemons.
    swift test --skip-build --no-parallel --sanitize="$sanitizer" --scratch-path "$scratch" \
        --skip byteLimitBoundsMemory "$@" || status=$?
    unset ASAN_OPTIONS LSAN_OPTIONS TSAN_OPTIONS SWIFT_BACKTRACE LD_PRELOAD
    log "[$short] the test suite took $((SECONDS - started)) s and exited $status"

    local found=()
    mapfile -t found < <(find "$reports" -type f -size +0 | sort)
    if ((${#found[@]})); then
        log "[$short] ${#found[@]} sanitizer report file(s) under $reports:"
        local file
        for file in "${found[@]}"; do
            printf '==== %s\n' "$file" >&2
            # Demangled, so that Swift frames read as names.
            if command -v swift-demangle >/dev/null; then swift-demangle --simplified <"$file" >&2; else cat "$file" >&2; fi
        done
    fi
    if ((status != 0 || ${#found[@]} > 0)); then
        log "[$short] FAILED (swift test exit $status, ${#found[@]} report file(s))"
        return 1
    fi
    log "[$short] passed with no sanitizer report"
}

failed=()
for sanitizer in "${SANITIZERS[@]}"; do
    run_one "$sanitizer" "$@" || failed+=("$sanitizer")
done
if ((${#failed[@]})); then
    log "failed: ${failed[*]}"
    exit 1
fi
log "passed: ${SANITIZERS[*]}"
