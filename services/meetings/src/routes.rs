//! The meetings service's writes: scheduling, answers, attendance and
//! minutes, and the router of every meeting endpoint.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use verkosto_auth::Role;
use verkosto_eventlog::Appended;
use verkosto_guard::CaseAccess;
use verkosto_http::{Action, Caller, Problem, Write};
use verkosto_types::parse_field;
use verkosto_types::{Language, OptionalText, Text};

use crate::domain::{
    ApproveMinutes, CancelMeeting, GiveRsvp, InterpreterBooking, MeetingCommand, Minutes, Network,
    PublishMinutes, RecordAttendance, RescheduleMeeting, RsvpResponse, SaveMinutes,
    ScheduleMeeting, SetInterpreterBooking,
};
use crate::member::{CaseMember, MeetingMember, CASE_WORKERS};
use crate::Meetings;

/// The network for a command's rules; refuses on a view that is not fresh.
fn network(case: &CaseAccess) -> Result<Network, Problem> {
    if !case.fresh {
        return Err(Problem::unavailable(
            "the case's network could not be brought up to date; nothing was changed",
        ));
    }
    Ok(Network {
        case_id: case.case_id.clone(),
        lead: case.lead_agency.clone(),
        members: case.members.clone(),
    })
}

/// 403 unless the caller is a facilitator of the case's lead agency.
fn require_lead_facilitator(caller: &Caller, lead: &str) -> Result<(), Problem> {
    caller.require(&[Role::Facilitator])?;
    if caller.0.agency == lead {
        Ok(())
    } else {
        Err(Problem::forbidden(
            "only the lead agency's facilitator may do this",
        ))
    }
}

fn check_count<T>(field: &str, items: &[T], max: usize) -> Result<(), Problem> {
    if items.len() > max {
        return Err(Problem::invalid(
            field,
            format!("must have at most {max} entries"),
        ));
    }
    Ok(())
}

const SHORT_TEXT: usize = 200;
const REASON_TEXT: usize = 1000;
const LONG_TEXT: usize = 20_000;
const MAX_ITEMS: usize = 100;

pub(crate) fn routes() -> Router<Meetings> {
    Router::new()
        .route("/api/v1/cases/{id}/meetings", post(schedule))
        .route("/api/v1/meetings/{id}/reschedule", post(reschedule))
        .route("/api/v1/meetings/{id}/cancel", post(cancel))
        .route("/api/v1/meetings/{id}/interpreter", post(interpreter))
        .route("/api/v1/meetings/{id}/rsvp", post(rsvp))
        .route("/api/v1/meetings/{id}/attendance", post(attendance))
        .route(
            "/api/v1/meetings/{id}/minutes",
            axum::routing::put(save_minutes).get(crate::read::get_minutes),
        )
        .route("/api/v1/meetings/{id}/minutes/publish", post(publish))
        .route("/api/v1/meetings/{id}/minutes/approve", post(approve))
        .route("/api/v1/meetings", get(crate::read::list_meetings))
        .route("/api/v1/meetings/{id}", get(crate::read::get_meeting))
}

