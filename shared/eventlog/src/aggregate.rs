//! cqrs-es on top of the log: [`AggregateStore`] implements cqrs-es's
//! `EventStore`, and [`AggregateStore::execute`] runs a command the way
//! `CqrsFramework::execute` does, but returns what was committed (and never
//! dispatches cqrs-es queries: projections are fed from the log instead).

use std::collections::HashMap;
use std::marker::PhantomData;
use std::time::Duration;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{
    Aggregate, AggregateContext, AggregateError, DomainEvent, EventEnvelope, EventStore,
};

use crate::idempotency::{IdempotencyWrite, StoredAnswer};
use crate::model::{Actor, Appended, CommandMeta, ExpectedVersion, NewEvent, RecordedEvent};
use crate::sealing::{DataSubject, PersonalData, Sealing};
use crate::store::EventLog;
use crate::Error;
use verkosto_keys::CaseKey;

/// An aggregate as loaded, with the version it was loaded at.
#[derive(Debug)]
pub struct LoadedAggregate<A> {
    /// The aggregate's id: its stream's `stream_id`.
    pub id: String,
    /// The stream's version it was loaded at (0: no events yet).
    pub version: i64,
    /// The state, every event of the stream applied.
    pub aggregate: A,
    /// The hash of the stream's last event (the genesis hash when empty):
    /// the next append chains to it without reading the head again.
    pub head_hash: String,
}

impl<A: Aggregate> AggregateContext<A> for LoadedAggregate<A> {
    fn aggregate(&mut self) -> &mut A {
        &mut self.aggregate
    }
}

/// The aggregates of one type, stored in the log as streams of `A::TYPE`.
pub struct AggregateStore<A> {
    /// Where the streams are.
    log: EventLog,
    /// Only ties the store to `A`; holds nothing.
    _aggregate: PhantomData<fn() -> A>,
}

impl<A> Clone for AggregateStore<A> {
    fn clone(&self) -> Self {
        AggregateStore {
            log: self.log.clone(),
            _aggregate: PhantomData,
        }
    }
}

/// How a command is to be run.
pub struct Execution {
    /// The envelope fields its events get.
    pub meta: CommandMeta,
    /// `If-Match`: the version the caller last saw; a mismatch is refused.
    pub if_match: Option<i64>,
    /// `Idempotency-Key`: the answer to store with the events; none: no key.
    pub idempotency: Option<IdempotencyWrite>,
}

impl Execution {
    pub fn new(meta: CommandMeta) -> Execution {
        Execution {
            meta,
            if_match: None,
            idempotency: None,
        }
    }
}

/// What happened to a command.
#[derive(Debug)]
pub enum Outcome<A> {
    /// The command ran; its events (maybe none) are durable.
    Committed { aggregate: A, appended: Appended },
    /// The idempotency key was seen before with the same request: here is
    /// the first answer, and nothing was appended.
    Replayed(StoredAnswer),
}

/// Why a command did not run.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError<E: std::error::Error> {
    /// The aggregate refused the command.
    #[error(transparent)]
    Rejected(E),
    /// `If-Match` did not match the current version.
    #[error("version {expected} does not match the current version {actual}")]
    PreconditionFailed { expected: i64, actual: i64 },
    /// The idempotency key was used before with a different request.
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    #[error(transparent)]
    Log(#[from] Error),
}

const MAX_RETRIES: usize = 16;

