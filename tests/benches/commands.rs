//! Command throughput through the HTTP API: recording a client record on
//! a case (`POST /api/v1/cases/{id}/records`: authenticated, membership
//! and role checked, one event and its read-model row in one commit),
//! beside raw single-row INSERT commits into the same kind of database at
//! the same concurrency, in the same run. Embedded: the release binary
//! on SQLite (raw: an SQLite file with the store's settings). Distributed:
//! relay, cases and consent as separate processes on PostgreSQL and NATS
//! (raw: a PostgreSQL database of the same cluster); there it also shows
//! whether the relay's publishing keeps up with the appends. At 32
//! clients an extra run is profiled (the process serving the POSTs).
//! Then sealing's cost, 1 − sealed ÷ unsealed commands/s: the same
//! commands on fresh servers sealed and started with `--bench-unsealed`
//! (bench builds only: the body stored in the clear, no key looked up),
//! in the order of [`load::SEALING_ORDER`].
//!
//! ```text
//! cargo bench -p verkosto-e2e --bench e2e -- commands          # scripts/bench.sh runs it
//! VERKOSTO_BENCH_QUICK=1 cargo bench -p verkosto-e2e --bench e2e -- commands
//! ```
//! Prints markdown; writes `target/bench/commands.json`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use verkosto_e2e::{Split, NO_RATE_LIMITS};
use verkosto_eventlog::{Db, EventLog};

use crate::load;

const CLIENTS: [usize; 2] = [8, 32];
/// Commands ÷ raw commits, the issue's target.
const TARGET_RATIO: f64 = 0.5;
/// The relay's publish rate ÷ the append rate over the same window.
const TARGET_RELAY: f64 = 0.95;

/// Where the commands go and what else the mode has to offer.
struct Target {
    cases: String,
    case_id: String,
    fiona: String,
    /// The process serving the commands, for the profile.
    pid: u32,
    /// What that process is, for the profile.
    server: &'static str,
    /// The log and the stream, to follow the relay (distributed).
    relay: Option<(EventLog, async_nats::jetstream::stream::Stream)>,
    /// The store's database, to check how the bodies were stored.
    database_url: String,
}

fn requests() -> usize {
    load::size(3000, 60)
}

/// Raw single-row INSERT commits at `clients` concurrency on `db`.
async fn raw_inserts(db: &Db, clients: usize) -> load::Report {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS raw_inserts (id TEXT NOT NULL, case_id TEXT NOT NULL, body TEXT NOT NULL)",
    )
    .execute(db.writer())
    .await
    .unwrap();
    let db = db.clone();
    load::closed(clients, requests(), move |n| {
        let db = db.clone();
        async move {
            sqlx::query("INSERT INTO raw_inserts (id, case_id, body) VALUES ($1, $2, $3)")
                .bind(format!("raw-{clients}-{n}"))
                .bind("case")
                .bind("a note of a typical size, with some words in it")
                .execute(db.writer())
                .await
                .is_ok()
        }
    })
    .await
}

async fn commands(t: &Target, clients: usize) -> load::Report {
    let http = load::http();
    let url = format!("{}/api/v1/cases/{}/records", t.cases, t.case_id);
    let fiona = t.fiona.clone();
    load::closed(clients, requests(), move |n| {
        let (http, url, fiona) = (http.clone(), url.clone(), fiona.clone());
        async move {
            let body = json!({ "category": "health", "body": format!("note {n}: a note of a typical size, with some words in it") });
            match http.post(&url).bearer_auth(&fiona).json(&body).send().await {
                Ok(r) => r.status() == 201,
                Err(_) => false,
            }
        }
    })
    .await
}

/// Events on the stream (its last sequence).
async fn stream_sequence(stream: &async_nats::jetstream::stream::Stream) -> u64 {
    stream.get_info().await.unwrap().state.last_sequence
}

