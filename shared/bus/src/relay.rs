//! The relay: log → JetStream, exactly once and in order.
//!
//! Every publish carries `Nats-Msg-Id` = event id (a republish is dropped as
//! a duplicate) and `Nats-Expected-Last-Sequence` (JetStream refuses a
//! publish that would land after a gap, so a pipelined batch that fails half
//! way never leaves the stream out of order). The relay's position is the
//! stream's own last message: after any error, or when the stream has fewer
//! messages than the relay last saw (a NATS restart that lost unsynced
//! writes, or a wiped store), it reads the stream's tail and resumes there.
//!
//! Several relays may run (replicas for availability); one leads, holding a
//! PostgreSQL advisory lock, and the others wait. The expected-sequence check
//! keeps the stream right even if two briefly overlap (a leader cut off from
//! the database); the lock only saves them from fighting.

use std::time::Duration;

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use sqlx::{pool::PoolConnection, Any};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use verkosto_eventlog::{Cursor, DbKind, EventLog, RecordedEvent};

use crate::wire::{decode, encode, subject_for, CURSOR_HEADER};
use crate::{ensure_stream, BusError, StreamSettings};

/// The relay's checkpoint name in the log database (for lag metrics).
pub const RELAY_CHECKPOINT: &str = "relay";

/// Where the relay stands, for `/metrics` and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayStatus {
    /// The last event known to be on the stream.
    pub published: Cursor,
    /// The stream's last sequence number, as the relay last saw it.
    pub stream_sequence: u64,
    /// How many times the relay found the stream behind and rewound.
    pub rewinds: u64,
    /// Whether this relay holds the lead (the others stand by).
    pub leading: bool,
}

/// The advisory lock key of the leading relay ("verkosto-relay" as bytes).
const RELAY_LOCK: i64 = 0x7665_726b_7265_6c61;

pub struct Relay {
    /// The log it publishes from, in commit order.
    log: EventLog,
    /// Where it publishes.
    js: jetstream::Context,
    /// The stream it publishes to, and creates when it is missing.
    settings: StreamSettings,
    /// `None` until the relay has read the stream's tail.
    position: Option<(Cursor, u64)>,
    /// Where it stands, watched by `/metrics` and tests.
    status: watch::Sender<RelayStatus>,
    /// Most events read from the log and published in one pipelined batch.
    batch: usize,
    /// The position last written to the relay's checkpoint, and when.
    stored: (Cursor, tokio::time::Instant),
}

/// How often the relay's checkpoint is written while it publishes. The
/// relay resumes from the stream's tail, never from it: the checkpoint
/// only shows its lag, so it need not cost a commit per batch.
const STORE_EVERY: Duration = Duration::from_secs(1);

impl Relay {
    pub fn new(log: EventLog, js: jetstream::Context, settings: StreamSettings) -> Relay {
        Relay {
            log,
            js,
            settings,
            position: None,
            status: watch::channel(RelayStatus::default()).0,
            batch: 256,
            stored: (Cursor::START, tokio::time::Instant::now()),
        }
    }

    pub fn status(&self) -> watch::Receiver<RelayStatus> {
        self.status.subscribe()
    }

