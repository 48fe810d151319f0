//! Consumers of the log: read models and reactions. Each keeps its checkpoint
//! in the same transaction as its effect, so a redelivered event has no
//! second effect, and each can be dropped and rebuilt by replay.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{Any, AnyConnection, Executor, Transaction};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::db::DbKind;
use crate::model::{format_time, Cursor, RecordedEvent};
use crate::store::EventLog;
use crate::Error;

/// Why an event could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The event can never be applied (undecodable, or breaks the model's
    /// rules): it is quarantined, with an alert, and the consumer moves on.
    #[error("poison event: {0}")]
    Poison(String),
    /// Anything else (the database): the batch is retried.
    #[error(transparent)]
    Other(#[from] Error),
}

impl From<sqlx::Error> for ApplyError {
    fn from(e: sqlx::Error) -> Self {
        ApplyError::Other(e.into())
    }
}

/// A read model or reaction fed by the log, in commit order.
#[async_trait::async_trait]
pub trait Projection: Send + Sync + 'static {
    /// Unique, stable name: the checkpoint's key.
    fn name(&self) -> &'static str;

    /// Cheap filter; events it returns false for only move the checkpoint.
    fn handles(&self, _event: &RecordedEvent) -> bool {
        true
    }

    /// Applies one event inside the consumer's transaction.
    async fn apply(
        &self,
        conn: &mut AnyConnection,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError>;

    /// Applies several events, in order, inside the consumer's transaction.
    /// A read model that can write a batch in a few statements overrides
    /// this; replaying a million events one statement at a time is slow.
    /// A poison event anywhere makes the caller roll the batch back and
    /// apply it again one event at a time, setting that event aside.
    async fn apply_all(
        &self,
        conn: &mut AnyConnection,
        events: &[&RecordedEvent],
    ) -> Result<(), ApplyError> {
        for event in events {
            self.apply(conn, event).await?;
        }
        Ok(())
    }

    /// True when the projection's effects are only rows of its own, which
    /// the log can always give again (a read model), so that a batch may
    /// commit without waiting for the disk ([`crate::Db::begin_replayable`]).
    /// A reaction that appends events keeps the default: what it appends is
    /// a write like any other.
    fn only_replayable_effects(&self) -> bool {
        false
    }

    /// Empties the read model so that it can be rebuilt from the start.
    async fn reset(&self, conn: &mut AnyConnection) -> Result<(), Error>;
}

pub(crate) async fn load_checkpoint<'e, E>(executor: E, name: &str) -> Result<Cursor, Error>
where
    E: Executor<'e, Database = Any>,
{
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT tx, position FROM checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(executor)
            .await?;
    Ok(row
        .map(|(tx, position)| Cursor { tx, position })
        .unwrap_or(Cursor::START))
}

/// Where a run of events read from the stream sits: it holds the log's
/// events right after `after` (checked by [`EventLog::verify_copies`]), read
/// from messages up to stream sequence `last_sequence`.
#[derive(Clone, Copy, Debug)]
pub struct StreamSpan {
    /// The cursor the run follows: the consumer's position before it.
    pub after: Cursor,
    /// The stream sequence of the run's last message; none if unknown.
    pub last_sequence: Option<u64>,
}

/// Reads a consumer's checkpoint and, on PostgreSQL, locks it until the
/// transaction ends. Several processes of one service feed the same
/// projection; the lock makes their batches take turns, so each starts from
/// the other's checkpoint and no event is applied twice. (SQLite has one
/// writer at a time anyway.)
async fn lock_checkpoint(
    tx: &mut Transaction<'static, Any>,
    kind: DbKind,
    name: &str,
) -> Result<(Cursor, i64), Error> {
    let lock = match kind {
        DbKind::Sqlite => "",
        DbKind::Postgres => {
            // FOR UPDATE locks only a row that exists: create it first.
            sqlx::query(
                "INSERT INTO checkpoints (name, tx, position, extra) VALUES ($1, 0, 0, 0) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .execute(&mut **tx)
            .await?;
            " FOR UPDATE"
        }
    };
    let row: Option<(i64, i64, i64)> = sqlx::query_as(&format!(
        "SELECT tx, position, extra FROM checkpoints WHERE name = $1{lock}"
    ))
    .bind(name)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row
        .map(|(tx, position, extra)| (Cursor { tx, position }, extra))
        .unwrap_or((Cursor::START, 0)))
}

