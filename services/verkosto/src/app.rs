//! Building and running the app: the module table, the listener, the
//! background workers and shutdown. Tests start the real app through
//! [`start`] on port 0, the same way `main` does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use verkosto_bus::{Relay, StreamSettings};
use verkosto_eventlog::{Db, EventLog, Progress, Projection};
use verkosto_http::AuthState;

use crate::config::{ClockSync, ServeArgs, Target};
use crate::health::{self, Health};

/// A started app.
pub struct Running {
    pub addr: SocketAddr,
    pub log: EventLog,
    shutdown: CancellationToken,
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

/// Which modules a target runs.
#[derive(Default)]
struct Modules {
    directory: bool,
    cases: bool,
    consent: bool,
    meetings: bool,
    tasks: bool,
    web: bool,
    relay: bool,
    sealer: bool,
}

fn modules(target: Target, distributed: bool) -> Modules {
    match target {
        Target::All => Modules {
            directory: true,
            cases: true,
            consent: true,
            meetings: true,
            tasks: true,
            web: true,
            relay: distributed,
            sealer: true,
        },
        Target::Cases => Modules {
            directory: true,
            cases: true,
            ..Modules::default()
        },
        Target::Web => Modules {
            web: true,
            ..Modules::default()
        },
        Target::Consent => Modules {
            consent: true,
            ..Modules::default()
        },
        Target::Meetings => Modules {
            meetings: true,
            ..Modules::default()
        },
        Target::Tasks => Modules {
            tasks: true,
            ..Modules::default()
        },
        Target::Relay => Modules {
            relay: true,
            sealer: true,
            ..Modules::default()
        },
    }
}

/// The consent guard's feed name for a target: one copy per process kind.
fn guard_consumer(target: Target) -> &'static str {
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
    let log = EventLog::new(db.clone());
    let modules = modules(args.target, distributed);
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
    let mut run_projection = |projection: Arc<dyn Projection>| -> Progress {
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

    let mut api = Router::new();
    let mut directory = None;
    if modules.directory {
        verkosto_directory::migrate(&db).await?;
        let progress = run_projection(Arc::new(verkosto_directory::DirectoryProjection));
        let d = verkosto_directory::Directory {
            log: log.clone(),
            progress,
            auth: auth.clone(),
            dev: dev.clone(),
        };
        api = api.merge(verkosto_directory::router(d.clone()));
        directory = Some(d);
    }

    let guard = if modules.cases || modules.consent || modules.meetings || modules.tasks {
        verkosto_guard::migrate(&db).await?;
        let consumer = guard_consumer(args.target);
        let feed = verkosto_guard::GuardFeed::new(consumer);
        // Events an older binary could not read may read now.
        let still = feed.retry_unreadable(&log).await?;
        if still > 0 {
            tracing::error!(
                cases = still,
                "cases with consent or case events this version cannot read: their reads \
                 withhold everything (`verkosto guard unreadable`)"
            );
        }
        let progress = run_projection(Arc::new(feed));
        let access = verkosto_guard::AccessLog::start(db.clone());
        Some(verkosto_guard::Guard::new(
            log.clone(),
            consumer,
            progress,
            access,
            GUARD_WAIT,
        ))
    } else {
        None
    };

    if modules.cases {
        verkosto_cases::migrate(&db).await?;
        let progress = run_projection(Arc::new(verkosto_cases::CasesProjection));
        let agencies = verkosto_cases::Agencies {
            log: log.clone(),
            progress: run_projection(Arc::new(verkosto_cases::AgenciesProjection)),
        };
        let cases = verkosto_cases::Cases {
            log: log.clone(),
            progress,
            guard: guard.clone().context("cases need the guard")?,
            agencies,
            auth: auth.clone(),
            #[cfg(feature = "bench")]
            bench_unfiltered_reads: args.bench_unfiltered_reads,
        };
        api = api.merge(verkosto_cases::router(cases));
    }
    if modules.consent {
        let consent = verkosto_consent::ConsentService {
            log: log.clone(),
            guard: guard.clone().context("consent needs the guard")?,
            auth: auth.clone(),
        };
        api = api.merge(verkosto_consent::router(consent));
    }

    if modules.meetings {
        verkosto_meetings::migrate(&db).await?;
        let progress = run_projection(Arc::new(verkosto_meetings::MeetingsProjection));
        let meetings = verkosto_meetings::Meetings {
            log: log.clone(),
            progress,
            guard: guard.clone().context("meetings need the guard")?,
            auth: auth.clone(),
            interpreter_lead_time: Duration::from_secs(args.interpreter_lead_time_hours * 3600),
        };
        api = api.merge(verkosto_meetings::router(meetings));
    }

    if modules.tasks {
        verkosto_tasks::migrate(&db).await?;
        let progress = run_projection(Arc::new(verkosto_tasks::TasksProjection));
        run_projection(Arc::new(verkosto_tasks::TaskReactions { log: log.clone() }));
        let clock = verkosto_tasks::Clock::default();
        let sweep = Arc::new(tokio::sync::Notify::new());
        tasks.spawn(verkosto_tasks::overdue::run_sweeper(
            log.clone(),
            clock.clone(),
            sweep.clone(),
            shutdown.clone(),
        ));
        let outbound = verkosto_tasks::outbound::Policy::new(args.webhook_allow_hosts.clone());
        if !outbound.allowlist().is_empty() {
            let hosts: Vec<String> = outbound.allowlist().iter().map(|h| h.to_string()).collect();
            tracing::info!(hosts = %hosts.join(","), "webhooks may reach these hosts even if internal or over plain http");
        }
        tasks.spawn(verkosto_tasks::webhooks::run_delivery(
            db.clone(),
            clock.clone(),
            verkosto_tasks::webhooks::Delivery {
                policy: outbound.clone(),
                ..Default::default()
            },
            shutdown.clone(),
        ));
        let service = verkosto_tasks::Tasks {
            log: log.clone(),
            progress,
            guard: guard.clone().context("tasks need the guard")?,
            auth: auth.clone(),
            clock,
            sweep,
            dev_clock: args.dev_clock,
            outbound,
        };
        api = api.merge(verkosto_tasks::router(service));
    }

    // The OpenAPI document of what this process serves.
    let mut operations = Vec::new();
    if modules.directory {
        operations.extend(verkosto_directory::api_doc());
    }
    if modules.cases {
        operations.extend(verkosto_cases::api_doc());
    }
    if modules.consent {
        operations.extend(verkosto_consent::api_doc());
    }
    if modules.meetings {
        operations.extend(verkosto_meetings::api_doc());
    }
    if modules.tasks {
        operations.extend(verkosto_tasks::api_doc());
    }
    let openapi = Arc::new(verkosto_http::openapi::document(
        env!("CARGO_PKG_VERSION"),
        &operations,
    ));
    api = api.route(
        "/api/v1/openapi.json",
        get(move || {
            let doc = openapi.clone();
            async move { axum::Json((*doc).clone()) }
        }),
    );

    if modules.web {
        // The pages call the API: this process's own, or another's.
        let client = match &args.api_url {
            Some(base) => verkosto_web::ApiClient::Remote {
                http: reqwest::Client::new(),
                base: base.trim_end_matches('/').to_string(),
            },
            None if modules.cases => verkosto_web::ApiClient::Local(api.clone()),
            None => anyhow::bail!("--target web needs --api-url (a process that serves the API)"),
        };
        let oidc = args.oidc_issuer.clone().map(|issuer| {
            Arc::new(verkosto_web::oidc::Oidc::new(
                issuer,
                args.oidc_client_id.clone(),
                args.oidc_client_secret.clone(),
                args.public_url.clone(),
            ))
        });
        let secure_cookies = args.secure_cookies(listener.local_addr()?)?;
        if !secure_cookies {
            tracing::warn!(
                "web cookies without Secure (--insecure-cookies-on-loopback): for plain HTTP \
                 on this machine only"
            );
        }
        // Sessions live in this process's database, so every web replica
        // shares them and a sign-out ends one everywhere.
        verkosto_web::migrate(&db).await?;
        let sessions = verkosto_web::Sessions::new(
            db.clone(),
            args.session_idle_timeout,
            args.session_max_age,
            secure_cookies,
        );
        tasks.spawn(verkosto_web::run_sweeper(
            sessions.clone(),
            shutdown.clone(),
        ));
        let web = verkosto_web::Web {
            api: client,
            dev: args.dev_auth_on(),
            oidc,
            sessions,
        };
        api = api.merge(verkosto_web::router(web));
    }

    let mut relay_status = None;
    if modules.relay {
        let js = js.clone().context("the relay needs NATS (--nats-url)")?;
        let relay = Relay::new(log.clone(), js, stream.clone());
        relay_status = Some(relay.status());
        tasks.spawn(relay.run(Duration::from_millis(20), shutdown.clone()));
    }
    if modules.sealer {
        tasks.spawn(run_sealer(log.clone(), shutdown.clone()));
    }

    if args.demo {
        let d = directory
            .as_ref()
            .context("--demo needs a target that serves the directory (all or cases)")?;
        crate::demo::load(d).await?;
        if args.demo_case == crate::config::OnOff::On
            && modules.cases
            && modules.consent
            && dev.is_some()
        {
            crate::demo::load_case(verkosto_web::ApiClient::Local(api.clone())).await?;
        }
    }

    let limits = rate_limits(&args, auth.verifier.clone());
    tasks.spawn(limits.clone().run_cleanup(shutdown.clone()));
    let health = Health {
        log: log.clone(),
        nats: js.as_ref().map(|j| j.client()),
        relay: relay_status,
        target: args.target,
        guard: guard.clone(),
        limits: limits.clone(),
    };
    let app = verkosto_http::conventions_with(
        api.merge(
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
