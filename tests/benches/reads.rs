//! Consent-filtered reads under steady load: `GET /api/v1/cases/{id}/records`
//! by a member agency (health-hus) whose consent covers two of the ten
//! categories, so the filter withholds most records and every read writes
//! its access record before answering. Open model at 500 requests per
//! second (latency from the scheduled send, so queueing counts), and a
//! closed-model run for the most reads per second. Beside it the same
//! read on a server started with `--bench-unfiltered-reads` (a flag that
//! exists only in builds with `--features bench`): no filter, no access
//! log. Embedded (the release binary on SQLite) and distributed (relay,
//! cases and consent as separate processes). Beside them, the disk's own
//! flush latency on the same schedule (the floor of a durable access log).
//! An extra closed-model run of the filtered reads is profiled (the process
//! serving them). Then sealing's cost, 1 − sealed ÷ unsealed reads/s: the
//! filtered reads on fresh servers sealed and started with
//! `--bench-unsealed` (bench builds only: records stored in the clear, no
//! key looked up, nothing opened), in the order of [`load::SEALING_ORDER`].
//!
//! ```text
//! cargo build --release -p verkosto --features bench
//! cargo bench -p verkosto-e2e --bench e2e -- reads               # scripts/bench.sh does both
//! VERKOSTO_BENCH_QUICK=1 cargo bench -p verkosto-e2e --bench e2e -- reads
//! ```
//! Prints markdown; writes `target/bench/reads.json`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use verkosto_e2e::{Split, NO_RATE_LIMITS};
use verkosto_policy::Category;
use verkosto_testkit::ChildProcess;

use crate::load;

const RATE: f64 = 500.0;
/// Records on the case, two per category.
const RECORDS: usize = 20;
const TARGET_P50: f64 = 1.3;
const TARGET_THROUGHPUT: f64 = 0.75;
const CLOSED_CLIENTS: usize = 16;

/// One running server (or set of processes) with its case set up.
struct Server {
    records_url: String,
    hanna: String,
    /// The process serving the reads, and what it is, for the profile.
    pid: u32,
    server: &'static str,
    /// The store's database, to check how the bodies were stored.
    database_url: String,
    stop: Stop,
}

enum Stop {
    Child(ChildProcess, tempfile::TempDir),
    Split(Split),
}

impl Server {
    async fn stop(self) {
        match self.stop {
            Stop::Child(mut c, _dir) => {
                let _ = c.terminate().await;
            }
            Stop::Split(s) => s.stop().await,
        }
    }
}

const UNFILTERED: (&str, &str) = ("VERKOSTO_BENCH_UNFILTERED_READS", "true");
const UNSEALED: (&str, &str) = ("VERKOSTO_BENCH_UNSEALED", "true");

/// The server of one side of a comparison.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Filtered,
    /// `--bench-unfiltered-reads` (bench builds only).
    Unfiltered,
    /// Filtered, `--bench-unsealed` (bench builds only).
    Unsealed,
}

async fn start(distributed: bool, kind: Kind) -> Server {
    let env: &[(&str, &str)] = match kind {
        Kind::Filtered => &[],
        Kind::Unfiltered => &[UNFILTERED],
        Kind::Unsealed => &[UNSEALED],
    };
    let unfiltered = kind == Kind::Unfiltered;
    let (cases, consent, pid, server, database_url, stop) = if distributed {
        // Children inherit the environment: the flag's env twin reaches them.
        for (k, v) in env {
            std::env::set_var(k, v);
        }
        let split = Split::start_with(&["relay", "cases", "consent"], &NO_RATE_LIMITS)
            .await
            .unwrap();
        for (k, _) in env {
            std::env::remove_var(k);
        }
        (
            split.base("cases").to_string(),
            split.base("consent").to_string(),
            load::profile::child_with_args(&["--target", "cases"]).unwrap_or(0),
            "the `cases` process (PostgreSQL)",
            split.database_url.clone(),
            Stop::Split(split),
        )
    } else {
        let dir = tempfile::tempdir().unwrap();
        let (child, base) = load::spawn_embedded(dir.path(), env).await;
        let pid = child.pid();
        let server = "the `verkosto` process (every service, SQLite)";
        let url = format!("sqlite://{}", dir.path().join("verkosto.db").display());
        (
            base.clone(),
            base,
            pid,
            server,
            url,
            Stop::Child(child, dir),
        )
    };
    let http = load::http();
    let id = load::case_with_network(&http, &cases, "READS").await;
    let fiona = load::token(&http, &cases, "fiona").await;
    let hanna = load::token(&http, &cases, "hanna").await;
    for n in 0..RECORDS {
        let category = Category::ALL[n % Category::ALL.len()].as_str();
        load::post_ok(
            &http,
            &format!("{cases}/api/v1/cases/{id}/records"),
            &fiona,
            &json!({ "category": category, "body": format!("record {n}, of a typical length for a short note about the client") }),
            201,
        )
        .await;
    }
    load::post_ok(
        &http,
        &format!("{consent}/api/v1/cases/{id}/consent/grants"),
        &fiona,
        &json!({ "recipient": "health-hus", "categories": ["health", "social"], "purpose": "care",
                 "obtained": { "method": "written", "language": "fi" } }),
        201,
    )
    .await;
    let records_url = format!("{cases}/api/v1/cases/{id}/records");
    // Until the cases process's view has the grant: 4 of 20 visible.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body: Value = http
            .get(&records_url)
            .bearer_auth(&hanna)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let shown = body["records"].as_array().map_or(0, Vec::len);
        if shown == 4 || (unfiltered && shown == RECORDS) {
            break;
        }
        assert!(Instant::now() < deadline, "reads never settled: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Server {
        records_url,
        hanna,
        pid,
        server,
        database_url,
        stop,
    }
}

