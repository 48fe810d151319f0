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

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::{self, stream};

/// Errors talking to NATS.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("nats: {0}")]
    Nats(String),
    /// The events stream is not there (yet): the relay makes it.
    #[error("the events stream does not exist (the relay creates it)")]
    NoStream,
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
    /// The JetStream stream's name (default `VERKOSTO_EVENTS`).
    pub name: String,
    /// How many servers keep a copy of each message (1 on a single server).
    pub replicas: usize,
    /// How long a message stays: the log is the truth, and a consumer
    /// further behind reads the rest from it.
    pub max_age: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            name: STREAM_NAME.to_string(),
            replicas: 1,
            max_age: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// Who this process is to NATS, and which servers it trusts. Each process
/// connects as its own user, whom the server allows only the subjects it
/// needs (see `deploy/nats/`): only the relay may publish events.
#[derive(Clone, Default)]
pub struct NatsAccess {
    /// The NATS user this process connects as; none: anonymous (tests, dev).
    pub user: Option<String>,
    /// Never printed (see the `Debug` below).
    pub password: Option<String>,
    /// CA certificate(s) of the servers (PEM): with it, TLS is required.
    pub ca_file: Option<PathBuf>,
    /// This process's certificate and key (PEM), for servers that ask.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

impl std::fmt::Debug for NatsAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsAccess")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<secret>"))
            .field("ca_file", &self.ca_file)
            .field("client_cert", &self.client_cert)
            .finish()
    }
}

/// Connects to NATS and returns a JetStream context. `url` may list the
/// servers of a cluster, separated by commas.
pub async fn connect(url: &str, access: &NatsAccess) -> Result<jetstream::Context, BusError> {
    let servers: Vec<&str> = url
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let mut options = async_nats::ConnectOptions::new()
        .name("verkosto")
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5));
    if let Some(user) = &access.user {
        options =
            options.user_and_password(user.clone(), access.password.clone().unwrap_or_default());
    }
    if let Some(ca) = &access.ca_file {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let Some((cert, key)) = &access.client_cert {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    let client = options.connect(servers).await.map_err(BusError::nats)?;
    let mut js = jetstream::new(client);
    js.set_timeout(Duration::from_secs(5));
    Ok(js)
}

/// The events stream as the relay keeps it: created when it does not exist
/// (after a wipe, too), its retention brought up to the settings.
pub async fn ensure_stream(
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<stream::Stream, BusError> {
    let config = stream::Config {
        name: settings.name.clone(),
        subjects: vec![format!("{SUBJECT_PREFIX}.>")],
        storage: stream::StorageType::File,
        num_replicas: settings.replicas,
        // Republishing after a crash is deduplicated by event id within
        // this window (JetStream wants it no longer than the retention).
        duplicate_window: settings.max_age.min(Duration::from_secs(600)),
        max_age: settings.max_age,
        allow_direct: true,
        ..Default::default()
    };
    let stream = js
        .get_or_create_stream(config.clone())
        .await
        .map_err(BusError::nats)?;
    if stream.cached_info().config.max_age == config.max_age {
        return Ok(stream);
    }
    // Made by an older version, or with other limits.
    js.update_stream(config).await.map_err(BusError::nats)?;
    open_stream(js, settings).await
}

/// The events stream, for reading. Consumers may not create it (their NATS
/// user may not): until the relay has, they wait.
pub async fn open_stream(
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<stream::Stream, BusError> {
    js.get_stream(&settings.name)
        .await
        .map_err(|e| match e.kind() {
            jetstream::context::GetStreamErrorKind::JetStream(j)
                if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
            {
                BusError::NoStream
            }
            _ => BusError::nats(e),
        })
}
