//! One way to run a command from an HTTP request. A handler extracts the
//! membership it needs, then [`Write`] (the caller, `If-Match`,
//! `Idempotency-Key` and the parsed body), checks what is particular to it,
//! and hands the rest to [`Commands::run`]: the execution with its
//! conditions, the aggregate's decision, the wait for the service's own read
//! model (read your writes) and the answer, which is also what a replay of
//! the same `Idempotency-Key` gets.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::response::Response;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde::de::DeserializeOwned;
use serde_json::Value;
use verkosto_eventlog::{AggregateStore, Appended, EventLog, Outcome, Progress};

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

/// The answer of a command: status and body, made from the aggregate's
/// version after it. Kept with an `Idempotency-Key`, so it must not depend
/// on anything but the version and what the handler knew before.
pub trait Answer: Fn(i64) -> (u16, Value) + Clone + Send + Sync + 'static {}
impl<F: Fn(i64) -> (u16, Value) + Clone + Send + Sync + 'static> Answer for F {}

/// Where one aggregate's commands run, and which read model a write waits
/// for before it answers.
pub struct Commands<A> {
    /// Where the aggregate's streams are.
    log: EventLog,
    /// The service's read model that shows this aggregate, with its name for
    /// logs: a write waits (up to 5 s) until it has applied the events; none: no wait.
    read_model: Option<(Progress, &'static str)>,
    /// Only ties the commands to `A`; holds nothing.
    _aggregate: std::marker::PhantomData<fn() -> A>,
}

impl<A> Clone for Commands<A> {
    fn clone(&self) -> Self {
        Commands {
            log: self.log.clone(),
            read_model: self.read_model.clone(),
            _aggregate: std::marker::PhantomData,
        }
    }
}

/// How long a write waits for its service's read model before answering
/// anyway (the answer is right; a read at once may not show it yet).
const READ_YOUR_WRITES: Duration = Duration::from_secs(5);

impl<A> Commands<A>
where
    A: Aggregate<Services = ()>,
    A::Command: Clone,
    A::Error: Into<Problem>,
{
    /// Commands whose writes wait for the read model `name` (its
    /// `progress`): a client that reads after the answer sees its write.
    pub fn new(log: EventLog, progress: Progress, name: &'static str) -> Commands<A> {
        Commands {
            log,
            read_model: Some((progress, name)),
            _aggregate: std::marker::PhantomData,
        }
    }

    /// Commands of an aggregate no read model of the service shows.
    pub fn without_read_model(log: EventLog) -> Commands<A> {
        Commands {
            log,
            read_model: None,
            _aggregate: std::marker::PhantomData,
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
        let Write {
            caller,
            body,
            conditions,
            raw,
        } = write;
        let execution = conditions.execution(&caller, &raw, answer);
        let command = make(body, execution.meta.occurred_at);
        let outcome = self.store().execute(id, command, &(), execution).await?;
        self.wait_for_read_model(&outcome).await;
        Ok(outcome)
    }

    /// Waits until the service's read model has applied what `outcome`
    /// committed (nothing for a replayed answer).
    pub async fn wait_for_read_model(&self, outcome: &Outcome<A>) {
        let (Some((progress, name)), Outcome::Committed { appended, .. }) =
            (&self.read_model, outcome)
        else {
            return;
        };
        if let Some(cursor) = appended.last_cursor() {
            if !progress.wait_for(cursor, READ_YOUR_WRITES).await {
                tracing::warn!(%cursor, read_model = name, "read model is behind");
            }
        }
    }
}