/// Whether the server really skips the filter (it does only in a build
/// with `--features bench`; otherwise the flag's env twin is ignored).
async fn skips_filter(s: &Server) -> bool {
    let body: Value = load::http()
        .get(&s.records_url)
        .bearer_auth(&s.hanna)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["records"].as_array().map_or(0, Vec::len) == RECORDS
}

fn reader(
    s: &Server,
) -> impl Fn(usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
       + Send
       + Sync
       + 'static {
    let (http, url, token) = (load::http(), s.records_url.clone(), s.hanna.clone());
    move |_| {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        Box::pin(async move {
            match http.get(&url).bearer_auth(&token).send().await {
                // The body is read: the answer is complete, not just its head.
                Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                Err(_) => false,
            }
        })
    }
}

/// The closed-model run: the most reads per second.
async fn most(s: &Server) -> load::Report {
    load::closed(CLOSED_CLIENTS, load::size(6000, 200), reader(s)).await
}

/// Warm-up, then the open-model run and the closed-model run.
async fn measure(s: &Server) -> (load::Report, load::Report) {
    load::closed(4, load::size(500, 50), reader(s)).await;
    let open = load::open(RATE, load::size(5_000, 250), reader(s)).await;
    let closed = most(s).await;
    assert_eq!(open.errors + closed.errors, 0, "reads failed");
    (open, closed)
}

fn latency_row(mode: &str, read: &str, r: &load::Report) -> String {
    format!(
        "| {mode} | {read} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} |",
        r.ok,
        r.ms(0.5),
        r.ms(0.99),
        r.ms(0.999),
        r.max_ms(),
        r.throughput()
    )
}

