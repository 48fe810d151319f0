//! The types that travel: what a command appends and what a reader gets back.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

/// A place in the log's commit order: `(tx, position)`. On PostgreSQL `tx` is
/// the writing transaction's id, so ordering by it follows commit visibility;
/// on SQLite it equals the position.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Cursor {
    /// The writing transaction's id on PostgreSQL; the position on SQLite.
    pub tx: i64,
    /// The event's position: the log's row id, unique and increasing.
    pub position: i64,
}

impl Cursor {
    pub const START: Cursor = Cursor { tx: 0, position: 0 };
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.tx, self.position)
    }
}

impl std::str::FromStr for Cursor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (tx, pos) = s.split_once('.').ok_or("cursor must be tx.position")?;
        Ok(Cursor {
            tx: tx.parse().map_err(|_| "bad cursor tx")?,
            position: pos.parse().map_err(|_| "bad cursor position")?,
        })
    }
}

/// Who did it: the user and the agency they acted for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Actor {
    /// The user's id (`system` for the service itself).
    pub user: String,
    /// The id of the agency the user acted for (`system` for the service itself).
    pub agency: String,
}

impl Actor {
    pub fn system() -> Actor {
        Actor {
            user: "system".into(),
            agency: "system".into(),
        }
    }
}

/// The envelope fields a command brings to every event it appends.
#[derive(Clone, Debug)]
pub struct CommandMeta {
    /// Who gives the command.
    pub actor: Actor,
    /// The request id (`X-Request-Id`) of an HTTP command; a fresh UUIDv7 otherwise.
    pub correlation_id: String,
    /// What caused the command (an event id for a reaction); none: a direct command.
    pub causation_id: Option<String>,
    /// When the command happened: every event's `occurred_at` (stored to the microsecond).
    pub occurred_at: DateTime<Utc>,
}

impl CommandMeta {
    pub fn new(actor: Actor) -> CommandMeta {
        CommandMeta {
            actor,
            correlation_id: uuid::Uuid::now_v7().to_string(),
            causation_id: None,
            // The log keeps microseconds: a payload's `at` taken from here is
            // then exactly the envelope's `occurred_at`.
            occurred_at: crate::clock::now().trunc_subsecs(6),
        }
    }
}

/// An event about to be appended.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// The event's type name (the enum variant).
    pub event_type: String,
    /// The version of the payload's schema for `event_type`.
    pub schema_version: i64,
    /// The event's data, in the clear: the append seals it.
    pub payload: serde_json::Value,
    /// The fields to seal, and the key; none: the event holds no client text.
    pub sealing: Option<crate::Sealing>,
}

/// What the writer expects the stream's current version to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// No check (still serialised per stream by the unique version key).
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must be at exactly this version.
    Exact(i64),
}

impl ExpectedVersion {
    pub fn matches(self, actual: i64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::Exact(v) => v == actual,
        }
    }
}

/// An event as stored, with its full envelope.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(
    title = "Envelope",
    description = "An event with its envelope, as stored in the log and published on the stream."
)]
pub struct RecordedEvent {
    /// The event's position in the log: unique and increasing, but not in
    /// commit order on PostgreSQL (see `tx`).
    pub position: i64,
    /// The writing transaction's id on PostgreSQL, the position on SQLite:
    /// the log's commit order is `(tx, position)`.
    pub tx: i64,
    /// The kind of aggregate the stream belongs to (`case`, `consent`, …).
    pub stream_type: String,
    /// The aggregate's id within its `stream_type`.
    pub stream_id: String,
    /// The event's number in its stream: 1, 2, … with no gap.
    pub version: i64,
    /// A UUIDv7 made when the event was appended; the stream message's `Nats-Msg-Id`.
    pub event_id: String,
    /// The event's type name, which says how to read `payload`.
    pub event_type: String,
    /// The version of `payload`'s schema for `event_type`; older payloads are
    /// upcast when read.
    pub schema_version: i64,
    /// RFC 3339, UTC, microseconds: the exact text that was hashed.
    pub occurred_at: String,
    /// Who caused it: the user and their agency (`system` for the service itself).
    pub actor: Actor,
    /// The request id of the HTTP command that caused it (a fresh UUIDv7 for
    /// other commands; a reaction keeps its cause's).
    pub correlation_id: String,
    /// What caused it: the id of the event a reaction answered, or a word for
    /// an internal cause; none: a direct command.
    pub causation_id: Option<String>,
    /// The event's data, as its `event_type` and `schema_version` define it.
    pub payload: serde_json::Value,
    /// The payload exactly as stored (and hashed).
    #[serde(skip)]
    #[schemars(skip)]
    pub payload_text: String,
    /// `hash` of the stream's previous event; 64 zeros for the first.
    pub prev_hash: String,
    /// SHA-256 (hex) of `prev_hash`, the other envelope fields and the payload
    /// text, in a fixed order.
    pub hash: String,
}

impl RecordedEvent {
    pub fn cursor(&self) -> Cursor {
        Cursor {
            tx: self.tx,
            position: self.position,
        }
    }

    pub fn occurred_at(&self) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&self.occurred_at)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }
}

/// The result of a successful append.
#[derive(Clone, Debug)]
pub struct Appended {
    /// The events appended, with their positions and hashes.
    pub events: Vec<RecordedEvent>,
    /// The stream's version after the append.
    pub version: i64,
}

impl Appended {
    /// The cursor of the last appended event (None for an empty append).
    pub fn last_cursor(&self) -> Option<Cursor> {
        self.events.last().map(RecordedEvent::cursor)
    }
}

/// Formats a timestamp the one way the log stores it.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}
