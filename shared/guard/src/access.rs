//! The access log: one record per read of client data, written durably
//! before the data is sent. Writes are batched (group commit): concurrent
//! reads share one transaction, so logging costs little.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use verkosto_eventlog::{bulk, format_time, Db};
use verkosto_policy::Category;

use crate::error::GuardError;
use crate::feed::words;

/// One read of one case's client data.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AccessRecord {
    /// The case whose data was read.
    pub case_id: String,
    /// The reading user's id.
    pub reader_user: String,
    /// The reading user's agency id.
    pub reader_agency: String,
    /// The service that served it (`cases`, `meetings`, ...).
    pub service: String,
    /// What was read, e.g. `records` or `meeting/<id>`.
    pub resource: String,
    /// Categories of which at least one item was shown, in category order.
    pub returned: Vec<Category>,
    /// Categories of which at least one item was withheld, in category order.
    pub withheld: Vec<Category>,
    /// How many items were shown.
    pub items_returned: u64,
    /// How many items were withheld.
    pub items_withheld: u64,
    /// The consent record's version the read was decided on.
    pub consent_version: i64,
    /// Whether the guard's view was fresh (if not, everything was withheld).
    pub consent_fresh: bool,
    /// The moment the read was decided at (see `verkosto_policy::moment`).
    pub read_at: DateTime<Utc>,
    /// The HTTP request's id, when the read came through one.
    pub request_id: Option<String>,
    /// An auditor's read of the case's history or access log.
    pub auditor: bool,
}

type Pending = (AccessRecord, oneshot::Sender<Result<(), String>>);

/// The batching writer's handle. Cheap to clone.
#[derive(Clone)]
pub struct AccessLog {
    /// Queues a record, with where to say when it is durable, for the writer task.
    tx: mpsc::Sender<Pending>,
}

/// Most records one statement takes (14 parameters each). SQLite binds a
/// statement's parameters in time that grows with the square of their
/// number: a few dozen records per commit is where group commit pays.
const MAX_BATCH: usize = 64;

impl AccessLog {
    /// Starts the writer on `db`; it runs until every handle is dropped.
    pub fn start(db: Db) -> AccessLog {
        let (tx, rx) = mpsc::channel(10_000);
        tokio::spawn(write_batches(db, rx));
        AccessLog { tx }
    }

    /// Returns once `record` is durable.
    pub async fn record(&self, record: AccessRecord) -> Result<(), GuardError> {
        self.record_all(vec![record]).await
    }

    /// Returns once every record is durable. They are queued together, so
    /// the writer takes them in one batch rather than one flush each.
    pub async fn record_all(&self, records: Vec<AccessRecord>) -> Result<(), GuardError> {
        let stopped = || GuardError::AccessLog("the writer has stopped".into());
        let mut waits = Vec::with_capacity(records.len());
        for record in records {
            let (done, wait) = oneshot::channel();
            self.tx.send((record, done)).await.map_err(|_| stopped())?;
            waits.push(wait);
        }
        for wait in waits {
            wait.await
                .map_err(|_| stopped())?
                .map_err(GuardError::AccessLog)?;
        }
        Ok(())
    }
}

async fn write_batches(db: Db, mut rx: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let result = insert(&db, &batch).await;
        if let Err(e) = &result {
            tracing::error!(error = %e, n = batch.len(), "access log write failed; reads are refused");
            // Give a struggling database a moment before the next batch.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for (_, done) in batch.drain(..) {
            let _ = done.send(result.clone().map_err(|e| e.to_string()));
        }
    }
}

async fn insert(db: &Db, batch: &[Pending]) -> Result<(), String> {
    let mut sql = String::from(
        "INSERT INTO access_log (case_id, reader_user, reader_agency, service, resource, \
         returned, withheld, items_returned, items_withheld, consent_version, consent_fresh, \
         read_at, request_id, auditor) VALUES ",
    );
    sql.push_str(&bulk::values(db.kind(), batch.len(), 14));
    let mut query = sqlx::query(&sql);
    for (r, _) in batch {
        query = query
            .bind(r.case_id.clone())
            .bind(r.reader_user.clone())
            .bind(r.reader_agency.clone())
            .bind(r.service.clone())
            .bind(r.resource.clone())
            .bind(words(&r.returned))
            .bind(words(&r.withheld))
            .bind(r.items_returned as i64)
            .bind(r.items_withheld as i64)
            .bind(r.consent_version)
            .bind(r.consent_fresh as i64)
            .bind(format_time(r.read_at))
            .bind(r.request_id.clone())
            .bind(r.auditor as i64);
    }
    // One statement is its own durable transaction (synchronous=FULL on
    // SQLite, a commit on PostgreSQL) before anyone is answered.
    query
        .execute(db.writer())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Reads a case's access log, oldest first.
pub async fn read_case_log(db: &Db, case_id: &str) -> Result<Vec<AccessEntry>, GuardError> {
    let rows: Vec<AccessRow> = sqlx::query_as(
        "SELECT id, reader_user, reader_agency, service, resource, returned, withheld, \
         items_returned, items_withheld, consent_version, consent_fresh, read_at, request_id, \
         auditor FROM access_log WHERE case_id = $1 ORDER BY id",
    )
    .bind(case_id)
    .fetch_all(db.reader())
    .await?;
    Ok(rows.into_iter().map(AccessEntry::from).collect())
}

type AccessRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    String,
    Option<String>,
    i64,
);

/// An access record as the auditor sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AccessEntry {
    /// The record's row id: increasing in the order written.
    pub seq: i64,
    /// The reading user's id.
    pub user: String,
    /// The reading user's agency id.
    pub agency: String,
    /// The service that served it (`cases`, `meetings`, ...).
    pub service: String,
    /// What was read, e.g. `records` or `meeting/<id>`.
    pub resource: String,
    /// Categories of which at least one item was shown.
    pub categories_returned: Vec<String>,
    /// Categories of which at least one item was withheld.
    pub categories_withheld: Vec<String>,
    /// How many items were shown.
    pub items_returned: i64,
    /// How many items were withheld.
    pub items_withheld: i64,
    /// The consent record's version the read was decided on.
    pub consent_version: i64,
    /// Whether the guard's view was fresh (if not, everything was withheld).
    pub consent_fresh: bool,
    /// The moment the read was decided at, RFC 3339 UTC with microseconds.
    pub at: String,
    /// The HTTP request's id, when the read came through one.
    pub request_id: Option<String>,
    /// An auditor read the case's history or log (no client data).
    pub auditor: bool,
}

impl From<AccessRow> for AccessEntry {
    fn from(r: AccessRow) -> AccessEntry {
        let split = |s: String| -> Vec<String> {
            s.split(',')
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect()
        };
        AccessEntry {
            seq: r.0,
            user: r.1,
            agency: r.2,
            service: r.3,
            resource: r.4,
            categories_returned: split(r.5),
            categories_withheld: split(r.6),
            items_returned: r.7,
            items_withheld: r.8,
            consent_version: r.9,
            consent_fresh: r.10 != 0,
            at: r.11,
            request_id: r.12,
            auditor: r.13 != 0,
        }
    }
}
