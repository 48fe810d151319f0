//! The [`Meeting`] aggregate: its state, one function per command, and how
//! each event changes the state.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use verkosto_types::Refusal;

use super::commands::{
    ApproveMinutes, CancelMeeting, GiveRsvp, MeetingCommand, PublishMinutes, RecordAttendance,
    RescheduleMeeting, SaveMinutes, ScheduleMeeting, SetInterpreterBooking,
};
use super::events::{InterpreterBooking, MeetingEvent, Minutes, RsvpResponse};
use super::minutes::{check_minutes, next_revision, to_approve, Revision};
use super::rules::{check_not_held, check_times, override_reason};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rsvp {
    /// Whether the agency comes.
    pub response: RsvpResponse,
    /// What it added, if anything.
    pub comment: Option<String>,
    /// When it answered.
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attendance {
    /// The participant agencies that came.
    pub present: Vec<String>,
    /// Whether the client came.
    pub client_present: bool,
    /// When it was recorded.
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reschedule {
    /// The start it was moved to.
    pub starts_at: DateTime<Utc>,
    /// The end it was moved to.
    pub ends_at: DateTime<Utc>,
    /// Why it was moved.
    pub reason: String,
    /// Why sooner than the interpreter lead time, if it was.
    pub lead_time_override_reason: Option<String>,
    /// When it was moved.
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cancellation {
    /// Why the meeting was cancelled.
    pub reason: String,
    /// When it was cancelled.
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Meeting {
    /// The meeting's id; none until it is scheduled.
    pub id: Option<String>,
    /// The case whose network meets.
    pub case_id: String,
    /// The case's lead agency: its facilitator runs the meeting.
    pub lead_agency: String,
    /// What the meeting is about.
    pub title: String,
    /// When it starts, as last moved.
    pub starts_at: DateTime<Utc>,
    /// When it ends, as last moved.
    pub ends_at: DateTime<Utc>,
    /// Where it is held, if said.
    pub location: Option<String>,
    /// The agencies taking part, the lead included: they answer, and approve
    /// the minutes.
    pub participants: BTreeSet<String>,
    /// Whether the client is to come.
    pub client_attends: bool,
    /// The client's language when an interpreter is needed; none: no
    /// interpreter.
    pub interpreter_language: Option<String>,
    /// Where the interpreter's booking stands.
    pub interpreter_booking: InterpreterBooking,
    /// Why it was scheduled sooner than the interpreter lead time, if it was.
    pub lead_time_override_reason: Option<String>,
    /// The agenda's items in order.
    pub agenda: Vec<String>,
    /// When it was scheduled.
    pub scheduled_at: DateTime<Utc>,
    /// The calendar SEQUENCE: raised by each reschedule and by cancellation.
    pub sequence: u32,
    /// Every move, oldest first.
    pub reschedules: Vec<Reschedule>,
    /// Why and when it was cancelled; none: it was not.
    pub cancellation: Option<Cancellation>,
    /// Each participant's latest answer, by agency.
    pub rsvps: BTreeMap<String, Rsvp>,
    /// Who came, as last recorded; none: not held yet.
    pub attendance: Option<Attendance>,
    /// Whether the client's absence has made its task already (once per
    /// meeting).
    pub client_absence_reported: bool,
    /// The lead's working copy; None until first saved.
    pub draft: Option<Minutes>,
    /// The published revisions of the minutes, oldest first.
    pub revisions: Vec<Revision>,
    /// When the meeting last changed (the calendar's DTSTAMP).
    pub changed_at: DateTime<Utc>,
}

/// The answer for a meeting that does not exist or that the caller's
/// agency may not know of.
pub fn not_found(meeting_id: &str) -> Refusal {
    Refusal::unknown(format!("no meeting {meeting_id}"))
}

fn lead_only() -> Refusal {
    Refusal::not_allowed("only the lead agency's facilitator may do this")
}

impl Meeting {
    pub fn is_participant(&self, agency: &str) -> bool {
        self.participants.contains(agency)
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancellation.is_some()
    }

    fn check_lead(&self, by: &str) -> Result<(), Refusal> {
        if by == self.lead_agency {
            Ok(())
        } else {
            Err(lead_only())
        }
    }

    fn check_open(&self) -> Result<(), Refusal> {
        if self.is_cancelled() {
            Err(Refusal::conflict("the meeting is cancelled"))
        } else {
            Ok(())
        }
    }

    fn check_participant(&self, agency: &str) -> Result<(), Refusal> {
        if self.is_participant(agency) {
            Ok(())
        } else {
            Err(Refusal::not_allowed(format!(
                "{agency} is not a participant of this meeting"
            )))
        }
    }

    /// The latest published revision.
    pub fn latest(&self) -> Option<&Revision> {
        self.revisions.last()
    }

    /// The participants that have not approved the latest revision.
    pub fn awaiting_approval(&self) -> Vec<&String> {
        match self.latest() {
            Some(r) => self
                .participants
                .iter()
                .filter(|a| !r.approvals.contains_key(*a))
                .collect(),
            None => Vec::new(),
        }
    }

    fn id(&self) -> String {
        self.id.clone().unwrap_or_default()
    }

    /// The events `command` makes, or why it is refused.
    fn decide(&self, command: MeetingCommand) -> Result<Vec<MeetingEvent>, Refusal> {
        match command {
            MeetingCommand::Schedule(c) => self.schedule(c),
            MeetingCommand::Reschedule(c) => self.reschedule(c),
            MeetingCommand::Cancel(c) => self.cancel(c),
            MeetingCommand::SetInterpreterBooking(c) => self.set_interpreter_booking(c),
            MeetingCommand::Rsvp(c) => self.rsvp(c),
            MeetingCommand::RecordAttendance(c) => self.record_attendance(c),
            MeetingCommand::SaveMinutes(c) => self.save_minutes(c),
            MeetingCommand::PublishMinutes(c) => self.publish_minutes(c),
            MeetingCommand::ApproveMinutes(c) => self.approve_minutes(c),
        }
    }

    fn schedule(&self, c: ScheduleMeeting) -> Result<Vec<MeetingEvent>, Refusal> {
        let ScheduleMeeting {
            meeting_id,
            network,
            by,
            title,
            starts_at,
            ends_at,
            location,
            participants,
            client_attends,
            interpreter_language,
            agenda,
            lead_time_override_reason,
            lead_time,
            at,
        } = c;
        if self.id.is_some() {
            return Err(Refusal::conflict(format!("meeting {meeting_id} exists")));
        }
        if by != network.lead {
            return Err(lead_only());
        }
        if title.trim().is_empty() {
            return Err(Refusal::invalid("title", "must not be empty"));
        }
        check_times(
            starts_at,
            ends_at,
            interpreter_language.is_some(),
            lead_time_override_reason.as_deref(),
            lead_time,
            at,
        )?;
        for (i, agency) in participants.iter().enumerate() {
            if !network.members.contains(agency) {
                return Err(Refusal::invalid(
                    &format!("participants[{i}]"),
                    format!("{agency} is not a member of the case's network"),
                ));
            }
        }
        let mut all: BTreeSet<String> = participants.into_iter().collect();
        all.insert(network.lead.clone());
        Ok(vec![MeetingEvent::MeetingScheduled {
            meeting_id,
            case_id: network.case_id,
            lead_agency: network.lead,
            title,
            starts_at,
            ends_at,
            location,
            participants: all.into_iter().collect(),
            client_attends,
            interpreter_language,
            agenda,
            lead_time_override_reason: override_reason(lead_time_override_reason),
            at,
        }])
    }

    fn reschedule(&self, c: RescheduleMeeting) -> Result<Vec<MeetingEvent>, Refusal> {
        self.check_lead(&c.by)?;
        self.check_open()?;
        check_not_held(self.attendance.is_some())?;
        check_times(
            c.starts_at,
            c.ends_at,
            self.interpreter_language.is_some(),
            c.lead_time_override_reason.as_deref(),
            c.lead_time,
            c.at,
        )?;
        if c.starts_at == self.starts_at && c.ends_at == self.ends_at {
            return Ok(Vec::new());
        }
        Ok(vec![MeetingEvent::MeetingRescheduled {
            meeting_id: self.id(),
            starts_at: c.starts_at,
            ends_at: c.ends_at,
            reason: c.reason,
            lead_time_override_reason: override_reason(c.lead_time_override_reason),
            sequence: self.sequence + 1,
            at: c.at,
        }])
    }

    fn cancel(&self, c: CancelMeeting) -> Result<Vec<MeetingEvent>, Refusal> {
        self.check_lead(&c.by)?;
        self.check_open()?;
        check_not_held(self.attendance.is_some())?;
        Ok(vec![MeetingEvent::MeetingCancelled {
            meeting_id: self.id(),
            reason: c.reason,
            sequence: self.sequence + 1,
            at: c.at,
        }])
    }

    fn set_interpreter_booking(
        &self,
        c: SetInterpreterBooking,
    ) -> Result<Vec<MeetingEvent>, Refusal> {
        self.check_lead(&c.by)?;
        self.check_open()?;
        if self.interpreter_language.is_none() {
            return Err(Refusal::invalid(
                "status",
                "this meeting needs no interpreter",
            ));
        }
        if c.status == self.interpreter_booking {
            return Ok(Vec::new());
        }
        Ok(vec![MeetingEvent::InterpreterBookingChanged {
            meeting_id: self.id(),
            status: c.status,
            at: c.at,
        }])
    }

    fn rsvp(&self, c: GiveRsvp) -> Result<Vec<MeetingEvent>, Refusal> {
        self.check_participant(&c.agency)?;
        self.check_open()?;
        Ok(vec![MeetingEvent::RsvpGiven {
            meeting_id: self.id(),
            agency: c.agency,
            response: c.response,
            comment: c.comment,
            at: c.at,
        }])
    }

    fn record_attendance(&self, c: RecordAttendance) -> Result<Vec<MeetingEvent>, Refusal> {
        self.check_lead(&c.by)?;
        self.check_open()?;
        for (i, agency) in c.present.iter().enumerate() {
            if !self.is_participant(agency) {
                return Err(Refusal::invalid(
                    &format!("present[{i}]"),
                    format!("{agency} is not a participant of this meeting"),
                ));
            }
        }
        let present: BTreeSet<String> = c.present.into_iter().collect();
        let mut events = vec![MeetingEvent::AttendanceRecorded {
            meeting_id: self.id(),
            present: present.into_iter().collect(),
            client_present: c.client_present,
            at: c.at,
        }];
        // One follow-up per meeting, however often attendance is recorded.
        if self.client_attends && !c.client_present && !self.client_absence_reported {
            events.push(MeetingEvent::ClientAbsent {
                meeting_id: self.id(),
                case_id: self.case_id.clone(),
                lead_agency: self.lead_agency.clone(),
                starts_at: self.starts_at,
                at: c.at,
            });
        }
        Ok(events)
    }

    fn save_minutes(&self, c: SaveMinutes) -> Result<Vec<MeetingEvent>, Refusal> {
        self.check_lead(&c.by)?;
        self.check_open()?;
        check_minutes(&c.minutes, &c.network)?;
        if self.draft.as_ref() == Some(&c.minutes) {
            return Ok(Vec::new());
        }
        Ok(vec![MeetingEvent::MinutesSaved {
            meeting_id: self.id(),
            minutes: c.minutes,
            at: c.at,
        }])
    }

    fn publish_minutes(&self, c: PublishMinutes) -> Result<Vec<MeetingEvent>, Refusal> {
        self.check_lead(&c.by)?;
        self.check_open()?;
        let (draft, revision) = next_revision(self.draft.as_ref(), &self.revisions)?;
        Ok(vec![MeetingEvent::MinutesPublished {
            meeting_id: self.id(),
            case_id: self.case_id.clone(),
            lead_agency: self.lead_agency.clone(),
            revision,
            action_items: draft.action_items.clone(),
            at: c.at,
        }])
    }

    fn approve_minutes(&self, c: ApproveMinutes) -> Result<Vec<MeetingEvent>, Refusal> {
        self.check_participant(&c.agency)?;
        let Some(latest) = to_approve(&self.revisions, &c.agency)? else {
            return Ok(Vec::new());
        };
        Ok(vec![MeetingEvent::MinutesApproved {
            meeting_id: self.id(),
            revision: latest.revision,
            agency: c.agency,
            at: c.at,
        }])
    }
}

impl verkosto_eventlog::DataSubject for Meeting {
    /// A meeting belongs to its case (known from the first event on).
    fn data_subject<'a>(&'a self, _id: &'a str) -> Option<&'a str> {
        Some(self.case_id.as_str()).filter(|c| !c.is_empty())
    }
}

impl Aggregate for Meeting {
    const TYPE: &'static str = "meeting";
    type Command = MeetingCommand;
    type Event = MeetingEvent;
    type Error = Refusal;
    type Services = ();

    async fn handle(
        &mut self,
        command: MeetingCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Refusal> {
        if self.id.is_none() && !matches!(command, MeetingCommand::Schedule(_)) {
            return Err(Refusal::unknown("no such meeting"));
        }
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: MeetingEvent) {
        match event {
            MeetingEvent::MeetingScheduled {
                meeting_id,
                case_id,
                lead_agency,
                title,
                starts_at,
                ends_at,
                location,
                participants,
                client_attends,
                interpreter_language,
                agenda,
                lead_time_override_reason,
                at,
            } => {
                *self = Meeting {
                    id: Some(meeting_id),
                    case_id,
                    lead_agency,
                    title,
                    starts_at,
                    ends_at,
                    location,
                    participants: participants.into_iter().collect(),
                    client_attends,
                    interpreter_language,
                    lead_time_override_reason,
                    agenda,
                    scheduled_at: at,
                    changed_at: at,
                    ..Meeting::default()
                };
            }
            MeetingEvent::MeetingRescheduled {
                starts_at,
                ends_at,
                reason,
                lead_time_override_reason,
                sequence,
                at,
                ..
            } => {
                self.starts_at = starts_at;
                self.ends_at = ends_at;
                self.sequence = sequence;
                self.changed_at = at;
                self.reschedules.push(Reschedule {
                    starts_at,
                    ends_at,
                    reason,
                    lead_time_override_reason,
                    at,
                });
            }
            MeetingEvent::MeetingCancelled {
                reason,
                sequence,
                at,
                ..
            } => {
                self.sequence = sequence;
                self.changed_at = at;
                self.cancellation = Some(Cancellation { reason, at });
            }
            MeetingEvent::InterpreterBookingChanged { status, .. } => {
                self.interpreter_booking = status;
            }
            MeetingEvent::RsvpGiven {
                agency,
                response,
                comment,
                at,
                ..
            } => {
                self.rsvps.insert(
                    agency,
                    Rsvp {
                        response,
                        comment,
                        at,
                    },
                );
            }
            MeetingEvent::AttendanceRecorded {
                present,
                client_present,
                at,
                ..
            } => {
                self.attendance = Some(Attendance {
                    present,
                    client_present,
                    at,
                });
            }
            MeetingEvent::ClientAbsent { .. } => {
                self.client_absence_reported = true;
            }
            MeetingEvent::MinutesSaved { minutes, .. } => {
                self.draft = Some(minutes);
            }
            MeetingEvent::MinutesPublished { revision, at, .. } => {
                // A revision is the saved minutes at the moment of publishing.
                self.revisions.push(Revision {
                    revision,
                    minutes: self.draft.clone().unwrap_or_default(),
                    published_at: at,
                    approvals: BTreeMap::new(),
                });
            }
            MeetingEvent::MinutesApproved {
                revision,
                agency,
                at,
                ..
            } => {
                if let Some(r) = self.revisions.iter_mut().find(|r| r.revision == revision) {
                    r.approvals.insert(agency, at);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn the_lead_is_always_a_participant() {
        let events = run(vec![], schedule("2026-11-05T10:00:00Z", true, None)).unwrap();
        assert_eq!(events, vec![scheduled()]);
    }

    #[test]
    fn bad_times_and_outsiders_name_the_field() {
        let refused = |c: ScheduleMeeting| field_of(run(vec![], MeetingCommand::Schedule(c)));
        assert_eq!(
            refused(schedule_meeting("2026-10-31T10:00:00Z", false, None)),
            (422, "starts_at".into())
        );
        let mut backwards = schedule_meeting("2026-11-05T10:00:00Z", false, None);
        backwards.ends_at = backwards.starts_at;
        assert_eq!(refused(backwards), (422, "ends_at".into()));
        let mut outsider = schedule_meeting("2026-11-05T10:00:00Z", false, None);
        outsider.participants.push("migri".into());
        assert_eq!(refused(outsider), (422, "participants[1]".into()));
        let mut untitled = schedule_meeting("2026-11-05T10:00:00Z", false, None);
        untitled.title = " ".into();
        assert_eq!(refused(untitled), (422, "title".into()));
        let mut by_member = schedule_meeting("2026-11-05T10:00:00Z", false, None);
        by_member.by = HEALTH.into();
        assert_eq!(refused(by_member).0, 403);
    }

    #[test]
    fn only_participants_answer() {
        let rsvp = |agency: &str| {
            MeetingCommand::Rsvp(GiveRsvp {
                agency: agency.into(),
                response: RsvpResponse::Accept,
                comment: None,
                at: now(),
            })
        };
        assert!(run(vec![scheduled()], rsvp(HEALTH)).is_ok());
        assert_eq!(field_of(run(vec![scheduled()], rsvp(POLICE))).0, 403);
    }

    #[test]
    fn a_client_absence_is_reported_once() {
        let attendance = |client_present| {
            MeetingCommand::RecordAttendance(RecordAttendance {
                by: LEAD.into(),
                present: vec![LEAD.into(), HEALTH.into()],
                client_present,
                at: now(),
            })
        };
        let first = run(vec![scheduled()], attendance(false)).unwrap();
        assert_eq!(first.len(), 2);
        assert!(matches!(first[1], MeetingEvent::ClientAbsent { .. }));
        let mut given = vec![scheduled()];
        given.extend(first);
        let second = run(given, attendance(false)).unwrap();
        assert_eq!(second.len(), 1);
        assert!(matches!(second[0], MeetingEvent::AttendanceRecorded { .. }));
        // Present means no follow-up; an outsider cannot be present.
        assert_eq!(run(vec![scheduled()], attendance(true)).unwrap().len(), 1);
        let outsider = MeetingCommand::RecordAttendance(RecordAttendance {
            by: LEAD.into(),
            present: vec![POLICE.into()],
            client_present: true,
            at: now(),
        });
        assert_eq!(
            field_of(run(vec![scheduled()], outsider)),
            (422, "present[0]".into())
        );
    }
}
