//! Write throughput of the event log beside the raw limit, measured in the
//! same run on the same database: durable single-row INSERT commits (and
//! ten-row transactions) at the same concurrency. Both backends; 1, 8 and
//! 32 writers. On PostgreSQL it also counts commits per WAL flush, which
//! shows group commit at work.
//!
//! ```text
//! cargo bench -p verkosto-eventlog --bench append        # scripts/bench.sh runs it
//! VERKOSTO_BENCH_QUICK=1 cargo bench -p verkosto-eventlog --bench append
//! ```
//! Prints a markdown table; writes `target/bench/append.json`.

use std::time::Instant;

use serde_json::{json, Value};
use verkosto_eventlog::{Actor, CommandMeta, Db, DbKind, EventLog, ExpectedVersion, NewEvent};

fn quick() -> bool {
    std::env::var("VERKOSTO_BENCH_QUICK").is_ok_and(|v| v == "1")
}

fn event(i: usize) -> NewEvent {
    NewEvent {
        event_type: "Noted".into(),
        schema_version: 1,
        payload: json!({ "i": i, "text": "a note of a typical size, with some words in it" }),
        sealing: None,
    }
}

/// Runs `per_writer` operations on each of `writers` tasks; operations per second.
async fn run<F, Fut>(writers: usize, per_writer: usize, op: F) -> f64
where
    F: Fn(usize, usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let op = op.clone();
            tokio::spawn(async move {
                for i in 0..per_writer {
                    op(w, i).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    (writers * per_writer) as f64 / start.elapsed().as_secs_f64()
}

async fn wal_counters(db: &Db) -> Option<(i64, i64)> {
    if db.kind() != DbKind::Postgres {
        return None;
    }
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(db.writer())
        .await
        .ok()?;
    let commits: i64 = sqlx::query_scalar(
        "SELECT CAST(xact_commit AS BIGINT) FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(db.writer())
    .await
    .ok()?;
    let syncs: i64 = sqlx::query_scalar("SELECT CAST(wal_sync AS BIGINT) FROM pg_stat_wal")
        .fetch_one(db.writer())
        .await
        .ok()?;
    Some((commits, syncs))
}

/// A fresh, empty store for one measurement, so sizes are comparable.
async fn fresh(name: &str, dir: &std::path::Path, n: usize) -> String {
    if name == "sqlite" {
        format!("sqlite://{}", dir.join(format!("bench-{n}.db")).display())
    } else {
        verkosto_testkit::PgServer::shared()
            .await
            .fresh_database()
            .await
            .unwrap()
    }
}

async fn backend(name: &str, rows: &mut Vec<Value>) {
    let total = if quick() { 400 } else { 4000 };
    let dir = tempfile::tempdir().unwrap();
    for writers in [1usize, 8, 32] {
        let per_writer = (total / writers).max(10);
        let url = fresh(name, dir.path(), writers).await;
        let log = EventLog::new(Db::connect_with(&url, 40).await.unwrap());
        sqlx::query("CREATE TABLE IF NOT EXISTS raw_inserts (stream TEXT NOT NULL, n BIGINT NOT NULL, payload TEXT NOT NULL)")
            .execute(log.db().writer())
            .await
            .unwrap();

        let db = log.db().clone();
        let raw = run(writers, per_writer, move |w, i| {
            let db = db.clone();
            async move {
                sqlx::query("INSERT INTO raw_inserts (stream, n, payload) VALUES ($1, $2, $3)")
                    .bind(format!("{w}"))
                    .bind(i as i64)
                    .bind(event(i).payload.to_string())
                    .execute(db.writer())
                    .await
                    .unwrap();
            }
        })
        .await;

        let before = wal_counters(log.db()).await;
        let l = log.clone();
        let append = run(writers, per_writer, move |w, i| {
            let l = l.clone();
            async move {
                let meta = CommandMeta::new(Actor::system());
                l.append(
                    "bench",
                    &format!("{writers}-{w}"),
                    ExpectedVersion::Exact(i as i64),
                    vec![event(i)],
                    &meta,
                    None,
                )
                .await
                .unwrap();
            }
        })
        .await;
        // Backends publish their statistics at most once a second.
        if before.is_some() {
            tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        }
        let after = wal_counters(log.db()).await;

        // The path a command takes: its aggregate just read the stream, so
        // the append goes after the known head, in one statement.
        let l = log.clone();
        let known = run(writers, 1, move |w, _| {
            let l = l.clone();
            async move {
                let mut head = (0i64, verkosto_eventlog::GENESIS.to_string());
                for i in 0..per_writer {
                    let meta = CommandMeta::new(Actor::system());
                    let appended = l
                        .append_after(
                            "known",
                            &format!("{writers}-{w}"),
                            head.clone(),
                            vec![event(i)],
                            &meta,
                            None,
                        )
                        .await
                        .unwrap();
                    head = (appended.version, appended.events[0].hash.clone());
                }
            }
        })
        .await
            * per_writer as f64;
        let per_flush = match (before, after) {
            (Some((c0, s0)), Some((c1, s1))) if s1 > s0 => {
                Some((c1 - c0) as f64 / (s1 - s0) as f64)
            }
            _ => None,
        };

        let batch = if writers == 8 {
            let db = log.db().clone();
            let raw10 = run(writers, per_writer / 10 + 1, move |w, i| {
                let db = db.clone();
                async move {
                    let mut tx = db.begin().await.unwrap();
                    for k in 0..10 {
                        sqlx::query(
                            "INSERT INTO raw_inserts (stream, n, payload) VALUES ($1, $2, $3)",
                        )
                        .bind(format!("b{w}"))
                        .bind((i * 10 + k) as i64)
                        .bind(event(k).payload.to_string())
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    }
                    tx.commit().await.unwrap();
                }
            })
            .await;
            let l = log.clone();
            let append10 = run(writers, per_writer / 10 + 1, move |w, i| {
                let l = l.clone();
                async move {
                    let meta = CommandMeta::new(Actor::system());
                    let events = (0..10).map(event).collect();
                    l.append(
                        "bench10",
                        &format!("{w}"),
                        ExpectedVersion::Exact((i * 10) as i64),
                        events,
                        &meta,
                        None,
                    )
                    .await
                    .unwrap();
                }
            })
            .await;
            Some((raw10 * 10.0, append10 * 10.0))
        } else {
            None
        };
        log.db().close().await;

        println!(
            "| {name} | {writers} | {append:.0} | {known:.0} | {raw:.0} | {:.0}% | {:.0}% | {} |",
            100.0 * append / raw,
            100.0 * known / raw,
            per_flush
                .map(|p| format!("{p:.1}"))
                .unwrap_or_else(|| "–".into())
        );
        if let Some((raw10, append10)) = batch {
            println!(
                "| {name}, 10 events per command (events/s) | {writers} | {append10:.0} | – | {raw10:.0} | {:.0}% | – | – |",
                100.0 * append10 / raw10
            );
        }
        rows.push(json!({
            "backend": name, "writers": writers, "append_per_s": append, "raw_insert_per_s": raw,
            "ratio": append / raw, "append_after_known_head_per_s": known, "known_head_ratio": known / raw, "commits_per_wal_flush": per_flush,
            "ten_event_batches": batch.map(|(raw10, append10)| json!({ "append_events_per_s": append10, "raw_rows_per_s": raw10, "ratio": append10 / raw10 })),
        }));
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    println!(
        "| backend | writers | append/s | append after a known head/s | raw INSERT commits/s | append / raw | known head / raw | commits per WAL flush |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut rows = Vec::new();
    backend("sqlite", &mut rows).await;
    backend("postgres", &mut rows).await;
    let out = verkosto_testkit::workspace_root().join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("append.json"),
        serde_json::to_string_pretty(&rows).unwrap(),
    )
    .unwrap();
}
