//! The load generator the HTTP benchmarks share, with HDR histograms.
//!
//! Two models:
//! - [`closed`]: N clients, each sending its next request when the last
//!   one is answered, as fast as the server allows (throughput).
//! - [`open`]: requests issued on a fixed schedule at R per second, each
//!   on its own task, whatever the server does; latency is measured from
//!   the *scheduled* send time, so a stalled server's queueing delay is
//!   counted (no coordinated omission).
//!
//! Also the pieces the benchmarks share: quick mode, processes of the
//! release binary, dev tokens, the JSON figure files, and profiles of the
//! server under load ([`profile`]).

#![allow(dead_code)] // Each bench uses its own part of this module.

pub mod profile;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use verkosto_testkit::ChildProcess;

/// `VERKOSTO_BENCH_QUICK=1`: tiny sizes, for CI (seconds, not minutes).
pub fn quick() -> bool {
    std::env::var("VERKOSTO_BENCH_QUICK").is_ok_and(|v| v == "1")
}

/// Full size, or the quick one.
pub fn size(full: usize, quick_size: usize) -> usize {
    if quick() {
        quick_size
    } else {
        full
    }
}

/// What one load run measured.
pub struct Report {
    /// Requests answered with success.
    pub ok: u64,
    /// Requests that failed (error status or transport error).
    pub errors: u64,
    /// From the first send to the last answer.
    pub elapsed: Duration,
    /// Latencies in microseconds.
    pub histogram: Histogram<u64>,
}

impl Report {
    fn new() -> Report {
        Report {
            ok: 0,
            errors: 0,
            elapsed: Duration::ZERO,
            // 1 µs to 60 s, three significant digits.
            histogram: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
        }
    }

    fn add(&mut self, latency: Duration, ok: bool) {
        let micros = (latency.as_micros() as u64).clamp(1, 60_000_000);
        self.histogram.saturating_record(micros);
        if ok {
            self.ok += 1;
        } else {
            self.errors += 1;
        }
    }

    /// This report and `other`'s as one run's: their requests, their time
    /// and their latencies added up (runs of the same load, pooled).
    pub fn pool(&mut self, other: &Report) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.histogram
            .add(&other.histogram)
            .expect("histograms of the same bounds");
    }

    /// Successful requests per second over the run.
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// A quantile (0.5, 0.99, 0.999) in milliseconds.
    pub fn ms(&self, quantile: f64) -> f64 {
        self.histogram.value_at_quantile(quantile) as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.histogram.max() as f64 / 1000.0
    }

    /// Every figure, for the JSON file.
    pub fn json(&self) -> Value {
        json!({
            "ok": self.ok,
            "errors": self.errors,
            "seconds": self.elapsed.as_secs_f64(),
            "per_second": self.throughput(),
            "p50_ms": self.ms(0.5),
            "p99_ms": self.ms(0.99),
            "p999_ms": self.ms(0.999),
            "max_ms": self.max_ms(),
        })
    }
}

/// Closed model: `clients` concurrent clients share `requests` requests,
/// each sending the next as soon as its last one is answered. `op(n)`
/// sends request `n` and says whether it succeeded.
pub async fn closed<F, Fut>(clients: usize, requests: usize, op: F) -> Report
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (op, next) = (op.clone(), next.clone());
            tokio::spawn(async move {
                let mut report = Report::new();
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= requests {
                        return report;
                    }
                    let sent = Instant::now();
                    let ok = op(n).await;
                    report.add(sent.elapsed(), ok);
                }
            })
        })
        .collect();
    let mut total = Report::new();
    for w in workers {
        let r = w.await.expect("load client panicked");
        total.ok += r.ok;
        total.errors += r.errors;
        total.histogram.add(&r.histogram).expect("same bounds");
    }
    total.elapsed = start.elapsed();
    total
}

/// Open model: `requests` requests at `rate` per second, request `n`
/// scheduled at `n / rate` after the start and sent then on its own task
/// (never held back by slow answers); its latency runs from that
/// scheduled moment to the answer.
pub async fn open<F, Fut>(rate: f64, requests: usize, op: F) -> Report
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let start = tokio::time::Instant::now();
    let mut sent = Vec::with_capacity(requests);
    for n in 0..requests {
        let scheduled = start + Duration::from_secs_f64(n as f64 / rate);
        tokio::time::sleep_until(scheduled).await;
        let request = op(n);
        sent.push(tokio::spawn(async move {
            let ok = request.await;
            (scheduled.elapsed(), ok)
        }));
    }
    let mut report = Report::new();
    for s in sent {
        let (latency, ok) = s.await.expect("request task panicked");
        report.add(latency, ok);
    }
    report.elapsed = start.elapsed();
    report
}

/// The floor under any durable write on this disk, measured in the same
/// run: an open-model run of 4 KiB appends, each made durable with
/// `fdatasync`, to a file in a new temporary directory (where the embedded
/// store's is). Concurrent ones may share a flush, as group commits do.
pub async fn fsync_floor(rate: f64, requests: usize) -> Report {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = std::fs::File::create(dir.path().join("floor")).expect("a file to flush");
    let file = Arc::new(file);
    open(rate, requests, move |_| {
        let file = file.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                (&*file).write_all(&[0u8; 4096])?;
                file.sync_data()
            })
            .await
            .is_ok_and(|written| written.is_ok())
        }
    })
    .await
}

/// An HTTP client for load: no timeout shorter than the run, a pool large
/// enough for every concurrent request.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(256)
        .build()
        .expect("http client")
}

