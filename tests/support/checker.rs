//! The checker that runs after every fault scenario (and at the end of the
//! crash and relay tests). It looks at the durable truth, not at the API:
//!
//! - every acknowledged command's events are in the log exactly once (one
//!   transaction, found by the command's `X-Request-Id`, which becomes the
//!   correlation id of the events it appends);
//! - each stream's versions are 1..n in commit order, without a gap;
//! - event ids are unique;
//! - no task exists twice (one `TaskCreated` per source and per task stream);
//! - no consumer quarantined anything;
//! - every projection's tables equal a fresh rebuild from the log;
//! - with NATS, the JetStream stream holds each log event once, in log order.
//!
//! [`wait_for_recovery`] first waits until the stream and every checkpoint
//! have caught up with the log; [`check`] then wants every process of the
//! deployment stopped: it compares the read models with a rebuild in a copy
//! of the database, and PostgreSQL copies a database only while nothing is
//! connected to it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use verkosto_eventlog::{Cursor, DbKind, EventLog, RecordedEvent};

/// One acknowledged command: the `X-Request-Id` it was sent with (its
/// events carry it as their correlation id) and what it was, for messages.
#[derive(Clone, Debug)]
pub struct Ack {
    pub request_id: String,
    pub what: &'static str,
}

/// What [`check`] counted.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub acknowledged: usize,
    /// Acknowledged commands whose events were found, each exactly once.
    pub found: usize,
    pub events: usize,
    pub streams: usize,
    /// Messages on the JetStream stream (when NATS is used).
    pub on_stream: Option<usize>,
    pub tasks: usize,
    /// Rows of projection tables compared with a fresh rebuild.
    pub rows_compared: usize,
    pub projections_rebuilt: usize,
}

/// Tables that are not read models: the log itself, consumer bookkeeping.
const NOT_PROJECTIONS: [&str; 3] = ["events", "checkpoints", "quarantine"];

