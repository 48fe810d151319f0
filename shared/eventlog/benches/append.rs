//! Write throughput of the event log beside the raw limit, measured in the
//! same run on the same database: durable single-row INSERT commits (and
//! ten-row transactions) at the same concurrency. Both backends; 1, 8 and
//! 32 writers. On PostgreSQL it also counts commits per WAL flush, which
//! shows group commit at work. Then what sealing costs: the same appends of
//! an event with client text, sealed under its case's key and in the clear.
//!
//! ```text
//! cargo bench -p verkosto-eventlog --bench append        # scripts/bench.sh runs it
//! VERKOSTO_BENCH_QUICK=1 cargo bench -p verkosto-eventlog --bench append
//! ```
//! Prints markdown; writes `target/bench/append.json` and
//! `target/bench/append_sealing_cpu.json`.

use std::time::Instant;

use serde_json::{json, Value};
use verkosto_eventlog::{
    Actor, CommandMeta, Db, DbKind, EventLog, ExpectedVersion, NewEvent, Sealing,
};
use verkosto_keys::{FileKeys, KeyStore};

/// What sealing may cost at most: 1 − sealed ÷ unsealed appends/s.
const TARGET_SEALING_COST: f64 = 0.10;

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

/// An event with client text: its payload tagged with its type, as a
/// domain event's is, so that `text` can be sealed.
fn note(i: usize) -> NewEvent {
    NewEvent {
        event_type: "Noted".into(),
        schema_version: 1,
        payload: json!({ "Noted": { "i": i, "text": "a note of a typical size, with some words in it" } }),
        sealing: None,
    }
}

/// Appends/s of the same one-event appends with the text sealed and in
/// the clear (sealed, unsealed), on streams of their own. A sealed append
/// looks its case's key up, as `encode_events` does for each command; the
/// keys exist beforehand, as a case's does before its records. In eight
/// short rounds, ordered unsealed, sealed, sealed, unsealed and so on, so
/// that a machine (or a disk shared with other work) drifting slower or
/// faster weighs on both alike.
async fn sealing(log: &EventLog, writers: usize, per_writer: usize) -> (f64, f64) {
    let case = move |w: usize| format!("case-{writers}-{w}");
    for w in 0..writers {
        log.case_key(&case(w)).await.unwrap();
    }
    const ROUNDS: usize = 8;
    let per_round = (per_writer / ROUNDS).max(5);
    // Seconds spent by each (unsealed, sealed).
    let mut spent = [0.0f64; 2];
    for round in 0..ROUNDS {
        let order = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for sealed in order {
            let l = log.clone();
            let rate = run(writers, per_round, move |w, i| {
                let l = l.clone();
                async move {
                    let mut event = note(i);
                    if sealed {
                        let key = l.case_key(&case(w)).await.unwrap();
                        event.sealing = Some(Sealing {
                            key,
                            paths: &["text"],
                        });
                    }
                    let meta = CommandMeta::new(Actor::system());
                    l.append(
                        if sealed { "sealed" } else { "unsealed" },
                        &format!("{writers}-{w}"),
                        ExpectedVersion::Exact((round * per_round + i) as i64),
                        vec![event],
                        &meta,
                        None,
                    )
                    .await
                    .unwrap();
                }
            })
            .await;
            spent[sealed as usize] += (writers * per_round) as f64 / rate;
        }
    }
    let appends = (ROUNDS * writers * per_round) as f64;
    (appends / spent[1], appends / spent[0])
}