/// The embedded mode as users run it: the `verkosto` binary (of this
/// build profile) serving from `data_dir`, demo directory loaded. Returns
/// the process and its base URL.
pub async fn spawn_embedded(data_dir: &Path, extra_env: &[(&str, &str)]) -> (ChildProcess, String) {
    let mut cmd = verkosto_testkit::verkosto();
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--demo",
        "--demo-case",
        "off",
    ])
    .args(["--dev-key-seed", verkosto_e2e::DEV_SEED])
    // A benchmark measures the service, not the rate limits.
    .args(verkosto_e2e::NO_RATE_LIMITS)
    .arg("--data-dir")
    .arg(data_dir)
    .env("VERKOSTO_LOG", "warn");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = ChildProcess::spawn(cmd).expect("spawn verkosto");
    let addr = child
        .wait_for_line("listening on ", Duration::from_secs(120))
        .await
        .expect("verkosto listening");
    (child, format!("http://{addr}"))
}

/// Whether this build's `verkosto serve` has `flag`: the benchmarks'
/// baselines (`--bench-unsealed`, ...) exist only in builds with
/// `--features bench`.
pub fn serve_has_flag(flag: &str) -> bool {
    let help = verkosto_testkit::verkosto_std()
        .args(["serve", "--help"])
        .output()
        .expect("verkosto serve --help");
    assert!(help.status.success(), "verkosto serve --help failed");
    String::from_utf8_lossy(&help.stdout)
        .split_whitespace()
        .any(|word| word == flag)
}

/// The baseline without sealing, or why it is not measured.
pub const UNSEALED_FLAG: &str = "--bench-unsealed";
pub const NO_UNSEALED: &str =
    "not measured: this `verkosto` was built without `--features bench` (no `--bench-unsealed`)";

/// The order of the servers of a sealing comparison (true: unsealed):
/// sealed, unsealed, unsealed, sealed, each started fresh, so that a drift
/// of a shared machine over the runs (other work starting or ending, the
/// disk's cache) weighs on both sides alike; each side's runs are pooled.
pub const SEALING_ORDER: [bool; 4] = [false, true, true, false];

/// What sealing may cost at most: 1 − sealed ÷ unsealed throughput.
pub const TARGET_SEALING_COST: f64 = 0.10;

/// A table row's cost cells: `1 − sealed ÷ unsealed` in %, the target and
/// whether it is met.
pub fn sealing_cost_cells(sealed: f64, unsealed: f64) -> (f64, String) {
    let cost = 1.0 - sealed / unsealed;
    (
        cost,
        format!(
            "{:.1} % | ≤ {:.0} % | {}",
            100.0 * cost,
            100.0 * TARGET_SEALING_COST,
            met(cost <= TARGET_SEALING_COST)
        ),
    )
}

/// Insists that every record body the server at `database_url` stored is
/// sealed (`sealed`), or that none is: each side of the sealing comparison
/// must be what it claims.
pub async fn assert_bodies_sealed(database_url: &str, sealed: bool) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(database_url)
        .await
        .expect("the server's database");
    let bodies: Vec<String> = sqlx::query_scalar("SELECT body FROM cases_records")
        .fetch_all(&pool)
        .await
        .expect("record bodies");
    pool.close().await;
    assert!(!bodies.is_empty(), "no records stored");
    let found = bodies
        .iter()
        .filter(|b| verkosto_keys::is_sealed(b))
        .count();
    let want = if sealed { bodies.len() } else { 0 };
    assert_eq!(
        found,
        want,
        "{found} of {} record bodies sealed, expected {want}",
        bodies.len()
    );
}

/// A dev token from `base`.
pub async fn token(http: &reqwest::Client, base: &str, user: &str) -> String {
    let r: Value = http
        .post(format!("{base}/api/v1/dev/token"))
        .json(&json!({ "user": user }))
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token JSON");
    r["token"].as_str().expect("token").to_string()
}

/// POSTs JSON and insists on `want`; returns the body.
pub async fn post_ok(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: &Value,
    want: u16,
) -> Value {
    let r = http
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("request");
    let (status, body) = verkosto_e2e::answer(r).await.expect("answer");
    assert_eq!(status, want, "POST {url}: {body}");
    body
}

/// A case opened by fiona (assistance-system) with health-hus (hanna) and
/// police-helsinki (liisa) in its network; returns its id. `cases` is the
/// base URL of a process serving the cases API.
pub async fn case_with_network(http: &reqwest::Client, cases: &str, name: &str) -> String {
    let fiona = token(http, cases, "fiona").await;
    let case = post_ok(
        http,
        &format!("{cases}/api/v1/cases"),
        &fiona,
        &json!({ "pseudonym": name, "languages": ["fi"] }),
        201,
    )
    .await;
    let id = case["id"].as_str().expect("case id").to_string();
    for (agency, user) in [("health-hus", "hanna"), ("police-helsinki", "liisa")] {
        post_ok(
            http,
            &format!("{cases}/api/v1/cases/{id}/members"),
            &fiona,
            &json!({ "agency": agency, "purpose": "support" }),
            201,
        )
        .await;
        let member = token(http, cases, user).await;
        post_ok(
            http,
            &format!("{cases}/api/v1/cases/{id}/invitations/accept"),
            &member,
            &json!({}),
            200,
        )
        .await;
    }
    id
}

/// Writes `target/bench/<name>.json`, which scripts/bench.sh gathers.
pub fn write_figures(name: &str, figures: &Value) {
    let dir = verkosto_testkit::workspace_root().join("target/bench");
    std::fs::create_dir_all(&dir).expect("target/bench");
    std::fs::write(
        dir.join(format!("{name}.json")),
        serde_json::to_string_pretty(figures).expect("JSON"),
    )
    .expect("write figures");
}

/// "yes" or "**no**", for a target column.
pub fn met(ok: bool) -> &'static str {
    if ok {
        "yes"
    } else {
        "**no**"
    }
}

/// Resident memory of a process in MiB (VmRSS).
pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
