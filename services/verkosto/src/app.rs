//! Building and running the app: the service modules of a target (each
//! service's `module(…)`, run in one loop), the relay and the sealer, the
//! listener, and shutdown. Tests start the real app through
//! [`start`] on port 0, the same way `main` does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::routing::get;
use axum::Router;
use clap::ValueEnum as _;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use verkosto_auth::DevIssuer;
use verkosto_bus::{Relay, StreamSettings};
use verkosto_eventlog::{Db, EventLog, Progress, Projection};
use verkosto_guard::GuardFeed;
use verkosto_http::AuthState;
use verkosto_service::{Context, Module};

use crate::config::{ClockSync, ServeArgs, Target};
use crate::health::{self, Health};

/// A started app.
pub struct Running {
    /// The address it listens on: the port the system chose, when asked for
    /// port 0.
    pub addr: SocketAddr,
    /// The event log it runs on.
    pub log: EventLog,
    /// Cancelled to stop: the server and every worker watch it.
    shutdown: CancellationToken,
    /// The server and the workers, awaited when stopping.
    tasks: JoinSet<()>,
}

impl Running {
    /// Stops accepting requests, lets in-flight ones finish, stops workers.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(20), drain)
            .await
            .is_err()
        {
            tracing::warn!("workers did not stop in time");
            self.tasks.abort_all();
        }
        self.log.db().close().await;
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

/// Each service's settings, from the flags (the defaults for `verkosto
/// rebuild`, which only reads the modules' tables and read models).
#[derive(Default)]
pub(crate) struct Settings {
    /// The directory's: dev tokens, when they are on.
    directory: verkosto_directory::Settings,
    /// The cases service's (only bench builds have any).
    cases: verkosto_cases::Settings,
    /// The meetings service's: the interpreter lead time.
    meetings: verkosto_meetings::Settings,
    /// The tasks service's: the hosts webhooks may reach, and the dev clock.
    tasks: verkosto_tasks::Settings,
    /// The web app's: the API it calls, sign-in, sessions and cookies.
    web: verkosto_web::Settings,
}

impl Settings {
    /// For a process that serves on `listen`, with dev tokens from `dev`.
    fn from_args(args: &ServeArgs, dev: Option<DevIssuer>, listen: SocketAddr) -> Settings {
        let cookies = args.clone();
        // One clock for the process: the dev endpoint moves every sweep's.
        let clock = verkosto_eventlog::clock::Clock::default();
        Settings {
            directory: verkosto_directory::Settings { dev },
            cases: verkosto_cases::Settings {
                retention: args.retention,
                clock: clock.clone(),
                #[cfg(feature = "bench")]
                bench_unfiltered_reads: args.bench_unfiltered_reads,
            },
            meetings: verkosto_meetings::Settings {
                interpreter_lead_time: Duration::from_secs(args.interpreter_lead_time_hours * 3600),
            },
            tasks: verkosto_tasks::Settings {
                webhook_allow_hosts: args.webhook_allow_hosts.clone(),
                dev_clock: args.dev_clock,
                clock,
            },
            web: verkosto_web::Settings {
                api_url: args.api_url.clone(),
                dev: args.dev_auth_on(),
                oidc: args.oidc_issuer.clone().map(|issuer| {
                    Arc::new(verkosto_web::oidc::Oidc::new(
                        issuer,
                        args.oidc_client_id.clone(),
                        args.oidc_client_secret.clone(),
                        args.public_url.clone(),
                    ))
                }),
                idle_timeout: args.session_idle_timeout,
                max_age: args.session_max_age,
                secure_cookies: Box::new(move || {
                    let secure = cookies.secure_cookies(listen)?;
                    if !secure {
                        tracing::warn!(
                            "web cookies without Secure (--insecure-cookies-on-loopback): for \
                             plain HTTP on this machine only"
                        );
                    }
                    Ok(secure)
                }),
            },
        }
    }
}

/// Every service's module, in the order a process starts them: the
/// directory first, the web last (its pages may call the API of the others
/// in this process).
pub(crate) fn modules(settings: Settings) -> Vec<Module> {
    vec![
        verkosto_directory::module(settings.directory),
        verkosto_cases::module(settings.cases),
        verkosto_consent::module(),
        verkosto_meetings::module(settings.meetings),
        verkosto_tasks::module(settings.tasks),
        verkosto_web::module(settings.web),
    ]
}

/// The modules `target` runs. (The relay and the sealer are not services:
/// [`start`] runs them itself.)
pub(crate) fn modules_of(target: Target, settings: Settings) -> Vec<Module> {
    let name = target_name(target);
    modules(settings)
        .into_iter()
        .filter(|m| m.runs_in(&name))
        .collect()
}

/// A target's name, as `--target` spells it and modules list it.
pub(crate) fn target_name(target: Target) -> String {
    target
        .to_possible_value()
        .expect("no target is hidden")
        .get_name()
        .to_string()
}

/// Whether the process of `target` runs the consent guard's feed: where a
/// module of it reads client data.
pub(crate) fn runs_guard(target: Target) -> bool {
    modules_of(target, Settings::default())
        .iter()
        .any(|m| m.guarded)
}

/// The consent guard's feed name for a target: one copy per process kind.
pub(crate) fn guard_consumer(target: Target) -> &'static str {
    match target {
        Target::All => "guard-all",
        Target::Cases => "guard-cases",
        Target::Consent => "guard-consent",
        Target::Meetings => "guard-meetings",
        Target::Tasks => "guard-tasks",
        Target::Relay => "guard-relay",
        Target::Web => "guard-web",
    }
}

