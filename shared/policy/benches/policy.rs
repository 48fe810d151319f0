//! `decide`, folding, and the point-in-time matrix over one client's record
//! of 10,000 consent events. Plain `Instant`, no harness:
//!
//! ```text
//! cargo bench -p verkosto-policy --bench policy
//! VERKOSTO_BENCH_QUICK=1 cargo bench -p verkosto-policy --bench policy
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use verkosto_policy::{decide, matrix, Category, ConsentEvent, ConsentState, Obtained};

const EVENTS: usize = 10_000;
const AGENCIES: [&str; 6] = ["lead", "kela", "school", "police", "health", "housing"];
const LEAD: &str = AGENCIES[0];

/// xorshift64*: enough randomness for picking questions, and repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    fn categories(&mut self) -> std::collections::BTreeSet<Category> {
        (0..1 + self.below(4))
            .map(|_| self.pick(&Category::ALL))
            .collect()
    }
}

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2023, 1, 1, 0, 0, 0).unwrap()
}

fn record(rng: &mut Rng) -> Vec<ConsentEvent> {
    let obtained: Obtained =
        serde_json::from_value(serde_json::json!({"method": "written", "language": "fi"})).unwrap();
    let (mut grants, mut refusals, mut bases) = (0u64, 0u64, 0u64);
    let mut at = base();
    let mut events = Vec::with_capacity(EVENTS);
    while events.len() < EVENTS {
        at += chrono::Duration::minutes(rng.below(120) as i64);
        let agency = AGENCIES[1 + rng.below(5) as usize].to_string();
        let days = |rng: &mut Rng, n: u64| chrono::Duration::days(rng.below(n) as i64);
        let event = match rng.below(20) {
            0..=10 => {
                grants += 1;
                ConsentEvent::ConsentGranted {
                    grant_id: format!("g{grants}"),
                    recipient: agency,
                    categories: rng.categories(),
                    purpose: "joint plan".into(),
                    valid_from: at - days(rng, 3) + days(rng, 3),
                    valid_until: (rng.below(2) == 0).then(|| at + days(rng, 365)),
                    obtained: obtained.clone(),
                    at,
                }
            }
            11..=14 => ConsentEvent::ConsentWithdrawn {
                grant_id: format!("g{}", 1 + rng.below(grants.max(1))),
                reason: "asked".into(),
                at,
            },
            15..=16 => {
                refusals += 1;
                ConsentEvent::ConsentRefused {
                    refusal_id: format!("r{refusals}"),
                    agency,
                    categories: rng.categories(),
                    at,
                }
            }
            17 => ConsentEvent::RefusalLifted {
                refusal_id: format!("r{}", 1 + rng.below(refusals.max(1))),
                at,
            },
            18 => {
                bases += 1;
                ConsentEvent::StatutoryBasisRecorded {
                    basis_id: format!("s{bases}"),
                    recipient: agency,
                    categories: rng.categories(),
                    law_reference: "law".into(),
                    valid_until: (rng.below(2) == 0).then(|| at + days(rng, 365)),
                    at,
                }
            }
            _ => ConsentEvent::StatutoryBasisEnded {
                basis_id: format!("s{}", 1 + rng.below(bases.max(1))),
                at,
            },
        };
        events.push(event);
    }
    events
}

/// A moment somewhere in the record, or a little past its end.
fn moment(rng: &mut Rng, first: DateTime<Utc>, last: DateTime<Utc>) -> DateTime<Utc> {
    let span = (last - first).num_seconds() as u64 + 86_400;
    first + chrono::Duration::seconds(rng.below(span) as i64)
}

struct Row {
    what: &'static str,
    samples: usize,
    unit: &'static str,
    per_unit: f64,
    values: Vec<Duration>,
}

impl Row {
    fn new(what: &'static str, unit: &'static str, per_unit: f64, values: Vec<Duration>) -> Row {
        Row {
            what,
            samples: values.len(),
            unit,
            per_unit,
            values,
        }
    }