/// Waits until everything downstream of the log has caught up: the stream
/// (when `nats_url` is given) holds as many events as the log, and every
/// checkpoint is at the log's last event.
pub async fn wait_for_recovery(
    database_url: &str,
    nats_url: Option<&str>,
    timeout: Duration,
) -> Result<()> {
    let log = EventLog::connect(database_url).await?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let lagging = lagging(&log, nats_url).await;
        match lagging {
            Ok(None) => {
                log.db().close().await;
                return Ok(());
            }
            Ok(Some(what)) if tokio::time::Instant::now() > deadline => {
                bail!("not recovered after {timeout:?}: {what}")
            }
            Err(e) if tokio::time::Instant::now() > deadline => {
                return Err(e.context(format!("not recovered after {timeout:?}")))
            }
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// What is still behind the log, if anything.
async fn lagging(log: &EventLog, nats_url: Option<&str>) -> Result<Option<String>> {
    let events = crate::read_everything(log).await?;
    let Some(head) = events.last().map(RecordedEvent::cursor) else {
        return Ok(None);
    };
    if let Some(url) = nats_url {
        let on_stream = crate::stream_contents(url).await?.len();
        if on_stream < events.len() {
            return Ok(Some(format!(
                "the stream holds {on_stream} of {} events",
                events.len()
            )));
        }
    }
    let rows: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT name, tx, position FROM checkpoints ORDER BY name")
            .fetch_all(log.db().reader())
            .await?;
    for (name, tx, position) in rows {
        if (Cursor { tx, position }) < head {
            return Ok(Some(format!(
                "checkpoint {name} at {tx}/{position}, the log at {}/{}",
                head.tx, head.position
            )));
        }
    }
    Ok(None)
}

/// Runs every check (see the module documentation). Every process using
/// the database must be stopped (see the module documentation).
pub async fn check(database_url: &str, nats_url: Option<&str>, acks: &[Ack]) -> Result<Report> {
    let log = EventLog::connect(database_url).await?;
    let events = crate::read_everything(&log).await?;
    let mut report = Report {
        acknowledged: acks.len(),
        events: events.len(),
        ..Report::default()
    };
    report.streams = check_streams(&events)?;
    report.found = check_acknowledged(log.db().kind(), &events, acks)?;
    report.tasks = check_tasks(&events)?;
    let quarantined: Vec<(String, String)> =
        sqlx::query_as("SELECT consumer, event_id FROM quarantine")
            .fetch_all(log.db().reader())
            .await?;
    ensure!(
        quarantined.is_empty(),
        "consumers quarantined events: {quarantined:?}"
    );
    if let Some(url) = nats_url {
        report.on_stream = Some(crate::assert_stream_matches_log(&log, url).await?);
    }
    let (rows, rebuilt) = check_rebuild(log, database_url).await?;
    report.rows_compared = rows;
    report.projections_rebuilt = rebuilt;
    Ok(report)
}

/// Unique event ids; per stream, versions 1..n in commit order. Returns the
/// number of streams.
fn check_streams(events: &[RecordedEvent]) -> Result<usize> {
    let mut ids = HashSet::new();
    let mut last: HashMap<(&str, &str), i64> = HashMap::new();
    for e in events {
        ensure!(
            ids.insert(e.event_id.as_str()),
            "event id {} is in the log twice",
            e.event_id
        );
        let at = last
            .entry((e.stream_type.as_str(), e.stream_id.as_str()))
            .or_insert(0);
        ensure!(
            e.version == *at + 1,
            "stream {}/{}: version {} follows {} in commit order (a gap or a repeat)",
            e.stream_type,
            e.stream_id,
            e.version,
            at
        );
        *at = e.version;
    }
    Ok(last.len())
}

/// Every acknowledged command has events, all from one transaction: on
/// PostgreSQL one `tx_id`; on SQLite (one writer at a time) consecutive
/// positions. A command run twice would show two. Returns how many were found.
fn check_acknowledged(kind: DbKind, events: &[RecordedEvent], acks: &[Ack]) -> Result<usize> {
    // Events a command appended itself; reactions keep the correlation id
    // but name their cause.
    let mut by_request: HashMap<&str, Vec<&RecordedEvent>> = HashMap::new();
    for e in events.iter().filter(|e| e.causation_id.is_none()) {
        by_request.entry(&e.correlation_id).or_default().push(e);
    }
    let mut seen = HashSet::new();
    for ack in acks {
        ensure!(
            seen.insert(ack.request_id.as_str()),
            "request id {} was used for two commands: the check needs unique ones",
            ack.request_id
        );
        let Some(found) = by_request.get(ack.request_id.as_str()) else {
            bail!(
                "acknowledged {} (request {}) is not in the log",
                ack.what,
                ack.request_id
            );
        };
        let once = match kind {
            DbKind::Postgres => found.iter().all(|e| e.tx == found[0].tx),
            DbKind::Sqlite => found.windows(2).all(|w| w[1].position == w[0].position + 1),
        };
        let listing: Vec<String> = found
            .iter()
            .map(|e| {
                format!(
                    "{}/{} v{} {}",
                    e.stream_type, e.stream_id, e.version, e.event_type
                )
            })
            .collect();
        ensure!(
            once,
            "acknowledged {} (request {}) is in the log more than once: {listing:?}",
            ack.what,
            ack.request_id
        );
    }
    Ok(acks.len())
}

/// One `TaskCreated` per task source and per task stream. Returns the
/// number of tasks.
fn check_tasks(events: &[RecordedEvent]) -> Result<usize> {
    let mut sources = HashMap::new();
    let mut streams = HashSet::new();
    for e in events.iter().filter(|e| e.event_type == "TaskCreated") {
        let body = e.payload.get("TaskCreated").unwrap_or(&e.payload);
        let source = &body["source"];
        let key = (
            source["kind"].as_str().unwrap_or_default().to_string(),
            source["ref"].as_str().unwrap_or_default().to_string(),
        );
        ensure!(
            streams.insert(e.stream_id.clone()),
            "task {} was created twice",
            e.stream_id
        );
        if let Some(other) = sources.insert(key.clone(), e.stream_id.clone()) {
            bail!("source {key:?} gave two tasks: {other} and {}", e.stream_id);
        }
    }
    Ok(streams.len())
}

/// Every row of every read-model table, by table, sorted.
async fn snapshot(log: &EventLog) -> Result<BTreeMap<String, Vec<String>>> {
    let kind = log.db().kind();
    let tables: Vec<String> = match kind {
        DbKind::Postgres => sqlx::query_scalar(
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
        ),
        DbKind::Sqlite => sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        ),
    }
    .fetch_all(log.db().reader())
    .await?;
    let mut out = BTreeMap::new();
    for table in tables {
        if NOT_PROJECTIONS.contains(&table.as_str()) {
            continue;
        }
        let sql = match kind {
            DbKind::Postgres => format!("SELECT CAST(row_to_json(t) AS TEXT) FROM \"{table}\" t"),
            DbKind::Sqlite => {
                let columns: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}')"))
                        .fetch_all(log.db().reader())
                        .await?;
                let values: Vec<String> = columns
                    .iter()
                    .map(|c| {
                        format!(
                            "CASE WHEN typeof(\"{c}\") = 'blob' THEN hex(\"{c}\") ELSE \"{c}\" END"
                        )
                    })
                    .collect();
                format!("SELECT json_array({}) FROM \"{table}\"", values.join(", "))
            }
        };
        let mut rows: Vec<String> = sqlx::query_scalar(&sql)
            .fetch_all(log.db().reader())
            .await
            .with_context(|| format!("read {table}"))?;
        rows.sort();
        out.insert(table, rows);
    }
    Ok(out)
}

