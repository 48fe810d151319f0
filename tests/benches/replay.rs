//! Replay and footprint.
//!
//! Replay: a log of 1,000,000 events (100,000 cases, each the ten events a
//! real case starts with: opened, two agencies invited and accepted, two
//! consent grants, three records), then `verkosto rebuild` of every
//! projection the embedded server runs, all of them from one read of the
//! log (with VERKOSTO_BENCH_REPLAY_EACH=1 also each one alone, which
//! doubles the run; the distributed targets' `guard-<target>` feeds are more
//! copies of `guard-all`'s code) beside a raw ordered
//! scan of the same table (`SELECT … FROM events ORDER BY position`, every
//! column decoded). PostgreSQL and SQLite.
//!
//! Footprint: the embedded server (the `verkosto` binary, `serve`) over the
//! SQLite store just rebuilt: time from start to `/readyz` answering 200,
//! and resident memory (VmRSS) after start and after a round of reads.
//!
//! The events are copies of the ones a real run through the HTTP API
//! wrote for one case (renamed per copy), bulk-inserted: the figure is the
//! replay, not the fill. Their hashes are the template's, so `audit
//! verify` would flag the copies; replay does not check them.
//!
//! ```text
//! cargo bench -p verkosto-e2e --bench e2e -- replay            # scripts/bench.sh runs it
//! VERKOSTO_BENCH_QUICK=1 cargo bench -p verkosto-e2e --bench e2e -- replay
//! ```
//! Prints markdown; writes `target/bench/replay.json`.

use std::time::{Duration, Instant};

use futures::TryStreamExt;
use serde_json::{json, Value};
use sqlx::Row;
use verkosto_e2e::{Mode, Verkosto};
use verkosto_eventlog::{DbKind, EventLog, RecordedEvent};

use crate::load;

const TARGET_RATE: f64 = 100_000.0;
const TARGET_RATIO: f64 = 0.25;
const TARGET_RSS_MIB: f64 = 200.0;

