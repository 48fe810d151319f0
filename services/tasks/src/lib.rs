//! The tasks service: each agency's inbox, fed by minutes, agreed plans,
//! no-shows and declined invitations, with a lifecycle that a review can
//! read (done, no longer needed, declined, let go overdue), overdue
//! escalation on an injected clock, and signed webhooks.
//!
//! Owns the `task` and `webhook` streams and the `tasks_*` tables.

pub mod closed_cases;
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

pub use projection::TasksProjection;
pub use reactions::TaskReactions;
pub use routes::{api_doc, router};
pub use service::Tasks;
pub use verkosto_eventlog::clock::Clock;
pub use webhooks_api::WebhookEvent;

/// Creates the tasks service's tables.
pub async fn migrate(db: &verkosto_eventlog::Db) -> Result<(), verkosto_eventlog::Error> {
    // One SQL for both backends.
    let migrations = sqlx::migrate!("./migrations");
    db.run_migrations(&migrations, &migrations).await
}

/// The tasks service's settings, from the command line.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Hosts webhooks may reach though internal or over plain http
    /// (`--webhook-allow-host`).
    pub webhook_allow_hosts: Vec<outbound::AllowHost>,
    /// Serve `POST /api/v1/dev/clock` (tests only).
    pub dev_clock: bool,
    /// The process's clock, which the dev endpoint moves: shared with the
    /// other services' sweeps.
    pub clock: Clock,
}

/// The tasks service as the binary runs it: in `--target all` and `tasks`,
/// with its reactions, the overdue sweep and webhook delivery.
pub fn module(settings: Settings) -> verkosto_service::Module {
    // Shared by the router and the workers: the clock the dev endpoint
    // moves, the sweep it wakes, where webhooks may go.
    let clock = settings.clock.clone();
    let sweep = std::sync::Arc::new(tokio::sync::Notify::new());
    let outbound = outbound::Policy::new(settings.webhook_allow_hosts);
    let sweeper = (clock.clone(), sweep.clone());
    let delivery = (clock.clone(), outbound.clone());
    let closing_clock = clock.clone();
    verkosto_service::Module::new("tasks", &["all", "tasks"])
        .migration(|db| async move { migrate(&db).await })
        .guarded()
        .projection(TasksProjection)
        .reaction(reactions::NAME, |log| TaskReactions { log: log.clone() })
        .api_doc(api_doc)
        .start(move |ctx| {
            Ok(router(Tasks {
                log: ctx.log.clone(),
                progress: ctx.progress_of(&TasksProjection)?,
                guard: ctx.guard()?,
                auth: ctx.auth.clone(),
                clock,
                sweep,
                dev_clock: settings.dev_clock,
                outbound,
            }))
        })
        .worker("overdue sweep", move |ctx| {
            let (clock, sweep) = sweeper;
            overdue::run_sweeper(ctx.log.clone(), clock, sweep, ctx.shutdown.clone())
        })
        .worker("closed cases' tasks", move |ctx| {
            let (log, shutdown) = (ctx.log.clone(), ctx.shutdown.clone());
            let progress = ctx.progress_of(&TasksProjection);
            async move {
                match progress {
                    Ok(progress) => closed_cases::run(log, closing_clock, progress, shutdown).await,
                    Err(e) => tracing::error!(error = %e, "closed cases' tasks: no read model"),
                }
            }
        })
        .worker("webhook delivery", move |ctx| {
            let (clock, policy) = delivery;
            if !policy.allowlist().is_empty() {
                let hosts: Vec<String> = policy.allowlist().iter().map(|h| h.to_string()).collect();
                tracing::info!(hosts = %hosts.join(","), "webhooks may reach these hosts even if internal or over plain http");
            }
            webhooks::run_delivery(
                ctx.db().clone(),
                clock,
                webhooks::Delivery {
                    policy,
                    ..Default::default()
                },
                ctx.shutdown.clone(),
            )
        })
}
