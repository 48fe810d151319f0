//! Scale-out benchmark: the same mixed command load through one process of
//! each service and through two, on one PostgreSQL log and one JetStream
//! stream, with the proof that no event was handled twice (per consumer, the
//! processes' applied counts add up to exactly the events in the log).
//!
//! cargo bench -p verkosto-e2e --bench e2e -- scaleout
//! VERKOSTO_BENCH_QUICK=1 cargo bench -p verkosto-e2e --bench e2e -- scaleout

use serde_json::json;
use verkosto_e2e::scaleout::{self, check_once_each, run_load};

pub async fn main() {
    let quick = std::env::var("VERKOSTO_BENCH_QUICK").is_ok_and(|v| v == "1");
    let (cases, concurrency) = if quick { (4, 4) } else { (150, 16) };
    println!("| processes per service | commands | commands/s | events | consumers checked | events handled twice | tasks (= measures) |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let mut figures = Vec::new();
    for replicas in [1, 2] {
        let split = scaleout::start(replicas).await.unwrap();
        let log = verkosto_eventlog::EventLog::connect(&split.database_url)
            .await
            .unwrap();
        let report = run_load(&split, cases, concurrency).await.unwrap();
        // Fails (and so does the benchmark) if any event was handled twice.
        let once = check_once_each(&split, &log, report.tasks_expected)
            .await
            .unwrap();
        println!(
            "| {replicas} | {} | {:.0} | {} | {} | 0 | {} |",
            report.commands,
            report.per_second(),
            once.events,
            once.consumers,
            once.tasks
        );
        figures.push(json!({
            "processes_per_service": replicas,
            "commands": report.commands,
            "commands_per_second": report.per_second(),
            "events": once.events,
            "consumers_checked": once.consumers,
            "handled_twice": 0,
        }));
        split.stop().await;
    }
    let one = figures[0]["commands_per_second"].as_f64().unwrap();
    let two = figures[1]["commands_per_second"].as_f64().unwrap();
    println!();
    println!(
        "Two processes per service give {:.0}% of the throughput of one ({} cores: every process shares them, \
         so this shows correctness and overhead, not added capacity).",
        100.0 * two / one,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let out = verkosto_testkit::workspace_root().join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("scaleout.json"),
        serde_json::to_string_pretty(&json!({ "runs": figures, "two_over_one": two / one }))
            .unwrap(),
    )
    .unwrap();
}
