//! The point-in-time consent query over HTTP, for a client whose record
//! holds 10,000 consent events, in the embedded mode and (when PostgreSQL
//! and NATS are available) the distributed one. Baseline in the same run:
//! the cheapest indexed SQL read of the same record's head.
//!
//! ```text
//! cargo bench -p verkosto-e2e --bench e2e -- consent            # full
//! VERKOSTO_BENCH_QUICK=1 cargo bench -p verkosto-e2e --bench e2e -- consent
//! ```
//! Prints a markdown table (p50, p99, max, in milliseconds).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::json;
use verkosto_e2e::{Mode, Verkosto};
use verkosto_eventlog::{Actor, CommandMeta, EventLog, ExpectedVersion, NewEvent};
use verkosto_policy::{Category, ConsentEvent, Grantor, Method, Obtained};

const EVENTS: usize = 10_000;

fn quick() -> bool {
    std::env::var("VERKOSTO_BENCH_QUICK").is_ok_and(|v| v == "1")
}

/// Writes `EVENTS` consent events for `case` straight into the log (the
/// benchmark is about reading), spread over the last `EVENTS` seconds.
async fn fill(log: &EventLog, case: &str, members: &[&str]) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = Utc::now() - chrono::Duration::seconds(EVENTS as i64 + 60);
    let meta = CommandMeta::new(Actor {
        user: "fiona".into(),
        agency: "assistance-system".into(),
    });
    let mut events = Vec::new();
    for n in 0..EVENTS {
        let at = start + chrono::Duration::seconds(n as i64);
        let recipient = members[n % members.len()].to_string();
        let event = match n % 4 {
            0 | 1 => ConsentEvent::ConsentGranted {
                grant_id: format!("g{n}"),
                recipient,
                categories: [Category::ALL[n % 10], Category::ALL[(n / 10) % 10]].into(),
                purpose: "care".into(),
                valid_from: at,
                valid_until: (n % 8 == 0).then(|| at + chrono::Duration::seconds(600)),
                obtained: Obtained {
                    method: Method::Written,
                    language: "ro".into(),
                    interpreter: None,
                    grantor: Grantor::Client,
                },
                at,
            },
            2 => ConsentEvent::ConsentWithdrawn {
                grant_id: format!("g{}", n - 2),
                reason: "asked".into(),
                at,
            },
            _ => ConsentEvent::ConsentRefused {
                refusal_id: format!("r{n}"),
                agency: recipient,
                categories: [Category::ALL[n % 10]].into(),
                at,
            },
        };
        events.push(NewEvent {
            event_type: event.name().into(),
            schema_version: 1,
            payload: serde_json::to_value(&event).unwrap(),
            sealing: None,
        });
    }
    for chunk in events.chunks(500) {
        log.append(
            "consent",
            case,
            ExpectedVersion::Any,
            chunk.to_vec(),
            &meta,
            None,
        )
        .await
        .unwrap();
    }
    (start, start + chrono::Duration::seconds(EVENTS as i64))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn row(name: &str, mut samples: Vec<Duration>) -> String {
    samples.sort();
    format!(
        "| {name} | {} | {:.2} | {:.2} | {:.2} |",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples.last().unwrap().as_secs_f64() * 1000.0
    )
}

async fn run(mode: Mode) -> Vec<String> {
    // A benchmark measures the reads, not the rate limits.
    let mut flags = vec!["--demo", "--demo-case", "off"];
    flags.extend(verkosto_e2e::NO_RATE_LIMITS);
    let v = Verkosto::start_with(mode, &flags).await.unwrap();
    let fiona = v.token("fiona").await.unwrap();
    let (status, body) = v
        .post(
            &fiona,
            "/api/v1/cases",
            &json!({ "pseudonym": "BENCH", "languages": ["fi"] }),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    let case = body["id"].as_str().unwrap().to_string();
    let members = [
        "health-hus",
        "police-helsinki",
        "social-helsinki",
        "migri",
        "ngo-support",
    ];
    for agency in members {
        v.post(
            &fiona,
            &format!("/api/v1/cases/{case}/members"),
            &json!({ "agency": agency, "purpose": "bench" }),
        )
        .await
        .unwrap();
    }
    let log = v.log().await.unwrap();
    let (from, to) = fill(&log, &case, &members).await;
    let path = format!("/api/v1/cases/{case}/consent");
    // The first read folds the record once; the rest reuse it. In the
    // distributed mode the consent view first catches up with the stream
    // (until then it answers with `consent_fresh: false`).
    let deadline = Instant::now() + Duration::from_secs(120);
    let first = loop {
        let (status, body) = v.get(&fiona, &path).await.unwrap();
        // A view still catching up answers, withholding, and says so.
        if status == 200 && body["consent_fresh"] == true {
            break body;
        }
        assert!(
            (status == 503 || status == 200) && Instant::now() < deadline,
            "{status} {body}"
        );
    };
    assert_eq!(first["consent_version"], EVENTS);

    let queries = if quick() { 100 } else { 1000 };
    let span = (to - from).num_milliseconds();
    let mut http = Vec::with_capacity(queries);
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..queries {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let at = from + chrono::Duration::milliseconds((seed % span as u64) as i64);
        let at = at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let t = Instant::now();
        let (status, _) = v.get(&fiona, &format!("{path}?at={at}")).await.unwrap();
        http.push(t.elapsed());
        assert_eq!(status, 200);
    }
    let mut baseline = Vec::with_capacity(queries);
    for _ in 0..queries {
        let t = Instant::now();
        let _: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(version) FROM events WHERE stream_type = 'consent' AND stream_id = $1",
        )
        .bind(&case)
        .fetch_one(log.db().reader())
        .await
        .unwrap();
        baseline.push(t.elapsed());
    }
    v.stop().await;
    let mode = format!("{mode:?}").to_lowercase();
    vec![
        row(&format!("{mode}: GET consent?at= (10,000 events)"), http),
        row(
            &format!("{mode}: baseline, SQL head of the record"),
            baseline,
        ),
    ]
}

pub async fn main() {
    println!("| query | n | p50 ms | p99 ms | max ms |");
    println!("| --- | --- | --- | --- | --- |");
    let mut modes = vec![Mode::Embedded];
    if std::env::var("VERKOSTO_BENCH_EMBEDDED_ONLY").is_err() {
        modes.push(Mode::Distributed);
    }
    for mode in modes {
        for row in run(mode).await {
            println!("{row}");
        }
    }
}
