# Starts and stops noida-db (a stand-alone Kafka-compatible broker) on loopback for tests and
# benchmarks. Source this file; call noida_start, then noida_stop (or trap it).
#   noida_start  sets NOIDA_BOOTSTRAP=127.0.0.1:PORT once the broker accepts connections.

NOIDA_DIR=""
NOIDA_PID=""

# Picks a free loopback port.
noida_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

noida_start() {
    local port tries
    port="$(noida_free_port)"
    NOIDA_DIR="$(mktemp -d -t postclassd-noida.XXXXXX)"
    # noida-db warns about a glibc symbol version on Debian 12; the Kafka service works regardless.
    (cd "$NOIDA_DIR" && exec noida-db start --only kafka --host 127.0.0.1 --kafka-port "$port" \
        --data-dir "$NOIDA_DIR/data" >"$NOIDA_DIR/noida.log" 2>&1) &
    NOIDA_PID=$!
    for tries in $(seq 1 150); do  # up to 30 s
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            NOIDA_BOOTSTRAP="127.0.0.1:$port"
            export NOIDA_BOOTSTRAP
            printf '[noida] Kafka broker ready at %s (pid %s)\n' "$NOIDA_BOOTSTRAP" "$NOIDA_PID" >&2
            return 0
        fi
        if ! kill -0 "$NOIDA_PID" 2>/dev/null; then
            printf '[noida] noida-db exited before it was ready:\n' >&2
            cat "$NOIDA_DIR/noida.log" >&2
            return 1
        fi
        sleep 0.2
    done
    printf '[noida] noida-db did not accept connections on port %s within 30 s\n' "$port" >&2
    noida_stop
    return 1
}

noida_stop() {
    if [[ -n "$NOIDA_PID" ]] && kill -0 "$NOIDA_PID" 2>/dev/null; then
        # noida-db is a Python launcher that runs the server as its child: stop both, and wait
        # for the server itself, which may still be saving into the data folder (up to 30 s).
        local server; server="$(pgrep -P "$NOIDA_PID" || true)"
        pkill -TERM -P "$NOIDA_PID" 2>/dev/null || true
        kill "$NOIDA_PID" 2>/dev/null || true
        wait "$NOIDA_PID" 2>/dev/null || true
        for _ in $(seq 1 150); do
            [[ -z "$server" ]] || ! kill -0 $server 2>/dev/null && break
            sleep 0.2
        done
        [[ -n "$server" ]] && kill -KILL $server 2>/dev/null || true
    fi
    NOIDA_PID=""
    # A folder that still cannot be removed is left behind with a warning, not an error.
    [[ -n "$NOIDA_DIR" ]] && { rm -rf "$NOIDA_DIR" 2>/dev/null || printf '[noida] could not remove %s\n' "$NOIDA_DIR" >&2; }
    NOIDA_DIR=""
}
