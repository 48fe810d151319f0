//! The tasks service: each agency's inbox, fed by minutes, agreed plans,
//! no-shows and declined invitations, with a lifecycle that a review can
//! read (done, no longer needed, declined, let go overdue), overdue
//! escalation on an injected clock, and signed webhooks.
//!
//! Owns the `task` and `webhook` streams and the `tasks_*` tables.

pub mod clock;
mod commands;
pub mod domain;
mod inbox;
pub mod outbound;
pub mod overdue;
mod projection;
pub mod reactions;
mod routes;
mod service;
pub mod webhooks;
mod webhooks_api;

pub use clock::Clock;
pub use projection::TasksProjection;
pub use reactions::TaskReactions;
pub use routes::{api_doc, router};
pub use service::Tasks;
pub use webhooks_api::WebhookEvent;

/// Creates the tasks service's tables.
pub async fn migrate(db: &verkosto_eventlog::Db) -> Result<(), verkosto_eventlog::Error> {
    // One SQL for both backends.
    let migrations = sqlx::migrate!("./migrations");
    db.run_migrations(&migrations, &migrations).await
}
