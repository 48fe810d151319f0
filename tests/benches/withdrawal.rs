//! Withdrawal to enforcement, in the distributed mode with each target its
//! own process: from the start of a withdraw call (consent service) until
//! the cases service denies the withdrawn category, over many withdrawals;
//! and the number of reads after a withdrawal returned that still showed
//! the data (must be zero).
//!
//! ```text
//! cargo bench -p verkosto-e2e --bench e2e -- withdrawal       # scripts/bench.sh runs it
//! VERKOSTO_BENCH_QUICK=1 cargo bench -p verkosto-e2e --bench e2e -- withdrawal
//! ```

use std::time::{Duration, Instant};

use serde_json::json;
use verkosto_e2e::{Split, NO_RATE_LIMITS};

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
}

pub async fn main() {
    let rounds = if std::env::var("VERKOSTO_BENCH_QUICK").is_ok_and(|v| v == "1") {
        50
    } else {
        1000
    };
    let split = Split::start_with(&["relay", "cases", "consent"], &NO_RATE_LIMITS)
        .await
        .unwrap();
    let fiona = split.token("fiona").await.unwrap();
    let hanna = split.token("hanna").await.unwrap();
    let (_, case) = split
        .post(
            "cases",
            &fiona,
            "/api/v1/cases",
            &json!({ "pseudonym": "W-1", "languages": ["fi"] }),
        )
        .await
        .unwrap();
    let id = case["id"].as_str().unwrap().to_string();
    split
        .post(
            "cases",
            &fiona,
            &format!("/api/v1/cases/{id}/members"),
            &json!({ "agency": "health-hus", "purpose": "p" }),
        )
        .await
        .unwrap();
    split
        .post(
            "cases",
            &hanna,
            &format!("/api/v1/cases/{id}/invitations/accept"),
            &json!({}),
        )
        .await
        .unwrap();
    split
        .post(
            "cases",
            &fiona,
            &format!("/api/v1/cases/{id}/records"),
            &json!({ "category": "health", "body": "x" }),
        )
        .await
        .unwrap();
    let records = format!("/api/v1/cases/{id}/records");
    let mut to_enforcement = Vec::with_capacity(rounds);
    let mut withdraw_calls = Vec::with_capacity(rounds);
    let mut stale_reads = 0;
    for _ in 0..rounds {
        let (_, grant) = split
            .post(
                "consent",
                &fiona,
                &format!("/api/v1/cases/{id}/consent/grants"),
                &json!({ "recipient": "health-hus", "categories": ["health"], "purpose": "p", "obtained": { "method": "written", "language": "fi" } }),
            )
            .await
            .unwrap();
        // The grant is visible before it is withdrawn.
        loop {
            let (_, read) = split.get("cases", &hanna, &records).await.unwrap();
            if read["withheld"] == 0 {
                break;
            }
        }
        let grant_id = grant["grant_id"].as_str().unwrap();
        let start = Instant::now();
        split
            .post(
                "consent",
                &fiona,
                &format!("/api/v1/cases/{id}/consent/grants/{grant_id}/withdraw"),
                &json!({ "reason": "r" }),
            )
            .await
            .unwrap();
        withdraw_calls.push(start.elapsed());
        let (_, read) = split.get("cases", &hanna, &records).await.unwrap();
        if read["withheld"] != 1 {
            stale_reads += 1;
        }
        to_enforcement.push(start.elapsed());
    }
    to_enforcement.sort();
    withdraw_calls.sort();
    println!("| measure | n | p50 ms | p99 ms | max ms |");
    println!("| --- | --- | --- | --- | --- |");
    for (name, d) in [
        ("withdraw call (consent service)", &withdraw_calls),
        ("withdraw start → cases service denies", &to_enforcement),
    ] {
        println!(
            "| {name} | {} | {:.2} | {:.2} | {:.2} |",
            d.len(),
            percentile(d, 0.5),
            percentile(d, 0.99),
            d.last().unwrap().as_secs_f64() * 1000.0
        );
    }
    println!();
    println!(
        "Reads after a withdrawal returned that still showed the data: {stale_reads} of {rounds}."
    );
    let out = verkosto_testkit::workspace_root().join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("withdrawal.json"),
        serde_json::to_string_pretty(&json!({
            "rounds": rounds,
            "to_enforcement_ms": { "p50": percentile(&to_enforcement, 0.5), "p99": percentile(&to_enforcement, 0.99) },
            "withdraw_call_ms": { "p50": percentile(&withdraw_calls, 0.5), "p99": percentile(&withdraw_calls, 0.99) },
            "stale_reads": stale_reads,
        }))
        .unwrap(),
    )
    .unwrap();
    split.stop().await;
    assert_eq!(
        stale_reads, 0,
        "a read after the withdrawal returned showed withdrawn data"
    );
}
