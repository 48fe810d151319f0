//! Reads of meetings: the header for every member, the rest per item as
//! consent allows; the access record is durable before the answer leaves.

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use verkosto_eventlog::format_time;
use verkosto_guard::ReadFilter;
use verkosto_http::{Caller, Problem, RequestId};
use verkosto_policy::Category;

use crate::domain::{Meeting, Minutes};
use crate::routes::{guard_problem, MeetingMember, CASE_WORKERS};
use crate::time::{helsinki_rfc3339, HELSINKI};
use crate::Meetings;

/// A meeting time: UTC, to the second.
pub(crate) fn utc_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The times of a meeting, in UTC and in the agencies' local time.
fn times(into: &mut Map<String, Value>, starts_at: DateTime<Utc>, ends_at: DateTime<Utc>) {
    into.insert("starts_at".into(), json!(utc_text(starts_at)));
    into.insert("ends_at".into(), json!(utc_text(ends_at)));
    into.insert("starts_at_local".into(), json!(helsinki_rfc3339(starts_at)));
    into.insert("ends_at_local".into(), json!(helsinki_rfc3339(ends_at)));
    into.insert("time_zone".into(), json!(HELSINKI));
}

/// Minutes as `filter` lets the reader see them. Notes and action items are
/// written by the lead, so the lead sees all of them.
fn visible_minutes(minutes: &Minutes, lead: &str, filter: &mut ReadFilter<'_>) -> Value {
    let notes: Vec<Value> = minutes
        .notes
        .iter()
        .filter(|n| filter.allows_item(n.category, Some(lead)))
        .map(|n| json!(n))
        .collect();
    let decisions: Vec<&String> = minutes
        .decisions
        .iter()
        .filter(|_| filter.allows_item(Category::Meetings, Some(lead)))
        .collect();
    let action_items: Vec<Value> = minutes
        .action_items
        .iter()
        .filter(|a| filter.allows_item(a.category, Some(lead)))
        .map(|a| json!(a))
        .collect();
    json!({ "notes": notes, "decisions": decisions, "action_items": action_items })
}

/// The draft (the lead's working copy, for the lead only) and every
/// published revision, newest last.
fn minutes_view(
    meeting: &Meeting,
    reader: &str,
    filter: &mut ReadFilter<'_>,
) -> Map<String, Value> {
    let lead = meeting.lead_agency.as_str();
    let latest = meeting.latest().map(|r| r.revision);
    let revisions: Vec<Value> = meeting
        .revisions
        .iter()
        .map(|r| {
            let mut v = visible_minutes(&r.minutes, lead, filter);
            v["revision"] = json!(r.revision);
            v["published_at"] = json!(format_time(r.published_at));
            v["latest"] = json!(Some(r.revision) == latest);
            v["approved_by"] = r
                .approvals
                .iter()
                .map(|(agency, at)| json!({ "agency": agency, "at": format_time(*at) }))
                .collect();
            v
        })
        .collect();
    let draft = match &meeting.draft {
        Some(d) if reader == lead => visible_minutes(d, lead, filter),
        _ => Value::Null,
    };
    let mut v = Map::new();
    v.insert("draft".into(), draft);
    v.insert("revisions".into(), json!(revisions));
    v.insert(
        "awaiting_approval".into(),
        json!(meeting.awaiting_approval()),
    );
    v
}

fn status(meeting: &Meeting) -> &'static str {
    if meeting.is_cancelled() {
        "cancelled"
    } else if meeting.attendance.is_some() {
        "held"
    } else {
        "scheduled"
    }
}

