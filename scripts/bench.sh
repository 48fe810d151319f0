#!/usr/bin/env bash
# The benchmark suite (`just bench`): runs every benchmark in release mode,
# each with a raw baseline measured in the same run, and writes the report
# to BENCHMARKS.md (and prints it).
#
# Like the test command it installs and starts what it needs: a throwaway
# PostgreSQL cluster and a current nats-server. `--quick` (or
# VERKOSTO_BENCH_QUICK=1) runs a tenth of the iterations, for CI.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

for arg in "$@"; do
    case "$arg" in
    --quick) export VERKOSTO_BENCH_QUICK=1 ;;
    *) echo "usage: scripts/bench.sh [--quick]" >&2; exit 2 ;;
    esac
done

phase_begin tools
ensure_postgres
ensure_nats
phase_end "PostgreSQL ($VERKOSTO_PG_BIN), $("$VERKOSTO_NATS_SERVER" --version | awk '{print $NF}')"

trap 'exit 130' INT
trap 'exit 143' TERM
trap stop_temp_postgres EXIT
phase_begin postgres
start_temp_postgres
phase_end "$VERKOSTO_TEST_PG_ADMIN_URL"

phase_begin build
cargo build --release --locked -p verkosto
phase_end "target/release/verkosto"

report=$(mktemp)
{
    echo "# Benchmarks"
    echo
    echo "Written by \`just bench\` on $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores,"
    echo "$(git rev-parse --short HEAD 2>/dev/null || echo 'no git')${VERKOSTO_BENCH_QUICK:+, quick mode}."
    echo "Machines here are noisy: compare rows of one run, not runs."
    echo
} >"$report"

bench() {
    local title=$1 package=$2 name=$3
    phase_begin "$name"
    {
        echo "## $title"
        echo
        cargo bench --locked -q -p "$package" --bench "$name" 2>/dev/null
        echo
    } >>"$report"
    phase_end "$title"
}

bench "Write throughput: the log's append beside raw INSERT commits, same database, same run" verkosto-eventlog append
bench "Consent policy: decide, fold, point-in-time matrix (10,000 events)" verkosto-policy policy
bench "Point-in-time consent over HTTP (10,000 events)" verkosto-e2e consent
bench "Withdrawal to enforcement, distributed (relay, cases, consent as separate processes)" verkosto-e2e withdrawal

cp "$report" BENCHMARKS.md
# Every figure as JSON too, with the machine and the commit.
python3 - "${CARGO_TARGET_DIR:-target}/bench" <<'PY' >BENCHMARKS.json
import glob, json, os, platform, subprocess, sys
figures = {os.path.basename(f)[:-5]: json.load(open(f)) for f in sorted(glob.glob(sys.argv[1] + "/*.json"))}
commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
print(json.dumps({"commit": commit, "machine": {"cpus": os.cpu_count(), "system": platform.platform()},
                  "quick": os.environ.get("VERKOSTO_BENCH_QUICK") == "1", "figures": figures}, indent=2))
PY
cat BENCHMARKS.md
log "report written to BENCHMARKS.md and BENCHMARKS.json"