/// Runs the commands at each concurrency beside the raw baseline; table rows.
async fn measure(
    mode: &str,
    t: &mut Target,
    raw_db: &Db,
    figures: &mut Vec<Value>,
    profiles: &mut load::profile::Profiles,
) -> (Vec<String>, Vec<load::Report>) {
    let mut rows = Vec::new();
    let mut runs = Vec::new();
    for clients in CLIENTS {
        let raw = raw_inserts(raw_db, clients).await;
        let before = match &t.relay {
            Some((log, stream)) => {
                Some((log.count().await.unwrap(), stream_sequence(stream).await))
            }
            None => None,
        };
        let started = Instant::now();
        let cmd = commands(t, clients).await;
        let ran = started.elapsed();
        assert_eq!(cmd.errors, 0, "{mode}: commands failed");
        let ratio = cmd.throughput() / raw.throughput();
        rows.push(format!(
            "| {mode} | {clients} | {:.0} | {:.1} / {:.1} | {:.0} | {:.2} | ≥ {TARGET_RATIO} | {} |",
            cmd.throughput(),
            cmd.ms(0.5),
            cmd.ms(0.99),
            raw.throughput(),
            ratio,
            load::met(ratio >= TARGET_RATIO)
        ));
        let mut figure = json!({
            "mode": mode, "clients": clients,
            "commands": cmd.json(), "raw_inserts": raw.json(), "ratio": ratio,
            "target_ratio": TARGET_RATIO, "met": ratio >= TARGET_RATIO,
        });
        if let (Some((log, stream)), Some((count0, seq0))) = (&t.relay, before) {
            // Every event the run appended, and when the stream had them all.
            let appended = (log.count().await.unwrap() - count0) as u64;
            let deadline = Instant::now() + Duration::from_secs(120);
            while stream_sequence(stream).await < seq0 + appended {
                assert!(Instant::now() < deadline, "the relay fell behind for good");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let published_in = started.elapsed();
            let append_rate = appended as f64 / ran.as_secs_f64();
            let publish_rate = appended as f64 / published_in.as_secs_f64();
            let relay_ratio = publish_rate / append_rate;
            figure["relay"] = json!({
                "events": appended, "append_per_second": append_rate,
                "publish_per_second": publish_rate, "ratio": relay_ratio,
                "drained_after_run_ms": (published_in - ran).as_secs_f64() * 1000.0,
            });
            rows.push(format!(
                "| {mode}: relay publishing (events/s until all {appended} were on the stream) | {clients} | {publish_rate:.0} | drained {:.0} ms after the run | {append_rate:.0} appended/s | {relay_ratio:.2} | ≥ {TARGET_RELAY} | {} |",
                (published_in - ran).as_secs_f64() * 1000.0,
                load::met(relay_ratio >= TARGET_RELAY)
            ));
        }
        figures.push(figure);
        runs.push(cmd);
    }
    // The most clients once more, profiled; the figures above are not.
    let clients = CLIENTS[CLIENTS.len() - 1];
    let label = format!("{mode}, {clients} clients");
    profiles
        .run(&label, t.server, t.pid, commands(t, clients))
        .await;
    load::assert_bodies_sealed(&t.database_url, true).await;
    (rows, runs)
}

/// The commands at each concurrency on `t`, a server that seals or not
/// (`unsealed`), added to `side`'s pooled runs.
async fn sealing_runs(t: &Target, unsealed: bool, side: &mut Vec<load::Report>) {
    for (i, clients) in CLIENTS.into_iter().enumerate() {
        let run = commands(t, clients).await;
        assert_eq!(run.errors, 0, "commands failed (unsealed: {unsealed})");
        match side.get_mut(i) {
            Some(pooled) => pooled.pool(&run),
            None => side.push(run),
        }
    }
    load::assert_bodies_sealed(&t.database_url, !unsealed).await;
}

/// Sealing's table rows of `mode`: each concurrency sealed and not.
fn sealing_rows(
    mode: &str,
    sealed: &[load::Report],
    compared: Option<[Vec<load::Report>; 2]>,
    figures: &mut [Value],
) -> Vec<String> {
    let Some([sealed, unsealed]) = compared else {
        return vec![format!(
            "| {mode} | {} | {} | {} | – | – | – | – | – |",
            CLIENTS.map(|c| c.to_string()).join(", "),
            sealed
                .iter()
                .map(|r| format!("{:.0}", r.throughput()))
                .collect::<Vec<_>>()
                .join(", "),
            load::NO_UNSEALED
        )];
    };
    let mut rows = Vec::new();
    for ((clients, on), off) in CLIENTS.into_iter().zip(&sealed).zip(&unsealed) {
        let (cost, cells) = load::sealing_cost_cells(on.throughput(), off.throughput());
        rows.push(format!(
            "| {mode} | {clients} | {:.0} | {:.0} | {:.1} / {:.1} | {:.1} / {:.1} | {cells} |",
            on.throughput(),
            off.throughput(),
            on.ms(0.5),
            on.ms(0.99),
            off.ms(0.5),
            off.ms(0.99),
        ));
        if let Some(figure) = figures
            .iter_mut()
            .find(|f| f["mode"] == mode && f["clients"] == clients)
        {
            figure["sealing_sealed"] = on.json();
            figure["unsealed"] = off.json();
            figure["sealing_cost"] = json!(cost);
            figure["sealing_target_cost"] = json!(load::TARGET_SEALING_COST);
        }
    }
    rows
}

/// The embedded server in `dir` (sealing off with `unsealed`), its case set up.
async fn embedded_target(
    dir: &std::path::Path,
    unsealed: bool,
) -> (verkosto_testkit::ChildProcess, Target) {
    let env: &[(&str, &str)] = if unsealed {
        &[("VERKOSTO_BENCH_UNSEALED", "true")]
    } else {
        &[]
    };
    let (child, base) = load::spawn_embedded(dir, env).await;
    let http = load::http();
    let t = Target {
        case_id: load::case_with_network(&http, &base, "CMD-E").await,
        fiona: load::token(&http, &base, "fiona").await,
        cases: base,
        pid: child.pid(),
        server: "the `verkosto` process (every service, SQLite)",
        relay: None,
        database_url: format!("sqlite://{}", dir.join("verkosto.db").display()),
    };
    (child, t)
}

async fn embedded(
    figures: &mut Vec<Value>,
    profiles: &mut load::profile::Profiles,
    sealing: &mut Vec<String>,
) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut t) = embedded_target(dir.path(), false).await;
    // The baseline: an SQLite file opened the way the store opens its own.
    let raw_dir = tempfile::tempdir().unwrap();
    let raw = Db::connect_with(
        &format!("sqlite://{}", raw_dir.path().join("raw.db").display()),
        32,
    )
    .await
    .unwrap();
    let (rows, sealed) = measure("embedded", &mut t, &raw, figures, profiles).await;
    child.terminate().await.unwrap();
    let compared = if load::serve_has_flag(load::UNSEALED_FLAG) {
        let mut sides: [Vec<load::Report>; 2] = Default::default();
        for unsealed in load::SEALING_ORDER {
            let dir = tempfile::tempdir().unwrap();
            let (mut child, t) = embedded_target(dir.path(), unsealed).await;
            sealing_runs(&t, unsealed, &mut sides[usize::from(unsealed)]).await;
            child.terminate().await.unwrap();
        }
        Some(sides)
    } else {
        None
    };
    sealing.extend(sealing_rows("embedded", &sealed, compared, figures));
    rows
}

