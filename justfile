# Verkosto. `just` lists the recipes (`pip install rust-just` gives `just`).

# Arguments reach the scripts as "$@", quoting intact.
set positional-arguments

default:
    @just --list

# Run Verkosto: every service in one process, embedded store, demo data, http://127.0.0.1:8080
run:
    cargo run -p verkosto -- serve --demo

# Every test, against SQLite and against real PostgreSQL and NATS (started here); args go to nextest
test *args:
    scripts/test.sh "$@"

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
bench *args:
    @test -x scripts/bench.sh || { echo "the benchmark suite is not yet built (issue: Benchmarks)" >&2; exit 1; }
    scripts/bench.sh "$@"

# The long fault-injection suite
faults *args:
    @test -x scripts/faults.sh || { echo "the fault suite is not yet built (issue: Reliability)" >&2; exit 1; }
    scripts/faults.sh "$@"