/// The whole meeting as the reader may see it.
fn meeting_view(
    meeting: &Meeting,
    reader: &str,
    filter: &mut ReadFilter<'_>,
) -> Map<String, Value> {
    let lead = meeting.lead_agency.as_str();
    let mut v = Map::new();
    v.insert("id".into(), json!(meeting.id));
    v.insert("case_id".into(), json!(meeting.case_id));
    v.insert("lead_agency".into(), json!(lead));
    v.insert("title".into(), json!(meeting.title));
    v.insert("status".into(), json!(status(meeting)));
    times(&mut v, meeting.starts_at, meeting.ends_at);
    // A meeting's place is contact data under the safety rule.
    if let Some(location) = &meeting.location {
        if filter.allows_contact() {
            v.insert("location".into(), json!(location));
        }
    }
    v.insert("participants".into(), json!(meeting.participants));
    v.insert("client_attends".into(), json!(meeting.client_attends));
    v.insert(
        "interpreter_language".into(),
        json!(meeting.interpreter_language),
    );
    v.insert(
        "interpreter_booking".into(),
        json!(meeting.interpreter_booking),
    );
    v.insert(
        "lead_time_override_reason".into(),
        json!(meeting.lead_time_override_reason),
    );
    let agenda: Vec<&String> = meeting
        .agenda
        .iter()
        .filter(|_| filter.allows_item(Category::Meetings, Some(lead)))
        .collect();
    v.insert("agenda".into(), json!(agenda));
    v.insert("sequence".into(), json!(meeting.sequence));
    v.insert(
        "scheduled_at".into(),
        json!(format_time(meeting.scheduled_at)),
    );
    let reschedules: Vec<Value> = meeting
        .reschedules
        .iter()
        .map(|r| {
            json!({
                "starts_at": utc_text(r.starts_at),
                "ends_at": utc_text(r.ends_at),
                "reason": r.reason,
                "lead_time_override_reason": r.lead_time_override_reason,
                "at": format_time(r.at),
            })
        })
        .collect();
    v.insert("reschedules".into(), json!(reschedules));
    v.insert(
        "cancellation".into(),
        json!(meeting
            .cancellation
            .as_ref()
            .map(|c| json!({ "reason": c.reason, "at": format_time(c.at) }))),
    );
    let rsvps: Vec<Value> = meeting
        .rsvps
        .iter()
        .map(|(agency, r)| {
            json!({ "agency": agency, "response": r.response, "comment": r.comment, "at": format_time(r.at) })
        })
        .collect();
    v.insert("rsvps".into(), json!(rsvps));
    v.insert(
        "attendance".into(),
        json!(meeting.attendance.as_ref().map(|a| json!({
            "present": a.present,
            "client_present": a.client_present,
            "recorded_at": format_time(a.at),
        }))),
    );
    v.insert(
        "client_absence_reported".into(),
        json!(meeting.client_absence_reported),
    );
    v.insert(
        "minutes".into(),
        Value::Object(minutes_view(meeting, reader, filter)),
    );
    v
}

/// Adds the consent fields every read of client data carries.
fn consent_fields(into: &mut Map<String, Value>, filter: &ReadFilter<'_>) {
    into.insert("withheld".into(), json!(filter.withheld()));
    into.insert("consent_version".into(), json!(filter.consent_version()));
    into.insert("consent_fresh".into(), json!(filter.fresh()));
}

async fn record_access(
    m: &Meetings,
    filter: &ReadFilter<'_>,
    caller: &Caller,
    resource: &str,
    request_id: Option<Extension<RequestId>>,
) -> Result<(), Problem> {
    let mut record = filter.record(&caller.0.user, "meetings", resource);
    record.request_id = request_id.map(|r| r.0 .0.clone());
    m.guard.record_access(record).await.map_err(guard_problem)
}

fn with_etag(version: i64, body: Value) -> Response {
    (
        [(axum::http::header::ETAG, format!("\"{version}\""))],
        Json(body),
    )
        .into_response()
}

pub(crate) async fn get_meeting(
    State(m): State<Meetings>,
    caller: Caller,
    member: MeetingMember,
    request_id: Option<Extension<RequestId>>,
) -> Result<Response, Problem> {
    caller.require(&CASE_WORKERS)?;
    let MeetingMember {
        meeting,
        version,
        case,
    } = member;
    let mut filter = case.filter(&caller.0.agency, verkosto_eventlog::clock::now());
    let mut body = meeting_view(&meeting, &caller.0.agency, &mut filter);
    body.insert("version".into(), json!(version));
    consent_fields(&mut body, &filter);
    let resource = format!("meeting/{}", meeting.id.as_deref().unwrap_or_default());
    record_access(&m, &filter, &caller, &resource, request_id).await?;
    Ok(with_etag(version, Value::Object(body)))
}