/// How long a read waits for this process's view of a case's consent
/// before it fails closed.
const GUARD_WAIT: Duration = Duration::from_secs(2);

/// Runs until SIGTERM or Ctrl-C, printing `listening on <addr>` when ready.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let running = start(args, listener).await?;
    println!("listening on {}", running.addr);
    shutdown_signal(running.shutdown_token()).await;
    tracing::info!("shutting down: finishing in-flight requests");
    running.stop().await;
    Ok(())
}

async fn shutdown_signal(token: CancellationToken) {
    let terminate = async {
        #[cfg(unix)]
        {
            if let Ok(mut s) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                s.recv().await;
                return;
            }
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
        _ = token.cancelled() => {}
    }
}

/// Builds everything from `args` and serves on `listener`.
pub async fn start(args: ServeArgs, listener: TcpListener) -> anyhow::Result<Running> {
    let distributed = args.store.distributed();
    let db = Db::connect_with(&args.store.url(), args.db_pool)
        .await
        .context("cannot open the event log")?;
    let keys = args.store.open_keys().await?;
    let log = EventLog::with_keys(db.clone(), keys);
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    // One clock for the deployment, the database's: measured before the
    // first write, kept current after. (With `--clock-sync system` each
    // process trusts its own clock; consent reads stay safe either way,
    // since a read is never decided before the record's last change.)
    if args.clock_sync == ClockSync::Database {
        verkosto_eventlog::clock::sync(&db)
            .await
            .context("cannot read the database's clock")?;
        tasks.spawn(verkosto_eventlog::clock::run_sync(
            db.clone(),
            shutdown.clone(),
        ));
    }

    let js = if distributed {
        Some(
            verkosto_bus::connect(&args.nats_url, &args.nats_access())
                .await
                .context("cannot connect to NATS")?,
        )
    } else {
        None
    };
    let stream = StreamSettings {
        replicas: args.stream_replicas,
        max_age: args.stream_max_age,
        ..Default::default()
    };

    let (verifier, dev) = crate::auth::verifier(&args)?;
    let auth = AuthState {
        verifier: Arc::new(verifier),
    };

    // Runs a projection from the local log (embedded) or the stream (distributed).
    let run_projection = |tasks: &mut JoinSet<()>, projection: Arc<dyn Projection>| -> Progress {
        let (tx, progress) = Progress::channel();
        let token = shutdown.clone();
        match &js {
            None => {
                tasks.spawn(verkosto_eventlog::run_local(
                    log.clone(),
                    projection,
                    tx,
                    Duration::from_millis(500),
                    token,
                ));
            }
            Some(js) => {
                tasks.spawn(verkosto_bus::run_jetstream_projection(
                    log.clone(),
                    js.clone(),
                    stream.clone(),
                    projection,
                    tx,
                    token,
                ));
            }
        }
        progress
    };

    let settings = Settings::from_args(&args, dev.clone(), listener.local_addr()?);
    let modules = modules_of(args.target, settings);
    // The OpenAPI document of what this process serves.
    let operations: Vec<_> = modules.iter().flat_map(|m| (m.api_doc)()).collect();
    let openapi = Arc::new(verkosto_http::openapi::document(
        env!("CARGO_PKG_VERSION"),
        &operations,
    ));
    let mut ctx = Context {
        log: log.clone(),
        auth: auth.clone(),
        guard: None,
        progress: HashMap::new(),
        api: Router::new().route(
            "/api/v1/openapi.json",
            get(move || {
                let doc = openapi.clone();
                async move { axum::Json((*doc).clone()) }
            }),
        ),
        modules: modules.iter().map(|m| m.name).collect(),
        shutdown: shutdown.clone(),
    };
    // Each module in turn: its tables, its read models and reactions, its
    // router (given what has started), its workers.
    for module in modules {
        // The consent guard is shared code, not a service: its feed starts
        // just before the first module that reads client data through it.
        if module.guarded && ctx.guard.is_none() {
            let consumer = guard_consumer(args.target);
            let feed = guard_feed(&log, consumer).await?;
            let progress = run_projection(&mut tasks, Arc::new(feed));
            let access = verkosto_guard::AccessLog::start(db.clone());
            ctx.guard = Some(verkosto_guard::Guard::new(
                log.clone(),
                consumer,
                progress,
                access,
                GUARD_WAIT,
            ));
        }
        module.migrate(&db).await?;
        for projection in module.projections {
            let name = projection.name();
            ctx.progress
                .insert(name, run_projection(&mut tasks, projection));
        }
        for reaction in module.reactions {
            let progress = run_projection(&mut tasks, (reaction.make)(&log));
            ctx.progress.insert(reaction.name, progress);
        }
        let router = (module.start)(&ctx)?;
        for worker in module.workers {
            tasks.spawn((worker.run)(&ctx));
        }
        ctx.api = ctx.api.merge(router);
    }

    // Not services, so not modules: the relay (log to stream, distributed
    // mode only) and the sealer run in `--target relay`, and in `all`.
    let mut relay_status = None;
    let runs_relay = match args.target {
        Target::Relay => true,
        Target::All => distributed,
        _ => false,
    };
    if runs_relay {
        let js = js.clone().context("the relay needs NATS (--nats-url)")?;
        let relay = Relay::new(log.clone(), js, stream.clone());
        relay_status = Some(relay.status());
        tasks.spawn(relay.run(Duration::from_millis(20), shutdown.clone()));
    }
    if matches!(args.target, Target::All | Target::Relay) {
        tasks.spawn(run_sealer(log.clone(), shutdown.clone()));
    }

    if args.demo {
        // The demo's agencies and users, through the directory's commands.
        let progress = ctx
            .progress_of(&verkosto_directory::DirectoryProjection)
            .ok()
            .context("--demo needs a target that serves the directory (all or cases)")?;
        let directory = verkosto_directory::Directory {
            log: log.clone(),
            progress,
            auth: auth.clone(),
            dev: dev.clone(),
        };
        crate::demo::load(&directory).await?;
        if args.demo_case == crate::config::OnOff::On
            && ctx.runs("cases")
            && ctx.runs("consent")
            && dev.is_some()
        {
            crate::demo::load_case(verkosto_web::ApiClient::Local(ctx.api.clone())).await?;
        }
    }

    let limits = rate_limits(&args, auth.verifier.clone());
    tasks.spawn(limits.clone().run_cleanup(shutdown.clone()));
    let health = Health {
        log: log.clone(),
        nats: js.as_ref().map(|j| j.client()),
        relay: relay_status,
        target: args.target,
        guard: ctx.guard.clone(),
        limits: limits.clone(),
    };
    let app = verkosto_http::conventions_with(
        ctx.api.merge(
            Router::new()
                .route("/healthz", get(health::healthz))
                .route("/readyz", get(health::readyz))
                .route("/metrics", get(health::metrics))
                .with_state(health),
        ),
        Some(limits),
    );

    let addr = listener.local_addr()?;
    let token = shutdown.clone();
    tasks.spawn(async move {
        // With each connection's peer address: the per-address limits.
        let server = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { token.cancelled().await });
        if let Err(e) = server.await {
            tracing::error!(error = %e, "http server failed");
        }
    });
    tracing::info!(%addr, target = ?args.target, distributed, "ready");
    Ok(Running {
        addr,
        log,
        shutdown,
        tasks,
    })
}