    fn print(mut self) {
        self.values.sort();
        let scale = |d: Duration| d.as_nanos() as f64 / self.per_unit;
        let at = |q: f64| scale(self.values[((self.values.len() - 1) as f64 * q).round() as usize]);
        let mean = self.values.iter().map(|d| scale(*d)).sum::<f64>() / self.samples as f64;
        println!(
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            self.what,
            self.samples,
            self.unit,
            mean,
            at(0.5),
            at(0.99),
            at(1.0),
        );
    }
}

fn main() {
    let quick = std::env::var("VERKOSTO_BENCH_QUICK").is_ok_and(|v| v == "1");
    // Quick mode runs in CI on the dev build, where a full scan is slow.
    let scale = if quick { 100 } else { 1 };
    let decide_batches = 200 / scale;
    let decide_batch = 1_000;
    // A full scan takes some fifty times as long as a typical call, so a
    // batch of 100 is long enough for the clock.
    let full_scan_batch = 100;
    let folds = 100 / scale;
    let matrices = 1_000 / scale;

    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    let events = record(&mut rng);
    let state = ConsentState::from_events(LEAD, &events);
    let (first, last) = (events[0].at(), events[EVENTS - 1].at());

    // (a) decide, timed per batch: one call is too short for Instant.
    let mut decide_ns = Vec::with_capacity(decide_batches);
    let mut allowed = 0usize;
    for _ in 0..decide_batches {
        let questions: Vec<(&str, Category, DateTime<Utc>)> = (0..decide_batch)
            .map(|_| {
                (
                    rng.pick(&AGENCIES[1..]),
                    rng.pick(&Category::ALL),
                    moment(&mut rng, first, last),
                )
            })
            .collect();
        let start = Instant::now();
        for (reader, category, at) in &questions {
            allowed += decide(black_box(&state), reader, *category, *at).allowed() as usize;
        }
        decide_ns.push(start.elapsed() / decide_batch as u32);
    }
    black_box(allowed);

    // (a') decide when nothing applies: before the record, every scan runs
    // to the end.
    let before_record = first - chrono::Duration::days(1);
    let mut full_scan_ns = Vec::with_capacity(decide_batches);
    for _ in 0..decide_batches {
        let start = Instant::now();
        for i in 0..full_scan_batch {
            let reader = AGENCIES[1 + i % 5];
            let category = Category::ALL[i % 10];
            black_box(decide(black_box(&state), reader, category, before_record));
        }
        full_scan_ns.push(start.elapsed() / full_scan_batch as u32);
    }

    // (b) folding the whole record.
    let fold: Vec<Duration> = (0..folds)
        .map(|_| {
            let start = Instant::now();
            black_box(ConsentState::from_events(LEAD, black_box(&events)));
            start.elapsed()
        })
        .collect();

    // (c) the full matrix at a past moment.
    let matrix_times: Vec<Duration> = (0..matrices)
        .map(|_| {
            let at = moment(&mut rng, first, last);
            let start = Instant::now();
            black_box(matrix(black_box(&state), AGENCIES, at));
            start.elapsed()
        })
        .collect();

    println!(
        "\n{} events ({} grants, {} refusals, {} statutory bases), {} agencies{}\n",
        EVENTS,
        state.grants.len(),
        state.refusals.len(),
        state.statutory.len(),
        AGENCIES.len(),
        if quick { ", quick run" } else { "" },
    );
    println!("| measurement | samples | unit | mean | p50 | p99 | max |");
    println!("|---|---:|---|---:|---:|---:|---:|");
    Row::new("decide, per call (batches of 1,000)", "ns", 1.0, decide_ns).print();
    Row::new(
        "decide, nothing applies (full scan; batches of 100)",
        "ns",
        1.0,
        full_scan_ns,
    )
    .print();
    Row::new("from_events, 10,000 events", "µs", 1e3, fold).print();
    Row::new(
        "matrix, 6 agencies × 10 categories",
        "µs",
        1e3,
        matrix_times,
    )
    .print();
}