pub(crate) async fn get_minutes(
    State(m): State<Meetings>,
    caller: Caller,
    member: MeetingMember,
    request_id: Option<Extension<RequestId>>,
) -> Result<Response, Problem> {
    caller.require(&CASE_WORKERS)?;
    let MeetingMember {
        meeting,
        version,
        case,
    } = member;
    let mut filter = case.filter(&caller.0.agency, verkosto_eventlog::clock::now());
    let mut body = minutes_view(&meeting, &caller.0.agency, &mut filter);
    body.insert("id".into(), json!(meeting.id));
    body.insert("version".into(), json!(version));
    consent_fields(&mut body, &filter);
    let resource = format!(
        "meeting/{}/minutes",
        meeting.id.as_deref().unwrap_or_default()
    );
    record_access(&m, &filter, &caller, &resource, request_id).await?;
    Ok(with_etag(version, Value::Object(body)))
}

/// `(id, title, starts_at, ends_at, status, sequence, location, version)`
type ListRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<String>,
    i64,
);

pub(crate) async fn list_meetings(
    State(m): State<Meetings>,
    caller: Caller,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    request_id: Option<Extension<RequestId>>,
) -> Result<Response, Problem> {
    let Query(params) =
        query.map_err(|e| Problem::bad_request(format!("case: {}", e.body_text())))?;
    let case_id = match params.get("case") {
        Some(c) if !c.trim().is_empty() => c.clone(),
        _ => return Err(Problem::invalid("case", "is required: ?case=<case id>")),
    };
    let case = m
        .member_view(&case_id, &caller.0.agency, || {
            Problem::not_found(format!("no case {case_id}"))
        })
        .await?;
    caller.require(&CASE_WORKERS)?;
    let rows: Vec<ListRow> = sqlx::query_as(
        "SELECT id, title, starts_at, ends_at, status, sequence, location, version \
         FROM meetings_meetings WHERE case_id = $1 ORDER BY starts_at, id",
    )
    .bind(&case_id)
    .fetch_all(m.log.db().reader())
    .await
    .map_err(verkosto_eventlog::Error::from)?;
    let participants = participants_of_case(&m, &case_id).await?;
    let mut filter = case.filter(&caller.0.agency, verkosto_eventlog::clock::now());
    let mut meetings = Vec::with_capacity(rows.len());
    for (id, title, starts_at, ends_at, status, sequence, location, version) in rows {
        let mut v = Map::new();
        v.insert("id".into(), json!(id));
        v.insert("title".into(), json!(title));
        v.insert("status".into(), json!(status));
        match (parse_time(&starts_at), parse_time(&ends_at)) {
            (Some(s), Some(e)) => times(&mut v, s, e),
            _ => {
                v.insert("starts_at".into(), json!(starts_at));
                v.insert("ends_at".into(), json!(ends_at));
            }
        }
        if let Some(location) = location {
            if filter.allows_contact() {
                v.insert("location".into(), json!(location));
            }
        }
        v.insert(
            "participants".into(),
            json!(participants.get(&id).cloned().unwrap_or_default()),
        );
        v.insert("sequence".into(), json!(sequence));
        v.insert("version".into(), json!(version));
        meetings.push(Value::Object(v));
    }
    let mut body = Map::new();
    body.insert("case_id".into(), json!(case_id));
    body.insert("meetings".into(), json!(meetings));
    consent_fields(&mut body, &filter);
    record_access(&m, &filter, &caller, "meetings", request_id).await?;
    Ok(Json(Value::Object(body)).into_response())
}

pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

async fn participants_of_case(
    m: &Meetings,
    case_id: &str,
) -> Result<HashMap<String, Vec<String>>, Problem> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT p.meeting_id, p.agency FROM meetings_participants p \
         JOIN meetings_meetings m ON m.id = p.meeting_id \
         WHERE m.case_id = $1 ORDER BY p.meeting_id, p.agency",
    )
    .bind(case_id)
    .fetch_all(m.log.db().reader())
    .await
    .map_err(verkosto_eventlog::Error::from)?;
    let mut by_meeting: HashMap<String, Vec<String>> = HashMap::new();
    for (meeting, agency) in rows {
        by_meeting.entry(meeting).or_default().push(agency);
    }
    Ok(by_meeting)
}
