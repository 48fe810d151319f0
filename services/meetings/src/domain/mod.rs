//! The network meeting: scheduling, answers, attendance, minutes.
//!
//! One `meeting` stream per meeting. Commands carry `at` (the command's
//! time, "now" for every time rule) and, where a rule needs the case's
//! network, a [`Network`] snapshot taken from the consent guard's view.
//!
//! - `events.rs`: [`MeetingEvent`] and the values it carries (the minutes);
//! - `commands.rs`: [`MeetingCommand`], one struct per command;
//! - `rules.rs`: the time rules (past, order, the interpreter lead time, held);
//! - `minutes.rs`: the minutes' content and revision rules;
//! - `aggregate.rs`: the [`Meeting`] state, one function per command, `apply`.

mod aggregate;
mod commands;
mod events;
mod minutes;
mod rules;

pub use aggregate::{not_found, Attendance, Cancellation, Meeting, Reschedule, Rsvp};
pub use commands::{
    ApproveMinutes, CancelMeeting, GiveRsvp, MeetingCommand, Network, PublishMinutes,
    RecordAttendance, RescheduleMeeting, SaveMinutes, ScheduleMeeting, SetInterpreterBooking,
};
pub use events::{ActionItem, InterpreterBooking, MeetingEvent, Minutes, Note, RsvpResponse};
pub use minutes::Revision;

#[cfg(test)]
mod fixtures;
