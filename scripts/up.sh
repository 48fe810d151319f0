#!/usr/bin/env bash
# The distributed mode on this machine: a throwaway PostgreSQL cluster, a
# nats-server with JetStream, and one `verkosto` process per target. Ctrl-C
# stops everything. Uses the same settings as deploy/compose.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_postgres
ensure_nats
cargo build -p verkosto
start_temp_postgres
createdb_url="postgres://postgres@127.0.0.1:$PG_PORT/postgres"

NATS_DIR=$(mktemp -d /tmp/verkosto-nats.XXXXXX)
NATS_PORT=$(free_port)
cat >"$NATS_DIR/nats.conf" <<CONF
listen: 127.0.0.1:$NATS_PORT
jetstream { store_dir: "$NATS_DIR/js", sync_interval: always }
CONF
"$VERKOSTO_NATS_SERVER" -c "$NATS_DIR/nats.conf" >"$NATS_DIR/nats.log" 2>&1 &
pids=($!)

cleanup() {
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    stop_temp_postgres
    rm -rf "$NATS_DIR"
}
trap cleanup EXIT INT TERM

export VERKOSTO_DATABASE_URL="$createdb_url"
export VERKOSTO_NATS_URL="nats://127.0.0.1:$NATS_PORT"
export VERKOSTO_DEV_AUTH=on
export VERKOSTO_DEV_KEY_SEED=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
port=8081
for target in relay cases consent meetings tasks; do
    demo=()
    [ "$target" = cases ] && demo=(--demo)
    VERKOSTO_LISTEN="127.0.0.1:$port" target/debug/verkosto serve --target "$target" "${demo[@]}" &
    pids+=($!)
    log "$target: http://127.0.0.1:$port"
    port=$((port + 1))
done
log "PostgreSQL: $createdb_url   NATS: $VERKOSTO_NATS_URL   (Ctrl-C stops all)"
wait