impl<A> AggregateStore<A>
where
    A: Aggregate + DataSubject,
    A::Event: PersonalData,
{
    pub fn new(log: EventLog) -> AggregateStore<A> {
        AggregateStore {
            log,
            _aggregate: PhantomData,
        }
    }

    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// Loads an aggregate by replaying its stream, its client text opened
    /// (so that its decisions compare text with text), but an erased
    /// case's, which stays sealed.
    pub async fn load(&self, id: &str) -> Result<LoadedAggregate<A>, Error> {
        let mut events = self.log.read_stream(A::TYPE, id).await?;
        self.log.open_known(&mut events).await?;
        let mut aggregate = A::default();
        let mut version = 0;
        let mut head_hash = crate::hash::GENESIS.to_string();
        for e in events {
            aggregate.apply(decode_event::<A>(&e)?);
            version = e.version;
            head_hash = e.hash;
        }
        Ok(LoadedAggregate {
            id: id.to_string(),
            version,
            aggregate,
            head_hash,
        })
    }

    /// Runs `command` against aggregate `id`. Without `If-Match`, a
    /// concurrent writer makes it reload and decide again (no lost update);
    /// with it, a stale version is refused.
    pub async fn execute(
        &self,
        id: &str,
        command: A::Command,
        services: &A::Services,
        execution: Execution,
    ) -> Result<Outcome<A>, ExecuteError<A::Error>>
    where
        A::Command: Clone,
    {
        if let Some(idem) = &execution.idempotency {
            if let Some(answer) = self.log.idempotent_answer(&idem.scope, &idem.key).await? {
                return replay(answer, &idem.request_hash);
            }
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut loaded = self.load(id).await?;
            if let Some(expected) = execution.if_match {
                if expected != loaded.version {
                    return Err(ExecuteError::PreconditionFailed {
                        expected,
                        actual: loaded.version,
                    });
                }
            }
            let sink = EventSink::default();
            if let Err(rejection) = loaded
                .aggregate
                .handle(command.clone(), services, &sink)
                .await
            {
                // A concurrent twin of this request may have committed since
                // the first look: then its answer, not a rejection, is ours.
                if let Some(idem) = &execution.idempotency {
                    if let Some(answer) = self.log.idempotent_answer(&idem.scope, &idem.key).await?
                    {
                        return replay(answer, &idem.request_hash);
                    }
                }
                return Err(ExecuteError::Rejected(rejection));
            }
            let events = sink.collect().await;
            let events = encode_events(&self.log, &loaded.aggregate, id, &events).await?;
            // The stream was just read: append after its head directly.
            match self
                .log
                .append_after(
                    A::TYPE,
                    id,
                    (loaded.version, loaded.head_hash.clone()),
                    events,
                    &execution.meta,
                    execution.idempotency.clone(),
                )
                .await
            {
                Ok(appended) => {
                    return Ok(Outcome::Committed {
                        aggregate: loaded.aggregate,
                        appended,
                    })
                }
                Err(Error::Conflict { actual, .. }) => {
                    if let Some(expected) = execution.if_match {
                        return Err(ExecuteError::PreconditionFailed {
                            expected,
                            actual: actual.unwrap_or(expected + 1),
                        });
                    }
                    if attempt >= MAX_RETRIES {
                        return Err(Error::Busy(format!("{}/{id}", A::TYPE)).into());
                    }
                    // Another writer got there first. If it was this very
                    // request (a concurrent retry), answer as it did.
                    if let Some(idem) = &execution.idempotency {
                        if let Some(answer) =
                            self.log.idempotent_answer(&idem.scope, &idem.key).await?
                        {
                            return replay(answer, &idem.request_hash);
                        }
                    }
                    // Otherwise decide again on the new state.
                    tokio::time::sleep(Duration::from_millis(attempt as u64)).await;
                }
                Err(Error::IdempotencyRace) => {
                    // A concurrent request with the same key committed first.
                    let idem = execution.idempotency.as_ref().expect("race implies a key");
                    let answer = self
                        .log
                        .idempotent_answer(&idem.scope, &idem.key)
                        .await?
                        .ok_or(Error::IdempotencyRace)?;
                    return replay(answer, &idem.request_hash);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

fn replay<A>(
    answer: StoredAnswer,
    request_hash: &str,
) -> Result<Outcome<A>, ExecuteError<<A as Aggregate>::Error>>
where
    A: Aggregate,
{
    if answer.request_hash == request_hash {
        Ok(Outcome::Replayed(answer))
    } else {
        Err(ExecuteError::IdempotencyKeyReused)
    }
}

/// Turns a domain event into a row: its type, schema version and payload,
/// with nothing sealed ([`encode_events`] seals what the type names).
pub fn encode_event<A: Aggregate>(event: &A::Event) -> Result<NewEvent, Error> {
    Ok(NewEvent {
        event_type: event.event_type(),
        schema_version: event.event_version().parse().unwrap_or(1),
        payload: serde_json::to_value(event)?,
        sealing: None,
    })
}

/// Decodes a stored event into the aggregate's event type.
pub fn decode_event<A: Aggregate>(e: &RecordedEvent) -> Result<A::Event, Error> {
    // From a borrow: a replay decodes a million payloads, clones add up.
    <A::Event as serde::Deserialize>::deserialize(&e.payload).map_err(|err| {
        Error::Corrupt(format!(
            "event {} ({} v{}) at position {} does not decode: {err}",
            e.event_id, e.event_type, e.schema_version, e.position
        ))
    })
}

fn envelope<A: Aggregate>(e: &RecordedEvent) -> Result<EventEnvelope<A>, Error> {
    let mut metadata = HashMap::new();
    metadata.insert("event_id".to_string(), e.event_id.clone());
    metadata.insert("position".to_string(), e.position.to_string());
    metadata.insert("occurred_at".to_string(), e.occurred_at.clone());
    metadata.insert("actor_user".to_string(), e.actor.user.clone());
    metadata.insert("actor_agency".to_string(), e.actor.agency.clone());
    metadata.insert("correlation_id".to_string(), e.correlation_id.clone());
    if let Some(c) = &e.causation_id {
        metadata.insert("causation_id".to_string(), c.clone());
    }
    Ok(EventEnvelope {
        aggregate_id: e.stream_id.clone(),
        sequence: e.version as usize,
        payload: decode_event::<A>(e)?,
        metadata,
    })
}

fn to_aggregate_error<E: std::error::Error>(e: Error) -> AggregateError<E> {
    match e {
        Error::Conflict { .. } => AggregateError::AggregateConflict,
        Error::Corrupt(msg) => AggregateError::DeserializationError(msg.into()),
        other => AggregateError::DatabaseConnectionError(Box::new(other)),
    }
}

impl<A> EventStore<A> for AggregateStore<A>
where
    A: Aggregate + DataSubject,
    A::Event: PersonalData,
{
    type AC = LoadedAggregate<A>;

    async fn load_events(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        let events = self
            .log
            .read_stream(A::TYPE, aggregate_id)
            .await
            .map_err(to_aggregate_error)?;
        events
            .iter()
            .map(|e| envelope(e).map_err(to_aggregate_error))
            .collect()
    }

    async fn load_aggregate(
        &self,
        aggregate_id: &str,
    ) -> Result<Self::AC, AggregateError<A::Error>> {
        self.load(aggregate_id).await.map_err(to_aggregate_error)
    }

    /// Commits with the envelope taken from `metadata` (`actor_user`,
    /// `actor_agency`, `correlation_id`, `causation_id`), so that
    /// `CqrsFramework` works too.
    async fn commit(
        &self,
        events: Vec<A::Event>,
        context: Self::AC,
        metadata: HashMap<String, String>,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        let get = |k: &str| metadata.get(k).cloned();
        let mut meta = CommandMeta::new(Actor {
            user: get("actor_user").unwrap_or_else(|| "system".into()),
            agency: get("actor_agency").unwrap_or_else(|| "system".into()),
        });
        if let Some(c) = get("correlation_id") {
            meta.correlation_id = c;
        }
        meta.causation_id = get("causation_id");
        let new_events = encode_events(&self.log, &context.aggregate, &context.id, &events)
            .await
            .map_err(to_aggregate_error)?;
        let expected = if context.version == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(context.version)
        };
        let appended = self
            .log
            .append(A::TYPE, &context.id, expected, new_events, &meta, None)
            .await
            .map_err(to_aggregate_error)?;
        appended
            .events
            .iter()
            .map(|e| envelope(e).map_err(to_aggregate_error))
            .collect()
    }
}

/// Turns domain events into rows, each with its sealing: the fields its
/// type names in [`PersonalData`] are sealed under the key of `aggregate`'s
/// case when appended. `aggregate` is the state the events lead to.
pub async fn encode_events<A>(
    log: &EventLog,
    aggregate: &A,
    id: &str,
    events: &[A::Event],
) -> Result<Vec<NewEvent>, Error>
where
    A: Aggregate + DataSubject,
    A::Event: PersonalData,
{
    let mut key: Option<CaseKey> = None;
    let mut rows = Vec::with_capacity(events.len());
    for event in events {
        let mut row = encode_event::<A>(event)?;
        let paths = <A::Event as PersonalData>::sealed_paths(&row.event_type);
        if !paths.is_empty() {
            let key = match &key {
                Some(key) => key.clone(),
                None => {
                    let case = aggregate.data_subject(id).ok_or_else(|| {
                        Error::Config(format!(
                            "{}/{id}: {} holds personal data, but the aggregate names no case \
                             to seal it for",
                            A::TYPE,
                            event.event_type()
                        ))
                    })?;
                    key.insert(log.case_key(case).await?).clone()
                }
            };
            row.sealing = Some(Sealing { key, paths });
        }
        rows.push(row);
    }
    Ok(rows)
}
