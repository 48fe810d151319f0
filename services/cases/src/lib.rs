//! The cases service: the client's case, its network, its records.
//!
//! Owns the `case` and `record` streams and the `cases_*` tables. Every
//! read of client data goes through the consent guard (`verkosto-guard`),
//! which filters by the policy and writes the access record first.

mod agencies;
mod closed;
mod closing;
pub mod domain;
mod period;
pub mod plan;
mod plan_api;
mod projection;
mod records;
pub mod retention;
mod routes;
mod search;
mod service;
mod shredding;

pub use agencies::{Agencies, AgenciesProjection};
pub use projection::CasesProjection;
pub use records::{RecordEvent, RecordView};
pub use routes::{api_doc, router};
pub use search::{PseudonymIndex, PSEUDONYM_INDEX};
pub use service::Cases;
pub use shredding::{ErasedKeys, ERASED_KEYS};

/// Creates the cases service's tables.
pub async fn migrate(db: &verkosto_eventlog::Db) -> Result<(), verkosto_eventlog::Error> {
    // One SQL for both backends.
    let migrations = sqlx::migrate!("./migrations");
    db.run_migrations(&migrations, &migrations).await
}

/// The cases service's settings, from the command line.
#[derive(Clone, Default)]
pub struct Settings {
    /// How long a closed case is kept before the sweep erases it
    /// (`--retention`).
    pub retention: retention::Period,
    /// The process's clock: closing times and the retention sweep go by it.
    pub clock: verkosto_eventlog::clock::Clock,
    /// Bench builds only: see [`Cases::bench_unfiltered_reads`].
    #[cfg(feature = "bench")]
    pub bench_unfiltered_reads: bool,
}

/// The cases service as the binary runs it: in `--target all` and `cases`.
pub fn module(settings: Settings) -> verkosto_service::Module {
    let sweeper = settings.clone();
    verkosto_service::Module::new("cases", &["all", "cases"])
        .migration(|db| async move { migrate(&db).await })
        .guarded()
        .projection(CasesProjection)
        .projection(AgenciesProjection)
        .projection(closed::RetentionProjection)
        .reaction(ERASED_KEYS, |log| ErasedKeys { log: log.clone() })
        .reaction(PSEUDONYM_INDEX, |log| PseudonymIndex { log: log.clone() })
        .api_doc(api_doc)
        .start(move |ctx| Ok(router(service(ctx, settings)?)))
        .worker("retention sweep", move |ctx| {
            let cases = service(ctx, sweeper);
            let shutdown = ctx.shutdown.clone();
            async move {
                match cases {
                    Ok(cases) => retention::run_sweeper(cases, shutdown).await,
                    Err(e) => tracing::error!(error = %e, "the retention sweep cannot start"),
                }
            }
        })
}

/// The service, from what the process started.
fn service(ctx: &verkosto_service::Context, settings: Settings) -> anyhow::Result<Cases> {
    Ok(Cases {
        log: ctx.log.clone(),
        progress: ctx.progress_of(&CasesProjection)?,
        retention_progress: ctx.progress_of(&closed::RetentionProjection)?,
        guard: ctx.guard()?,
        agencies: Agencies {
            log: ctx.log.clone(),
            progress: ctx.progress_of(&AgenciesProjection)?,
        },
        auth: ctx.auth.clone(),
        clock: settings.clock,
        retention: settings.retention,
        #[cfg(feature = "bench")]
        bench_unfiltered_reads: settings.bench_unfiltered_reads,
    })
}
