//! The meetings service's state, its membership extractors, and the writes:
//! scheduling, answers, attendance and minutes.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use verkosto_auth::Role;
use verkosto_directory::domain::check_text;
use verkosto_eventlog::{AggregateStore, Appended, Execution, LoadedAggregate, Outcome};
use verkosto_guard::{CaseAccess, CaseRead, Reader};
use verkosto_http::{command_response, Caller, JsonBody, Problem, RequestId, WriteConditions};

use crate::domain::{
    not_found, InterpreterBooking, Meeting, MeetingCommand, Minutes, Network, RsvpResponse,
};
use crate::Meetings;

/// How long a write waits for its own read model before answering.
const READ_YOUR_WRITES: Duration = Duration::from_secs(5);

/// Who works with meetings: facilitators and liaisons of member agencies.
pub(crate) const CASE_WORKERS: [Role; 2] = [Role::Facilitator, Role::Liaison];

impl Meetings {
    pub(crate) fn store(&self) -> AggregateStore<Meeting> {
        AggregateStore::new(self.log.clone())
    }

    /// Runs a meeting command, then waits until the read model has it.
    async fn execute(
        &self,
        meeting_id: &str,
        command: MeetingCommand,
        execution: Execution,
    ) -> Result<Outcome<Meeting>, Problem> {
        let outcome = self
            .store()
            .execute(meeting_id, command, &(), execution)
            .await?;
        if let Outcome::Committed { appended, .. } = &outcome {
            self.wait_for_read_model(appended).await;
        }
        Ok(outcome)
    }

    pub(crate) async fn wait_for_read_model(&self, appended: &Appended) {
        if let Some(cursor) = appended.last_cursor() {
            if !self.progress.wait_for(cursor, READ_YOUR_WRITES).await {
                tracing::warn!(%cursor, "meetings read model is behind");
            }
        }
    }

    /// The case as the guard sees it, or 404 unless `agency` is a member.
    pub(crate) async fn member_view(
        &self,
        case_id: &str,
        agency: &str,
        missing: impl FnOnce() -> Problem,
    ) -> Result<CaseAccess, Problem> {
        self.guard
            .case(case_id)
            .await?
            .filter(|c| c.is_member(agency))
            .ok_or_else(missing)
    }
}

fn case_not_found(case_id: &str) -> Problem {
    Problem::not_found(format!("no case {case_id}"))
}

/// The case of `/cases/{id}/meetings`, for a caller whose agency is in its
/// network. Extracted before the body: an outsider gets 404 whatever it sends.
pub(crate) struct CaseMember(pub CaseAccess);

impl FromRequestParts<Meetings> for CaseMember {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, m: &Meetings) -> Result<Self, Problem> {
        let caller = Caller::from_request_parts(parts, m).await?;
        let id = path_id(parts, m).await?;
        let case = m
            .member_view(&id, &caller.0.agency, || case_not_found(&id))
            .await?;
        Ok(CaseMember(case))
    }
}

/// A meeting, for a caller whose agency is in its case's network (404
/// otherwise, before any role check and before the body is read).
pub(crate) struct MeetingMember {
    pub meeting: Meeting,
    pub case: CaseAccess,
}

impl FromRequestParts<Meetings> for MeetingMember {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, m: &Meetings) -> Result<Self, Problem> {
        let (caller, id, loaded) = meeting_of_path(parts, m).await?;
        let case = m
            .member_view(&loaded.aggregate.case_id, &caller.0.agency, || {
                not_found(&id)
            })
            .await?;
        Ok(MeetingMember {
            meeting: loaded.aggregate,
            case,
        })
    }
}

/// A meeting being read: its case's guarded read, for a caller whose
/// agency is in the network (404 naming only the meeting otherwise).
pub(crate) struct MeetingRead {
    pub meeting: Meeting,
    pub version: i64,
    pub read: CaseRead,
}

impl FromRequestParts<Meetings> for MeetingRead {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, m: &Meetings) -> Result<Self, Problem> {
        let (caller, id, loaded) = meeting_of_path(parts, m).await?;
        let reader = Reader::new("meetings", &caller, parts.extensions.get::<RequestId>());
        let read = m
            .guard
            .read(&loaded.aggregate.case_id, &reader)
            .await
            .map_err(|e| e.or_not_found(|| not_found(&id)))?;
        Ok(MeetingRead {
            meeting: loaded.aggregate,
            version: loaded.version,
            read,
        })
    }
}

