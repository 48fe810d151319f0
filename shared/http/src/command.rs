//! One way to run a command from an HTTP request. A handler extracts the
//! membership it needs, then [`Write`] (the caller, `If-Match`,
//! `Idempotency-Key` and the parsed body), checks what is particular to it,
//! and hands the rest to [`Commands::run`]: the execution with its
//! conditions, the aggregate's decision, the wait for the service's own read
//! model (read your writes) and the answer, which is also what a replay of
//! the same `Idempotency-Key` gets.
//!
//! A write no aggregate decides, the first events of a new stream (maybe
//! with rows of the service's own tables in the same transaction), goes
//! through [`Commands::start`] or [`Commands::start_with`]; a command not
//! from a request (a loader's) through [`Commands::execute_with`]. A service
//! with a clock of its own records its commands by it
//! ([`Commands::with_clock`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SubsecRound, Utc};
use cqrs_es::Aggregate;
use serde::de::DeserializeOwned;
use serde_json::Value;
use verkosto_eventlog::{
    AggregateStore, Appended, Cursor, Error as LogError, EventLog, Execution, ExpectedVersion,
    IdempotencyWrite, Outcome, Progress, StoredAnswer,
};

use crate::{command_response, AuthState, Caller, JsonBody, Problem, WriteConditions};

/// A write request with a JSON body of `T`. Extract it after any
/// membership extractor, so that an outsider gets 404 whatever it sends:
/// the body is read last.
pub struct Write<T> {
    /// Who sends it, with a verified token.
    pub caller: Caller,
    /// The parsed JSON body.
    pub body: T,
    /// Its `If-Match`, `Idempotency-Key`, request id, method and path.
    conditions: WriteConditions,
    /// The body's bytes as received: hashed with an `Idempotency-Key`.
    raw: Bytes,
}

impl<T> Write<T> {
    /// The caller's agency: who a command is made by.
    pub fn agency(&self) -> String {
        self.caller.0.agency.clone()
    }
}

impl<S, T> FromRequest<S> for Write<T>
where
    S: Send + Sync,
    AuthState: FromRef<S>,
    T: DeserializeOwned,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let (mut parts, body) = req.into_parts();
        let caller = Caller::from_request_parts(&mut parts, state).await?;
        let conditions = WriteConditions::from_request_parts(&mut parts, state).await?;
        let JsonBody { value, raw } =
            JsonBody::<T>::from_request(Request::from_parts(parts, body), state).await?;
        Ok(Write {
            caller,
            body: value,
            conditions,
            raw,
        })
    }
}

/// A write whose request has no body, or any JSON body (ignored), as
/// actions like "approve" take.
pub struct Action(pub Write<()>);

impl<S> FromRequest<S> for Action
where
    S: Send + Sync,
    AuthState: FromRef<S>,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let (mut parts, body) = req.into_parts();
        let caller = Caller::from_request_parts(&mut parts, state).await?;
        let conditions = WriteConditions::from_request_parts(&mut parts, state).await?;
        let raw = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|e| Problem::bad_request(format!("body: {}", e.body_text())))?;
        if !raw.is_empty() {
            crate::parse_json::<Value>(&raw)?;
        }
        Ok(Action(Write {
            caller,
            body: (),
            conditions,
            raw,
        }))
    }
}

/// A write whose body the handler parses itself, once it has checked what
/// must come first: that the caller's agency is in the case the path names,
/// say, so that an outsider gets 404 whatever it sends. The body is taken
/// as sent, whatever its `Content-Type`; [`parse`](Unparsed::parse) or
/// [`parse_or_default`](Unparsed::parse_or_default) makes the [`Write`].
pub struct Unparsed {
    /// Who sends it, with a verified token.
    pub caller: Caller,
    /// Its `If-Match`, `Idempotency-Key`, request id, method and path.
    conditions: WriteConditions,
    /// The body's bytes as received.
    raw: Bytes,
}

impl Unparsed {
    /// The write, its body parsed as JSON of `T` (a problem naming the field
    /// at fault otherwise).
    pub fn parse<T: DeserializeOwned>(self) -> Result<Write<T>, Problem> {
        let body = crate::parse_json(&self.raw)?;
        Ok(self.with(body))
    }

