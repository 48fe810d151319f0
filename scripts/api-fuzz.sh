#!/usr/bin/env bash
# The API answers as its OpenAPI document says, and bad input never becomes
# a server error: schemathesis (from PyPI) runs every phase of
# /api/v1/openapi.json against the real binary (embedded mode, demo data),
# stateful phase included (it follows the document's links: a new case, then
# what takes its id), as a lead facilitator, a liaison and an auditor, with the checks
# not_a_server_error, status_code_conformance, content_type_conformance,
# response_headers_conformance and response_schema_conformance. Then
# scripts/api-fuzz-report.py reads the runs' NDJSON reports: it fails when
# an operation only ever answered 404 (the fuzzer never reached its logic).
# Called by scripts/test.sh; `--max-examples N` sets the depth (default 20).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

examples=20
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
# test the limiter instead of the handlers. 127.0.0.1:9 (discard): a webhook
# the fuzzer may remove; deliveries to it fail quietly.
"$binary" serve --demo --listen "127.0.0.1:$port" --data-dir "$work/data" \
    --rate-limit-per-user off --rate-limit-per-address off --rate-limit-sign-in off \
    --webhook-allow-host 127.0.0.1:9 >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT
wait_for_port "$port" 60
base="http://127.0.0.1:$port"
report=$PWD/scripts/api-fuzz-report.py

token() {
    curl -sf "$base/api/v1/dev/token" -H 'content-type: application/json' -d "{\"user\":\"$1\"}" |
        python3 -c 'import sys, json; print(json.load(sys.stdin)["token"])'
}
# call TOKEN METHOD PATH [BODY]: the answer, JSON.
call() {
    curl -sf -X "$2" "$base$3" -H "authorization: Bearer $1" -H 'content-type: application/json' ${4:+-d "$4"}
}
# field NAME: the first value of a field named NAME anywhere in the JSON on stdin.
field() {
    python3 -c '
import json, sys
def find(v):
    if isinstance(v, dict):
        if sys.argv[1] in v:
            return v[sys.argv[1]]
        v = list(v.values())
    if isinstance(v, list):
        for x in v:
            found = find(x)
            if found is not None:
                return found
print(find(json.load(sys.stdin)))' "$1"
}
fiona=$(token fiona)
case_id=$(curl -sf "$base/api/v1/cases" -H "authorization: Bearer $fiona" |
    python3 -c 'import sys, json; print(json.load(sys.stdin)["cases"][0]["id"])')

# Real ids for the stateless phases, on the demo case (the stateful phase
# makes its own through the links): one of each kind an operation takes.
in3days=$(date -u -d '+3 days' +%Y-%m-%dT10:00:00Z)
end3days=$(date -u -d '+3 days' +%Y-%m-%dT11:00:00Z)
meeting=$(call "$fiona" POST "/api/v1/cases/$case_id/meetings" \
    "{\"title\":\"Fuzz\",\"starts_at\":\"$in3days\",\"ends_at\":\"$end3days\",\"participants\":[\"health-hus\"]}" | field id)
task=$(call "$fiona" POST "/api/v1/cases/$case_id/tasks" \
    '{"description":"Fuzz","category":"health","assignee":"health-hus"}' | field id)
refusal=$(call "$fiona" POST "/api/v1/cases/$case_id/consent/refusals" \
    '{"agency":"ngo-support","categories":["contact"]}' | field refusal_id)
consent=$(call "$fiona" GET "/api/v1/cases/$case_id/consent?grants=true")
grant=$(field grant_id <<<"$consent")
basis=$(field basis_id <<<"$consent")
webhook=$(call "$fiona" POST /api/v1/webhooks '{"url":"http://127.0.0.1:9/hook"}' | field id)
# A case of its own for the end of a case (close, legal holds, erasure):
# erasing the demo case would leave every other operation only 410.
ending=$(call "$fiona" POST /api/v1/cases \
    '{"pseudonym":"Fuzz-end","languages":["fi"]}' | field id)

# The stateful phase gets more scenarios: each one needs a new case (or
# meeting, task …) to be made before it reaches anything further.
cat >"$work/schemathesis.toml" <<EOF
[generation]
max-examples = $examples

[phases.stateful.generation]
max-examples = $((examples * 10))

[parameters]
"path.id" = "$case_id"
"path.n" = "1"
"path.grant_id" = "$grant"
"path.refusal_id" = "$refusal"
"path.basis_id" = "$basis"
"path.agency" = "ngo-support"

[[operations]]
include-path-regex = "^/api/v1/cases/[^/]+/(close|erasure|legal-hold)"
parameters = { "path.id" = "$ending" }

[[operations]]
include-path-regex = "^/api/v1/meetings/"
parameters = { "path.id" = "$meeting" }

[[operations]]
include-path-regex = "^/api/v1/tasks/"
parameters = { "path.id" = "$task" }

[[operations]]
include-path-regex = "^/api/v1/webhooks/"
parameters = { "path.id" = "$webhook" }
EOF

# schemathesis keeps a cache in the working directory: keep it in $work.
cd "$work"
curl -sf "$base/api/v1/openapi.json" >openapi.json
status=0
for user in fiona hanna aino; do
    user_token=$(token "$user")
    cp "$work/schemathesis.toml" "$work/$user.toml"
    # The feed of the caller's agency, with a token of the caller's own
    # (an auditor reads no meetings, so has no feed).
    if [ "$user" != aino ]; then
        feed=$(call "$user_token" POST /api/v1/calendar/feed-tokens '{}')
        feed_agency=$(field agency <<<"$feed")
        feed_token=$(field token <<<"$feed")
        feed_id=$(field token_id <<<"$feed")
        {
            printf '\n[[operations]]\ninclude-path-regex = "^/api/v1/calendar/"\n'
            printf 'parameters = { "path.agency" = "%s", "query.token" = "%s", "path.token_id" = "%s" }\n' \
                "$feed_agency" "$feed_token" "$feed_id"
        } >>"$work/$user.toml"
    fi
    log "fuzzing the API as $user ($examples examples per operation, stateful phase included)"
    schemathesis --config-file "$work/$user.toml" --no-color run "$base/api/v1/openapi.json" \
        -H "Authorization: Bearer $user_token" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
        --phases examples,coverage,fuzzing,stateful \
        --workers 2 --seed 20261122 --warnings off \
        --report ndjson --report-ndjson-path "$work/$user.ndjson" || status=1
done
log "what each operation answered (all three runs)"
python3 "$report" openapi.json fiona.ndjson hanna.ndjson aino.ndjson || status=1
exit $status
