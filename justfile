# Verkosto. `just` lists the recipes.

default:
    @just --list

# Run Verkosto: every service in one process, embedded store, demo data, http://127.0.0.1:8080
run:
    cargo run -p verkosto -- serve --demo

# Every test, against SQLite and against real PostgreSQL and NATS (started here)
test *args:
    scripts/test.sh {{args}}

# Formatting and lints, as CI would want them
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# The distributed mode as separate local processes (PostgreSQL, NATS, one process per target)
up:
    scripts/up.sh

# Regenerate the wire contract in proto/
proto:
    cargo run -p verkosto -- proto --write

# The benchmark suite (writes BENCHMARKS.md)
bench:
    @test -x scripts/bench.sh || { echo "the benchmark suite is not built yet (issue: Benchmarks)"; exit 1; }
    scripts/bench.sh

# The long fault-injection suite
faults:
    @test -x scripts/faults.sh || { echo "the fault suite is not built yet (issue: Reliability)"; exit 1; }
    scripts/faults.sh