    /// [`parse`](Unparsed::parse), with an empty body read as `T::default()`.
    pub fn parse_or_default<T: DeserializeOwned + Default>(self) -> Result<Write<T>, Problem> {
        if self.raw.is_empty() {
            return Ok(self.with(T::default()));
        }
        self.parse()
    }

    fn with<T>(self, body: T) -> Write<T> {
        Write {
            caller: self.caller,
            body,
            conditions: self.conditions,
            raw: self.raw,
        }
    }
}

impl<S> FromRequest<S> for Unparsed
where
    S: Send + Sync,
    AuthState: FromRef<S>,
{
    /// A response, not a problem: a body axum refuses (over the limit)
    /// answers as axum's own rejection does, which the conventions turn into
    /// a problem.
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let caller = Caller::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let conditions = WriteConditions::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let raw = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Unparsed {
            caller,
            conditions,
            raw,
        })
    }
}

/// The answer of a command: status and body, made from the aggregate's
/// version after it. Kept with an `Idempotency-Key`, so it must not depend
/// on anything but the version and what the handler knew before.
pub trait Answer: Fn(i64) -> (u16, Value) + Clone + Send + Sync + 'static {}
impl<F: Fn(i64) -> (u16, Value) + Clone + Send + Sync + 'static> Answer for F {}

/// What [`Commands::start_with`] writes besides the events, in their
/// transaction: a future borrowing the transaction and the appended events.
pub type InTransaction<'t> = Pin<Box<dyn Future<Output = Result<(), Problem>> + Send + 't>>;

/// The log database's transaction a write's own rows go in.
pub type Transaction = sqlx::Transaction<'static, sqlx::Any>;