    /// Runs until `shutdown`: takes the lead, publishes what is pending,
    /// then polls.
    pub async fn run(mut self, poll: Duration, shutdown: CancellationToken) {
        let mut commits = self.log.subscribe_commits();
        let mut backoff = Duration::from_millis(50);
        let mut last_check = tokio::time::Instant::now();
        let mut lead: Option<Lead> = None;
        loop {
            if lead.is_none() {
                match Lead::try_take(&self.log).await {
                    Ok(Some(taken)) => {
                        tracing::info!("relay: leading");
                        // Another relay may have published meanwhile.
                        self.position = None;
                        lead = Some(taken);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "relay: cannot ask for the lead"),
                }
                self.status.send_modify(|s| s.leading = lead.is_some());
                if lead.is_none() {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = shutdown.cancelled() => return,
                    }
                }
            }
            // Now and then, check the stream even when idle: it may have
            // lost messages while the relay had nothing to publish. And
            // check that the lead's connection is still there.
            if last_check.elapsed() > Duration::from_secs(1) {
                last_check = tokio::time::Instant::now();
                if let Some(l) = lead.as_mut() {
                    if let Err(e) = l.confirm().await {
                        tracing::warn!(error = %e, "relay: lost the lead's connection");
                        lead = None;
                        continue;
                    }
                }
                if let Err(e) = self.check_stream().await {
                    tracing::warn!(error = %e, "relay: stream check failed");
                    self.position = None;
                }
            }
            match self.publish_pending().await {
                Ok(_) => backoff = Duration::from_millis(50),
                Err(e) => {
                    tracing::warn!(error = %e, "relay: publish failed; will resync with the stream");
                    self.position = None;
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            }
            tokio::select! {
                _ = commits.changed() => {}
                _ = tokio::time::sleep(poll) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Publishes every readable event not yet on the stream. Returns how
    /// many were published.
    pub async fn publish_pending(&mut self) -> Result<usize, BusError> {
        let mut total = 0;
        loop {
            let (cursor, seq) = match self.position {
                Some(p) => p,
                None => self.resync().await?,
            };
            let events = self.log.read_after(cursor, self.batch as i64).await?;
            if events.is_empty() {
                self.store_checkpoint(cursor, seq).await?;
                return Ok(total);
            }
            let (last, last_seq) = self.publish_batch(&events, seq).await?;
            fail::fail_point!("relay-before-checkpoint");
            self.position = Some((last, last_seq));
            self.status.send_modify(|s| {
                s.published = last;
                s.stream_sequence = last_seq;
            });
            if self.stored.1.elapsed() >= STORE_EVERY {
                self.store_checkpoint(last, last_seq).await?;
            }
            total += events.len();
        }
    }

    /// Writes the relay's checkpoint, when it has moved.
    async fn store_checkpoint(&mut self, published: Cursor, seq: u64) -> Result<(), BusError> {
        if published != self.stored.0 {
            self.log
                .store_checkpoint(RELAY_CHECKPOINT, published, seq as i64)
                .await?;
            self.stored = (published, tokio::time::Instant::now());
        }
        Ok(())
    }

    /// Pipelines a batch: sends every publish, then awaits the acks in order.
    async fn publish_batch(
        &self,
        events: &[RecordedEvent],
        mut seq: u64,
    ) -> Result<(Cursor, u64), BusError> {
        let mut acks = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            let message = PublishMessage::build()
                .payload(encode(event).map_err(BusError::nats)?)
                .message_id(&event.event_id)
                .expected_last_sequence(seq + i as u64)
                .header(CURSOR_HEADER, event.cursor().to_string().as_str())
                .header("Verkosto-Event-Type", event.event_type.as_str());
            let ack = self
                .js
                .send_publish(subject_for(&event.stream_type, &event.stream_id), message)
                .await
                .map_err(BusError::nats)?;
            acks.push(ack);
        }
        let mut last = None;
        for (event, ack) in events.iter().zip(acks) {
            match ack.await {
                Ok(ack) if ack.duplicate => {
                    // Already on the stream (an earlier attempt got through):
                    // our view of the stream is stale.
                    return Err(BusError::Nats(format!(
                        "event {} was already on the stream",
                        event.event_id
                    )));
                }
                Ok(ack) => {
                    seq = ack.sequence;
                    last = Some(event.cursor());
                }
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                    return Err(BusError::Nats(
                        "stream is not where the relay left it".into(),
                    ))
                }
                Err(e) => return Err(BusError::nats(e)),
            }
        }
        Ok((last.expect("batch is not empty"), seq))
    }

    /// Reads the stream's tail and takes it as the relay's position: its
    /// last message that the log confirms. Messages after that one are not
    /// the relay's (forged by someone holding stream credentials): the
    /// consumers refuse them, and the relay publishes after them.
    async fn resync(&mut self) -> Result<(Cursor, u64), BusError> {
        let stream = ensure_stream(&self.js, &self.settings).await?;
        let info = stream.get_info().await.map_err(BusError::nats)?;
        let last_seq = info.state.last_sequence;
        let mut cursor = Cursor::START;
        let mut seq = last_seq;
        while info.state.messages > 0 && seq >= info.state.first_sequence.max(1) {
            let msg = match stream.get_raw_message(seq).await {
                Ok(msg) => Some(msg),
                // Deleted from the stream (by someone with the rights to).
                Err(e)
                    if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
                {
                    None
                }
                Err(e) => return Err(BusError::nats(e)),
            };
            if let Some(event) = msg.and_then(|m| decode(&m.payload).ok()) {
                if self.log.confirms(&event).await? {
                    cursor = event.cursor();
                    break;
                }
            }
            tracing::error!(
                alert = "forged_message",
                stream_sequence = seq,
                "relay: a message on the stream is not the log's; publishing after it"
            );
            seq -= 1;
        }
        let before = *self.status.borrow();
        if before.published > cursor || before.stream_sequence > last_seq {
            tracing::warn!(
                was = %before.published,
                now = %cursor,
                "relay: the stream lost messages; republishing from its tail"
            );
            self.status.send_modify(|s| s.rewinds += 1);
        }
        self.status.send_modify(|s| {
            s.published = cursor;
            s.stream_sequence = last_seq;
        });
        self.position = Some((cursor, last_seq));
        Ok((cursor, last_seq))
    }

    /// Compares the stream's last sequence with what the relay last saw.
    async fn check_stream(&mut self) -> Result<(), BusError> {
        let Some((_, seq)) = self.position else {
            return Ok(());
        };
        let stream = ensure_stream(&self.js, &self.settings).await?;
        let info = stream.get_info().await.map_err(BusError::nats)?;
        if info.state.last_sequence != seq {
            self.position = None;
        }
        Ok(())
    }
}

/// The relay's lead: a session-level advisory lock, held by one pooled
/// connection for as long as it lives. PostgreSQL frees it when the
/// connection or the process dies, so a standby takes over.
struct Lead {
    /// The connection holding the lock; none on SQLite, where the one
    /// process leads without a lock.
    connection: Option<PoolConnection<Any>>,
}

impl Lead {
    async fn try_take(log: &EventLog) -> Result<Option<Lead>, BusError> {
        if log.db().kind() != DbKind::Postgres {
            // One process, one relay.
            return Ok(Some(Lead { connection: None }));
        }
        let mut connection = log
            .db()
            .writer()
            .acquire()
            .await
            .map_err(verkosto_eventlog::Error::from)?;
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(RELAY_LOCK)
            .fetch_one(&mut *connection)
            .await
            .map_err(verkosto_eventlog::Error::from)?;
        Ok(taken.then_some(Lead {
            connection: Some(connection),
        }))
    }

    async fn confirm(&mut self) -> Result<(), BusError> {
        if let Some(c) = self.connection.as_mut() {
            sqlx::query("SELECT 1")
                .execute(&mut **c)
                .await
                .map_err(verkosto_eventlog::Error::from)?;
        }
        Ok(())
    }
}

impl Drop for Lead {
    fn drop(&mut self) {
        // Never hand a connection that may still hold the lock back to the
        // pool: close it, which frees the lock.
        if let Some(c) = self.connection.take() {
            drop(c.detach());
        }
    }
}