/// The caller, and the meeting the path names (404 if there is none).
async fn meeting_of_path(
    parts: &mut Parts,
    m: &Meetings,
) -> Result<(Caller, String, LoadedAggregate<Meeting>), Problem> {
    let caller = Caller::from_request_parts(parts, m).await?;
    let id = path_id(parts, m).await?;
    let loaded = m.store().load(&id).await?;
    if loaded.aggregate.id.is_none() {
        return Err(not_found(&id));
    }
    Ok((caller, id, loaded))
}

async fn path_id(parts: &mut Parts, m: &Meetings) -> Result<String, Problem> {
    let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, m)
        .await
        .map_err(|_| Problem::not_found("no such resource"))?;
    Ok(params.get("id").cloned().unwrap_or_default())
}

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

/// An optional body: when given it must be JSON (`{}`).
fn optional_json(raw: &[u8]) -> Result<(), Problem> {
    if !raw.is_empty() {
        verkosto_http::parse_json::<Value>(raw)?;
    }
    Ok(())
}

/// An ISO 639 language code of 2 or 3 lowercase letters.
fn check_language(field: &str, code: &str) -> Result<(), Problem> {
    let ok = (2..=3).contains(&code.len()) && code.chars().all(|c| c.is_ascii_lowercase());
    if ok {
        Ok(())
    } else {
        Err(Problem::invalid(
            field,
            "must be an ISO 639 language code of 2 or 3 lowercase letters, like \"ro\"",
        ))
    }
}