async fn mode(
    distributed: bool,
    figures: &mut Vec<Value>,
    profiles: &mut load::profile::Profiles,
    sealing: &mut Vec<String>,
) -> (Vec<String>, Vec<String>) {
    let name = if distributed {
        "distributed"
    } else {
        "embedded"
    };
    let p99_target = if distributed { 10.0 } else { 5.0 };
    let filtered = start(distributed, Kind::Filtered).await;
    load::assert_bodies_sealed(&filtered.database_url, true).await;
    let (f_open, f_closed) = measure(&filtered).await;
    // The closed-model run again, profiled; the figures are not.
    let label = format!("{name}, filtered reads, {CLOSED_CLIENTS} clients");
    profiles
        .run(&label, filtered.server, filtered.pid, most(&filtered))
        .await;
    filtered.stop().await;
    // The disk's own tail, which every durable access-log write inherits.
    let floor = load::fsync_floor(RATE, load::size(2_500, 100)).await;
    let mut latency = vec![
        latency_row(name, "filtered + access log", &f_open),
        latency_row(
            name,
            "raw floor: a 4 KiB write + fdatasync on the same disk, same schedule",
            &floor,
        ),
    ];
    let mut checks = vec![format!(
        "| {name} | p99 of filtered reads at {RATE:.0}/s | {:.2} ms | — | — | < {p99_target} ms | {} |",
        f_open.ms(0.99),
        load::met(f_open.ms(0.99) < p99_target)
    )];
    let mut figure = json!({
        "mode": name, "rate": RATE,
        "filtered": { "open": f_open.json(), "closed": f_closed.json() },
        "fsync_floor": floor.json(),
        "p99_target_ms": p99_target, "p99_met": f_open.ms(0.99) < p99_target,
    });
    // Sealing on and off: the same filtered reads on fresh servers, one
    // side with nothing sealed or opened, in an order that lets the
    // machine's drift weigh on both; each side's runs pooled.
    if load::serve_has_flag(load::UNSEALED_FLAG) {
        let mut sides: [Option<(load::Report, load::Report)>; 2] = Default::default();
        for unsealed in load::SEALING_ORDER {
            let kind = if unsealed {
                Kind::Unsealed
            } else {
                Kind::Filtered
            };
            let server = start(distributed, kind).await;
            load::assert_bodies_sealed(&server.database_url, !unsealed).await;
            let (open, closed) = measure(&server).await;
            server.stop().await;
            match &mut sides[usize::from(unsealed)] {
                Some((o, c)) => {
                    o.pool(&open);
                    c.pool(&closed);
                }
                side => *side = Some((open, closed)),
            }
        }
        let [Some((f_open, f_closed)), Some((s_open, s_closed))] = sides else {
            unreachable!("both sides ran")
        };
        latency.push(latency_row(
            name,
            "filtered + access log, unsealed (sealing baseline)",
            &s_open,
        ));
        let (cost, cells) = load::sealing_cost_cells(f_closed.throughput(), s_closed.throughput());
        sealing.push(format!(
            "| {name} | most reads/s, {CLOSED_CLIENTS} clients | {:.0} | {:.0} | {cells} |",
            f_closed.throughput(),
            s_closed.throughput(),
        ));
        sealing.push(format!(
            "| {name} | p50 / p99 at {RATE:.0}/s, ms | {:.2} / {:.2} | {:.2} / {:.2} | – | – | – |",
            f_open.ms(0.5),
            f_open.ms(0.99),
            s_open.ms(0.5),
            s_open.ms(0.99),
        ));
        figure["sealing_sealed"] = json!({ "open": f_open.json(), "closed": f_closed.json() });
        figure["unsealed"] = json!({ "open": s_open.json(), "closed": s_closed.json() });
        figure["sealing_cost"] = json!(cost);
        figure["sealing_target_cost"] = json!(load::TARGET_SEALING_COST);
    } else {
        sealing.push(format!(
            "| {name} | most reads/s, {CLOSED_CLIENTS} clients | {:.0} | {} | – | – | – |",
            f_closed.throughput(),
            load::NO_UNSEALED
        ));
    }
    let unfiltered = start(distributed, Kind::Unfiltered).await;
    if skips_filter(&unfiltered).await {
        let (u_open, u_closed) = measure(&unfiltered).await;
        latency.push(latency_row(
            name,
            "unfiltered, no access log (baseline)",
            &u_open,
        ));
        let p50 = f_open.ms(0.5) / u_open.ms(0.5);
        let throughput = f_closed.throughput() / u_closed.throughput();
        checks.push(format!(
            "| {name} | p50 at {RATE:.0}/s | {:.2} ms | {:.2} ms | {p50:.2}× | ≤ {TARGET_P50}× | {} |",
            f_open.ms(0.5),
            u_open.ms(0.5),
            load::met(p50 <= TARGET_P50)
        ));
        checks.push(format!(
            "| {name} | most reads/s, {CLOSED_CLIENTS} clients | {:.0} | {:.0} | {throughput:.2} | ≥ {TARGET_THROUGHPUT} | {} |",
            f_closed.throughput(),
            u_closed.throughput(),
            load::met(throughput >= TARGET_THROUGHPUT)
        ));
        figure["unfiltered"] = json!({ "open": u_open.json(), "closed": u_closed.json() });
        figure["p50_ratio"] = json!(p50);
        figure["throughput_ratio"] = json!(throughput);
    } else {
        checks.push(format!(
            "| {name} | baseline | — | not measured: this `verkosto` was built without `--features bench` | — | — | — |"
        ));
    }
    unfiltered.stop().await;
    figures.push(figure);
    (latency, checks)
}

pub async fn main() {
    let mut figures = Vec::new();
    let mut profiles = load::profile::Profiles::new();
    let mut sealing = Vec::new();
    let (mut latency, mut checks) = mode(false, &mut figures, &mut profiles, &mut sealing).await;
    let (l, c) = mode(true, &mut figures, &mut profiles, &mut sealing).await;
    latency.extend(l);
    checks.extend(c);
    println!("Open model, {RATE:.0} requests per second, latency from the scheduled send:");
    println!();
    println!("| mode | read | n | p50 ms | p99 ms | p99.9 ms | max ms | answered/s |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for row in latency {
        println!("{row}");
    }
    println!();
    println!("| mode | figure | filtered | unfiltered | ratio | target | met |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for row in checks {
        println!("{row}");
    }
    println!();
    println!(
        "Each read returns 4 of {RECORDS} records to health-hus (consent covers health and social) \
         and writes its access record before answering. The raw floor row is this disk's \
         flush latency on the same schedule: each filtered read waits for a flush, so its tail follows the disk's."
    );
    println!();
    println!(
        "Sealing on and off: the filtered reads (each record's body sealed under the case's key, \
         opened with it before the answer) on fresh servers of the same mode, sealed and started \
         with `--bench-unsealed` (bench builds only: bodies stored in the clear, no key looked \
         up), in the order sealed, unsealed, unsealed, sealed, so that the machine's drift weighs \
         on both; each side's two runs pooled. Cost: 1 − sealed ÷ unsealed reads/s."
    );
    println!();
    println!("| mode | figure | sealed | unsealed | sealing cost | target | met |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for row in sealing {
        println!("{row}");
    }
    println!();
    profiles.print();
    load::write_figures("reads", &json!({ "modes": figures }));
}
