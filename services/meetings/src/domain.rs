//! The network meeting: scheduling, answers, attendance, minutes.
//!
//! One `meeting` stream per meeting. Commands carry `at` (the command's
//! time, "now" for every time rule) and, where a rule needs the case's
//! network, a [`Network`] snapshot taken from the consent guard's view.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use verkosto_policy::Category;
use verkosto_types::Refusal;

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

verkosto_eventlog::domain_event!(MeetingEvent);

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
    Schedule {
        meeting_id: String,
        network: Network,
        by: String,
        title: String,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
        location: Option<String>,
        participants: Vec<String>,
        client_attends: bool,
        interpreter_language: Option<String>,
        agenda: Vec<String>,
        lead_time_override_reason: Option<String>,
        lead_time: Duration,
        at: DateTime<Utc>,
    },
    Reschedule {
        by: String,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
        reason: String,
        lead_time_override_reason: Option<String>,
        lead_time: Duration,
        at: DateTime<Utc>,
    },
    Cancel {
        by: String,
        reason: String,
        at: DateTime<Utc>,
    },
    SetInterpreterBooking {
        by: String,
        status: InterpreterBooking,
        at: DateTime<Utc>,
    },
    Rsvp {
        agency: String,
        response: RsvpResponse,
        comment: Option<String>,
        at: DateTime<Utc>,
    },
    RecordAttendance {
        by: String,
        present: Vec<String>,
        client_present: bool,
        at: DateTime<Utc>,
    },
    SaveMinutes {
        by: String,
        network: Network,
        minutes: Minutes,
        at: DateTime<Utc>,
    },
    PublishMinutes {
        by: String,
        at: DateTime<Utc>,
    },
    ApproveMinutes {
        agency: String,
        at: DateTime<Utc>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rsvp {
    pub response: RsvpResponse,
    pub comment: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attendance {
    pub present: Vec<String>,
    pub client_present: bool,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reschedule {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub reason: String,
    pub lead_time_override_reason: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cancellation {
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// A published revision of the minutes; earlier ones are kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Revision {
    pub revision: u32,
    pub minutes: Minutes,
    pub published_at: DateTime<Utc>,
    /// Agency → when it approved this revision.
    pub approvals: BTreeMap<String, DateTime<Utc>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Meeting {
    pub id: Option<String>,
    pub case_id: String,
    pub lead_agency: String,
    pub title: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub location: Option<String>,
    pub participants: BTreeSet<String>,
    pub client_attends: bool,
    pub interpreter_language: Option<String>,
    pub interpreter_booking: InterpreterBooking,
    pub lead_time_override_reason: Option<String>,
    pub agenda: Vec<String>,
    pub scheduled_at: DateTime<Utc>,
    /// The calendar SEQUENCE: raised by each reschedule and by cancellation.
    pub sequence: u32,
    pub reschedules: Vec<Reschedule>,
    pub cancellation: Option<Cancellation>,
    pub rsvps: BTreeMap<String, Rsvp>,
    pub attendance: Option<Attendance>,
    pub client_absence_reported: bool,
    /// The lead's working copy; None until first saved.
    pub draft: Option<Minutes>,
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

fn hours(d: Duration) -> u64 {
    d.as_secs().div_ceil(3600)
}

/// The time rules shared by scheduling and rescheduling.
fn check_times(
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    interpreter_needed: bool,
    override_reason: Option<&str>,
    lead_time: Duration,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    if starts_at < now {
        return Err(Refusal::invalid("starts_at", "must not be in the past"));
    }
    if ends_at <= starts_at {
        return Err(Refusal::invalid("ends_at", "must be after starts_at"));
    }
    let lead = chrono::Duration::from_std(lead_time).unwrap_or(chrono::Duration::MAX);
    let too_soon = now.checked_add_signed(lead).is_some_and(|t| starts_at < t);
    let has_reason = override_reason.is_some_and(|r| !r.trim().is_empty());
    if interpreter_needed && too_soon && !has_reason {
        return Err(Refusal::invalid(
            "starts_at",
            format!(
                "a meeting with an interpreter must be set at least {} h ahead (the interpreter lead time); \
                 to set it sooner, give lead_time_override_reason",
                hours(lead_time)
            ),
        ));
    }
    Ok(())
}

/// An override reason only counts when it says something.
fn reason(r: Option<String>) -> Option<String> {
    r.filter(|r| !r.trim().is_empty())
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

    fn decide(&self, command: MeetingCommand) -> Result<Vec<MeetingEvent>, Refusal> {
        let meeting_id = self.id();
        let event = match command {
            MeetingCommand::Schedule {
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
            } => {
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
                MeetingEvent::MeetingScheduled {
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
                    lead_time_override_reason: reason(lead_time_override_reason),
                    at,
                }
            }
            MeetingCommand::Reschedule {
                by,
                starts_at,
                ends_at,
                reason: why,
                lead_time_override_reason,
                lead_time,
                at,
            } => {
                self.check_lead(&by)?;
                self.check_open()?;
                if self.attendance.is_some() {
                    return Err(Refusal::conflict("the meeting has been held"));
                }
                check_times(
                    starts_at,
                    ends_at,
                    self.interpreter_language.is_some(),
                    lead_time_override_reason.as_deref(),
                    lead_time,
                    at,
                )?;
                if starts_at == self.starts_at && ends_at == self.ends_at {
                    return Ok(Vec::new());
                }
                MeetingEvent::MeetingRescheduled {
                    meeting_id,
                    starts_at,
                    ends_at,
                    reason: why,
                    lead_time_override_reason: reason(lead_time_override_reason),
                    sequence: self.sequence + 1,
                    at,
                }
            }
            MeetingCommand::Cancel { by, reason, at } => {
                self.check_lead(&by)?;
                self.check_open()?;
                if self.attendance.is_some() {
                    return Err(Refusal::conflict("the meeting has been held"));
                }
                MeetingEvent::MeetingCancelled {
                    meeting_id,
                    reason,
                    sequence: self.sequence + 1,
                    at,
                }
            }
            MeetingCommand::SetInterpreterBooking { by, status, at } => {
                self.check_lead(&by)?;
                self.check_open()?;
                if self.interpreter_language.is_none() {
                    return Err(Refusal::invalid(
                        "status",
                        "this meeting needs no interpreter",
                    ));
                }
                if status == self.interpreter_booking {
                    return Ok(Vec::new());
                }
                MeetingEvent::InterpreterBookingChanged {
                    meeting_id,
                    status,
                    at,
                }
            }
            MeetingCommand::Rsvp {
                agency,
                response,
                comment,
                at,
            } => {
                self.check_participant(&agency)?;
                self.check_open()?;
                MeetingEvent::RsvpGiven {
                    meeting_id,
                    agency,
                    response,
                    comment,
                    at,
                }
            }
            MeetingCommand::RecordAttendance {
                by,
                present,
                client_present,
                at,
            } => {
                self.check_lead(&by)?;
                self.check_open()?;
                for (i, agency) in present.iter().enumerate() {
                    if !self.is_participant(agency) {
                        return Err(Refusal::invalid(
                            &format!("present[{i}]"),
                            format!("{agency} is not a participant of this meeting"),
                        ));
                    }
                }
                let present: BTreeSet<String> = present.into_iter().collect();
                let mut events = vec![MeetingEvent::AttendanceRecorded {
                    meeting_id: meeting_id.clone(),
                    present: present.into_iter().collect(),
                    client_present,
                    at,
                }];
                // One follow-up per meeting, however often attendance is recorded.
                if self.client_attends && !client_present && !self.client_absence_reported {
                    events.push(MeetingEvent::ClientAbsent {
                        meeting_id,
                        case_id: self.case_id.clone(),
                        lead_agency: self.lead_agency.clone(),
                        starts_at: self.starts_at,
                        at,
                    });
                }
                return Ok(events);
            }
            MeetingCommand::SaveMinutes {
                by,
                network,
                minutes,
                at,
            } => {
                self.check_lead(&by)?;
                self.check_open()?;
                check_minutes(&minutes, &network)?;
                if self.draft.as_ref() == Some(&minutes) {
                    return Ok(Vec::new());
                }
                MeetingEvent::MinutesSaved {
                    meeting_id,
                    minutes,
                    at,
                }
            }
            MeetingCommand::PublishMinutes { by, at } => {
                self.check_lead(&by)?;
                self.check_open()?;
                let Some(draft) = &self.draft else {
                    return Err(Refusal::conflict("minutes: nothing has been saved yet"));
                };
                if self.latest().is_some_and(|r| &r.minutes == draft) {
                    return Err(Refusal::conflict(
                        "minutes: the saved minutes are already published; save a correction first",
                    ));
                }
                MeetingEvent::MinutesPublished {
                    meeting_id,
                    case_id: self.case_id.clone(),
                    lead_agency: self.lead_agency.clone(),
                    revision: self.revisions.len() as u32 + 1,
                    action_items: draft.action_items.clone(),
                    at,
                }
            }
            MeetingCommand::ApproveMinutes { agency, at } => {
                self.check_participant(&agency)?;
                let Some(latest) = self.latest() else {
                    return Err(Refusal::conflict("minutes: nothing has been published yet"));
                };
                if latest.approvals.contains_key(&agency) {
                    return Ok(Vec::new());
                }
                MeetingEvent::MinutesApproved {
                    meeting_id,
                    revision: latest.revision,
                    agency,
                    at,
                }
            }
        };
        Ok(vec![event])
    }
}

/// The rules of the minutes' content that need the network.
fn check_minutes(minutes: &Minutes, network: &Network) -> Result<(), Refusal> {
    let mut ids = BTreeSet::new();
    for (i, item) in minutes.action_items.iter().enumerate() {
        if item.id.trim().is_empty() {
            return Err(Refusal::invalid(
                &format!("action_items[{i}].id"),
                "must not be empty",
            ));
        }
        if !ids.insert(item.id.as_str()) {
            return Err(Refusal::invalid(
                &format!("action_items[{i}].id"),
                format!("{} is used twice", item.id),
            ));
        }
        if !network.members.contains(&item.assignee) {
            return Err(Refusal::invalid(
                &format!("action_items[{i}].assignee"),
                format!("{} is not a member of the case's network", item.assignee),
            ));
        }
    }
    Ok(())
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
        if self.id.is_none() && !matches!(command, MeetingCommand::Schedule { .. }) {
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
    use super::*;
    use cqrs_es::test::TestFramework;
    use verkosto_http::Problem;

    const LEAD: &str = "assistance-system";
    const HEALTH: &str = "health-hus";
    const POLICE: &str = "police-helsinki";
    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn now() -> DateTime<Utc> {
        t("2026-11-01T10:00:00Z")
    }

    fn network() -> Network {
        Network {
            case_id: "case-1".into(),
            lead: LEAD.into(),
            members: [LEAD, HEALTH, POLICE].map(String::from).into(),
        }
    }

    fn schedule(starts_at: &str, interpreter: bool, reason: Option<&str>) -> MeetingCommand {
        let starts_at = t(starts_at);
        MeetingCommand::Schedule {
            meeting_id: "meeting-1".into(),
            network: network(),
            by: LEAD.into(),
            title: "Network meeting".into(),
            starts_at,
            ends_at: starts_at + chrono::Duration::hours(1),
            location: Some("Room 3".into()),
            participants: vec![HEALTH.into()],
            client_attends: true,
            interpreter_language: interpreter.then(|| "ro".into()),
            agenda: vec!["Housing".into()],
            lead_time_override_reason: reason.map(String::from),
            lead_time: DAY,
            at: now(),
        }
    }

    fn scheduled() -> MeetingEvent {
        let starts_at = t("2026-11-05T10:00:00Z");
        MeetingEvent::MeetingScheduled {
            meeting_id: "meeting-1".into(),
            case_id: "case-1".into(),
            lead_agency: LEAD.into(),
            title: "Network meeting".into(),
            starts_at,
            ends_at: starts_at + chrono::Duration::hours(1),
            location: Some("Room 3".into()),
            participants: vec![LEAD.into(), HEALTH.into()],
            client_attends: true,
            interpreter_language: Some("ro".into()),
            agenda: vec!["Housing".into()],
            lead_time_override_reason: None,
            at: now(),
        }
    }

    fn run(
        given: Vec<MeetingEvent>,
        command: MeetingCommand,
    ) -> Result<Vec<MeetingEvent>, Problem> {
        TestFramework::<Meeting>::with(())
            .given(given)
            .when(command)
            .inspect_result()
            .map_err(Problem::from)
    }

    fn field_of(result: Result<Vec<MeetingEvent>, Problem>) -> (u16, String) {
        let p = result.unwrap_err();
        (p.status, p.field.unwrap_or_default())
    }

    #[test]
    fn the_lead_is_always_a_participant() {
        let events = run(vec![], schedule("2026-11-05T10:00:00Z", true, None)).unwrap();
        assert_eq!(events, vec![scheduled()]);
    }

    #[test]
    fn an_interpreter_needs_the_lead_time_unless_a_reason_is_given() {
        let soon = "2026-11-01T20:00:00Z";
        let refused = run(vec![], schedule(soon, true, None)).unwrap_err();
        assert_eq!(refused.status, 422);
        assert!(
            refused.detail.starts_with("starts_at: "),
            "{}",
            refused.detail
        );
        assert!(refused.detail.contains("24 h"), "{}", refused.detail);
        // A blank reason is no reason.
        assert_eq!(
            field_of(run(vec![], schedule(soon, true, Some("  ")))).1,
            "starts_at"
        );
        let events = run(vec![], schedule(soon, true, Some("court date tomorrow"))).unwrap();
        let MeetingEvent::MeetingScheduled {
            lead_time_override_reason,
            ..
        } = &events[0]
        else {
            panic!("{events:?}")
        };
        assert_eq!(
            lead_time_override_reason.as_deref(),
            Some("court date tomorrow")
        );
        // Without an interpreter, soon is fine.
        assert!(run(vec![], schedule(soon, false, None)).is_ok());
    }

    #[test]
    fn bad_times_and_outsiders_name_the_field() {
        assert_eq!(
            field_of(run(vec![], schedule("2026-10-31T10:00:00Z", false, None))),
            (422, "starts_at".into())
        );
        let mut backwards = schedule("2026-11-05T10:00:00Z", false, None);
        if let MeetingCommand::Schedule {
            ends_at, starts_at, ..
        } = &mut backwards
        {
            *ends_at = *starts_at;
        }
        assert_eq!(field_of(run(vec![], backwards)), (422, "ends_at".into()));
        let mut outsider = schedule("2026-11-05T10:00:00Z", false, None);
        if let MeetingCommand::Schedule { participants, .. } = &mut outsider {
            participants.push("migri".into());
        }
        assert_eq!(
            field_of(run(vec![], outsider)),
            (422, "participants[1]".into())
        );
        let mut untitled = schedule("2026-11-05T10:00:00Z", false, None);
        if let MeetingCommand::Schedule { title, .. } = &mut untitled {
            *title = " ".into();
        }
        assert_eq!(field_of(run(vec![], untitled)), (422, "title".into()));
        let mut by_member = schedule("2026-11-05T10:00:00Z", false, None);
        if let MeetingCommand::Schedule { by, .. } = &mut by_member {
            *by = HEALTH.into();
        }
        assert_eq!(field_of(run(vec![], by_member)).0, 403);
    }

    #[test]
    fn rescheduling_and_cancelling_raise_the_sequence() {
        let reschedule = MeetingCommand::Reschedule {
            by: LEAD.into(),
            starts_at: t("2026-11-06T10:00:00Z"),
            ends_at: t("2026-11-06T11:00:00Z"),
            reason: "room taken".into(),
            lead_time_override_reason: None,
            lead_time: DAY,
            at: now(),
        };
        let events = run(vec![scheduled()], reschedule.clone()).unwrap();
        assert!(matches!(
            events[0],
            MeetingEvent::MeetingRescheduled { sequence: 1, .. }
        ));
        let cancelled = run(
            vec![scheduled(), events[0].clone()],
            MeetingCommand::Cancel {
                by: LEAD.into(),
                reason: "client moved".into(),
                at: now(),
            },
        )
        .unwrap();
        assert!(matches!(
            cancelled[0],
            MeetingEvent::MeetingCancelled { sequence: 2, .. }
        ));
        // Nothing more happens to a cancelled meeting.
        let again = run(
            vec![scheduled(), events[0].clone(), cancelled[0].clone()],
            reschedule,
        );
        assert_eq!(field_of(again).0, 409);
    }

    #[test]
    fn only_participants_answer() {
        let rsvp = |agency: &str| MeetingCommand::Rsvp {
            agency: agency.into(),
            response: RsvpResponse::Accept,
            comment: None,
            at: now(),
        };
        assert!(run(vec![scheduled()], rsvp(HEALTH)).is_ok());
        assert_eq!(field_of(run(vec![scheduled()], rsvp(POLICE))).0, 403);
    }

    #[test]
    fn a_client_absence_is_reported_once() {
        let attendance = |client_present| MeetingCommand::RecordAttendance {
            by: LEAD.into(),
            present: vec![LEAD.into(), HEALTH.into()],
            client_present,
            at: now(),
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
        let outsider = MeetingCommand::RecordAttendance {
            by: LEAD.into(),
            present: vec![POLICE.into()],
            client_present: true,
            at: now(),
        };
        assert_eq!(
            field_of(run(vec![scheduled()], outsider)),
            (422, "present[0]".into())
        );
    }

    fn minutes(items: &[(&str, &str)]) -> Minutes {
        Minutes {
            notes: vec![Note {
                category: Category::Health,
                text: "Health check done".into(),
            }],
            decisions: vec!["Meet again in December".into()],
            action_items: items
                .iter()
                .map(|(id, assignee)| ActionItem {
                    id: id.to_string(),
                    description: "Do it".into(),
                    category: Category::Health,
                    assignee: assignee.to_string(),
                    due: None,
                })
                .collect(),
        }
    }

    fn save(m: Minutes) -> MeetingCommand {
        MeetingCommand::SaveMinutes {
            by: LEAD.into(),
            network: network(),
            minutes: m,
            at: now(),
        }
    }

    #[test]
    fn action_items_have_unique_ids_and_member_assignees() {
        let twice = minutes(&[("a1", HEALTH), ("a1", POLICE)]);
        assert_eq!(
            field_of(run(vec![scheduled()], save(twice))),
            (422, "action_items[1].id".into())
        );
        let outsider = minutes(&[("a1", "migri")]);
        assert_eq!(
            field_of(run(vec![scheduled()], save(outsider))),
            (422, "action_items[0].assignee".into())
        );
    }

    #[test]
    fn publishing_makes_revisions_and_keeps_the_earlier_ones() {
        let first = minutes(&[("a1", HEALTH), ("a2", POLICE), ("a3", LEAD)]);
        let saved = MeetingEvent::MinutesSaved {
            meeting_id: "meeting-1".into(),
            minutes: first.clone(),
            at: now(),
        };
        let publish = MeetingCommand::PublishMinutes {
            by: LEAD.into(),
            at: now(),
        };
        let published = run(vec![scheduled(), saved.clone()], publish.clone()).unwrap();
        let MeetingEvent::MinutesPublished {
            revision,
            action_items,
            ..
        } = &published[0]
        else {
            panic!("{published:?}")
        };
        assert_eq!((*revision, action_items.len()), (1, 3));
        // Publishing the same minutes again is refused; a correction is revision 2.
        let mut given = vec![scheduled(), saved, published[0].clone()];
        assert_eq!(field_of(run(given.clone(), publish.clone())).0, 409);
        let corrected = minutes(&[("a1", HEALTH)]);
        given.push(MeetingEvent::MinutesSaved {
            meeting_id: "meeting-1".into(),
            minutes: corrected.clone(),
            at: now(),
        });
        let second = run(given.clone(), publish).unwrap();
        assert!(matches!(
            second[0],
            MeetingEvent::MinutesPublished { revision: 2, .. }
        ));
        let mut meeting = Meeting::default();
        for e in given.into_iter().chain(second) {
            meeting.apply(e);
        }
        assert_eq!(meeting.revisions.len(), 2);
        assert_eq!(meeting.revisions[0].minutes, first);
        assert_eq!(meeting.revisions[1].minutes, corrected);
    }

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

    #[test]
    fn participants_approve_the_latest_revision() {
        let saved = MeetingEvent::MinutesSaved {
            meeting_id: "meeting-1".into(),
            minutes: minutes(&[]),
            at: now(),
        };
        let published = MeetingEvent::MinutesPublished {
            meeting_id: "meeting-1".into(),
            case_id: "case-1".into(),
            lead_agency: LEAD.into(),
            revision: 1,
            action_items: vec![],
            at: now(),
        };
        let approve = |agency: &str| MeetingCommand::ApproveMinutes {
            agency: agency.into(),
            at: now(),
        };
        assert_eq!(field_of(run(vec![scheduled()], approve(HEALTH))).0, 409);
        let given = vec![scheduled(), saved, published];
        assert_eq!(
            run(given.clone(), approve(HEALTH)).unwrap(),
            vec![MeetingEvent::MinutesApproved {
                meeting_id: "meeting-1".into(),
                revision: 1,
                agency: HEALTH.into(),
                at: now(),
            }]
        );
        assert_eq!(field_of(run(given, approve(POLICE))).0, 403);
    }
}
