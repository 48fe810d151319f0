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

/// The directory's settings, from the command line.
#[derive(Clone, Default)]
pub struct Settings {
    /// Dev tokens (`POST /api/v1/dev/token`), when they are on.
    pub dev: Option<verkosto_auth::DevIssuer>,
}

/// The directory as the binary runs it: in `--target all` and beside the
/// cases service (`--target cases`).
pub fn module(settings: Settings) -> verkosto_service::Module {
    verkosto_service::Module::new("directory", &["all", "cases"])
        .migration(|db| async move { migrate(&db).await })
        .projection(DirectoryProjection)
        .api_doc(api_doc)
        .start(move |ctx| {
            Ok(router(Directory {
                log: ctx.log.clone(),
                progress: ctx.progress_of(&DirectoryProjection)?,
                auth: ctx.auth.clone(),
                dev: settings.dev,
            }))
        })
}
