#!/usr/bin/env bash
# The distributed mode as separate local processes (`just up`): a throwaway
# PostgreSQL cluster, a nats-server with JetStream, and one `verkosto serve
# --target T` process per target on ports 8081..8085. Ctrl-C stops all of it
# and removes the temporary data. Logs go to files whose paths are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

targets=(relay cases consent meetings tasks)
first_port=8081

ensure_postgres
ensure_nats
log "building verkosto"
cargo build -p verkosto
binary="${CARGO_TARGET_DIR:-target}/debug/verkosto"

pids=()
# shellcheck disable=SC2329 # invoked by the EXIT trap
cleanup() {
    trap - EXIT INT TERM
    if [ ${#pids[@]} -gt 0 ]; then
        kill "${pids[@]}" 2>/dev/null || true
        wait "${pids[@]}" 2>/dev/null || true
    fi
    stop_temp_nats
    stop_temp_postgres
    if [ -n "${UP_DIR:-}" ]; then rm -rf "$UP_DIR"; fi
    log "stopped"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

UP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/verkosto-up.XXXXXX")
start_temp_postgres
database_url="postgres://postgres@127.0.0.1:$PG_PORT/verkosto"
"$VERKOSTO_PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres verkosto
start_temp_nats
pids+=("$NATS_PID")
log "PostgreSQL: $database_url"
log "NATS:       $NATS_URL (JetStream store in $NATS_TEMP_DIR)"

# One dev signing key for all processes, so each accepts the others' tokens.
dev_key_seed=$(python3 -c 'import secrets; print(secrets.token_hex(32))')

port=$first_port
for target in "${targets[@]}"; do
    demo=()
    [ "$target" = cases ] && demo=(--demo)
    "$binary" serve --target "$target" --listen "127.0.0.1:$port" \
        --database-url "$database_url" --nats-url "$NATS_URL" \
        --nats-user "$target" --nats-password-file "$NATS_TEMP_DIR/$target.password" \
        --dev-auth on --dev-key-seed "$dev_key_seed" "${demo[@]}" \
        >"$UP_DIR/$target.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    # One at a time, so that the first one sets the database up alone.
    deadline=$((SECONDS + 60))
    until grep -q '^listening on ' "$UP_DIR/$target.log"; do
        if ! kill -0 "$pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
            log "$target did not start; its log:"
            tail -n 30 "$UP_DIR/$target.log" >&2
            exit 1
        fi
        sleep 0.2
    done
    log "$(printf '%-8s http://127.0.0.1:%s   (log: %s)' "$target" "$port" "$UP_DIR/$target.log")"
    port=$((port + 1))
done

log "all up; a dev token: curl -s 127.0.0.1:$first_port/api/v1/dev/token -H 'content-type: application/json' -d '{\"user\":\"admin\"}'"
log "Ctrl-C stops everything"
status=0
wait -n "${pids[@]}" || status=$?
log "a process exited (status $status); stopping the rest"
exit 1