/// Sealing's CPU time per event apart from any I/O, on one thread: what
/// an append does to a note's payload before its INSERT, with the text
/// sealed (the key from the key store's cache, `seal_paths`, the payload
/// serialized) and in the clear (serialized only); µs per event of each.
async fn seal_cpu(log: &EventLog) -> (f64, f64) {
    let n = if quick() { 1_000 } else { 20_000 };
    log.case_key("case-cpu").await.unwrap();
    let event_id = uuid::Uuid::now_v7().to_string();
    let mut micros = [0.0f64; 2];
    for sealed in [false, true] {
        let start = Instant::now();
        for i in 0..n {
            let mut payload = note(i).payload;
            if sealed {
                let key = log.case_key("case-cpu").await.unwrap();
                let fields = payload.get_mut("Noted").unwrap();
                verkosto_keys::seal_paths(fields, &["text"], &key, &event_id).unwrap();
            }
            std::hint::black_box(serde_json::to_string(&payload).unwrap());
        }
        micros[sealed as usize] = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    }
    (micros[1], micros[0])
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

/// The store's key store: a SQLite file beside it, or its PostgreSQL
/// database (the `verkosto_keys` schema), as the binary keeps them.
async fn key_store(url: &str, dir: &std::path::Path, n: usize) -> KeyStore {
    let keys_url = if url.starts_with("sqlite:") {
        format!("sqlite://{}", dir.join(format!("keys-{n}.db")).display())
    } else {
        url.to_string()
    };
    KeyStore::open(&keys_url, std::sync::Arc::new(FileKeys::random()))
        .await
        .unwrap()
}

async fn backend(name: &str, rows: &mut Vec<Value>, sealing_rows: &mut Vec<String>) {
    let total = if quick() { 400 } else { 4000 };
    let dir = tempfile::tempdir().unwrap();
    for writers in [1usize, 8, 32] {
        let per_writer = (total / writers).max(10);
        let url = fresh(name, dir.path(), writers).await;
        let db = Db::connect_with(&url, 40).await.unwrap();
        let log = EventLog::with_keys(db, key_store(&url, dir.path(), writers).await);
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
        let (sealed, unsealed) = sealing(&log, writers, per_writer).await;
        let cost = 1.0 - sealed / unsealed;
        log.db().close().await;
        if let Some(keys) = log.keys() {
            keys.close().await;
        }

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
        sealing_rows.push(format!(
            "| {name} | {writers} | {sealed:.0} | {unsealed:.0} | {:.1} % | ≤ {:.0} % | {} |",
            100.0 * cost,
            100.0 * TARGET_SEALING_COST,
            if cost <= TARGET_SEALING_COST {
                "yes"
            } else {
                "**no**"
            }
        ));
        rows.push(json!({
            "backend": name, "writers": writers, "append_per_s": append, "raw_insert_per_s": raw,
            "ratio": append / raw, "append_after_known_head_per_s": known, "known_head_ratio": known / raw, "commits_per_wal_flush": per_flush,
            "ten_event_batches": batch.map(|(raw10, append10)| json!({ "append_events_per_s": append10, "raw_rows_per_s": raw10, "ratio": append10 / raw10 })),
            "sealing": { "sealed_per_s": sealed, "unsealed_per_s": unsealed, "cost": cost,
                         "target_cost": TARGET_SEALING_COST, "met": cost <= TARGET_SEALING_COST },
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
    let mut sealing_rows = Vec::new();
    backend("sqlite", &mut rows, &mut sealing_rows).await;
    backend("postgres", &mut rows, &mut sealing_rows).await;
    let dir = tempfile::tempdir().unwrap();
    let url = fresh("sqlite", dir.path(), 0).await;
    let log = EventLog::with_keys(
        Db::connect(&url).await.unwrap(),
        key_store(&url, dir.path(), 0).await,
    );
    let (cpu_sealed, cpu_clear) = seal_cpu(&log).await;
    println!();
    println!(
        "Sealing on and off, same store, same run: one-event appends of a note whose text \
         (48 characters) is sealed under its case's key (XChaCha20-Poly1305; the key looked up \
         per append, from the key store's cache) beside the same appends in the clear, in \
         eight alternating rounds. Cost: 1 − sealed ÷ unsealed."
    );
    println!();
    println!(
        "| backend | writers | sealed append/s | unsealed append/s | sealing cost | target | met |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for row in sealing_rows {
        println!("{row}");
    }
    println!();
    println!(
        "Sealing's own CPU time, without I/O, one thread: {cpu_sealed:.1} µs per event sealed \
         (the key from the key store's cache, `seal_paths`, the payload serialized) beside \
         {cpu_clear:.1} µs in the clear (serialized only), {:.1} µs more per sealed string.",
        cpu_sealed - cpu_clear
    );
    let out = verkosto_testkit::workspace_root().join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("append.json"),
        serde_json::to_string_pretty(&rows).unwrap(),
    )
    .unwrap();
    std::fs::write(
        out.join("append_sealing_cpu.json"),
        json!({ "micros_per_event": { "sealed": cpu_sealed, "clear": cpu_clear } }).to_string(),
    )
    .unwrap();
}
