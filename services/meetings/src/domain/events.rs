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
    /// The category of client data the note holds: consent to it decides who
    /// reads the note.
    pub category: Category,
    /// What was noted (at most 20 000 characters).
    pub text: String,
}

/// An action item of the minutes: becomes one task for `assignee`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionItem {
    /// Unique in the minutes; with the meeting id it names the one task the
    /// item becomes.
    pub id: String,
    /// What is to be done (at most 2000 characters): the task's description.
    pub description: String,
    /// The category of client data it concerns, and its task's.
    pub category: Category,
    /// The member agency that is to do it: its task is assigned there.
    pub assignee: String,
    /// The day it should be done by, if any: its task's due date.
    #[serde(default)]
    pub due: Option<NaiveDate>,
}

/// The minutes' content, as saved and as published.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Minutes {
    /// What was said, note by note, each in its category.
    #[serde(default)]
    pub notes: Vec<Note>,
    /// Decisions count as category `meetings`.
    #[serde(default)]
    pub decisions: Vec<String>,
    /// What was agreed to be done, each by one agency: each becomes a task once
    /// published.
    #[serde(default)]
    pub action_items: Vec<ActionItem>,
}
/// Events of the `meeting` stream (its id is the meeting id).
///
/// `ClientAbsent` and `MinutesPublished` are consumed by the tasks service:
/// their names and fields are a contract.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum MeetingEvent {
    /// The lead scheduled a network meeting of the case.
    MeetingScheduled {
        /// The meeting's id (`meeting-` and a UUIDv7 in hex), the stream's id
        /// too.
        meeting_id: String,
        /// The case whose network meets.
        case_id: String,
        /// The case's lead agency: its facilitator runs the meeting, alone
        /// changes it and writes the minutes.
        lead_agency: String,
        /// What the meeting is about, as the lead wrote it (client data of the
        /// category `meetings`).
        title: String,
        /// When it starts.
        starts_at: DateTime<Utc>,
        /// When it ends: after it starts.
        ends_at: DateTime<Utc>,
        /// Where it is held: a place or an online link. Under a safety risk
        /// only readers allowed `contact` data see it.
        location: Option<String>,
        /// The lead included.
        participants: Vec<String>,
        /// Whether the client is to come: if attendance then records them
        /// absent, the lead gets a task.
        client_attends: bool,
        /// None: no interpreter is needed.
        interpreter_language: Option<String>,
        /// The agenda's items in order, as the lead wrote them (client data of
        /// the category `meetings`).
        agenda: Vec<String>,
        /// Why the meeting was set sooner than the interpreter lead time.
        lead_time_override_reason: Option<String>,
        /// When it was scheduled.
        at: DateTime<Utc>,
    },
    /// The lead moved the meeting (before it was held).
    MeetingRescheduled {
        /// The meeting moved.
        meeting_id: String,
        /// When it starts now.
        starts_at: DateTime<Utc>,
        /// When it ends now.
        ends_at: DateTime<Utc>,
        /// Why it was moved, as the lead wrote it.
        reason: String,
        /// Why the new time is sooner than the interpreter lead time, if it is.
        lead_time_override_reason: Option<String>,
        /// The calendar SEQUENCE after this change.
        sequence: u32,
        /// When it was moved.
        at: DateTime<Utc>,
    },
    /// The lead cancelled the meeting (before it was held).
    MeetingCancelled {
        /// The meeting cancelled.
        meeting_id: String,
        /// Why, as the lead wrote it.
        reason: String,
        /// The calendar SEQUENCE after the cancellation.
        sequence: u32,
        /// When it was cancelled.
        at: DateTime<Utc>,
    },
    /// The lead changed where the interpreter's booking stands.
    InterpreterBookingChanged {
        /// The meeting that needs the interpreter.
        meeting_id: String,
        /// Where the booking stands now.
        status: InterpreterBooking,
        /// When the lead set it.
        at: DateTime<Utc>,
    },
    /// A participant agency said whether it comes.
    RsvpGiven {
        /// The meeting answered.
        meeting_id: String,
        /// The participant agency that answered; its later answer replaces this
        /// one.
        agency: String,
        /// Whether it comes.
        response: RsvpResponse,
        /// What it added, e.g. who comes or why not.
        comment: Option<String>,
        /// When it answered.
        at: DateTime<Utc>,
    },
    /// The lead recorded who came: the meeting has been held.
    AttendanceRecorded {
        /// The meeting held.
        meeting_id: String,
        /// The participant agencies that came; a later record replaces this
        /// one.
        present: Vec<String>,
        /// Whether the client came.
        client_present: bool,
        /// When attendance was recorded: from then on the meeting has been
        /// held.
        at: DateTime<Utc>,
    },
    /// The client was to attend and did not: the lead agency gets a task to
    /// find out why. At most once per meeting.
    ClientAbsent {
        /// The meeting the client missed: the task's source.
        meeting_id: String,
        /// Its case: the task is in it.
        case_id: String,
        /// The case's lead agency: the task to find out why is its own.
        lead_agency: String,
        /// When the meeting began: the task names the day and is due two days
        /// later.
        starts_at: DateTime<Utc>,
        /// When the absence was recorded.
        at: DateTime<Utc>,
    },
    /// The lead's working copy of the minutes.
    MinutesSaved {
        /// The meeting the minutes are of.
        meeting_id: String,
        /// The whole working copy, replacing the one saved before.
        minutes: Minutes,
        /// When it was saved.
        at: DateTime<Utc>,
    },
    /// The saved minutes became revision `revision`; carries all of its
    /// action items (each becomes exactly one task).
    MinutesPublished {
        /// The meeting the minutes are of: with each item's id, the source of
        /// its task.
        meeting_id: String,
        /// The meeting's case: the tasks are in it.
        case_id: String,
        /// The case's lead agency: tasks declined or let go overdue come back
        /// to it.
        lead_agency: String,
        /// The revision's number: 1 first, one more for each correction.
        revision: u32,
        /// Every action item of the revision; one republished in a correction
        /// keeps the task it made.
        action_items: Vec<ActionItem>,
        /// When it was published.
        at: DateTime<Utc>,
    },
    /// A participant agency approved the latest revision of the minutes.
    MinutesApproved {
        /// The meeting the minutes are of.
        meeting_id: String,
        /// The revision approved: the latest one then.
        revision: u32,
        /// The participant agency that approved it.
        agency: String,
        /// When it approved.
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
