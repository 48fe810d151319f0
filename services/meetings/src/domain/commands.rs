//! The commands of a meeting: one struct per command, so that each has
//! one function that decides it (in `aggregate.rs`).

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::events::{InterpreterBooking, Minutes, RsvpResponse};

/// The case's network as the guard saw it when the command was made.
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    pub case_id: String,
    pub lead: String,
    /// Member agencies, the lead included.
    pub members: BTreeSet<String>,
}

#[derive(Clone, Debug)]
pub enum MeetingCommand {
    Schedule(ScheduleMeeting),
    Reschedule(RescheduleMeeting),
    Cancel(CancelMeeting),
    SetInterpreterBooking(SetInterpreterBooking),
    Rsvp(GiveRsvp),
    RecordAttendance(RecordAttendance),
    SaveMinutes(SaveMinutes),
    PublishMinutes(PublishMinutes),
    ApproveMinutes(ApproveMinutes),
}

#[derive(Clone, Debug)]
pub struct ScheduleMeeting {
    pub meeting_id: String,
    pub network: Network,
    pub by: String,
    pub title: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub location: Option<String>,
    pub participants: Vec<String>,
    pub client_attends: bool,
    pub interpreter_language: Option<String>,
    pub agenda: Vec<String>,
    pub lead_time_override_reason: Option<String>,
    pub lead_time: Duration,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct RescheduleMeeting {
    pub by: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub reason: String,
    pub lead_time_override_reason: Option<String>,
    pub lead_time: Duration,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct CancelMeeting {
    pub by: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct SetInterpreterBooking {
    pub by: String,
    pub status: InterpreterBooking,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct GiveRsvp {
    pub agency: String,
    pub response: RsvpResponse,
    pub comment: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct RecordAttendance {
    pub by: String,
    pub present: Vec<String>,
    pub client_present: bool,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct SaveMinutes {
    pub by: String,
    pub network: Network,
    pub minutes: Minutes,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct PublishMinutes {
    pub by: String,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct ApproveMinutes {
    pub agency: String,
    pub at: DateTime<Utc>,
}
