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

/// The clock a deployment's rules run by (due dates, overdue, retention):
/// [`now`] plus an offset that tests, and only tests (through the
/// dev-only `POST /api/v1/dev/clock`), move forward. One clock is shared
/// by every service of a process, so moving it moves them all, and each
/// sweep that runs by it wakes at once ([`Clock::moved`]): nothing sleeps
/// to wait for time to pass.
#[derive(Clone, Debug)]
pub struct Clock {
    /// How far tests have moved the clock past the log's, in seconds;
    /// shared by every clone, watched by the sweeps.
    offset_seconds: std::sync::Arc<tokio::sync::watch::Sender<i64>>,
}

impl Default for Clock {
    fn default() -> Clock {
        Clock {
            offset_seconds: std::sync::Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        use chrono::SubsecRound;
        // Microseconds, as the log keeps them.
        (now() + chrono::Duration::seconds(*self.offset_seconds.borrow())).trunc_subsecs(6)
    }

    /// Today's date (UTC), for due dates.
    pub fn today(&self) -> chrono::NaiveDate {
        self.now().date_naive()
    }

    pub fn advance(&self, seconds: i64) {
        self.offset_seconds.send_modify(|offset| *offset += seconds);
    }

    /// The moves of this clock from now on, for a sweep to wake by.
    pub fn moves(&self) -> ClockMoves {
        ClockMoves(self.offset_seconds.subscribe())
    }
}

/// The moves of a [`Clock`]: a move made while its holder was busy is not
/// lost, the next [`ClockMoves::next`] returns at once.
pub struct ClockMoves(tokio::sync::watch::Receiver<i64>);

impl ClockMoves {
    /// Resolves when the clock has moved since the last call (never,
    /// outside tests).
    pub async fn next(&mut self) {
        // The sender lives as long as any clone of the clock; if the last
        // one goes, no move can come.
        if self.0.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Measures the offset (PostgreSQL; SQLite shares the process's clock).
///
/// One reading of the database's clock only bounds the offset: it lies
/// between `database - after` and `database - before`. Of a few readings
/// the one with the shortest round trip is the tightest bound, and the
/// correction is the smallest one that bound allows: zero when the clocks
/// may agree (processes on the database's machine), else the nearer edge.
/// Taking the midpoint instead would shift a correct clock by the noise of
/// a busy machine, and an event stamped a millisecond ago could then seem
/// to lie in the future of a reader on the same clock.
pub async fn sync(db: &Db) -> Result<chrono::Duration, Error> {
    if db.kind() != DbKind::Postgres {
        return Ok(offset());
    }
    let mut tightest: Option<(i64, i64)> = None;
    for _ in 0..SAMPLES {
        let before = Utc::now().timestamp_micros();
        let database: i64 =
            sqlx::query_scalar("SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::bigint")
                .fetch_one(db.reader())
                .await?;
        let after = Utc::now().timestamp_micros();
        let bound = (database - after, database - before);
        if tightest.is_none_or(|(low, high)| bound.1 - bound.0 < high - low) {
            tightest = Some(bound);
        }
    }
    let (low, high) = tightest.expect("at least one sample");
    OFFSET_MICROS.store(smallest_within(low, high), Ordering::Relaxed);
    Ok(offset())
}

/// Readings of the database's clock per measurement.
const SAMPLES: usize = 5;

/// The value nearest zero in `low..=high`.
fn smallest_within(low: i64, high: i64) -> i64 {
    0.clamp(low, high)
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

#[cfg(test)]
mod tests {
    use super::{smallest_within, Clock};

    #[tokio::test]
    async fn moving_the_clock_moves_now_and_today_and_wakes_who_waits() {
        let clock = Clock::default();
        let before = clock.today();
        let mut moves = clock.moves();
        clock.advance(3 * 86_400);
        assert_eq!(clock.today(), before + chrono::Duration::days(3));
        assert!(clock.now() > chrono::Utc::now() + chrono::Duration::days(2));
        // Made before anyone waited: still seen.
        tokio::time::timeout(std::time::Duration::from_secs(5), moves.next())
            .await
            .expect("a move wakes who waits for one");
    }

    #[test]
    fn a_correction_is_made_only_as_far_as_the_reading_proves() {
        // A round trip that spans zero: the clocks may agree.
        assert_eq!(smallest_within(-3_000, 2_000), 0);
        // Ten minutes fast: corrected to the near edge of the bound.
        assert_eq!(smallest_within(-600_002_000, -599_998_000), -599_998_000);
        assert_eq!(smallest_within(4_000, 9_000), 4_000);
    }
}
