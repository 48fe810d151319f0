//! Personal data in events: which fields of an event type hold the
//! client's text ([`PersonalData`]), whose key seals them ([`DataSubject`]),
//! and how an event is sealed when it is appended ([`Sealing`]).
//!
//! Sealing happens in the append, after the event has its id and before it
//! is hashed: the log, its hash chain and the stream only ever hold the
//! sealed text, and destroying the case's key (erasure) leaves every hash
//! valid. Aggregates and projections pass sealed strings along unopened;
//! only a read that answers a person opens them (`verkosto-guard`).
//! [`encode_events`](crate::encode_events) puts the three together.

use verkosto_keys::CaseKey;

/// Which fields of an event enum hold personal or narrative text: sealed
/// under the case's key when appended. Implemented by
/// [`domain_event!`](crate::domain_event).
pub trait PersonalData {
    /// Per event type (its serde name), the paths of its sealed fields
    /// within the variant: `title`, `agenda[]` (every element),
    /// `minutes.notes[].text`.
    const SEALED: &'static [(&'static str, &'static [&'static str])];

    /// The sealed paths of `event_type`; empty when it holds no text.
    fn sealed_paths(event_type: &str) -> &'static [&'static str] {
        Self::SEALED
            .iter()
            .find(|(t, _)| *t == event_type)
            .map(|(_, paths)| *paths)
            .unwrap_or(&[])
    }
}

/// The case an aggregate's personal data belongs to: that case's key seals
/// the aggregate's events, and erasing the case makes them unreadable.
pub trait DataSubject {
    /// The case of the aggregate with id `id`, in the state after a command
    /// (so the first event of a stream already tells it); none: the
    /// aggregate holds no client data. An event with sealed fields and no
    /// case is refused, never appended in the clear.
    fn data_subject<'a>(&'a self, id: &'a str) -> Option<&'a str> {
        let _ = id;
        None
    }
}

/// How one event is sealed when appended: its case's key, and its paths.
#[derive(Clone, Debug)]
pub struct Sealing {
    /// The data key of the case the event belongs to.
    pub key: CaseKey,
    /// The paths of the payload's fields to seal ([`PersonalData::SEALED`]).
    pub paths: &'static [&'static str],
}

impl PartialEq for Sealing {
    fn eq(&self, other: &Sealing) -> bool {
        self.key.case_id() == other.key.case_id() && self.paths == other.paths
    }
}
