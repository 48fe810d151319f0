//! Feeding a projection from JetStream.
//!
//! The projection's checkpoint lives in its own database transaction
//! (`EventLog::apply_stream_batch`), with the stream sequence it reached, so
//! JetStream keeps no state for us: each process reads the stream with its
//! own ordered (ephemeral, unacknowledged) consumer, starting after the
//! stored sequence. Several processes of one service therefore each see
//! every event; the checkpoint's row lock lets exactly one of them apply it
//! and the others skip it as already applied.
//!
//! A message is applied only once the log confirms it
//! (`EventLog::verify_copies`): anyone who can publish to the stream could
//! forge one, and the consent guard is a projection like any other.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, consumer::DeliverPolicy};
use futures::{FutureExt, StreamExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use verkosto_eventlog::{
    advance_progress, Cursor, Deferred, EventLog, Projection, RecordedEvent, StreamSpan,
};

use crate::wire::decode;
use crate::{open_stream, BusError, StreamSettings};

/// Runs `projection` from the stream until `shutdown`; reconnects and
/// recreates its consumer after any error (the stream may have been wiped).
pub async fn run_jetstream_projection(
    log: EventLog,
    js: jetstream::Context,
    settings: StreamSettings,
    projection: Arc<dyn Projection>,
    progress: watch::Sender<Cursor>,
    shutdown: CancellationToken,
) {
    if let Ok(at) = log.checkpoint(projection.name()).await {
        progress.send_replace(at);
    }
    loop {
        let result = tokio::select! {
            r = consume(&log, &js, &settings, projection.as_ref(), &progress) => r,
            _ = shutdown.cancelled() => return,
        };
        match result {
            Err(BusError::NoStream) => {
                tracing::info!(
                    consumer = projection.name(),
                    "waiting for the relay to create the events stream"
                );
            }
            Err(e) => {
                tracing::warn!(consumer = projection.name(), error = %e, "stream consumer failed; retrying");
            }
            Ok(()) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

async fn consume(
    log: &EventLog,
    js: &jetstream::Context,
    settings: &StreamSettings,
    projection: &dyn Projection,
    progress: &watch::Sender<Cursor>,
) -> Result<(), BusError> {
    let stream = open_stream(js, settings).await?;
    // The stream holds the log in order, once each (the relay's promise), so
    // the message after the stored sequence is the first one not applied.
    // When the stream no longer holds that one (expired, or the stream was
    // wiped), the log gives what the stream lacks, first.
    let (mut checkpoint, sequence) = log.checkpoint_with_extra(projection.name()).await?;
    let state = stream.get_info().await.map_err(BusError::nats)?.state;
    if state.first_sequence > sequence as u64 + 1 || state.messages == 0 {
        checkpoint = log.catch_up(projection).await?;
        advance_progress(progress, checkpoint);
    }
    let deliver_policy = match sequence {
        s if s > 0 => DeliverPolicy::ByStartSequence {
            start_sequence: s as u64 + 1,
        },
        _ => DeliverPolicy::All,
    };
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            name: Some(format!(
                "{}-{}",
                projection.name(),
                uuid::Uuid::new_v4().simple()
            )),
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(BusError::nats)?;
    let mut messages = consumer.messages().await.map_err(BusError::nats)?;
    // The last event known to be the log's, read in order: every message
    // is checked against the log from here on.
    let mut verified = checkpoint;
    // Batches of events the projection does not handle wait, and are
    // applied with the next one it handles, or once due.
    let mut deferred = Deferred::default();
    loop {
        // Wait for one message, then take whatever else is already there.
        let next = match deferred.due_in() {
            None => messages.next().await,
            Some(wait) => match tokio::time::timeout(wait, messages.next()).await {
                Ok(next) => next,
                Err(_) => {
                    let (events, span) = deferred.take();
                    apply(log, projection, progress, &events, span).await?;
                    continue;
                }
            },
        };
        let first = next
            .ok_or_else(|| BusError::Nats("the consumer's message stream ended".into()))?
            .map_err(BusError::nats)?;
        let mut batch = vec![first];
        while batch.len() < 500 {
            match messages.next().now_or_never() {
                Some(Some(m)) => batch.push(m.map_err(BusError::nats)?),
                _ => break,
            }
        }
        let mut copies = Vec::with_capacity(batch.len());
        for m in &batch {
            match decode(&m.payload) {
                Ok(event) => copies.push(event),
                // Nobody's event: refused, and the consumer goes on (the
                // log still has every real one).
                Err(e) => log.refuse_copy(
                    projection.name(),
                    &format!("message {:?}", m.info().map(|i| i.stream_sequence).ok()),
                    &format!("undecodable: {e}"),
                ),
            }
        }
        let span = StreamSpan {
            after: verified,
            last_sequence: batch
                .last()
                .and_then(|m| m.info().ok().map(|i| i.stream_sequence)),
        };
        let events = log
            .verify_copies(projection.name(), verified, copies)
            .await?;
        let Some(last) = events.last().map(|e| e.cursor()) else {
            continue;
        };
        verified = last;
        if deferred.add(projection, events, Some(span)) {
            let (events, span) = deferred.take();
            apply(log, projection, progress, &events, span).await?;
        } else {
            // Nothing in it for this projection, and every event up to it
            // is the log's: its view is as current.
            advance_progress(progress, last);
        }
    }
}

/// Applies a run of events with its span. On a gap, this consumer ends and
/// the next starts at the checkpoint.
async fn apply(
    log: &EventLog,
    projection: &dyn Projection,
    progress: &watch::Sender<Cursor>,
    events: &[RecordedEvent],
    span: Option<StreamSpan>,
) -> Result<(), BusError> {
    let Some(span) = span else {
        // Only an empty run has no span.
        return Ok(());
    };
    let at = log.apply_stream_batch(projection, events, span).await?;
    advance_progress(progress, at);
    Ok(())
}