/// A clock commands are recorded by.
type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Where one aggregate's commands run, which read model a write waits for
/// before it answers, and by which clock they are recorded.
pub struct Commands<A> {
    /// Where the aggregate's streams are.
    log: EventLog,
    /// The service's read models that show this aggregate, with their names
    /// for logs: a write waits (up to 5 s) until each has applied the
    /// events; none: no wait.
    read_models: Vec<(Progress, &'static str)>,
    /// When a command is recorded; none: the log's clock
    /// ([`verkosto_eventlog::clock::now`]).
    clock: Option<Clock>,
    /// Only ties the commands to `A`; holds nothing.
    _aggregate: std::marker::PhantomData<fn() -> A>,
}

impl<A> Clone for Commands<A> {
    fn clone(&self) -> Self {
        Commands {
            log: self.log.clone(),
            read_models: self.read_models.clone(),
            clock: self.clock.clone(),
            _aggregate: std::marker::PhantomData,
        }
    }
}

/// How long a write waits for its service's read model before answering
/// anyway (the answer is right; a read at once may not show it yet).
const READ_YOUR_WRITES: Duration = Duration::from_secs(5);

impl<A> Commands<A>
where
    A: Aggregate<Services = ()> + verkosto_eventlog::DataSubject,
    A::Event: verkosto_eventlog::PersonalData,
    A::Command: Clone,
    A::Error: Into<Problem>,
{
    /// Commands whose writes wait for the read model `name` (its
    /// `progress`): a client that reads after the answer sees its write.
    pub fn new(log: EventLog, progress: Progress, name: &'static str) -> Commands<A> {
        Commands {
            log,
            read_models: vec![(progress, name)],
            clock: None,
            _aggregate: std::marker::PhantomData,
        }
    }

    /// These commands, whose writes also wait for the read model `name`
    /// (its `progress`): for an aggregate two read models show.
    pub fn and_read_model(mut self, progress: Progress, name: &'static str) -> Commands<A> {
        self.read_models.push((progress, name));
        self
    }

    /// Commands of an aggregate no read model of the service shows.
    pub fn without_read_model(log: EventLog) -> Commands<A> {
        Commands {
            log,
            read_models: Vec::new(),
            clock: None,
            _aggregate: std::marker::PhantomData,
        }
    }

    /// These commands, recorded at the time `now` tells rather than the
    /// log's clock: for a service with a clock of its own (one that tests
    /// move forward). It is the events' `occurred_at` and the moment `make`
    /// is given, kept to the microsecond as the log keeps it. Commands of
    /// [`execute_with`](Commands::execute_with) bring their own time.
    pub fn with_clock(
        self,
        now: impl Fn() -> DateTime<Utc> + Send + Sync + 'static,
    ) -> Commands<A> {
        Commands {
            clock: Some(Arc::new(now)),
            ..self
        }
    }

    pub fn store(&self) -> AggregateStore<A> {
        AggregateStore::new(self.log.clone())
    }

    /// Runs the command `make` builds (from the body and the moment the
    /// command is recorded at) on aggregate `id`, under the request's
    /// conditions; answers with `answer` of the new version, or with the
    /// first answer when the `Idempotency-Key` was seen before.
    pub async fn run<T>(
        &self,
        id: &str,
        write: Write<T>,
        answer: impl Answer,
        make: impl FnOnce(T, DateTime<Utc>) -> A::Command,
    ) -> Result<Response, Problem> {
        let fresh = answer.clone();
        self.run_answering(id, write, answer, make, move |a| fresh(a.version))
            .await
    }

    /// [`run`](Commands::run), with a fresh answer made from the events
    /// appended (a number the aggregate gave out, say); `answer` is still
    /// what a replay gets.
    pub async fn run_answering<T>(
        &self,
        id: &str,
        write: Write<T>,
        answer: impl Answer,
        make: impl FnOnce(T, DateTime<Utc>) -> A::Command,
        fresh: impl FnOnce(&Appended) -> (u16, Value),
    ) -> Result<Response, Problem> {
        let outcome = self.execute(id, write, answer, make).await?;
        Ok(command_response(outcome, fresh))
    }

    /// The steps of [`run`](Commands::run) but the answer, for a handler
    /// that does more with what was committed before it answers.
    pub async fn execute<T>(
        &self,
        id: &str,
        write: Write<T>,
        answer: impl Answer,
        make: impl FnOnce(T, DateTime<Utc>) -> A::Command,
    ) -> Result<Outcome<A>, Problem> {
        let execution = self.execution(&write, answer);
        let command = make(write.body, execution.meta.occurred_at);
        self.execute_with(id, command, execution).await
    }

    /// Runs `command` on aggregate `id` with an execution of the caller's
    /// own making (a command that comes from no request: a loader's, with
    /// the system as its actor), then waits for the read model as a
    /// request's command does.
    pub async fn execute_with(
        &self,
        id: &str,
        command: A::Command,
        execution: Execution,
    ) -> Result<Outcome<A>, Problem> {
        let outcome = self.store().execute(id, command, &(), execution).await?;
        self.wait_for_read_model(&outcome).await;
        Ok(outcome)
    }

    /// The first answer, when a request with this write's `Idempotency-Key`
    /// committed before (422 when that request's body was another). A
    /// handler asks before checks a retry must not repeat: a retry answers
    /// as the first time did, even if the rules changed since.
    pub async fn earlier_answer<T>(&self, write: &Write<T>) -> Result<Option<Response>, Problem> {
        // Only the key and the request's hash are looked at: no answer to keep.
        let lookup = |_| (0, Value::Null);
        let execution = write
            .conditions
            .execution(&write.caller, &write.raw, lookup);
        crate::earlier_answer(&self.log, execution.idempotency.as_ref()).await
    }

    /// Starts the stream `id` with the events `make` builds (from the body
    /// and the moment the write is recorded at): a write no aggregate
    /// decides, as there is nothing yet to decide on. Under the request's
    /// `Idempotency-Key` (`If-Match` means nothing to a stream not there
    /// yet); a stream that is there already is a 412. Then waits for the
    /// read model as [`execute`](Commands::execute) does.
    pub async fn start<T>(
        &self,
        id: &str,
        write: Write<T>,
        answer: impl Answer,
        make: impl FnOnce(T, DateTime<Utc>) -> Vec<A::Event>,
    ) -> Result<Outcome<A>, Problem> {
        self.start_with(id, write, answer, make, |_, _| Box::pin(async { Ok(()) }))
            .await
    }

    /// [`start`](Commands::start), with what `rows` writes (the service's
    /// own table, say) in the events' transaction: both are kept or
    /// neither. `rows` gets the appended events, their positions and
    /// `occurred_at`.
    pub async fn start_with<T>(
        &self,
        id: &str,
        write: Write<T>,
        answer: impl Answer,
        make: impl FnOnce(T, DateTime<Utc>) -> Vec<A::Event>,
        rows: impl for<'t> FnOnce(&'t mut Transaction, &'t Appended) -> InTransaction<'t>,
    ) -> Result<Outcome<A>, Problem> {
        let execution = self.execution(&write, answer);
        if let Some(first) = stored_answer(&self.log, execution.idempotency.as_ref()).await? {
            return Ok(Outcome::Replayed(first));
        }
        let events = make(write.body, execution.meta.occurred_at);
        // The state the events lead to names the case whose key seals them.
        let mut aggregate = A::default();
        for event in &events {
            aggregate.apply(event.clone());
        }
        let new = verkosto_eventlog::encode_events(&self.log, &aggregate, id, &events).await?;
        let mut tx = self.log.db().begin().await?;
        let appended = self
            .log
            .append_in(
                &mut tx,
                A::TYPE,
                id,
                ExpectedVersion::NoStream,
                new,
                &execution.meta,
            )
            .await?;
        rows(&mut tx, &appended).await?;
        if let Some(idem) = &execution.idempotency {
            match idem.clone().store(&mut tx, appended.version).await {
                Ok(()) => {}
                Err(LogError::IdempotencyRace) => {
                    // A concurrent request with the same key committed
                    // first: nothing of this one is kept, its answer is ours.
                    drop(tx);
                    let first = stored_answer(&self.log, Some(idem)).await?;
                    return Ok(Outcome::Replayed(first.ok_or(LogError::IdempotencyRace)?));
                }
                Err(e) => return Err(e.into()),
            }
        }
        tx.commit().await.map_err(LogError::from)?;
        self.log.announce(&appended);
        let outcome = Outcome::Committed {
            aggregate,
            appended,
        };
        self.wait_for_read_model(&outcome).await;
        Ok(outcome)
    }

    /// Waits until the service's read model has applied what `outcome`
    /// committed (nothing for a replayed answer).
    pub async fn wait_for_read_model(&self, outcome: &Outcome<A>) {
        if let Outcome::Committed { appended, .. } = outcome {
            if let Some(cursor) = appended.last_cursor() {
                self.wait_for(cursor).await;
            }
        }
    }

    /// Waits until the service's read models have applied the event at
    /// `cursor`, as long as a write waits (a warning in the log for one that
    /// has not by then); at once without a read model. For writes that do
    /// not go through these commands (a sweep's) and are read at once.
    pub async fn wait_for(&self, cursor: Cursor) {
        // They apply side by side: waiting for each in turn takes as long
        // as the slowest.
        for (progress, name) in &self.read_models {
            if !progress.wait_for(cursor, READ_YOUR_WRITES).await {
                tracing::warn!(%cursor, read_model = name, "read model is behind");
            }
        }
    }

    /// The execution of `write`: its caller, request id and conditions,
    /// recorded now by this service's clock.
    fn execution<T>(&self, write: &Write<T>, answer: impl Answer) -> Execution {
        let mut execution = write
            .conditions
            .execution(&write.caller, &write.raw, answer);
        if let Some(now) = &self.clock {
            execution.meta.occurred_at = now().trunc_subsecs(6);
        }
        execution
    }
}

/// The answer stored under `idempotency`'s key, if a request with it
/// committed; 422 when that request's body was another.
pub(crate) async fn stored_answer(
    log: &EventLog,
    idempotency: Option<&IdempotencyWrite>,
) -> Result<Option<StoredAnswer>, Problem> {
    let Some(idem) = idempotency else {
        return Ok(None);
    };
    let Some(stored) = log.idempotent_answer(&idem.scope, &idem.key).await? else {
        return Ok(None);
    };
    if stored.request_hash != idem.request_hash {
        return Err(Problem::invalid(
            "Idempotency-Key",
            "this key was already used with a different request",
        ));
    }
    Ok(Some(stored))
}
