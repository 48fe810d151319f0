//! The tasks service: each agency's inbox, fed by minutes, agreed plans,
//! no-shows and declined invitations, with a lifecycle that a review can
//! read (done, no longer needed, declined, let go overdue), overdue
//! escalation on an injected clock, and signed webhooks.
//!
//! Owns the `task` and `webhook` streams and the `tasks_*` tables.

pub mod clock;
pub mod domain;
pub mod outbound;
pub mod overdue;
mod projection;
pub mod reactions;
mod routes;
pub mod webhooks;

pub use clock::Clock;
pub use projection::TasksProjection;
pub use reactions::TaskReactions;
pub use routes::{api_doc, router, Tasks, WebhookEvent};

/// Creates the tasks service's tables.
pub async fn migrate(db: &verkosto_eventlog::Db) -> Result<(), verkosto_eventlog::Error> {
    db.run_migrations(
        &sqlx::migrate!("migrations/postgres"),
        &sqlx::migrate!("migrations/sqlite"),
    )
    .await
}
