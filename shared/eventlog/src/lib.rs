//! The event log: Verkosto's single source of truth.
//!
//! Owns the `events` table (per-stream versions with optimistic concurrency,
//! a global position, the envelope, and a hash chain), the idempotency
//! answers stored beside the events they produced, consumer checkpoints, and
//! the integrity check. Two backends share every line of logic here: SQLite
//! (embedded) and PostgreSQL (distributed), through sqlx's `Any` driver.
//!
//! Never: update or delete an event; hand a consumer an event whose
//! transaction might still be overtaken by an earlier one; acknowledge a
//! write before it is durable.

mod aggregate;
pub mod bulk;
pub mod clock;
mod copies;
mod db;
mod event_meta;
mod hash;
mod idempotency;
mod integrity;
mod model;
mod projection;
mod sealing;
mod store;
mod upcast;

pub use aggregate::{
    decode_event, encode_event, encode_events, AggregateStore, ExecuteError, Execution,
    LoadedAggregate, Outcome,
};
#[doc(hidden)]
pub use cqrs_es as __cqrs_es;
pub use db::{Db, DbKind};
pub use event_meta::event_type_of;
pub use hash::GENESIS;
pub use idempotency::{request_hash, IdempotencyWrite, StoredAnswer};
pub use integrity::{BrokenLink, VerifyReport, SEALER};
pub use model::{
    format_time, Actor, Appended, CommandMeta, Cursor, ExpectedVersion, NewEvent, RecordedEvent,
};
pub use projection::{
    advance_progress, run_local, ApplyError, Deferred, Progress, Projection, StreamSpan,
};
pub use sealing::{DataSubject, PersonalData, Sealing};
pub use store::EventLog;
pub use upcast::{current_version, upcast, UpcastError, Upcaster, UPCASTERS};

/// Errors of the log. Callers map them to HTTP once, in verkosto-http.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("stream {stream} is not at the expected version {expected:?} (it is at {actual:?})")]
    Conflict {
        /// The stream, as `stream_type/stream_id`.
        stream: String,
        /// The version the writer expected.
        expected: ExpectedVersion,
        /// The stream's version found; none when unknown (a racing append took the version).
        actual: Option<i64>,
    },
    #[error("a concurrent request with the same idempotency key committed first")]
    IdempotencyRace,
    #[error("too much contention on {0}")]
    Busy(String),
    /// A run read from the stream starts past the consumer's checkpoint
    /// (the checkpoint was reset): the reader must start again from it.
    #[error("consumer {consumer}: the run read from the stream follows {after}, the checkpoint is at {checkpoint}")]
    StreamGap {
        /// The consumer's name.
        consumer: String,
        /// Where its checkpoint is.
        checkpoint: Cursor,
        /// Where the run read from the stream starts (after this cursor).
        after: Cursor,
    },
    /// The case was erased: its key is destroyed, nothing more is written for it.
    #[error("case {0} was erased")]
    Erased(String),
    #[error("key store: {0}")]
    Keys(verkosto_keys::KeyError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}
pub use sqlx::Error as SqlxError;