/// The plain answer to a meeting write: its id and new version.
fn answer(meeting_id: &str, status: u16) -> impl Fn(i64) -> (u16, Value) + Clone + Send + Sync {
    let id = meeting_id.to_string();
    move |version| (status, json!({ "id": id, "version": version }))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewMeeting {
    /// What the meeting is about (client data of the category `meetings`).
    title: Text<SHORT_TEXT>,
    /// When it starts: not in the past.
    starts_at: DateTime<Utc>,
    /// When it ends: after it starts.
    ends_at: DateTime<Utc>,
    /// A place or an online link.
    #[serde(default)]
    location: Option<Text<500>>,
    /// Member agencies; the lead always takes part.
    #[serde(default)]
    participants: Vec<String>,
    /// Whether the client is to come; if so and absent, the lead gets a task.
    #[serde(default)]
    client_attends: bool,
    /// The client's language when an interpreter is needed; null for none.
    #[serde(default)]
    interpreter_language: Option<Language>,
    /// The agenda's items in order (at most 100).
    #[serde(default)]
    agenda: Vec<Text<500>>,
    /// Why an interpreted meeting is set sooner than the lead time.
    #[serde(default)]
    lead_time_override_reason: OptionalText<REASON_TEXT>,
}

async fn schedule(
    State(m): State<Meetings>,
    CaseMember(case): CaseMember,
    write: Write<NewMeeting>,
) -> Result<Response, Problem> {
    require_lead_facilitator(&write.caller, &case.lead_agency)?;
    if case.closed_at.is_some() {
        return Err(Problem::conflict(format!(
            "case {} is closed: it takes no new meetings",
            case.case_id
        )));
    }
    check_count("participants", &write.body.participants, MAX_ITEMS)?;
    check_count("agenda", &write.body.agenda, MAX_ITEMS)?;
    let network = network(&case)?;
    let meeting_id = format!("meeting-{}", uuid::Uuid::now_v7().simple());
    let (by, lead_time) = (write.agency(), m.interpreter_lead_time);
    let command = |body: NewMeeting, at| {
        MeetingCommand::Schedule(ScheduleMeeting {
            meeting_id: meeting_id.clone(),
            network,
            by,
            title: body.title.into(),
            starts_at: body.starts_at,
            ends_at: body.ends_at,
            location: body.location.map(String::from),
            participants: body.participants,
            client_attends: body.client_attends,
            interpreter_language: body.interpreter_language.map(String::from),
            agenda: body.agenda.into_iter().map(String::from).collect(),
            lead_time_override_reason: body.lead_time_override_reason.into_option(),
            lead_time,
            at,
        })
    };
    m.commands()
        .run(&meeting_id, write, answer(&meeting_id, 201), command)
        .await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewTime {
    /// The new start: not in the past.
    starts_at: DateTime<Utc>,
    /// The new end: after the start.
    ends_at: DateTime<Utc>,
    /// Why the meeting moves.
    reason: Text<REASON_TEXT>,
    /// Why an interpreted meeting moves sooner than the lead time.
    #[serde(default)]
    lead_time_override_reason: OptionalText<REASON_TEXT>,
}

async fn reschedule(
    State(m): State<Meetings>,
    member: MeetingMember,
    Path(id): Path<String>,
    write: Write<NewTime>,
) -> Result<Response, Problem> {
    require_lead_facilitator(&write.caller, &member.meeting.lead_agency)?;
    let (by, lead_time) = (write.agency(), m.interpreter_lead_time);
    let command = |body: NewTime, at| {
        MeetingCommand::Reschedule(RescheduleMeeting {
            by,
            starts_at: body.starts_at,
            ends_at: body.ends_at,
            reason: body.reason.into(),
            lead_time_override_reason: body.lead_time_override_reason.into_option(),
            lead_time,
            at,
        })
    };
    m.commands()
        .run(&id, write, answer(&id, 200), command)
        .await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Reason {
    /// Why the meeting is cancelled.
    reason: Text<REASON_TEXT>,
}

async fn cancel(
    State(m): State<Meetings>,
    member: MeetingMember,
    Path(id): Path<String>,
    write: Write<Reason>,
) -> Result<Response, Problem> {
    require_lead_facilitator(&write.caller, &member.meeting.lead_agency)?;
    let by = write.agency();
    let command = |body: Reason, at| {
        MeetingCommand::Cancel(CancelMeeting {
            by,
            reason: body.reason.into(),
            at,
        })
    };
    m.commands()
        .run(&id, write, answer(&id, 200), command)
        .await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Booking {
    /// Where the interpreter's booking stands now.
    status: InterpreterBooking,
}

async fn interpreter(
    State(m): State<Meetings>,
    member: MeetingMember,
    Path(id): Path<String>,
    write: Write<Booking>,
) -> Result<Response, Problem> {
    require_lead_facilitator(&write.caller, &member.meeting.lead_agency)?;
    let by = write.agency();
    let command = |body: Booking, at| {
        MeetingCommand::SetInterpreterBooking(SetInterpreterBooking {
            by,
            status: body.status,
            at,
        })
    };
    m.commands()
        .run(&id, write, answer(&id, 200), command)
        .await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rsvp {
    /// Whether the caller's agency comes.
    response: RsvpResponse,
    /// Anything to add, e.g. who comes or why not.
    #[serde(default)]
    comment: OptionalText<REASON_TEXT>,
}

async fn rsvp(
    State(m): State<Meetings>,
    _member: MeetingMember,
    Path(id): Path<String>,
    write: Write<Rsvp>,
) -> Result<Response, Problem> {
    write.caller.require(&CASE_WORKERS)?;
    let agency = write.agency();
    let command = |body: Rsvp, at| {
        MeetingCommand::Rsvp(GiveRsvp {
            agency,
            response: body.response,
            comment: body.comment.into_option(),
            at,
        })
    };
    m.commands()
        .run(&id, write, answer(&id, 200), command)
        .await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Presence {
    /// Participant agencies that came.
    present: Vec<String>,
    /// Whether the client came; absent when expected, the lead gets a task.
    client_present: bool,
}

async fn attendance(
    State(m): State<Meetings>,
    member: MeetingMember,
    Path(id): Path<String>,
    write: Write<Presence>,
) -> Result<Response, Problem> {
    require_lead_facilitator(&write.caller, &member.meeting.lead_agency)?;
    check_count("present", &write.body.present, MAX_ITEMS)?;
    let by = write.agency();
    let command = |body: Presence, at| {
        MeetingCommand::RecordAttendance(RecordAttendance {
            by,
            present: body.present,
            client_present: body.client_present,
            at,
        })
    };
    m.commands()
        .run(&id, write, answer(&id, 200), command)
        .await
}

/// Length and count limits of the minutes' texts.
fn check_minutes_text(minutes: &Minutes) -> Result<(), Problem> {
    check_count("notes", &minutes.notes, MAX_ITEMS)?;
    for (i, note) in minutes.notes.iter().enumerate() {
        parse_field::<Text<LONG_TEXT>>(&format!("notes[{i}].text"), note.text.as_str())?;
    }
    check_count("decisions", &minutes.decisions, MAX_ITEMS)?;
    for (i, decision) in minutes.decisions.iter().enumerate() {
        parse_field::<Text<2000>>(&format!("decisions[{i}]"), decision.as_str())?;
    }
    check_count("action_items", &minutes.action_items, MAX_ITEMS)?;
    for (i, item) in minutes.action_items.iter().enumerate() {
        parse_field::<Text<64>>(&format!("action_items[{i}].id"), item.id.as_str())?;
        parse_field::<Text<2000>>(
            &format!("action_items[{i}].description"),
            item.description.as_str(),
        )?;
    }
    Ok(())
}

async fn save_minutes(
    State(m): State<Meetings>,
    member: MeetingMember,
    Path(id): Path<String>,
    write: Write<Minutes>,
) -> Result<Response, Problem> {
    require_lead_facilitator(&write.caller, &member.meeting.lead_agency)?;
    check_minutes_text(&write.body)?;
    let network = network(&member.case)?;
    let answer = {
        let id = id.clone();
        move |v: i64| (200, json!({ "id": id, "status": "saved", "version": v }))
    };
    let by = write.agency();
    let command = |minutes, at| {
        MeetingCommand::SaveMinutes(SaveMinutes {
            by,
            network,
            minutes,
            at,
        })
    };
    m.commands().run(&id, write, answer, command).await
}

/// The revision a `MinutesPublished` in `appended` gave out.
fn published_revision(appended: &Appended) -> Option<u64> {
    appended.events.iter().find_map(|e| {
        e.payload
            .pointer("/MinutesPublished/revision")
            .and_then(Value::as_u64)
    })
}

async fn publish(
    State(m): State<Meetings>,
    member: MeetingMember,
    Path(id): Path<String>,
    Action(write): Action,
) -> Result<Response, Problem> {
    require_lead_facilitator(&write.caller, &member.meeting.lead_agency)?;
    // The number is known only once the event is; a stored answer (for a
    // retry with the same Idempotency-Key) uses the expected one.
    let next = member.meeting.revisions.len() as u64 + 1;
    let answer = {
        let id = id.clone();
        move |v: i64| (200, json!({ "id": id, "revision": next, "version": v }))
    };
    let by = write.agency();
    let command = |(), at| MeetingCommand::PublishMinutes(PublishMinutes { by, at });
    let fresh = |a: &Appended| {
        let revision = published_revision(a).unwrap_or(next);
        (
            200,
            json!({ "id": id, "revision": revision, "version": a.version }),
        )
    };
    m.commands()
        .run_answering(&id, write, answer, command, fresh)
        .await
}

async fn approve(
    State(m): State<Meetings>,
    _member: MeetingMember,
    Path(id): Path<String>,
    Action(write): Action,
) -> Result<Response, Problem> {
    write.caller.require(&CASE_WORKERS)?;
    let agency = write.agency();
    let command = |(), at| MeetingCommand::ApproveMinutes(ApproveMinutes { agency, at });
    m.commands()
        .run(&id, write, answer(&id, 200), command)
        .await
}