/// Relay, cases and consent as processes (sealing off with `unsealed`),
/// the case set up.
async fn distributed_target(unsealed: bool) -> (Split, Target) {
    let mut flags = NO_RATE_LIMITS.to_vec();
    if unsealed {
        flags.push(load::UNSEALED_FLAG);
    }
    let split = Split::start_with(&["relay", "cases", "consent"], &flags)
        .await
        .unwrap();
    let http = load::http();
    let cases = split.base("cases").to_string();
    let js = verkosto_bus::connect(&split.nats.url(), &verkosto_e2e::nats_access("operator"))
        .await
        .unwrap();
    let stream = js.get_stream(verkosto_bus::STREAM_NAME).await.unwrap();
    let t = Target {
        case_id: load::case_with_network(&http, &cases, "CMD-D").await,
        fiona: load::token(&http, &cases, "fiona").await,
        cases,
        pid: load::profile::child_with_args(&["--target", "cases"]).unwrap_or(0),
        server: "the `cases` process (PostgreSQL)",
        relay: Some((
            EventLog::connect(&split.database_url).await.unwrap(),
            stream,
        )),
        database_url: split.database_url.clone(),
    };
    (split, t)
}

async fn distributed(
    figures: &mut Vec<Value>,
    profiles: &mut load::profile::Profiles,
    sealing: &mut Vec<String>,
) -> Vec<String> {
    let (split, mut t) = distributed_target(false).await;
    let raw_url = verkosto_testkit::PgServer::shared()
        .await
        .fresh_database()
        .await
        .unwrap();
    let raw = Db::connect_with(&raw_url, 32).await.unwrap();
    let (rows, sealed) = measure("distributed", &mut t, &raw, figures, profiles).await;
    split.stop().await;
    let compared = if load::serve_has_flag(load::UNSEALED_FLAG) {
        let mut sides: [Vec<load::Report>; 2] = Default::default();
        for unsealed in load::SEALING_ORDER {
            let (split, t) = distributed_target(unsealed).await;
            sealing_runs(&t, unsealed, &mut sides[usize::from(unsealed)]).await;
            split.stop().await;
        }
        Some(sides)
    } else {
        None
    };
    sealing.extend(sealing_rows("distributed", &sealed, compared, figures));
    rows
}

pub async fn main() {
    let mut figures = Vec::new();
    let mut profiles = load::profile::Profiles::new();
    let mut sealing = Vec::new();
    let mut rows = embedded(&mut figures, &mut profiles, &mut sealing).await;
    rows.extend(distributed(&mut figures, &mut profiles, &mut sealing).await);
    println!("| mode | clients | commands/s | p50 / p99 ms | raw INSERT commits/s | ratio | target | met |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for row in rows {
        println!("{row}");
    }
    println!();
    println!(
        "{} commands per run, each a `POST /api/v1/cases/{{id}}/records` with a bearer token; \
         raw: one `INSERT` of a row of the same size per commit, same concurrency, same database kind.",
        requests()
    );
    println!();
    println!(
        "Sealing on and off: the same commands (each body sealed under the case's key before it \
         is stored) on fresh servers of the same mode, sealed and started with `--bench-unsealed` \
         (bench builds only: bodies stored in the clear, no key looked up), in the order sealed, \
         unsealed, unsealed, sealed, so that the machine's drift weighs on both; each side's two \
         runs pooled. Cost: 1 − sealed ÷ unsealed commands/s."
    );
    println!();
    println!("| mode | clients | sealed commands/s | unsealed commands/s | sealed p50 / p99 ms | unsealed p50 / p99 ms | sealing cost | target | met |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for row in sealing {
        println!("{row}");
    }
    println!();
    profiles.print();
    load::write_figures("commands", &json!({ "runs": figures }));
}
