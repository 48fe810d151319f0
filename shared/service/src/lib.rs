//! A service module: what one service brings to the `verkosto` binary, as
//! data. Each service crate exports `module(settings) -> Module`; the binary
//! (`services/verkosto/src/app.rs`) runs the modules of a target in one loop
//! (migrations, projections, reactions, router, workers), and `verkosto
//! rebuild` takes its list of read models from the same values.
//!
//! Shared code: it knows the event log, the consent guard and the HTTP
//! conventions, never a service.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use tokio_util::sync::CancellationToken;
use verkosto_eventlog::{Db, EventLog, Progress, Projection};
use verkosto_guard::Guard;
use verkosto_http::openapi::Operation;
use verkosto_http::AuthState;

/// A boxed future, as the module's functions return them.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Creates a module's tables (its crate's `migrate`).
pub type Migration =
    Box<dyn Fn(Db) -> BoxFuture<Result<(), verkosto_eventlog::Error>> + Send + Sync>;

/// Makes a reaction, from the log it appends to.
pub type MakeReaction = Box<dyn FnOnce(&EventLog) -> Arc<dyn Projection> + Send>;

/// A consumer of the log that acts on events (appends events of its own)
/// rather than keeping a read model: it runs like a projection, but is
/// never rebuilt.
pub struct Reaction {
    /// Its checkpoint's name (the projection's `name()`).
    pub name: &'static str,
    pub make: MakeReaction,
}

/// Starts a worker: the future it returns runs until shutdown.
pub type RunWorker = Box<dyn FnOnce(&Context) -> BoxFuture<()> + Send>;

/// A background task of a module: runs until the shutdown token fires.
pub struct Worker {
    /// What it does, for people reading the wiring.
    pub name: &'static str,
    /// Started after the module's router is made.
    pub run: RunWorker,
}

/// Makes a module's router from what the process has started.
pub type Start = Box<dyn FnOnce(&Context) -> anyhow::Result<Router> + Send>;

/// One service, as the binary runs it.
pub struct Module {
    /// The service's name.
    pub name: &'static str,
    /// The targets (`verkosto serve --target`) whose process runs it.
    pub targets: &'static [&'static str],
    /// Its tables, created before its projections start.
    pub migrations: Vec<Migration>,
    /// It reads client data through the consent guard: the process then
    /// runs the guard's feed before it.
    pub guarded: bool,
    /// Its read models, by their unique names; `verkosto rebuild` rebuilds them.
    pub projections: Vec<Arc<dyn Projection>>,
    /// Its reactions, started after its projections.
    pub reactions: Vec<Reaction>,
    /// Its background tasks.
    pub workers: Vec<Worker>,
    /// Its operations, for the OpenAPI document.
    pub api_doc: fn() -> Vec<Operation>,
    /// Its router.
    pub start: Start,
}

impl Module {
    /// A module that runs in `targets`, with nothing yet.
    pub fn new(name: &'static str, targets: &'static [&'static str]) -> Module {
        Module {
            name,
            targets,
            migrations: Vec::new(),
            guarded: false,
            projections: Vec::new(),
            reactions: Vec::new(),
            workers: Vec::new(),
            api_doc: Vec::new,
            start: Box::new(|_| Ok(Router::new())),
        }
    }

    /// Adds a migration: `|db| async move { migrate(&db).await }`.
    pub fn migration<F, Fut>(mut self, migrate: F) -> Module
    where
        F: Fn(Db) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), verkosto_eventlog::Error>> + Send + 'static,
    {
        self.migrations
            .push(Box::new(move |db| Box::pin(migrate(db))));
        self
    }

    /// Says that the module reads client data through the consent guard.
    pub fn guarded(mut self) -> Module {
        self.guarded = true;
        self
    }

    /// Adds a read model.
    pub fn projection(mut self, projection: impl Projection) -> Module {
        self.projections.push(Arc::new(projection));
        self
    }

    /// Adds a reaction called `name`, made from the log when it starts.
    pub fn reaction<P: Projection>(
        mut self,
        name: &'static str,
        make: impl FnOnce(&EventLog) -> P + Send + 'static,
    ) -> Module {
        self.reactions.push(Reaction {
            name,
            make: Box::new(move |log| {
                let reaction = make(log);
                assert_eq!(
                    reaction.name(),
                    name,
                    "a reaction is listed by its own name"
                );
                Arc::new(reaction) as Arc<dyn Projection>
            }),
        });
        self
    }

    /// Adds a background task.
    pub fn worker<F, Fut>(mut self, name: &'static str, run: F) -> Module
    where
        F: FnOnce(&Context) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.workers.push(Worker {
            name,
            run: Box::new(move |ctx| Box::pin(run(ctx))),
        });
        self
    }

    /// Sets the operations of the OpenAPI document.
    pub fn api_doc(mut self, api_doc: fn() -> Vec<Operation>) -> Module {
        self.api_doc = api_doc;
        self
    }

    /// Sets how the router is made.
    pub fn start(
        mut self,
        start: impl FnOnce(&Context) -> anyhow::Result<Router> + Send + 'static,
    ) -> Module {
        self.start = Box::new(start);
        self
    }

    /// Whether the process of `target` runs this module.
    pub fn runs_in(&self, target: &str) -> bool {
        self.targets.contains(&target)
    }

    /// Creates its tables, in order.
    pub async fn migrate(&self, db: &Db) -> Result<(), verkosto_eventlog::Error> {
        for migration in &self.migrations {
            migration(db.clone()).await?;
        }
        Ok(())
    }
}

/// What the process has started, for a module's router and workers.
pub struct Context {
    pub log: EventLog,
    pub auth: AuthState,
    /// The consent guard, once a guarded module is about to start.
    pub guard: Option<Guard>,
    /// The progress of every projection and reaction started so far, by name.
    pub progress: HashMap<&'static str, Progress>,
    /// The API this process serves so far: the OpenAPI document and the
    /// routers of the modules started before.
    pub api: Router,
    /// The names of the modules this process runs.
    pub modules: Vec<&'static str>,
    /// Fires when the process stops.
    pub shutdown: CancellationToken,
}

impl Context {
    /// The log's database, for a module's own tables.
    pub fn db(&self) -> &Db {
        self.log.db()
    }

    /// The consent guard (for a module that says it is `guarded`).
    pub fn guard(&self) -> anyhow::Result<Guard> {
        self.guard
            .clone()
            .context("the consent guard has not started: a module that reads client data says so with `guarded()`")
    }

    /// The progress of one of the module's projections.
    pub fn progress_of(&self, projection: &dyn Projection) -> anyhow::Result<Progress> {
        let name = projection.name();
        self.progress
            .get(name)
            .cloned()
            .with_context(|| format!("the projection {name} has not started"))
    }

    /// Whether this process runs the module called `name`.
    pub fn runs(&self, name: &str) -> bool {
        self.modules.contains(&name)
    }
}
