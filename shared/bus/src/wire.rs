//! What an event looks like on the stream. `proto/` documents it.

use serde::{Deserialize, Serialize};
use verkosto_eventlog::RecordedEvent;

pub const STREAM_NAME: &str = "VERKOSTO_EVENTS";
pub const SUBJECT_PREFIX: &str = "verkosto.events";
/// The event's place in the log's commit order, `tx.position`: for people
/// and tools; consumers and the relay trust only what the log confirms.
pub const CURSOR_HEADER: &str = "Verkosto-Cursor";

/// The message body: the envelope and the payload.
pub type WireEvent = RecordedEvent;

/// `verkosto.events.<stream type>.<stream id>`; ids are checked to be
/// subject-safe where they are made, and anything else is replaced here.
pub fn subject_for(stream_type: &str, stream_id: &str) -> String {
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' => c,
                _ => '_',
            })
            .collect()
    };
    format!("{SUBJECT_PREFIX}.{}.{}", safe(stream_type), safe(stream_id))
}

pub(crate) fn encode(event: &RecordedEvent) -> Result<bytes::Bytes, serde_json::Error> {
    #[derive(Serialize)]
    struct Out<'a> {
        #[serde(flatten)]
        /// The event's fields, at the top level of the body.
        event: &'a RecordedEvent,
        /// The payload exactly as stored and hashed (the event skips it).
        payload_text: &'a str,
    }
    Ok(serde_json::to_vec(&Out {
        event,
        payload_text: &event.payload_text,
    })?
    .into())
}

pub(crate) fn decode(body: &[u8]) -> Result<RecordedEvent, serde_json::Error> {
    #[derive(Deserialize)]
    struct In {
        #[serde(flatten)]
        /// The event's fields, read from the top level of the body.
        event: RecordedEvent,
        /// The payload exactly as stored and hashed, put back into the event.
        payload_text: String,
    }
    let In {
        mut event,
        payload_text,
    } = serde_json::from_slice(body)?;
    event.payload_text = payload_text;
    Ok(event)
}
