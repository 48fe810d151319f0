#!/usr/bin/env bash
# The benchmark suite (`just bench`): runs every benchmark in release mode,
# each with a raw baseline measured in the same run, and writes the report
# to BENCHMARKS.md (and prints it).
#
# Like the test command it installs and starts what it needs: a throwaway
# PostgreSQL cluster and a current nats-server. `--quick` (or
# VERKOSTO_BENCH_QUICK=1) runs tiny sizes. `--ci` (scripts/test.sh's last
# phase) is quick mode on the dev build the tests already made, so that
# every benchmark keeps working; its report goes to stdout only.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ci=false
for arg in "$@"; do
    case "$arg" in
    --quick) export VERKOSTO_BENCH_QUICK=1 ;;
    --ci) ci=true; export VERKOSTO_BENCH_QUICK=1 ;;
    *) echo "usage: scripts/bench.sh [--quick | --ci]" >&2; exit 2 ;;
    esac
done

phase_begin tools
ensure_postgres
ensure_nats
# perf profiles the servers of the full-size HTTP benchmarks; quick mode has none.
perf_note=
if [ -z "${VERKOSTO_BENCH_QUICK:-}" ]; then
    ensure_perf
    perf_note=", $(perf --version 2>/dev/null || echo 'no perf')"
fi
phase_end "PostgreSQL ($VERKOSTO_PG_BIN), $("$VERKOSTO_NATS_SERVER" --version | awk '{print $NF}')$perf_note"

trap 'exit 130' INT
trap 'exit 143' TERM
trap stop_temp_postgres EXIT
phase_begin postgres
start_temp_postgres
phase_end "$VERKOSTO_TEST_PG_ADMIN_URL"

# The binary and every benchmark in one cargo invocation: separate ones
# unify the crates' features differently and compiled shared crates (sqlx,
# SQLite) several times over. Each bench target by name: `--benches` would
# also build every library's unit tests as benchmarks.
phase_begin build
build=(--locked --workspace --bin verkosto --bench append --bench policy --bench e2e
    --message-format=json-render-diagnostics)
if $ci; then
    build+=(--profile dev)
    built="target/debug (without the bench feature: no unfiltered-read or unsealed baseline)"
else
    # `verkosto/bench` adds the serve flags of the unfiltered-read and the
    # unsealed baselines; production builds never have them.
    build+=(--release --features verkosto/bench)
    built="target/release, with --features verkosto/bench"
fi
# Each bench target's name and executable, from cargo's messages.
executables=$(mktemp)
cargo build "${build[@]}" | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and "bench" in m["target"]["kind"] and m.get("executable"):
        print(m["target"]["name"], m["executable"])
' >"$executables"
phase_end "$built"

report=$(mktemp)
{
    echo "# Benchmarks"
    echo
    echo "Written by \`just bench\` on $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores,"
    echo "$(git rev-parse --short HEAD 2>/dev/null || echo 'no git')${VERKOSTO_BENCH_QUICK:+, quick mode}."
    echo "Machines here are noisy: compare rows of one run, not runs."
    echo
} >"$report"

# bench TITLE TARGET [NAME]: runs bench target TARGET (with NAME, for
# the end-to-end ones that share the `e2e` executable).
bench() {
    local title=$1 target=$2 name=${3:-$2} errors executable
    executable=$(awk -v target="$target" '$1 == target { print $2 }' "$executables")
    if [ -z "$executable" ]; then
        echo "no bench target named $target was built" >&2
        exit 1
    fi
    errors=$(mktemp)
    phase_begin "$name"
    {
        echo "## $title"
        echo
        if ! "$executable" ${3:+"$name"} --bench 2>"$errors"; then
            tail -n 60 "$errors" >&2
            phase_end "FAILED: $title"
            exit 1
        fi
        echo
    } >>"$report"
    rm -f "$errors"
    phase_end "$title"
}

bench "Write throughput: the log's append beside raw INSERT commits, same database, same run; sealing on and off" append
bench "Consent policy: decide, fold, point-in-time matrix (10,000 events)" policy
bench "Point-in-time consent over HTTP (10,000 events)" e2e consent
bench "Withdrawal to enforcement, distributed (relay, cases, consent as separate processes)" e2e withdrawal
bench "Commands through the HTTP API beside raw INSERT commits, the relay keeping up, and sealing on and off" e2e commands
bench "Consent-filtered reads at a steady 500 requests per second, beside unfiltered reads, and sealing on and off" e2e reads
bench "Replay of every projection from 1,000,000 events beside a raw scan; footprint of the embedded server" e2e replay
bench "Scale-out: one and two processes of every service on one stream, each event handled once" e2e scaleout

# What limits the figures: hand-written, no figures in it.
cat tests/benches/LIMITS.md >>"$report"

if $ci; then
    cat "$report"
    log "every benchmark ran in quick mode (BENCHMARKS.md untouched)"
    exit 0
fi

cp "$report" BENCHMARKS.md
# Every figure as JSON too, with the machine and the commit.
python3 - target/bench <<'PY' >BENCHMARKS.json
import glob, json, os, platform, subprocess, sys
figures = {os.path.basename(f)[:-5]: json.load(open(f)) for f in sorted(glob.glob(sys.argv[1] + "/*.json"))}
commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
print(json.dumps({"commit": commit, "machine": {"cpus": os.cpu_count(), "system": platform.platform()},
                  "quick": os.environ.get("VERKOSTO_BENCH_QUICK") == "1", "figures": figures}, indent=2))
PY
cat BENCHMARKS.md
log "report written to BENCHMARKS.md and BENCHMARKS.json"