pub(crate) async fn save_checkpoint(
    tx: &mut Transaction<'static, Any>,
    name: &str,
    cursor: Cursor,
    extra: i64,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO checkpoints (name, tx, position, extra) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO UPDATE SET tx = excluded.tx, position = excluded.position, \
         extra = excluded.extra",
    )
    .bind(name)
    .bind(cursor.tx)
    .bind(cursor.position)
    .bind(extra)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl EventLog {
    /// A consumer's checkpoint (the start when it has none).
    pub async fn checkpoint(&self, name: &str) -> Result<Cursor, Error> {
        load_checkpoint(self.db().writer(), name).await
    }

    /// A consumer's checkpoint with its extra number (the relay keeps the
    /// stream sequence it last saw there).
    pub async fn checkpoint_with_extra(&self, name: &str) -> Result<(Cursor, i64), Error> {
        let row: Option<(i64, i64, i64)> =
            sqlx::query_as("SELECT tx, position, extra FROM checkpoints WHERE name = $1")
                .bind(name)
                .fetch_optional(self.db().writer())
                .await?;
        Ok(row
            .map(|(tx, position, extra)| (Cursor { tx, position }, extra))
            .unwrap_or((Cursor::START, 0)))
    }

    /// Stores a checkpoint on its own (for consumers whose effect is outside
    /// this database, such as the relay's publishing).
    pub async fn store_checkpoint(
        &self,
        name: &str,
        cursor: Cursor,
        extra: i64,
    ) -> Result<(), Error> {
        let mut tx = self.db().begin().await?;
        save_checkpoint(&mut tx, name, cursor, extra).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Applies `events` to `projection` in one transaction with its
    /// checkpoint. Events at or before the checkpoint are skipped, so
    /// redelivery is harmless. Returns the new checkpoint.
    pub async fn apply_batch(
        &self,
        projection: &dyn Projection,
        events: &[RecordedEvent],
    ) -> Result<Cursor, Error> {
        self.apply_events(projection, events, Source::Log).await
    }

    /// [`EventLog::apply_batch`] for a run read from the stream and checked
    /// against the log. The last message's sequence is kept with the
    /// checkpoint: it is where the next reader of this projection starts on
    /// the stream. A run that starts past the checkpoint (someone reset it)
    /// is refused with [`Error::StreamGap`]: applying it would leave a hole.
    pub async fn apply_stream_batch(
        &self,
        projection: &dyn Projection,
        events: &[RecordedEvent],
        span: StreamSpan,
    ) -> Result<Cursor, Error> {
        self.apply_events(projection, events, Source::Stream(span))
            .await
    }

    async fn apply_events(
        &self,
        projection: &dyn Projection,
        events: &[RecordedEvent],
        source: Source,
    ) -> Result<Cursor, Error> {
        // Whole batches first; one event at a time only when one is poison.
        let whole = self.apply_events_as(projection, events, source, Mode::Whole);
        if let Some(last) = whole.await? {
            return Ok(last);
        }
        let one_by_one = self.apply_events_as(projection, events, source, Mode::OneByOne);
        Ok(one_by_one.await?.expect("one by one, poison is set aside"))
    }

    /// The new checkpoint, or None when [`Mode::Whole`] met a poison event
    /// (and rolled back).
    async fn apply_events_as(
        &self,
        projection: &dyn Projection,
        events: &[RecordedEvent],
        source: Source,
        mode: Mode,
    ) -> Result<Option<Cursor>, Error> {
        let span = match source {
            Source::Log => None,
            Source::Stream(span) => Some(span),
        };
        // A batch this projection ignores only moves its checkpoint.
        let replayable =
            projection.only_replayable_effects() || !events.iter().any(|e| projection.handles(e));
        let mut tx = if replayable {
            self.db().begin_replayable().await?
        } else {
            self.db().begin().await?
        };
        let (checkpoint, sequence_before) =
            lock_checkpoint(&mut tx, self.db().kind(), projection.name()).await?;
        if let Some(span) = span {
            // Behind the run's start is fine (another process of the
            // service went further): those events are skipped.
            if checkpoint < span.after {
                return Err(Error::StreamGap {
                    consumer: projection.name().to_string(),
                    checkpoint,
                    after: span.after,
                });
            }
        }
        let new: Vec<&RecordedEvent> = events.iter().filter(|e| e.cursor() > checkpoint).collect();
        let handled: Vec<&RecordedEvent> = new
            .iter()
            .copied()
            .filter(|e| projection.handles(e))
            .collect();
        match mode {
            Mode::Whole => match projection
                .apply_all(&mut tx, &handled)
                .instrument(tracing::info_span!(
                    "apply_batch",
                    consumer = projection.name(),
                    events = handled.len(),
                    first_position = handled.first().map(|e| e.position),
                    last_position = handled.last().map(|e| e.position),
                ))
                .await
            {
                Ok(()) => {}
                // The transaction is dropped, so rolled back.
                Err(ApplyError::Poison(_)) => return Ok(None),
                Err(ApplyError::Other(e)) => return Err(e),
            },
            Mode::OneByOne => {
                for event in handled {
                    apply_one_or_quarantine(&mut tx, projection, event).await?;
                }
            }
        }
        let last = new.last().map_or(checkpoint, |e| e.cursor());
        fail::fail_point!("eventlog-before-checkpoint");
        // Every message of the batch is now at or before the checkpoint,
        // so the stream resumes after the batch's last. Kept even when
        // the whole batch was already applied: a checkpoint rebuilt from
        // the log knows no sequence, and must learn it as the reader
        // catches up.
        let sequence = span
            .and_then(|s| s.last_sequence)
            .map_or(sequence_before, |last| sequence_before.max(last as i64));
        if last != checkpoint || sequence != sequence_before {
            save_checkpoint(&mut tx, projection.name(), last, sequence).await?;
        }
        tx.commit().await?;
        self.count_applied(projection.name(), new.len() as u64);
        Ok(Some(last))
    }

    /// Drops a projection's state and checkpoint; the next run replays the log.
    pub async fn reset_projection(&self, projection: &dyn Projection) -> Result<(), Error> {
        let mut tx = self.db().begin().await?;
        // The checkpoint's lock first, as a running consumer's batch takes
        // it: a reset beside a running process then waits for its batch
        // instead of deadlocking with it over the read model's rows.
        lock_checkpoint(&mut tx, self.db().kind(), projection.name()).await?;
        projection.reset(&mut tx).await?;
        sqlx::query("DELETE FROM checkpoints WHERE name = $1")
            .bind(projection.name())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM quarantine WHERE consumer = $1")
            .bind(projection.name())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Feeds the projection everything readable after its checkpoint.
    pub async fn catch_up(&self, projection: &dyn Projection) -> Result<Cursor, Error> {
        let mut at = self.checkpoint(projection.name()).await?;
        loop {
            let events = self.read_after(at, 1000).await?;
            if events.is_empty() {
                return Ok(at);
            }
            at = self.apply_batch(projection, &events).await?;
        }
    }

    /// [`EventLog::catch_up`] for several projections, reading the log once
    /// for all of them; each batch is applied to each projection in its own
    /// transaction. A rebuild of every read model reads a million events
    /// once, not once per model. Each projection applies its batches on a
    /// task of its own, and the reader runs up to [`REPLAY_AHEAD`] batches
    /// ahead of the slowest: reading and decoding, and each projection's
    /// folding, run on all the cores at once, and no projection waits for
    /// another's batch to finish.
    pub async fn catch_up_together(
        &self,
        projections: &[Arc<dyn Projection>],
    ) -> Result<Cursor, Error> {
        let mut checkpoints = Vec::new();
        for projection in projections {
            checkpoints.push(self.checkpoint(projection.name()).await?);
        }
        // The one furthest behind sets the start; the others skip what they have.
        let Some(mut at) = checkpoints.into_iter().min() else {
            return Ok(Cursor::START);
        };
        let mut batches = Vec::new();
        let mut appliers = tokio::task::JoinSet::new();
        for projection in projections {
            let (sender, mut receiver) =
                tokio::sync::mpsc::channel::<Arc<Vec<RecordedEvent>>>(REPLAY_AHEAD);
            batches.push(sender);
            let (log, projection) = (self.clone(), projection.clone());
            appliers.spawn(async move {
                while let Some(events) = receiver.recv().await {
                    log.apply_batch(projection.as_ref(), &events).await?;
                }
                Ok::<(), Error>(())
            });
        }
        let read = async {
            loop {
                let events = Arc::new(self.read_after(at, REPLAY_BATCH).await?);
                let Some(last) = events.last().map(|e| e.cursor()) else {
                    return Ok(());
                };
                for sender in &batches {
                    if sender.send(events.clone()).await.is_err() {
                        // That projection failed: its error is the answer.
                        return Ok(());
                    }
                }
                at = last;
            }
        };
        let read: Result<(), Error> = read.await;
        // No more batches: each projection finishes what it was sent.
        drop(batches);
        while let Some(applied) = appliers.join_next().await {
            match applied {
                Ok(result) => result?,
                // Never aborted, so it panicked: so does the caller.
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        }
        read?;
        Ok(at)
    }

    /// Events a consumer set aside: `(position, event_id, reason)`.
    pub async fn quarantined(&self, consumer: &str) -> Result<Vec<(i64, String, String)>, Error> {
        Ok(sqlx::query_as(
            "SELECT position, event_id, reason FROM quarantine WHERE consumer = $1 ORDER BY position",
        )
        .bind(consumer)
        .fetch_all(self.db().reader())
        .await?)
    }
}

/// Events per batch when several projections catch up together.
const REPLAY_BATCH: i64 = 5000;
/// Batches read, and not yet applied, per projection catching up together.
const REPLAY_AHEAD: usize = 2;

/// Where a batch was read.
#[derive(Clone, Copy)]
enum Source {
    /// From the log itself.
    Log,
    /// From the stream: checked against the log, after a known event.
    Stream(StreamSpan),
}

/// How a batch is applied.
#[derive(Clone, Copy)]
enum Mode {
    /// All of it through [`Projection::apply_all`]: fast, all or nothing.
    Whole,
    /// Each event under its own savepoint, so a poison one is set aside.
    OneByOne,
}

async fn apply_one_or_quarantine(
    tx: &mut Transaction<'static, Any>,
    projection: &dyn Projection,
    event: &RecordedEvent,
) -> Result<(), Error> {
    let span = tracing::info_span!(
        "handle_event",
        consumer = projection.name(),
        event_type = %event.event_type,
        position = event.position,
        correlation_id = %event.correlation_id,
    );
    let _guard = span.enter();
    // A savepoint lets a poison event be set aside without losing the rest
    // of the batch.
    tx.execute("SAVEPOINT apply_one").await?;
    match projection.apply(tx, event).await {
        Ok(()) => {
            tx.execute("RELEASE SAVEPOINT apply_one").await?;
        }
        Err(ApplyError::Poison(reason)) => {
            tx.execute("ROLLBACK TO SAVEPOINT apply_one").await?;
            quarantine(tx, projection.name(), event, &reason).await?;
        }
        Err(ApplyError::Other(e)) => return Err(e),
    }
    Ok(())
}

async fn quarantine(
    tx: &mut Transaction<'static, Any>,
    consumer: &str,
    event: &RecordedEvent,
    reason: &str,
) -> Result<(), Error> {
    tracing::error!(
        alert = "poison_event",
        consumer,
        position = event.position,
        event_id = %event.event_id,
        event_type = %event.event_type,
        reason,
        "event quarantined: the projection could not apply it"
    );
    sqlx::query(
        "INSERT INTO quarantine (consumer, position, event_id, reason, at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (consumer, position) DO NOTHING",
    )
    .bind(consumer)
    .bind(event.position)
    .bind(&event.event_id)
    .bind(reason)
    .bind(format_time(crate::clock::now()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// How far a running consumer has got, for read-your-writes waits.
#[derive(Clone, Debug)]
pub struct Progress {
    /// The cursor of the last event the consumer has applied (or moved past).
    rx: watch::Receiver<Cursor>,
}

impl Progress {
    pub fn channel() -> (watch::Sender<Cursor>, Progress) {
        let (tx, rx) = watch::channel(Cursor::START);
        (tx, Progress { rx })
    }

    pub fn current(&self) -> Cursor {
        *self.rx.borrow()
    }

    /// Resolves when the consumer next moves on (never, once it stopped).
    pub async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Waits until the consumer has passed `cursor`; false on timeout.
    pub async fn wait_for(&self, cursor: Cursor, timeout: Duration) -> bool {
        let mut rx = self.rx.clone();
        tokio::time::timeout(timeout, rx.wait_for(|c| *c >= cursor))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// Runs a projection in this process, woken by local commits and, for
/// commits made by other processes, by polling.
pub async fn run_local(
    log: EventLog,
    projection: Arc<dyn Projection>,
    progress: watch::Sender<Cursor>,
    poll: Duration,
    shutdown: CancellationToken,
) {
    let mut commits = log.subscribe_commits();
    let mut deferred = (Cursor::START, Deferred::default());
    loop {
        match log.catch_up_local(projection.as_ref(), &mut deferred).await {
            Ok(at) => advance_progress(&progress, at),
            Err(e) => {
                tracing::warn!(consumer = projection.name(), error = %e, "projection catch-up failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        tokio::select! {
            _ = commits.changed() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Sets a consumer's progress to `at`, waking the waiters when it moved on.
pub fn advance_progress(progress: &watch::Sender<Cursor>, at: Cursor) {
    progress.send_if_modified(|c| {
        let moved = at > *c;
        *c = at;
        moved
    });
}

/// Events a consumer has read but not applied yet, because it handles none
/// of them. Applying such a batch only moves the checkpoint, but that is a
/// commit for every consumer after every commit anywhere in the log (most
/// events concern one or two consumers; on SQLite all of them share one
/// writer). So they wait for the next batch the consumer handles, or until
/// the run is long or old enough. Losing them costs reading them again.
#[derive(Default)]
pub struct Deferred {
    /// The events read and not applied, in commit order.
    events: Vec<RecordedEvent>,
    /// Where they sit on the stream; none when read from the log.
    span: Option<StreamSpan>,
    /// When the first of them was deferred; none: nothing deferred.
    since: Option<Instant>,
}

/// A deferred run this long, or this old, is applied.
const DEFERRED_EVENTS: usize = 1000;
const DEFERRED_FOR: Duration = Duration::from_secs(1);

impl Deferred {
    /// Adds a batch (read after the deferred ones); true when the run,
    /// batch included, is to be applied now: the batch holds events the
    /// projection handles, or the run is due.
    pub fn add(
        &mut self,
        projection: &dyn Projection,
        events: Vec<RecordedEvent>,
        span: Option<StreamSpan>,
    ) -> bool {
        let handled = events.iter().any(|e| projection.handles(e));
        self.span = match (self.events.is_empty(), self.span, span) {
            (false, Some(run), Some(batch)) => Some(StreamSpan {
                after: run.after,
                last_sequence: batch.last_sequence.or(run.last_sequence),
            }),
            (_, _, span) => span,
        };
        self.events.extend(events);
        self.since.get_or_insert_with(Instant::now);
        handled || self.due()
    }

    pub fn due(&self) -> bool {
        !self.events.is_empty()
            && (self.events.len() >= DEFERRED_EVENTS || self.due_in() == Some(Duration::ZERO))
    }

    /// How long until the run is due (None when there is none).
    pub fn due_in(&self) -> Option<Duration> {
        self.since
            .map(|since| DEFERRED_FOR.saturating_sub(since.elapsed()))
    }

    /// The last event read.
    pub fn last(&self) -> Option<Cursor> {
        self.events.last().map(|e| e.cursor())
    }

    /// The run to apply: its events, and where it sits on the stream.
    pub fn take(&mut self) -> (Vec<RecordedEvent>, Option<StreamSpan>) {
        let run = std::mem::take(self);
        (run.events, run.span)
    }
}

impl EventLog {
    /// [`EventLog::catch_up`] for a consumer running in this process,
    /// deferring the batches it only skips. `deferred` holds the stored
    /// checkpoint its events follow.
    async fn catch_up_local(
        &self,
        projection: &dyn Projection,
        (stored, deferred): &mut (Cursor, Deferred),
    ) -> Result<Cursor, Error> {
        let now_stored = self.checkpoint(projection.name()).await?;
        if now_stored != *stored {
            // Moved by someone else (a reset, say): start from it.
            (*stored, *deferred) = (now_stored, Deferred::default());
        }
        let mut at = deferred.last().unwrap_or(*stored);
        loop {
            let events = self.read_after(at, 1000).await?;
            let Some(last) = events.last().map(|e| e.cursor()) else {
                break;
            };
            at = last;
            if deferred.add(projection, events, None) {
                *stored = self.apply_batch(projection, &deferred.take().0).await?;
            }
        }
        if deferred.due() {
            *stored = self.apply_batch(projection, &deferred.take().0).await?;
        }
        Ok(at)
    }
}
