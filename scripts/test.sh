#!/usr/bin/env bash
# The test command: every test, against the embedded backend and against real
# PostgreSQL and NATS JetStream servers that this script starts (installing
# them when missing). Extra arguments go to `cargo nextest run`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_postgres
ensure_nats
ensure_nextest
log "nats-server: $VERKOSTO_NATS_SERVER ($("$VERKOSTO_NATS_SERVER" --version))"

start_temp_postgres
trap stop_temp_postgres EXIT
log "PostgreSQL for this run: $VERKOSTO_TEST_PG_ADMIN_URL"

profile=default
[ "${CI:-}" = true ] && profile=ci
log "building and running the tests (nextest profile $profile)"
# The binary is spawned by the end-to-end tests.
cargo build --locked -p verkosto
cargo nextest run --locked --workspace --no-fail-fast --profile "$profile" "$@"