/// Checks an optional free text; blank counts as not given.
fn check_optional(field: &str, text: &Option<String>, max: usize) -> Result<(), Problem> {
    match text {
        Some(t) if !t.trim().is_empty() => check_text(field, t, max),
        _ => Ok(()),
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
    title: String,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    /// A place or an online link.
    #[serde(default)]
    location: Option<String>,
    /// Member agencies; the lead always takes part.
    #[serde(default)]
    participants: Vec<String>,
    #[serde(default)]
    client_attends: bool,
    /// The client's language when an interpreter is needed; null for none.
    #[serde(default)]
    interpreter_language: Option<String>,
    #[serde(default)]
    agenda: Vec<String>,
    /// Why an interpreted meeting is set sooner than the lead time.
    #[serde(default)]
    lead_time_override_reason: Option<String>,
}

async fn schedule(
    State(m): State<Meetings>,
    caller: Caller,
    CaseMember(case): CaseMember,
    conditions: WriteConditions,
    body: JsonBody<NewMeeting>,
) -> Result<Response, Problem> {
    require_lead_facilitator(&caller, &case.lead_agency)?;
    let NewMeeting {
        title,
        starts_at,
        ends_at,
        location,
        participants,
        client_attends,
        interpreter_language,
        agenda,
        lead_time_override_reason,
    } = body.value;
    check_text("title", &title, SHORT_TEXT)?;
    if let Some(l) = &location {
        check_text("location", l, 500)?;
    }
    check_count("participants", &participants, MAX_ITEMS)?;
    if let Some(l) = &interpreter_language {
        check_language("interpreter_language", l)?;
    }
    check_count("agenda", &agenda, MAX_ITEMS)?;
    for (i, item) in agenda.iter().enumerate() {
        check_text(&format!("agenda[{i}]"), item, 500)?;
    }
    check_optional(
        "lead_time_override_reason",
        &lead_time_override_reason,
        REASON_TEXT,
    )?;
    let network = network(&case)?;
    let meeting_id = format!("meeting-{}", uuid::Uuid::now_v7().simple());
    let answer = answer(&meeting_id, 201);
    let execution = conditions.execution(&caller, &body.raw, answer.clone());
    let command = MeetingCommand::Schedule {
        meeting_id: meeting_id.clone(),
        network,
        by: caller.0.agency.clone(),
        title,
        starts_at,
        ends_at,
        location,
        participants,
        client_attends,
        interpreter_language,
        agenda,
        lead_time_override_reason,
        lead_time: m.interpreter_lead_time,
        at: execution.meta.occurred_at,
    };
    let outcome = m.execute(&meeting_id, command, execution).await?;
    Ok(command_response(outcome, |a| answer(a.version)))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewTime {
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    reason: String,
    #[serde(default)]
    lead_time_override_reason: Option<String>,
}

async fn reschedule(
    State(m): State<Meetings>,
    caller: Caller,
    member: MeetingMember,
    conditions: WriteConditions,
    Path(id): Path<String>,
    body: JsonBody<NewTime>,
) -> Result<Response, Problem> {
    require_lead_facilitator(&caller, &member.meeting.lead_agency)?;
    let NewTime {
        starts_at,
        ends_at,
        reason,
        lead_time_override_reason,
    } = body.value;
    check_text("reason", &reason, REASON_TEXT)?;
    check_optional(
        "lead_time_override_reason",
        &lead_time_override_reason,
        REASON_TEXT,
    )?;
    let answer = answer(&id, 200);
    let execution = conditions.execution(&caller, &body.raw, answer.clone());
    let command = MeetingCommand::Reschedule {
        by: caller.0.agency.clone(),
        starts_at,
        ends_at,
        reason,
        lead_time_override_reason,
        lead_time: m.interpreter_lead_time,
        at: execution.meta.occurred_at,
    };
    let outcome = m.execute(&id, command, execution).await?;
    Ok(command_response(outcome, |a| answer(a.version)))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Reason {
    reason: String,
}

async fn cancel(
    State(m): State<Meetings>,
    caller: Caller,
    member: MeetingMember,
    conditions: WriteConditions,
    Path(id): Path<String>,
    body: JsonBody<Reason>,
) -> Result<Response, Problem> {
    require_lead_facilitator(&caller, &member.meeting.lead_agency)?;
    check_text("reason", &body.value.reason, REASON_TEXT)?;
    let answer = answer(&id, 200);
    let execution = conditions.execution(&caller, &body.raw, answer.clone());
    let command = MeetingCommand::Cancel {
        by: caller.0.agency.clone(),
        reason: body.value.reason,
        at: execution.meta.occurred_at,
    };
    let outcome = m.execute(&id, command, execution).await?;
    Ok(command_response(outcome, |a| answer(a.version)))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Booking {
    status: InterpreterBooking,
}

async fn interpreter(
    State(m): State<Meetings>,
    caller: Caller,
    member: MeetingMember,
    conditions: WriteConditions,
    Path(id): Path<String>,
    body: JsonBody<Booking>,
) -> Result<Response, Problem> {
    require_lead_facilitator(&caller, &member.meeting.lead_agency)?;
    let answer = answer(&id, 200);
    let execution = conditions.execution(&caller, &body.raw, answer.clone());
    let command = MeetingCommand::SetInterpreterBooking {
        by: caller.0.agency.clone(),
        status: body.value.status,
        at: execution.meta.occurred_at,
    };
    let outcome = m.execute(&id, command, execution).await?;
    Ok(command_response(outcome, |a| answer(a.version)))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Answer {
    response: RsvpResponse,
    #[serde(default)]
    comment: Option<String>,
}

async fn rsvp(
    State(m): State<Meetings>,
    caller: Caller,
    _member: MeetingMember,
    conditions: WriteConditions,
    Path(id): Path<String>,
    body: JsonBody<Answer>,
) -> Result<Response, Problem> {
    caller.require(&CASE_WORKERS)?;
    let Answer { response, comment } = body.value;
    check_optional("comment", &comment, REASON_TEXT)?;
    let answer = answer(&id, 200);
    let execution = conditions.execution(&caller, &body.raw, answer.clone());
    let command = MeetingCommand::Rsvp {
        agency: caller.0.agency.clone(),
        response,
        comment: comment.filter(|c| !c.trim().is_empty()),
        at: execution.meta.occurred_at,
    };
    let outcome = m.execute(&id, command, execution).await?;
    Ok(command_response(outcome, |a| answer(a.version)))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Presence {
    /// Participant agencies that came.
    present: Vec<String>,
    client_present: bool,
}

async fn attendance(
    State(m): State<Meetings>,
    caller: Caller,
    member: MeetingMember,
    conditions: WriteConditions,
    Path(id): Path<String>,
    body: JsonBody<Presence>,
) -> Result<Response, Problem> {
    require_lead_facilitator(&caller, &member.meeting.lead_agency)?;
    check_count("present", &body.value.present, MAX_ITEMS)?;
    let answer = answer(&id, 200);
    let execution = conditions.execution(&caller, &body.raw, answer.clone());
    let command = MeetingCommand::RecordAttendance {
        by: caller.0.agency.clone(),
        present: body.value.present,
        client_present: body.value.client_present,
        at: execution.meta.occurred_at,
    };
    let outcome = m.execute(&id, command, execution).await?;
    Ok(command_response(outcome, |a| answer(a.version)))
}

/// Length and count limits of the minutes' texts.
fn check_minutes_text(minutes: &Minutes) -> Result<(), Problem> {
    check_count("notes", &minutes.notes, MAX_ITEMS)?;
    for (i, note) in minutes.notes.iter().enumerate() {
        check_text(&format!("notes[{i}].text"), &note.text, LONG_TEXT)?;
    }
    check_count("decisions", &minutes.decisions, MAX_ITEMS)?;
    for (i, decision) in minutes.decisions.iter().enumerate() {
        check_text(&format!("decisions[{i}]"), decision, 2000)?;
    }
    check_count("action_items", &minutes.action_items, MAX_ITEMS)?;
    for (i, item) in minutes.action_items.iter().enumerate() {
        check_text(&format!("action_items[{i}].id"), &item.id, 64)?;
        check_text(
            &format!("action_items[{i}].description"),
            &item.description,
            2000,
        )?;
    }
    Ok(())
}

async fn save_minutes(
    State(m): State<Meetings>,
    caller: Caller,
    member: MeetingMember,
    conditions: WriteConditions,
    Path(id): Path<String>,
    body: JsonBody<Minutes>,
) -> Result<Response, Problem> {
    require_lead_facilitator(&caller, &member.meeting.lead_agency)?;
    check_minutes_text(&body.value)?;
    let network = network(&member.case)?;
    let answer = {
        let id = id.clone();
        move |v: i64| (200, json!({ "id": id, "status": "saved", "version": v }))
    };
    let execution = conditions.execution(&caller, &body.raw, answer.clone());
    let command = MeetingCommand::SaveMinutes {
        by: caller.0.agency.clone(),
        network,
        minutes: body.value,
        at: execution.meta.occurred_at,
    };
    let outcome = m.execute(&id, command, execution).await?;
    Ok(command_response(outcome, |a| answer(a.version)))
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
    caller: Caller,
    member: MeetingMember,
    conditions: WriteConditions,
    Path(id): Path<String>,
    raw: axum::body::Bytes,
) -> Result<Response, Problem> {
    require_lead_facilitator(&caller, &member.meeting.lead_agency)?;
    optional_json(&raw)?;
    // The number is known only once the event is; a stored answer (for a
    // retry with the same Idempotency-Key) uses the expected one.
    let next = member.meeting.revisions.len() as u64 + 1;
    let answer = {
        let id = id.clone();
        move |v: i64| (200, json!({ "id": id, "revision": next, "version": v }))
    };
    let execution = conditions.execution(&caller, &raw, answer);
    let command = MeetingCommand::PublishMinutes {
        by: caller.0.agency.clone(),
        at: execution.meta.occurred_at,
    };
    let outcome = m.execute(&id, command, execution).await?;
    Ok(command_response(outcome, |a| {
        let revision = published_revision(a).unwrap_or(next);
        (
            200,
            json!({ "id": id, "revision": revision, "version": a.version }),
        )
    }))
}

async fn approve(
    State(m): State<Meetings>,
    caller: Caller,
    _member: MeetingMember,
    conditions: WriteConditions,
    Path(id): Path<String>,
    raw: axum::body::Bytes,
) -> Result<Response, Problem> {
    caller.require(&CASE_WORKERS)?;
    optional_json(&raw)?;
    let answer = answer(&id, 200);
    let execution = conditions.execution(&caller, &raw, answer.clone());
    let command = MeetingCommand::ApproveMinutes {
        agency: caller.0.agency.clone(),
        at: execution.meta.occurred_at,
    };
    let outcome = m.execute(&id, command, execution).await?;
    Ok(command_response(outcome, |a| answer(a.version)))
}
