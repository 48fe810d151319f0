//! The end-to-end benchmarks, one executable: `e2e <name> [--bench]` runs
//! one of them (scripts/bench.sh runs each in turn). They are modules of one
//! binary because they share the load generator and the servers' code,
//! which a single build then compiles once instead of once per benchmark.
//!
//! cargo bench -p verkosto-e2e --bench e2e -- replay
//! VERKOSTO_BENCH_QUICK=1 cargo bench -p verkosto-e2e --bench e2e -- replay

mod commands;
mod consent;
mod load;
mod reads;
mod replay;
mod scaleout;
mod withdrawal;

const NAMES: &str = "commands, consent, reads, replay, scaleout or withdrawal";

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    // cargo adds `--bench`; the name is the one other argument.
    let name = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    match name.as_deref() {
        Some("commands") => commands::main().await,
        Some("consent") => consent::main().await,
        Some("reads") => reads::main().await,
        Some("replay") => replay::main().await,
        Some("scaleout") => scaleout::main().await,
        Some("withdrawal") => withdrawal::main().await,
        other => {
            eprintln!("which benchmark? {other:?}: name one of {NAMES}");
            std::process::exit(2);
        }
    }
}
