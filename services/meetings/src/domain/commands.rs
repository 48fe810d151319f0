//! The commands of a meeting: one struct per command, so that each has
//! one function that decides it (in `aggregate.rs`).

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::events::{InterpreterBooking, Minutes, RsvpResponse};

/// The case's network as the guard saw it when the command was made.
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    /// The case the meeting belongs to.
    pub case_id: String,
    /// The case's lead agency.
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
    /// The new meeting's id, made by the endpoint.
    pub meeting_id: String,
    /// The case's network: participants must be members.
    pub network: Network,
    /// The caller's agency: only the lead schedules.
    pub by: String,
    /// What the meeting is about; not blank.
    pub title: String,
    /// When it starts: not in the past.
    pub starts_at: DateTime<Utc>,
    /// When it ends: after it starts.
    pub ends_at: DateTime<Utc>,
    /// Where it is held, if said: a place or an online link.
    pub location: Option<String>,
    /// Member agencies to take part; the lead is added.
    pub participants: Vec<String>,
    /// Whether the client is to come.
    pub client_attends: bool,
    /// The client's language when an interpreter is needed; none: no
    /// interpreter.
    pub interpreter_language: Option<String>,
    /// The agenda's items in order.
    pub agenda: Vec<String>,
    /// Why an interpreted meeting is set sooner than the lead time; a blank one
    /// is none.
    pub lead_time_override_reason: Option<String>,
    /// How far ahead an interpreted meeting must be set
    /// (`--interpreter-lead-time-hours`).
    pub lead_time: Duration,
    /// The command's time: "now" for the time rules.
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct RescheduleMeeting {
    /// The caller's agency: only the lead moves a meeting.
    pub by: String,
    /// The new start: not in the past.
    pub starts_at: DateTime<Utc>,
    /// The new end: after the start.
    pub ends_at: DateTime<Utc>,
    /// Why it is moved.
    pub reason: String,
    /// Why an interpreted meeting moves sooner than the lead time; a blank one
    /// is none.
    pub lead_time_override_reason: Option<String>,
    /// How far ahead an interpreted meeting must be set.
    pub lead_time: Duration,
    /// The command's time: "now" for the time rules.
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct CancelMeeting {
    /// The caller's agency: only the lead cancels.
    pub by: String,
    /// Why it is cancelled.
    pub reason: String,
    /// The command's time.
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct SetInterpreterBooking {
    /// The caller's agency: only the lead books the interpreter.
    pub by: String,
    /// Where the booking stands now.
    pub status: InterpreterBooking,
    /// The command's time.
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct GiveRsvp {
    /// The caller's agency: it must be a participant.
    pub agency: String,
    /// Whether it comes.
    pub response: RsvpResponse,
    /// What it adds, if anything.
    pub comment: Option<String>,
    /// The command's time.
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct RecordAttendance {
    /// The caller's agency: only the lead records attendance.
    pub by: String,
    /// The participant agencies that came.
    pub present: Vec<String>,
    /// Whether the client came.
    pub client_present: bool,
    /// The command's time.
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct SaveMinutes {
    /// The caller's agency: only the lead writes the minutes.
    pub by: String,
    /// The case's network: action items go to members only.
    pub network: Network,
    /// The whole working copy.
    pub minutes: Minutes,
    /// The command's time.
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct PublishMinutes {
    /// The caller's agency: only the lead publishes.
    pub by: String,
    /// The command's time.
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct ApproveMinutes {
    /// The caller's agency: it must be a participant.
    pub agency: String,
    /// The command's time.
    pub at: DateTime<Utc>,
}
