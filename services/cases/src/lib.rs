//! The cases service: the client's case, its network, its records.
//!
//! Owns the `case` and `record` streams and the `cases_*` tables. Every
//! read of client data goes through the consent guard (`verkosto-guard`),
//! which filters by the policy and writes the access record first.

mod agencies;
pub mod domain;
pub mod plan;
mod plan_api;
mod projection;
mod records;
mod routes;
mod service;

pub use agencies::{Agencies, AgenciesProjection};
pub use projection::CasesProjection;
pub use records::{RecordEvent, RecordView};
pub use routes::{api_doc, router};
pub use service::Cases;

/// Creates the cases service's tables.
pub async fn migrate(db: &verkosto_eventlog::Db) -> Result<(), verkosto_eventlog::Error> {
    // One SQL for both backends.
    let migrations = sqlx::migrate!("./migrations");
    db.run_migrations(&migrations, &migrations).await
}
