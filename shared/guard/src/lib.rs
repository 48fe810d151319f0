//! Consent on every read, for every service.
//!
//! [`Guard`] gives a service a view of one case that is fresh enough to
//! filter by: the network (who may see the case at all) and the consent
//! record, at least as new as every change committed before the read began.
//! Every read of client data goes through [`Guard::read`]: membership on a
//! fresh view (404 otherwise), then [`CaseRead`] decides item by item with
//! the policy (`verkosto-policy`), then [`CaseRead::finish`] makes the
//! access record durable ([`AccessLog`]: batched) and yields [`Guarded`],
//! the only value an answer with client data is made of.
//!
//! How freshness works: the guard's copy of the case is fed by a projection
//! ([`GuardFeed`]) from the local log or the shared stream. Before a read,
//! [`Guard::case`] asks the log for the latest cursor of the case's `case`
//! and `consent` streams and waits (briefly) until the feed has passed it.
//! If the feed is too far behind, the view is marked stale and every filter
//! made from it withholds everything: fail closed, and say so.

mod access;
mod error;
mod feed;
mod read;
mod view;

pub use access::{read_case_log, AccessEntry, AccessLog, AccessRecord};
pub use error::GuardError;
pub use feed::{GuardFeed, OPERATOR_STREAM, RESOLVED};
pub use read::{CaseRead, Guarded, ReadSet, Reader};
pub use view::{CaseAccess, Guard, UnreadableEvent};

/// Creates the guard's tables and the shared access log.
pub async fn migrate(db: &verkosto_eventlog::Db) -> Result<(), verkosto_eventlog::Error> {
    db.run_migrations(
        &sqlx::migrate!("migrations/postgres"),
        &sqlx::migrate!("migrations/sqlite"),
    )
    .await
}