fn cases() -> usize {
    // VERKOSTO_BENCH_REPLAY_CASES: another size, to try a change quickly.
    std::env::var("VERKOSTO_BENCH_REPLAY_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| load::size(100_000, 200))
}

/// A `cases_records` row: id, category, body, author agency and user, time.
type RecordRow = (String, String, String, String, String, String);

/// One case's worth of events as the API wrote them, the directory's
/// events before them, and the case's record rows.
struct Template {
    prefix: Vec<RecordedEvent>,
    case: Vec<RecordedEvent>,
    /// Ids to rename in each copy: the case's and its records'.
    ids: Vec<String>,
    records: Vec<RecordRow>,
}

async fn template() -> Template {
    let v = Verkosto::start_demo(Mode::Embedded).await.unwrap();
    let case = v
        .case_with_network(json!({ "pseudonym": "TEMPLATE", "languages": ["fi"] }))
        .await;
    for categories in [json!(["health", "social"]), json!(["legal"])] {
        let (status, body) = v
            .post(
                &case.fiona,
                &format!("/api/v1/cases/{}/consent/grants", case.id),
                &json!({ "recipient": "health-hus", "categories": categories, "purpose": "care",
                         "obtained": { "method": "written", "language": "fi" } }),
            )
            .await
            .unwrap();
        assert_eq!(status, 201, "{body}");
    }
    for category in ["health", "legal", "identity"] {
        let (status, body) = v
            .post(
                &case.fiona,
                &format!("/api/v1/cases/{}/records", case.id),
                &json!({ "category": category, "body": "a note of a typical size about the client's situation" }),
            )
            .await
            .unwrap();
        assert_eq!(status, 201, "{body}");
    }
    let log = v.log().await.unwrap();
    let events = verkosto_e2e::read_everything(&log).await.unwrap();
    let records = sqlx::query(
        "SELECT id, category, body, author_agency, author_user, recorded_at FROM cases_records WHERE case_id = $1",
    )
    .bind(&case.id)
    .fetch_all(log.db().reader())
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
    .collect();
    v.stop().await;
    let (case_events, prefix): (Vec<_>, Vec<_>) = events
        .into_iter()
        .partition(|e| e.stream_id == case.id || e.payload_text.contains(&case.id));
    let mut ids = vec![case.id.clone()];
    for e in &case_events {
        if !ids.contains(&e.stream_id) {
            ids.push(e.stream_id.clone());
        }
    }
    Template {
        prefix,
        case: case_events,
        ids,
        records,
    }
}

/// `id` made unique to copy `n` keeps the same length (ids may be
/// checked): its last eight characters become `n` in hex. The prefix it keeps.
fn id_prefix(id: &str) -> &str {
    &id[..id.len() - 8]
}

/// What copy `n` puts after the prefix.
fn suffix(n: usize) -> String {
    format!("{n:08x}")
}

fn rename(id: &str, n: usize) -> String {
    format!("{}{}", id_prefix(id), suffix(n))
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Runs `sql` once per row of `rows`, in one transaction.
async fn insert_each<'q, T>(
    log: &EventLog,
    sql: &'q str,
    rows: &'q [T],
    bind: impl Fn(AnyQuery<'q>, &'q T) -> AnyQuery<'q>,
) {
    let mut tx = log.db().begin().await.unwrap();
    for r in rows {
        bind(sqlx::query(sql), r).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

/// The template's directory events once, then `cases()` renamed copies of
/// its case, and each copy's record rows (the cases service writes those
/// with the command, not from the log). The copies are made by the
/// database itself (`INSERT … SELECT` over a staging table of the template
/// and one of the copies' suffixes): binding a million rows' parameters
/// took longer than the replay it prepares.
async fn fill(log: &EventLog, t: &Template) -> usize {
    verkosto_cases::migrate(log.db()).await.unwrap();
    const COLUMNS: &str = "stream_type, stream_id, version, event_id, event_type, schema_version, \
        occurred_at, actor_user, actor_agency, correlation_id, causation_id, payload, prev_hash, hash";
    let insert_event = format!(
        "INSERT INTO events ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    );
    insert_each(log, &insert_event, &t.prefix, |q, e| {
        q.bind(e.stream_type.clone())
            .bind(e.stream_id.clone())
            .bind(e.version)
            .bind(e.event_id.clone())
            .bind(e.event_type.clone())
            .bind(e.schema_version)
            .bind(e.occurred_at.clone())
            .bind(e.actor.user.clone())
            .bind(e.actor.agency.clone())
            .bind(e.correlation_id.clone())
            .bind(e.causation_id.clone())
            .bind(e.payload_text.clone())
            .bind(e.prev_hash.clone())
            .bind(e.hash.clone())
    })
    .await;

    for ddl in [
        "CREATE TABLE bench_template (k BIGINT, stream_type TEXT, stream_id TEXT, renamed BIGINT, \
         version BIGINT, correlation_id TEXT, schema_version BIGINT, event_type TEXT, occurred_at TEXT, \
         actor_user TEXT, actor_agency TEXT, causation_id TEXT, payload TEXT, prev_hash TEXT, hash TEXT)",
        "CREATE TABLE bench_records (k BIGINT, id TEXT, category TEXT, body TEXT, author_agency TEXT, \
         author_user TEXT, recorded_at TEXT)",
        "CREATE TABLE bench_copies (n BIGINT PRIMARY KEY, suffix TEXT)",
    ] {
        sqlx::query(ddl).execute(log.db().writer()).await.unwrap();
    }
    // Each template event, with its index in the case, and its stream id
    // cut to the prefix when each copy renames it.
    let staging: Vec<(usize, &RecordedEvent)> = t.case.iter().enumerate().collect();
    insert_each(
        log,
        "INSERT INTO bench_template VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        &staging,
        |q, (k, e)| {
            let renamed = t.ids.contains(&e.stream_id);
            let stream_id = if renamed {
                id_prefix(&e.stream_id)
            } else {
                &e.stream_id
            };
            q.bind(*k as i64)
                .bind(e.stream_type.clone())
                .bind(stream_id.to_string())
                .bind(i64::from(renamed))
                .bind(e.version)
                .bind(e.correlation_id.clone())
                .bind(e.schema_version)
                .bind(e.event_type.clone())
                .bind(e.occurred_at.clone())
                .bind(e.actor.user.clone())
                .bind(e.actor.agency.clone())
                .bind(e.causation_id.clone())
                .bind(e.payload_text.clone())
                .bind(e.prev_hash.clone())
                .bind(e.hash.clone())
        },
    )
    .await;
    let records: Vec<(usize, &RecordRow)> = t.records.iter().enumerate().collect();
    insert_each(
        log,
        "INSERT INTO bench_records VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &records,
        |q, (k, r)| {
            q.bind(*k as i64)
                .bind(id_prefix(&r.0).to_string())
                .bind(r.1.clone())
                .bind(r.2.clone())
                .bind(r.3.clone())
                .bind(r.4.clone())
                .bind(r.5.clone())
        },
    )
    .await;
    let copies: Vec<usize> = (0..cases()).collect();
    for chunk in copies.chunks(250) {
        let mut sql = String::from("INSERT INTO bench_copies (n, suffix) VALUES ");
        for (i, _) in chunk.iter().enumerate() {
            sql.push_str(&format!(
                "{}(${}, ${})",
                if i > 0 { ", " } else { "" },
                2 * i + 1,
                2 * i + 2
            ));
        }
        let mut q = sqlx::query(&sql);
        for n in chunk {
            q = q.bind(*n as i64).bind(suffix(*n));
        }
        q.execute(log.db().writer()).await.unwrap();
    }

    // Each copy's payloads name its own ids: every id of the template,
    // replaced in turn, as the API would have written them.
    let mut payload = "t.payload".to_string();
    for i in 0..t.ids.len() {
        payload = format!(
            "replace({payload}, ${}, ${} || c.suffix)",
            2 * i + 3,
            2 * i + 4
        );
    }
    let copy_events = format!(
        "INSERT INTO events ({COLUMNS}) \
         SELECT t.stream_type, CASE WHEN t.renamed = 1 THEN t.stream_id || c.suffix ELSE t.stream_id END, \
                t.version, 'bench-' || CAST(c.n AS TEXT) || '-' || CAST(t.k AS TEXT), t.event_type, \
                t.schema_version, t.occurred_at, t.actor_user, t.actor_agency, \
                t.correlation_id, t.causation_id, {payload}, t.prev_hash, t.hash \
         FROM bench_copies c CROSS JOIN bench_template t \
         WHERE c.n >= $1 AND c.n < $2 ORDER BY c.n, t.k"
    );
    let copy_records = "INSERT INTO cases_records (id, case_id, position, category, body, author_agency, author_user, recorded_at) \
         SELECT r.id || c.suffix, $3 || c.suffix, c.n * 10 + r.k, r.category, r.body, r.author_agency, r.author_user, r.recorded_at \
         FROM bench_copies c CROSS JOIN bench_records r WHERE c.n >= $1 AND c.n < $2";
    let per_statement = 20_000;
    let mut n = 0;
    while n < cases() {
        let end = (n + per_statement).min(cases());
        let mut tx = log.db().begin().await.unwrap();
        let mut q = sqlx::query(&copy_events).bind(n as i64).bind(end as i64);
        for id in &t.ids {
            q = q.bind(id.clone()).bind(id_prefix(id).to_string());
        }
        q.execute(&mut *tx).await.unwrap();
        sqlx::query(copy_records)
            .bind(n as i64)
            .bind(end as i64)
            .bind(id_prefix(&t.ids[0]).to_string())
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        n = end;
    }
    for table in ["bench_template", "bench_records", "bench_copies"] {
        sqlx::query(&format!("DROP TABLE {table}"))
            .execute(log.db().writer())
            .await
            .unwrap();
    }
    // Settled as a log long written is, so that neither the scan nor the
    // replay pays for the fill: PostgreSQL's statistics and visibility map
    // (or autovacuum would do it during the replay), SQLite's WAL copied
    // into the database file (or the replay's first commits would).
    let settle = match log.db().kind() {
        DbKind::Postgres => "VACUUM (ANALYZE)",
        DbKind::Sqlite => "PRAGMA wal_checkpoint(TRUNCATE)",
    };
    sqlx::query(settle)
        .execute(log.db().writer())
        .await
        .unwrap();
    t.prefix.len() + cases() * t.case.len()
}

/// Every event in position order, every column decoded: the floor under
/// any replay. Events per second.
async fn raw_scan(log: &EventLog, events: usize) -> f64 {
    let started = Instant::now();
    let mut rows = sqlx::query(
        "SELECT position, stream_type, stream_id, version, event_id, event_type, schema_version, occurred_at, \
         actor_user, actor_agency, correlation_id, causation_id, payload, prev_hash, hash FROM events ORDER BY position",
    )
    .fetch(log.db().reader());
    let mut n = 0usize;
    let mut bytes = 0usize;
    while let Some(r) = rows.try_next().await.unwrap() {
        let payload: String = r.get(12);
        let stream_id: String = r.get(2);
        let hash: String = r.get(14);
        let position: i64 = r.get(0);
        bytes += payload.len() + stream_id.len() + hash.len() + position as usize % 2;
        n += 1;
    }
    assert_eq!(n, events);
    assert!(bytes > 0);
    n as f64 / started.elapsed().as_secs_f64()
}

/// Every distinct projection: the embedded server's set.
const PROJECTIONS: [&str; 5] = ["directory", "cases", "meetings", "tasks", "guard-all"];

/// Seconds `verkosto rebuild {names}` takes on the store, as it prints
/// them ("cases: rebuilt up to 1:1000123 in 4.2 s").
async fn rebuild(store_args: &[String], names: &[&str]) -> f64 {
    let out = verkosto_testkit::verkosto()
        .arg("rebuild")
        .args(store_args)
        .args(names)
        .env("VERKOSTO_LOG", "warn")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "rebuild failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.split(" in ").nth(1)?.trim_end_matches(" s").parse().ok())
        .unwrap_or_else(|| panic!("no time in {stdout:?}"))
}

/// `verkosto rebuild` of every projection once more, profiled (when perf
/// works here; the measured rebuild was not).
async fn profile_rebuild(
    profiles: &mut load::profile::Profiles,
    backend: &str,
    store_args: &[String],
) {
    let mut child = verkosto_testkit::verkosto()
        .arg("rebuild")
        .args(store_args)
        .args(PROJECTIONS)
        .env("VERKOSTO_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn verkosto rebuild");
    let pid = child.id().unwrap_or(0);
    let label = format!(
        "{backend}, rebuild of all {} projections",
        PROJECTIONS.len()
    );
    let server = "the `verkosto rebuild` process";
    profiles
        .run(&label, server, pid, async {
            let _ = child.wait().await;
        })
        .await;
    // Without perf, `run` did not wait for it.
    assert!(child.wait().await.expect("rebuild").success());
}

async fn replay(
    backend: &str,
    log: &EventLog,
    store_args: Vec<String>,
    t: &Template,
    rows: &mut Vec<String>,
    profiles: &mut load::profile::Profiles,
) -> Value {
    let filled = Instant::now();
    let events = fill(log, t).await;
    let fill_secs = filled.elapsed().as_secs_f64();
    let scan = raw_scan(log, events).await;
    let mut per = Vec::new();
    if std::env::var("VERKOSTO_BENCH_REPLAY_EACH").is_ok_and(|v| v == "1") {
        for name in PROJECTIONS {
            per.push((name, rebuild(&store_args, &[name]).await));
        }
    }
    let total = rebuild(&store_args, &PROJECTIONS).await;
    profile_rebuild(profiles, backend, &store_args).await;
    let all_rate = events as f64 / total.max(0.05);
    rows.push(format!(
        "| {backend} | raw ordered scan (baseline) | {events} | {:.1} | {scan:.0} | 1.00 | — | — |",
        events as f64 / scan
    ));
    let mut projections = serde_json::Map::new();
    for (name, secs) in per {
        // The printed time has one decimal; below 0.1 s the rate is unknown.
        let rate = events as f64 / secs.max(0.05);
        let ratio = rate / scan;
        let ok = rate >= TARGET_RATE && ratio >= TARGET_RATIO;
        rows.push(format!(
            "| {backend} | {name} | {events} | {secs:.1} | {rate:.0} | {ratio:.2} | ≥ 100,000/s and ≥ {TARGET_RATIO} | {} |",
            load::met(ok)
        ));
        projections.insert(
            name.to_string(),
            json!({ "seconds": secs, "events_per_second": rate, "ratio": ratio, "met": ok }),
        );
    }
    let ratio = all_rate / scan;
    let ok = all_rate >= TARGET_RATE && ratio >= TARGET_RATIO;
    rows.push(format!(
        "| {backend} | **all {} projections from one read of the log** (`verkosto rebuild {}`) | {events} | {total:.1} | {all_rate:.0} | {ratio:.2} | ≥ 100,000/s and ≥ {TARGET_RATIO} | {} |",
        PROJECTIONS.len(),
        PROJECTIONS.join(" "),
        load::met(ok)
    ));
    json!({
        "events": events, "cases": cases(), "fill_seconds": fill_secs,
        "raw_scan_events_per_second": scan,
        "rebuild_all_seconds": total, "rebuild_all_events_per_second": all_rate, "ratio": ratio, "met": ok,
        "projections": projections,
    })
}

/// The embedded server over the rebuilt SQLite store in `dir`.
async fn footprint(dir: &std::path::Path, log: &EventLog, t: &Template) -> (Vec<String>, Value) {
    // As a running server leaves it: sealed (seals copied in bulk, as the
    // events were), and the sealer and the reactions consumer (which
    // `rebuild` does not replay: it acts, it keeps no view) at the head.
    sqlx::query("INSERT INTO event_seals (seal_seq, position, event_hash, chain_hash) SELECT position, position, hash, hash FROM events")
        .execute(log.db().writer())
        .await
        .unwrap();
    for name in [verkosto_eventlog::SEALER, verkosto_tasks::reactions::NAME] {
        sqlx::query(
            "INSERT INTO checkpoints (name, tx, position, extra) SELECT $1, tx, position, 0 FROM checkpoints WHERE name = 'cases'",
        )
        .bind(name)
        .execute(log.db().writer())
        .await
        .unwrap();
    }
    log.db().close().await;

    let http = load::http();
    let started = Instant::now();
    let (mut child, base) = load::spawn_embedded(dir, &[]).await;
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            if r.status() == 200 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ready = started.elapsed().as_secs_f64();
    let rss_start = load::rss_mib(child.pid());
    let hanna = load::token(&http, &base, "hanna").await;
    let reads = load::size(5000, 100);
    let (case_id, base2) = (t.ids[0].clone(), base.clone());
    let report = load::closed(8, reads, move |n| {
        let (http, token) = (http.clone(), hanna.clone());
        // Spread over the cases: cold rows and consent records each time.
        let url = format!(
            "{base2}/api/v1/cases/{}/records",
            rename(&case_id, (n * 7919) % cases())
        );
        async move {
            match http.get(&url).bearer_auth(&token).send().await {
                Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                Err(_) => false,
            }
        }
    })
    .await;
    assert_eq!(report.errors, 0, "reads failed");
    let rss_reads = load::rss_mib(child.pid());
    child.terminate().await.unwrap();
    let ok = rss_start < TARGET_RSS_MIB && rss_reads < TARGET_RSS_MIB;
    let rows = vec![
        format!("| start to `/readyz` 200 | {ready:.2} s | — | — |"),
        format!(
            "| resident memory after start | {rss_start:.0} MiB | < {TARGET_RSS_MIB} MiB | {} |",
            load::met(rss_start < TARGET_RSS_MIB)
        ),
        format!(
            "| resident memory after {reads} reads of {} cases' records (p50 {:.2} ms, p99 {:.2} ms) | {rss_reads:.0} MiB | < {TARGET_RSS_MIB} MiB | {} |",
            reads.min(cases()),
            report.ms(0.5),
            report.ms(0.99),
            load::met(rss_reads < TARGET_RSS_MIB)
        ),
    ];
    (
        rows,
        json!({ "ready_seconds": ready, "rss_mib_after_start": rss_start, "rss_mib_after_reads": rss_reads,
                "reads": report.json(), "target_rss_mib": TARGET_RSS_MIB, "met": ok }),
    )
}

pub async fn main() {
    let t = template().await;
    let mut rows = Vec::new();
    let mut profiles = load::profile::Profiles::new();

    let url = verkosto_testkit::PgServer::shared()
        .await
        .fresh_database()
        .await
        .unwrap();
    let log = EventLog::connect(&url).await.unwrap();
    let postgres = replay(
        "PostgreSQL",
        &log,
        vec!["--database-url".into(), url],
        &t,
        &mut rows,
        &mut profiles,
    )
    .await;
    log.db().close().await;

    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::connect(&format!(
        "sqlite://{}",
        dir.path().join("verkosto.db").display()
    ))
    .await
    .unwrap();
    let data_dir = dir.path().display().to_string();
    let sqlite = replay(
        "SQLite",
        &log,
        vec!["--data-dir".into(), data_dir],
        &t,
        &mut rows,
        &mut profiles,
    )
    .await;
    let (footprint_rows, footprint) = footprint(dir.path(), &log, &t).await;

    println!(
        "{} events: {} cases of {} events each (opened, two agencies invited and accepted, two consent grants, \
         three records), after the demo directory's {} events.",
        t.prefix.len() + cases() * t.case.len(),
        cases(),
        t.case.len(),
        t.prefix.len()
    );
    println!();
    println!("| store | replay | events | seconds | events/s | ÷ raw scan | target | met |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in rows {
        println!("{r}");
    }
    println!();
    println!("Footprint of the embedded server (`verkosto serve`, its own process) over the SQLite store above:");
    println!();
    println!("| figure | measured | target | met |");
    println!("| --- | --- | --- | --- |");
    for r in footprint_rows {
        println!("{r}");
    }
    println!();
    profiles.print();
    load::write_figures(
        "replay",
        &json!({ "postgres": postgres, "sqlite": sqlite, "footprint": footprint }),
    );
}
