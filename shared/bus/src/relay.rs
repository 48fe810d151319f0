//! The relay: log → JetStream, exactly once and in order.
//!
//! Every publish carries `Nats-Msg-Id` = event id (a republish is dropped as
//! a duplicate) and `Nats-Expected-Last-Sequence` (JetStream refuses a
//! publish that would land after a gap, so a pipelined batch that fails half
//! way never leaves the stream out of order). The relay's position is the
//! stream's own last message: after any error, or when the stream has fewer
//! messages than the relay last saw (a NATS restart that lost unsynced
//! writes, or a wiped store), it reads the stream's tail and resumes there.

use std::time::Duration;

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use verkosto_eventlog::{Cursor, EventLog, RecordedEvent};

use crate::wire::{encode, parse_cursor, subject_for, CURSOR_HEADER};
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
}

pub struct Relay {
    log: EventLog,
    js: jetstream::Context,
    settings: StreamSettings,
    /// `None` until the relay has read the stream's tail.
    position: Option<(Cursor, u64)>,
    status: watch::Sender<RelayStatus>,
    batch: usize,
}

impl Relay {
    pub fn new(log: EventLog, js: jetstream::Context, settings: StreamSettings) -> Relay {
        Relay {
            log,
            js,
            settings,
            position: None,
            status: watch::channel(RelayStatus::default()).0,
            batch: 256,
        }
    }

    pub fn status(&self) -> watch::Receiver<RelayStatus> {
        self.status.subscribe()
    }

    /// Runs until `shutdown`: publishes what is pending, then polls.
    pub async fn run(mut self, poll: Duration, shutdown: CancellationToken) {
        let mut commits = self.log.subscribe_commits();
        let mut backoff = Duration::from_millis(50);
        let mut last_check = tokio::time::Instant::now();
        loop {
            // Now and then, check the stream even when idle: it may have
            // lost messages while the relay had nothing to publish.
            if last_check.elapsed() > Duration::from_secs(1) {
                last_check = tokio::time::Instant::now();
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
                return Ok(total);
            }
            let (last, last_seq) = self.publish_batch(&events, seq).await?;
            self.position = Some((last, last_seq));
            self.log
                .store_checkpoint(RELAY_CHECKPOINT, last, last_seq as i64)
                .await?;
            self.status.send_modify(|s| {
                s.published = last;
                s.stream_sequence = last_seq;
            });
            total += events.len();
        }
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

    /// Reads the stream's tail and takes it as the relay's position.
    async fn resync(&mut self) -> Result<(Cursor, u64), BusError> {
        let stream = ensure_stream(&self.js, &self.settings).await?;
        let info = stream.get_info().await.map_err(BusError::nats)?;
        let last_seq = info.state.last_sequence;
        let cursor = if info.state.messages == 0 {
            Cursor::START
        } else {
            let msg = stream
                .get_raw_message(last_seq)
                .await
                .map_err(BusError::nats)?;
            parse_cursor(Some(&msg.headers)).ok_or_else(|| {
                BusError::Nats(format!("message {last_seq} on the stream has no cursor"))
            })?
        };
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
