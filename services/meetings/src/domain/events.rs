//! The events of the `meeting` stream, and the values they carry.

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use verkosto_policy::Category;

/// Whether the interpreter has been booked.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, PartialOrd, Ord,
)]
#[serde(rename_all = "snake_case")]
pub enum InterpreterBooking {
    #[default]
    NotBooked,
    Requested,
    Booked,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RsvpResponse {
    Accept,
    Decline,
}

/// A note of the minutes, in one category of client data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Note {
    pub category: Category,
    pub text: String,
}

/// An action item of the minutes: becomes one task for `assignee`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionItem {
    pub id: String,
    pub description: String,
    pub category: Category,
    pub assignee: String,
    #[serde(default)]
    pub due: Option<NaiveDate>,
}

/// The minutes' content, as saved and as published.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Minutes {
    #[serde(default)]
    pub notes: Vec<Note>,
    /// Decisions count as category `meetings`.
    #[serde(default)]
    pub decisions: Vec<String>,
    #[serde(default)]
    pub action_items: Vec<ActionItem>,
}
/// Events of the `meeting` stream (its id is the meeting id).
///
/// `ClientAbsent` and `MinutesPublished` are consumed by the tasks service:
/// their names and fields are a contract.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum MeetingEvent {
    MeetingScheduled {
        meeting_id: String,
        case_id: String,
        lead_agency: String,
        title: String,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
        location: Option<String>,
        /// The lead included.
        participants: Vec<String>,
        client_attends: bool,
        /// None: no interpreter is needed.
        interpreter_language: Option<String>,
        agenda: Vec<String>,
        /// Why the meeting was set sooner than the interpreter lead time.
        lead_time_override_reason: Option<String>,
        at: DateTime<Utc>,
    },
    MeetingRescheduled {
        meeting_id: String,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
        reason: String,
        lead_time_override_reason: Option<String>,
        /// The calendar SEQUENCE after this change.
        sequence: u32,
        at: DateTime<Utc>,
    },
    MeetingCancelled {
        meeting_id: String,
        reason: String,
        sequence: u32,
        at: DateTime<Utc>,
    },
    InterpreterBookingChanged {
        meeting_id: String,
        status: InterpreterBooking,
        at: DateTime<Utc>,
    },
    RsvpGiven {
        meeting_id: String,
        agency: String,
        response: RsvpResponse,
        comment: Option<String>,
        at: DateTime<Utc>,
    },
    AttendanceRecorded {
        meeting_id: String,
        present: Vec<String>,
        client_present: bool,
        at: DateTime<Utc>,
    },
    /// The client was to attend and did not: the lead agency gets a task to
    /// find out why. At most once per meeting.
    ClientAbsent {
        meeting_id: String,
        case_id: String,
        lead_agency: String,
        starts_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    /// The lead's working copy of the minutes.
    MinutesSaved {
        meeting_id: String,
        minutes: Minutes,
        at: DateTime<Utc>,
    },
    /// The saved minutes became revision `revision`; carries all of its
    /// action items (each becomes exactly one task).
    MinutesPublished {
        meeting_id: String,
        case_id: String,
        lead_agency: String,
        revision: u32,
        action_items: Vec<ActionItem>,
        at: DateTime<Utc>,
    },
    MinutesApproved {
        meeting_id: String,
        revision: u32,
        agency: String,
        at: DateTime<Utc>,
    },
}

verkosto_eventlog::domain_event!(
    MeetingEvent,
    sealed {
        MeetingScheduled: [
            "title",
            "location",
            "agenda[]",
            "interpreter_language",
            "lead_time_override_reason",
        ],
        MeetingRescheduled: ["reason", "lead_time_override_reason"],
        MeetingCancelled: ["reason"],
        RsvpGiven: ["comment"],
        MinutesSaved: [
            "minutes.notes[].text",
            "minutes.decisions[]",
            "minutes.action_items[].description",
        ],
        MinutesPublished: ["action_items[].description"],
    }
);

#[cfg(test)]
mod tests {
    use super::super::fixtures::{now, t, HEALTH, LEAD};
    use super::*;

    /// The tasks service reads these two as a tolerant reader: keep them.
    #[test]
    fn the_events_the_tasks_service_reads_keep_their_shape() {
        let published = MeetingEvent::MinutesPublished {
            meeting_id: "meeting-1".into(),
            case_id: "case-1".into(),
            lead_agency: LEAD.into(),
            revision: 2,
            action_items: vec![ActionItem {
                id: "a1".into(),
                description: "Book a health check".into(),
                category: Category::Health,
                assignee: HEALTH.into(),
                due: NaiveDate::from_ymd_opt(2026, 12, 1),
            }],
            at: now(),
        };
        assert_eq!(
            serde_json::to_value(&published).unwrap(),
            serde_json::json!({ "MinutesPublished": {
                "meeting_id": "meeting-1", "case_id": "case-1", "lead_agency": LEAD,
                "revision": 2, "at": "2026-11-01T10:00:00Z",
                "action_items": [{ "id": "a1", "description": "Book a health check",
                    "category": "health", "assignee": HEALTH, "due": "2026-12-01" }] } })
        );
        let absent = MeetingEvent::ClientAbsent {
            meeting_id: "meeting-1".into(),
            case_id: "case-1".into(),
            lead_agency: LEAD.into(),
            starts_at: t("2026-11-05T10:00:00Z"),
            at: now(),
        };
        assert_eq!(
            serde_json::to_value(&absent).unwrap(),
            serde_json::json!({ "ClientAbsent": {
                "meeting_id": "meeting-1", "case_id": "case-1", "lead_agency": LEAD,
                "starts_at": "2026-11-05T10:00:00Z", "at": "2026-11-01T10:00:00Z" } })
        );
    }
}
