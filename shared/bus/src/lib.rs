//! The shared stream: how events leave the log and reach other services.
//!
//! Embedded mode needs nothing here: consumers tail the local log and are
//! woken on commit (`verkosto_eventlog::run_local`). Distributed mode has
//! two halves:
//! - the [`relay`] tails the PostgreSQL log in commit order and publishes
//!   each event to JetStream, exactly once and in order;
//! - [`consumer`] feeds a projection from JetStream, with its checkpoint in
//!   the projection's own transaction.
//!
//! Never: publish out of log order, or leave a gap; trust the stream over
//! the log (the log is the truth, the stream a copy that can be rebuilt).

pub mod consumer;
pub mod relay;
mod wire;

pub use consumer::run_jetstream_projection;
pub use relay::{Relay, RelayStatus};
pub use wire::{subject_for, WireEvent, CURSOR_HEADER, STREAM_NAME, SUBJECT_PREFIX};

use std::time::Duration;

use async_nats::jetstream::{self, stream};

/// Errors talking to NATS.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("nats: {0}")]
    Nats(String),
    #[error(transparent)]
    Log(#[from] verkosto_eventlog::Error),
}

impl BusError {
    pub(crate) fn nats(e: impl std::fmt::Display) -> BusError {
        BusError::Nats(e.to_string())
    }
}

/// The stream's settings. `replicas` is 3 on a cluster.
#[derive(Clone, Debug)]
pub struct StreamSettings {
    pub name: String,
    pub replicas: usize,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            name: STREAM_NAME.to_string(),
            replicas: 1,
        }
    }
}

/// Connects to NATS and returns a JetStream context. `url` may list the
/// servers of a cluster, separated by commas.
pub async fn connect(url: &str) -> Result<jetstream::Context, BusError> {
    let servers: Vec<&str> = url
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let client = async_nats::ConnectOptions::new()
        .name("verkosto")
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .connect(servers)
        .await
        .map_err(BusError::nats)?;
    let mut js = jetstream::new(client);
    js.set_timeout(Duration::from_secs(5));
    Ok(js)
}

/// Creates the events stream if it does not exist (after a wipe, too).
pub async fn ensure_stream(
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<stream::Stream, BusError> {
    js.get_or_create_stream(stream::Config {
        name: settings.name.clone(),
        subjects: vec![format!("{SUBJECT_PREFIX}.>")],
        storage: stream::StorageType::File,
        num_replicas: settings.replicas,
        // Republishing after a crash is deduplicated by event id within this window.
        duplicate_window: Duration::from_secs(600),
        allow_direct: true,
        ..Default::default()
    })
    .await
    .map_err(BusError::nats)
}
