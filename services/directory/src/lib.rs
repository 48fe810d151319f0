//! The directory: agencies and users (event-sourced), and dev tokens.
//!
//! Owns the `agency` and `user` streams and the `dir_*` read model. Never
//! decides what a user may read: that is the consent policy's job; this
//! crate only says who exists and with which roles.

pub mod bootstrap;
pub mod demo;
pub mod domain;
mod projection;
mod routes;

pub use projection::DirectoryProjection;
pub use routes::{api_doc, builtin_admin, router, AgencyView, Directory, UserView};

/// Creates the directory's read-model tables.
pub async fn migrate(db: &verkosto_eventlog::Db) -> Result<(), verkosto_eventlog::Error> {
    // One SQL for both backends.
    let migrations = sqlx::migrate!("./migrations");
    db.run_migrations(&migrations, &migrations).await
}
