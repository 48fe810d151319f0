//! The cases service: the client's case, its network, its records.
//!
//! Owns the `case` and `record` streams and the `cases_*` tables. Every
//! read of client data goes through the consent guard (`verkosto-guard`),
//! which filters by the policy and writes the access record first.

mod agencies;
mod closing;
pub mod domain;
pub mod plan;
mod plan_api;
mod projection;
mod records;
mod routes;
mod service;

pub use agencies::{Agencies, AgenciesProjection};
pub use closing::{ErasedKeys, ERASED_KEYS};
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

/// The cases service's settings, from the command line.
#[derive(Clone, Default)]
pub struct Settings {
    /// Bench builds only: see [`Cases::bench_unfiltered_reads`].
    #[cfg(feature = "bench")]
    pub bench_unfiltered_reads: bool,
}

/// The cases service as the binary runs it: in `--target all` and `cases`.
pub fn module(settings: Settings) -> verkosto_service::Module {
    // Outside bench builds there is nothing to set.
    #[cfg(not(feature = "bench"))]
    let Settings {} = settings;
    verkosto_service::Module::new("cases", &["all", "cases"])
        .migration(|db| async move { migrate(&db).await })
        .guarded()
        .projection(CasesProjection)
        .projection(AgenciesProjection)
        .reaction(ERASED_KEYS, |log| ErasedKeys { log: log.clone() })
        .api_doc(api_doc)
        .start(move |ctx| {
            Ok(router(Cases {
                log: ctx.log.clone(),
                progress: ctx.progress_of(&CasesProjection)?,
                guard: ctx.guard()?,
                agencies: Agencies {
                    log: ctx.log.clone(),
                    progress: ctx.progress_of(&AgenciesProjection)?,
                },
                auth: ctx.auth.clone(),
                #[cfg(feature = "bench")]
                bench_unfiltered_reads: settings.bench_unfiltered_reads,
            }))
        })
}
