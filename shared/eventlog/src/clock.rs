//! Time as the database tells it. Every process of a deployment stamps
//! events and judges consent expiry by one clock, the database's, so a
//! machine whose clock is off (ten minutes fast, say) neither expires
//! grants early nor refuses a valid one. Each process keeps the offset of
//! its own clock from the database's and corrects by it; the offset is
//! measured at start-up and every half minute after.
//!
//! The embedded mode is one process on one clock: its offset stays zero.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::{Db, DbKind, Error};

/// The database's clock minus this process's, in microseconds.
static OFFSET_MICROS: AtomicI64 = AtomicI64::new(0);

/// How often the offset is measured again.
const RESYNC: Duration = Duration::from_secs(30);

/// Now, by the database's clock.
pub fn now() -> DateTime<Utc> {
    Utc::now() + chrono::Duration::microseconds(OFFSET_MICROS.load(Ordering::Relaxed))
}

/// The current correction: the database's clock minus this process's.
pub fn offset() -> chrono::Duration {
    chrono::Duration::microseconds(OFFSET_MICROS.load(Ordering::Relaxed))
}

/// Measures the offset once (PostgreSQL; SQLite shares the process's clock).
/// The database's reading is taken as the midpoint of the round trip.
pub async fn sync(db: &Db) -> Result<chrono::Duration, Error> {
    if db.kind() != DbKind::Postgres {
        return Ok(offset());
    }
    let before = Utc::now();
    let database_micros: i64 =
        sqlx::query_scalar("SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::bigint")
            .fetch_one(db.reader())
            .await?;
    let after = Utc::now();
    let midpoint = before.timestamp_micros() + (after - before).num_microseconds().unwrap_or(0) / 2;
    OFFSET_MICROS.store(database_micros - midpoint, Ordering::Relaxed);
    Ok(offset())
}

/// Keeps the offset current until `shutdown`.
pub async fn run_sync(db: Db, shutdown: CancellationToken) {
    loop {
        match sync(&db).await {
            Ok(offset) if offset.abs() > chrono::Duration::seconds(1) => {
                tracing::warn!(
                    offset_ms = offset.num_milliseconds(),
                    "this machine's clock is off from the database's; correcting by it"
                );
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the database's clock; keeping the last offset")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(RESYNC) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
