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
    pub tx: i64,
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
    pub user: String,
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
    pub actor: Actor,
    pub correlation_id: String,
    pub causation_id: Option<String>,
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
    pub event_type: String,
    pub schema_version: i64,
    pub payload: serde_json::Value,
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
    pub position: i64,
    pub tx: i64,
    pub stream_type: String,
    pub stream_id: String,
    pub version: i64,
    pub event_id: String,
    pub event_type: String,
    pub schema_version: i64,
    /// RFC 3339, UTC, microseconds: the exact text that was hashed.
    pub occurred_at: String,
    pub actor: Actor,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub payload: serde_json::Value,
    /// The payload exactly as stored (and hashed).
    #[serde(skip)]
    #[schemars(skip)]
    pub payload_text: String,
    pub prev_hash: String,
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
