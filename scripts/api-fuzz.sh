#!/usr/bin/env bash
# Bad input never becomes a server error: schemathesis (from PyPI) fuzzes
# every operation of /api/v1/openapi.json against the real binary (embedded
# mode, demo data, a real case id for the {id} parameters), as a lead
# facilitator and as a liaison. Fails on any 5xx. Called by scripts/test.sh;
# `--max-examples N` sets the depth (default 25).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

examples=25
if [ "${1:-}" = "--max-examples" ]; then examples=$2; fi

if ! command -v schemathesis >/dev/null 2>&1; then
    log "installing schemathesis (pip)"
    python3 -m pip install -q schemathesis >/dev/null
fi

binary="${CARGO_TARGET_DIR:-target}/debug/verkosto"
work=$(mktemp -d "${TMPDIR:-/tmp}/verkosto-fuzz.XXXXXX")
port=$(free_port)
# The fuzzer is a load generator from one address as one user: with the
# rate limits on, most of its requests would be answered 429 and it would
# test the limiter instead of the handlers.
"$binary" serve --demo --listen "127.0.0.1:$port" --data-dir "$work/data" \
    --rate-limit-per-user off --rate-limit-per-address off --rate-limit-sign-in off \
    >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT
wait_for_port "$port" 60
base="http://127.0.0.1:$port"

token() {
    curl -sf "$base/api/v1/dev/token" -H 'content-type: application/json' -d "{\"user\":\"$1\"}" |
        python3 -c 'import sys, json; print(json.load(sys.stdin)["token"])'
}
fiona=$(token fiona)
case_id=$(curl -sf "$base/api/v1/cases" -H "authorization: Bearer $fiona" |
    python3 -c 'import sys, json; print(json.load(sys.stdin)["cases"][0]["id"])')
printf '[parameters]\n"path.id" = "%s"\n' "$case_id" >"$work/schemathesis.toml"

# schemathesis keeps a cache in the working directory: keep it in $work.
cd "$work"
for user in fiona hanna; do
    log "fuzzing the API as $user ($examples examples per operation)"
    schemathesis --config-file "$work/schemathesis.toml" run "$base/api/v1/openapi.json" \
        -H "Authorization: Bearer $(token "$user")" \
        --checks not_a_server_error --max-examples "$examples" --workers 2 \
        --seed 20261122 --warnings off --no-color
done