/// Rebuilds every projection that has a checkpoint in a copy of the
/// database, as `verkosto rebuild` would, and compares every table of the
/// copy with the live one. The live tables and checkpoints are left as they
/// are, so the deployment resumes exactly where it stopped. Closes `log`
/// (a PostgreSQL database can be copied only without connections).
/// Returns the rows compared and the projections rebuilt.
async fn check_rebuild(log: EventLog, database_url: &str) -> Result<(usize, usize)> {
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM checkpoints ORDER BY name")
        .fetch_all(log.db().reader())
        .await?;
    let names: Vec<String> = names
        .into_iter()
        .filter(|n| verkosto::rebuild::projection(n).is_some())
        .collect();
    if names.is_empty() {
        // Nothing but the relay ran here.
        return Ok((0, 0));
    }
    let live = snapshot(&log).await?;
    let copy = copy_database(log, database_url).await?;
    let store = verkosto::config::StoreArgs {
        data_dir: Default::default(),
        database_url: Some(copy.url.clone()),
        database_url_file: None,
        key: Some(verkosto_testkit::TEST_KEK.into()),
        key_file: None,
        keys_url: None,
    };
    verkosto::rebuild::run(&store, &names).await?;
    let copy_log = EventLog::connect(&copy.url).await?;
    let rebuilt = snapshot(&copy_log).await?;
    copy_log.db().close().await;
    copy.remove().await?;
    for (table, rows) in &live {
        let fresh = rebuilt.get(table).map(Vec::as_slice).unwrap_or_default();
        if rows.as_slice() != fresh {
            let only_live: Vec<_> = rows.iter().filter(|r| !fresh.contains(r)).take(3).collect();
            let only_rebuilt: Vec<_> = fresh.iter().filter(|r| !rows.contains(r)).take(3).collect();
            bail!(
                "table {table} differs from a fresh rebuild ({} rows live, {} rebuilt); \
                 only live: {only_live:#?}; only rebuilt: {only_rebuilt:#?}",
                rows.len(),
                fresh.len()
            );
        }
    }
    // `verkosto rebuild` creates every read model's tables; the ones no
    // target had made must stay empty.
    for (table, rows) in &rebuilt {
        ensure!(
            live.contains_key(table) || rows.is_empty(),
            "the rebuild filled a table no running target had: {table}"
        );
    }
    Ok((live.values().map(Vec::len).sum(), names.len()))
}

/// A throwaway copy of a database.
struct Copy {
    url: String,
    /// PostgreSQL: the admin URL and the copy's name; SQLite: the file.
    remove: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl Copy {
    async fn remove(self) -> Result<()> {
        if let Some((admin, name)) = &self.remove {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(admin).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await?;
        }
        Ok(())
    }
}

/// Copies the database behind `log` (which is closed): on PostgreSQL with
/// `CREATE DATABASE .. TEMPLATE` (which keeps the transaction ids the log is
/// ordered by), on SQLite with `VACUUM INTO`.
async fn copy_database(log: EventLog, database_url: &str) -> Result<Copy> {
    match log.db().kind() {
        DbKind::Sqlite => {
            let dir = tempfile::tempdir()?;
            let file = dir.path().join("rebuild.db");
            sqlx::query(&format!("VACUUM INTO '{}'", file.display()))
                .execute(log.db().writer())
                .await?;
            log.db().close().await;
            Ok(Copy {
                url: format!("sqlite://{}", file.display()),
                remove: None,
                _dir: Some(dir),
            })
        }
        DbKind::Postgres => {
            log.db().close().await;
            let (base, rest) = database_url
                .rsplit_once('/')
                .context("a database name in the URL")?;
            let name = rest.split('?').next().unwrap_or(rest).to_string();
            let copy = format!("{name}_rebuild");
            let admin = format!("{base}/postgres");
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {copy}"))
                .execute(&mut conn)
                .await?;
            // Connections just closed can linger for a moment. Any still
            // there after that belong to no running process (every one is
            // stopped): they are printed and ended.
            let mut attempt = 0;
            loop {
                let created = sqlx::query(&format!("CREATE DATABASE {copy} TEMPLATE {name}"))
                    .execute(&mut conn)
                    .await;
                match created {
                    Ok(_) => break,
                    Err(e) if attempt < 30 => {
                        attempt += 1;
                        if attempt == 10 {
                            let left: Vec<(i32, String, String, String)> = sqlx::query_as(
                                "SELECT pid, COALESCE(application_name, ''), COALESCE(state, ''), \
                                 COALESCE(query, '') FROM pg_stat_activity WHERE datname = $1",
                            )
                            .bind(&name)
                            .fetch_all(&mut conn)
                            .await?;
                            eprintln!("checker: connections left on {name}, ended: {left:?}");
                            sqlx::query(
                                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                                 WHERE datname = $1",
                            )
                            .bind(&name)
                            .execute(&mut conn)
                            .await?;
                        }
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => {
                        return Err(e)
                            .context(format!("copy {name}: is something still connected to it?"))
                    }
                }
            }
            Ok(Copy {
                url: format!("{base}/{copy}"),
                remove: Some((admin, copy)),
                _dir: None,
            })
        }
    }
}
