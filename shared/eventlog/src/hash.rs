//! An event's hash: every envelope field and the payload, chained to the
//! stream's previous event. Written with the event by the store, checked
//! by `verify` and against stream copies.

use sha2::{Digest, Sha256};

use crate::model::RecordedEvent;

/// The `prev_hash` of a stream's first event, and the chain's start.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Every envelope field and the payload text, in a fixed order.
pub(crate) struct HashInput<'a> {
    /// The hash of the stream's previous event ([`GENESIS`] for the first).
    pub prev_hash: &'a str,
    /// The event's `stream_type`.
    pub stream_type: &'a str,
    /// The event's `stream_id`.
    pub stream_id: &'a str,
    /// The event's version in its stream.
    pub version: i64,
    /// The event's id.
    pub event_id: &'a str,
    /// The event's type name.
    pub event_type: &'a str,
    /// The payload's schema version.
    pub schema_version: i64,
    /// The `occurred_at` text as stored (RFC 3339, microseconds).
    pub occurred_at: &'a str,
    /// The actor's user id.
    pub actor_user: &'a str,
    /// The actor's agency id.
    pub actor_agency: &'a str,
    /// The event's `correlation_id`.
    pub correlation_id: &'a str,
    /// The event's `causation_id`, if any.
    pub causation_id: Option<&'a str>,
    /// The payload's JSON text exactly as stored.
    pub payload: &'a str,
}

pub(crate) fn event_hash(i: &HashInput<'_>) -> String {
    // A JSON array is an unambiguous encoding of the fields.
    let canonical = serde_json::to_string(&(
        i.prev_hash,
        i.stream_type,
        i.stream_id,
        i.version,
        i.event_id,
        i.event_type,
        i.schema_version,
        i.occurred_at,
        i.actor_user,
        i.actor_agency,
        i.correlation_id,
        i.causation_id,
        i.payload,
    ))
    .expect("strings and integers always serialise");
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

impl RecordedEvent {
    /// The hash its fields give: equal to `hash` unless it was altered.
    pub fn content_hash(&self) -> String {
        recompute(self)
    }
}

pub(crate) fn recompute(e: &RecordedEvent) -> String {
    event_hash(&HashInput {
        prev_hash: &e.prev_hash,
        stream_type: &e.stream_type,
        stream_id: &e.stream_id,
        version: e.version,
        event_id: &e.event_id,
        event_type: &e.event_type,
        schema_version: e.schema_version,
        occurred_at: &e.occurred_at,
        actor_user: &e.actor.user,
        actor_agency: &e.actor.agency,
        correlation_id: &e.correlation_id,
        causation_id: e.causation_id.as_deref(),
        payload: &e.payload_text,
    })
}
