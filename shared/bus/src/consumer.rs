//! Feeding a projection from JetStream.
//!
//! The projection's checkpoint lives in its own database transaction
//! (`EventLog::apply_batch`), so the JetStream consumer only needs to
//! deliver at least once: anything at or before the checkpoint is skipped.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy, consumer::DeliverPolicy};
use futures::{FutureExt, StreamExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use verkosto_eventlog::{Cursor, EventLog, Projection};

use crate::wire::decode;
use crate::{ensure_stream, BusError, StreamSettings};

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
        if let Err(e) = result {
            tracing::warn!(consumer = projection.name(), error = %e, "stream consumer failed; retrying");
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
    let stream = ensure_stream(js, settings).await?;
    let consumer = stream
        .get_or_create_consumer(
            projection.name(),
            pull::Config {
                durable_name: Some(projection.name().to_string()),
                deliver_policy: DeliverPolicy::All,
                ack_policy: AckPolicy::All,
                ack_wait: Duration::from_secs(30),
                max_ack_pending: 10_000,
                ..Default::default()
            },
        )
        .await
        .map_err(BusError::nats)?;
    let mut messages = consumer.messages().await.map_err(BusError::nats)?;
    loop {
        // Wait for one message, then take whatever else is already there.
        let first = messages
            .next()
            .await
            .ok_or_else(|| BusError::Nats("the consumer's message stream ended".into()))?
            .map_err(BusError::nats)?;
        let mut batch = vec![first];
        while batch.len() < 500 {
            match messages.next().now_or_never() {
                Some(Some(m)) => batch.push(m.map_err(BusError::nats)?),
                _ => break,
            }
        }
        let mut events = Vec::with_capacity(batch.len());
        for m in &batch {
            // An undecodable body is not skipped: the log still has the
            // event, so stop and let the operator look.
            events.push(
                decode(&m.payload).map_err(|e| {
                    BusError::Nats(format!("undecodable message on the stream: {e}"))
                })?,
            );
        }
        let at = log.apply_batch(projection, &events).await?;
        // AckPolicy::All: acknowledging the last acknowledges the batch.
        if let Some(last) = batch.last() {
            last.ack().await.map_err(BusError::nats)?;
        }
        progress.send_if_modified(|c| {
            let moved = at > *c;
            *c = at;
            moved
        });
    }
}
