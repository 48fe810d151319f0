#!/usr/bin/env bash
# The fault suite (`just faults`): tests/faults.rs in its full size. The
# distributed mode, one process per target, a 3-node nats-server cluster and
# a private PostgreSQL cluster; 10,000 commands of mixed load while a
# service, the relay, one nats-server, every nats-server and PostgreSQL are
# killed with SIGKILL and restarted in turn, the checker after each; then
# every nats-server down for 30 s while writes go on; and tests/race.rs with
# 100,000 reads racing consent withdrawals on two cases processes; and the
# consent rules against their second judge in Cedar (shared/judge) over
# 200,000 random histories. The quick version runs in `scripts/test.sh`
# with the other tests. `--quick` runs it here too.
#
# Prints a summary (faults injected, commands acknowledged and found in the
# log, events in the log and on the stream); RELIABILITY.md quotes it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

export VERKOSTO_FAULTS_FULL=1
for arg in "$@"; do
    case "$arg" in
    --quick) unset VERKOSTO_FAULTS_FULL ;;
    *) echo "usage: scripts/faults.sh [--quick]" >&2; exit 2 ;;
    esac
done

phase_begin tools
ensure_postgres
ensure_nats
ensure_faketime
phase_end "PostgreSQL ($VERKOSTO_PG_BIN), $("$VERKOSTO_NATS_SERVER" --version | awk '{print $NF}')"

trap 'exit 130' INT
trap 'exit 143' TERM

phase_begin build
# The tests spawn target/debug/verkosto: the same build as scripts/test.sh.
cargo build --locked -p verkosto --bin verkosto
# Every end-to-end test is in the one executable `e2e_tests`, a module per
# area (tests/main.rs); the filters below pick the areas (`faults::`).
cargo test --locked -p verkosto-e2e --test e2e_tests --no-run
cargo test --locked -p verkosto-judge --test differential --no-run
phase_end "target/debug/verkosto"

# Each test owns its PostgreSQL cluster (it kills it), so none is shared here.
unset VERKOSTO_TEST_PG_ADMIN_URL
out=target/faults.log
phase_begin faults
status=0
cargo test --locked -p verkosto-e2e --test e2e_tests -- faults:: race:: --nocapture --test-threads=1 2>&1 |
    tee "$out" || status=$?
phase_end "log in $out"

# cargo test, not nextest: 200,000 histories outlast nextest's slow-test limit.
judge_cases=10000
[ -n "${VERKOSTO_FAULTS_FULL:-}" ] && judge_cases=200000
phase_begin judge
judge_status=0
VERKOSTO_JUDGE_CASES=$judge_cases cargo test --locked -p verkosto-judge --test differential 2>&1 |
    tee target/judge.log || judge_status=$?
phase_end "$judge_cases consent histories, log in target/judge.log"

# Withdrawals read back at once through processes whose clocks are five
# seconds apart (libfaketime), both ways.
skew_rounds=1500
[ -n "${VERKOSTO_FAULTS_FULL:-}" ] && skew_rounds=10000
phase_begin skew
skew_status=0
VERKOSTO_SKEW_ROUNDS=$skew_rounds cargo test --locked -p verkosto-e2e --test e2e_tests \
    fail_closed::a_withdrawal_holds 2>&1 | tee target/skew.log || skew_status=$?
phase_end "$skew_rounds rounds each way, log in target/skew.log"

size=quick
[ -n "${VERKOSTO_FAULTS_FULL:-}" ] && size=full
echo
echo "Fault suite summary ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(git rev-parse --short HEAD 2>/dev/null || echo 'no git'), $size size):"
grep '^faults: ' "$out" | sed 's/^faults: /- /' || true
faults=$(grep -c '^faults: ' "$out" || true)
echo "- faults injected: $faults; result: $([ "$status" -eq 0 ] && echo passed || echo FAILED)"
echo "- Cedar judge: $judge_cases consent histories; result: $([ "$judge_status" -eq 0 ] && echo passed || echo FAILED)"
echo "- clocks 5 s apart: $skew_rounds grant/withdraw rounds each way; result: $([ "$skew_status" -eq 0 ] && echo passed || echo FAILED)"
[ "$status" -ne 0 ] || status=$judge_status
[ "$status" -ne 0 ] || status=$skew_status
exit "$status"
