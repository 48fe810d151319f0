//! The injected clock: system time plus an offset that tests (and only
//! tests, through the dev-only endpoint) move forward. Nothing sleeps to
//! wait for time to pass.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};

#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// How far tests have moved the clock past the log's, in seconds; shared by
    /// every clone.
    offset_seconds: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        // Microseconds, as the log keeps them.
        (verkosto_eventlog::clock::now()
            + chrono::Duration::seconds(self.offset_seconds.load(Ordering::SeqCst)))
        .trunc_subsecs(6)
    }

    /// Today's date (UTC), for due dates.
    pub fn today(&self) -> NaiveDate {
        self.now().date_naive()
    }

    pub fn advance(&self, seconds: i64) {
        self.offset_seconds.fetch_add(seconds, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_now_and_today() {
        let clock = Clock::default();
        let before = clock.today();
        clock.advance(3 * 86_400);
        assert_eq!(clock.today(), before + chrono::Duration::days(3));
        assert!(clock.now() > Utc::now() + chrono::Duration::days(2));
    }
}