/// The consent guard's feed, its tables made, after retrying the events an
/// older binary could not read.
async fn guard_feed(log: &EventLog, consumer: &'static str) -> anyhow::Result<GuardFeed> {
    verkosto_guard::migrate(log.db()).await?;
    let feed = GuardFeed::new(consumer);
    let still = feed.retry_unreadable(log).await?;
    if still > 0 {
        tracing::error!(
            cases = still,
            "cases with consent or case events this version cannot read: their reads \
             withhold everything (`verkosto guard unreadable`)"
        );
    }
    Ok(feed)
}

/// The rate limits of `args`, said once in the log at start.
fn rate_limits(
    args: &ServeArgs,
    verifier: Arc<verkosto_auth::Verifier>,
) -> verkosto_http::limits::Limits {
    use axum::http::Method;
    let settings = verkosto_http::limits::Settings {
        per_user: args.rate_limit_per_user,
        per_address: args.rate_limit_per_address,
        sign_in: args.rate_limit_sign_in,
        trusted_proxies: args.trusted_proxies.clone(),
        // Where a token or a session is handed out (and, for OIDC, where
        // each request costs a call to the identity provider).
        sign_in_paths: vec![
            (Method::POST, "/api/v1/dev/token"),
            (Method::POST, "/signin"),
            (Method::GET, "/oidc/start"),
            (Method::GET, "/oidc/callback"),
        ],
    };
    let show = |r: &verkosto_http::limits::Rate, flag: &str| {
        if r.is_off() {
            tracing::warn!("rate limit {flag} is off: for benchmarks only");
        }
    };
    show(&args.rate_limit_per_user, "--rate-limit-per-user");
    show(&args.rate_limit_per_address, "--rate-limit-per-address");
    show(&args.rate_limit_sign_in, "--rate-limit-sign-in");
    let proxies: Vec<String> = args.trusted_proxies.iter().map(|p| p.to_string()).collect();
    tracing::info!(
        trusted_proxies = %proxies.join(","),
        "X-Forwarded-For is believed only from these peers (none: never)"
    );
    verkosto_http::limits::Limits::new(settings, verifier)
}

/// Seals new events into the integrity chain, soon after they commit.
async fn run_sealer(log: EventLog, shutdown: CancellationToken) {
    let mut commits = log.subscribe_commits();
    loop {
        if let Err(e) = log.seal_pending().await {
            tracing::warn!(error = %e, "sealer failed; retrying");
        }
        tokio::select! {
            _ = commits.changed() => {
                // Let a burst of commits gather into one sealing pass.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
