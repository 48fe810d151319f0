//! Reads of meetings: the header for every member, the rest per item as
//! consent allows; the access record is durable before the answer leaves.

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use verkosto_eventlog::format_time;
use verkosto_guard::{CaseRead, Reader};
use verkosto_http::{Caller, Problem, RequestId};
use verkosto_policy::{Category, Item};

use crate::domain::{Meeting, Minutes};
use crate::member::{MeetingRead, CASE_WORKERS};
use crate::projection;
use crate::Meetings;
use verkosto_types::time::{helsinki_rfc3339, HELSINKI};

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

/// What the lead wrote of a meeting (its title, a reason, whether the
/// client came): client data of the category `meetings`.
fn meetings_text(read: &mut CaseRead, lead: &str, value: impl serde::Serialize) -> Value {
    let item = Item::Authored {
        category: Category::Meetings,
        author: lead,
    };
    read.keep(item, json!(value)).unwrap_or(Value::Null)
}

/// Minutes as the reader may see them. Notes and action items are
/// written by the lead, so the lead sees all of them.
fn visible_minutes(minutes: &Minutes, lead: &str, read: &mut CaseRead) -> Value {
    let notes: Vec<Value> = minutes
        .notes
        .iter()
        .filter(|n| {
            read.allows(Item::Authored {
                category: n.category,
                author: lead,
            })
        })
        .map(|n| json!(n))
        .collect();
    let decisions: Vec<&String> = minutes
        .decisions
        .iter()
        .filter(|_| {
            read.allows(Item::Authored {
                category: Category::Meetings,
                author: lead,
            })
        })
        .collect();
    let action_items: Vec<Value> = minutes
        .action_items
        .iter()
        .filter(|a| {
            read.allows(Item::Authored {
                category: a.category,
                author: lead,
            })
        })
        .map(|a| json!(a))
        .collect();
    json!({ "notes": notes, "decisions": decisions, "action_items": action_items })
}

/// The draft (the lead's working copy, for the lead only) and every
/// published revision, newest last.
fn minutes_view(meeting: &Meeting, read: &mut CaseRead) -> Map<String, Value> {
    let reader = read.agency().to_string();
    let lead = meeting.lead_agency.as_str();
    let latest = meeting.latest().map(|r| r.revision);
    let revisions: Vec<Value> = meeting
        .revisions
        .iter()
        .map(|r| {
            let mut v = visible_minutes(&r.minutes, lead, read);
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
        Some(d) if reader == lead => visible_minutes(d, lead, read),
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
fn meeting_view(meeting: &Meeting, read: &mut CaseRead) -> Map<String, Value> {
    let lead = meeting.lead_agency.as_str();
    let mut v = Map::new();
    v.insert("id".into(), json!(meeting.id));
    v.insert("case_id".into(), json!(meeting.case_id));
    v.insert("lead_agency".into(), json!(lead));
    v.insert("title".into(), meetings_text(read, lead, &meeting.title));
    v.insert("status".into(), json!(status(meeting)));
    times(&mut v, meeting.starts_at, meeting.ends_at);
    // A meeting's place is contact data under the safety rule.
    if let Some(location) = &meeting.location {
        if read.allows(Item::Location) {
            v.insert("location".into(), json!(location));
        }
    }
    v.insert("participants".into(), json!(meeting.participants));
    v.insert(
        "client_attends".into(),
        meetings_text(read, lead, meeting.client_attends),
    );
    v.insert(
        "interpreter_language".into(),
        json!(meeting.interpreter_language),
    );
    v.insert(
        "interpreter_booking".into(),
        json!(meeting.interpreter_booking),
    );
    let reason = meeting
        .lead_time_override_reason
        .as_ref()
        .map(|r| meetings_text(read, lead, r));
    v.insert("lead_time_override_reason".into(), json!(reason));
    let agenda: Vec<&String> = meeting
        .agenda
        .iter()
        .filter(|_| {
            read.allows(Item::Authored {
                category: Category::Meetings,
                author: lead,
            })
        })
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
                "reason": meetings_text(read, lead, &r.reason),
                "lead_time_override_reason": r
                    .lead_time_override_reason
                    .as_ref()
                    .map(|o| meetings_text(read, lead, o)),
                "at": format_time(r.at),
            })
        })
        .collect();
    v.insert("reschedules".into(), json!(reschedules));
    let cancellation = meeting.cancellation.as_ref().map(
        |c| json!({ "reason": meetings_text(read, lead, &c.reason), "at": format_time(c.at) }),
    );
    v.insert("cancellation".into(), json!(cancellation));
    // A comment is written by the agency that answered.
    let rsvps: Vec<Value> = meeting
        .rsvps
        .iter()
        .map(|(agency, r)| {
            let comment = r.comment.as_ref().map(|c| meetings_text(read, agency, c));
            json!({ "agency": agency, "response": r.response, "comment": comment, "at": format_time(r.at) })
        })
        .collect();
    v.insert("rsvps".into(), json!(rsvps));
    let attendance = meeting.attendance.as_ref().map(|a| {
        json!({
            "present": a.present,
            "client_present": meetings_text(read, lead, a.client_present),
            "recorded_at": format_time(a.at),
        })
    });
    v.insert("attendance".into(), json!(attendance));
    v.insert(
        "client_absence_reported".into(),
        meetings_text(read, lead, meeting.client_absence_reported),
    );
    v.insert("minutes".into(), Value::Object(minutes_view(meeting, read)));
    v
}

fn with_etag(version: i64, answer: impl IntoResponse) -> Response {
    (
        [(axum::http::header::ETAG, format!("\"{version}\""))],
        answer,
    )
        .into_response()
}

pub(crate) async fn get_meeting(caller: Caller, member: MeetingRead) -> Result<Response, Problem> {
    caller.require(&CASE_WORKERS)?;
    let MeetingRead {
        meeting,
        version,
        mut read,
    } = member;
    let mut body = meeting_view(&meeting, &mut read);
    body.insert("version".into(), json!(version));
    let resource = format!("meeting/{}", meeting.id.as_deref().unwrap_or_default());
    let answer = read.finish(&resource, body).await?;
    Ok(with_etag(version, answer))
}

pub(crate) async fn get_minutes(caller: Caller, member: MeetingRead) -> Result<Response, Problem> {
    caller.require(&CASE_WORKERS)?;
    let MeetingRead {
        meeting,
        version,
        mut read,
    } = member;
    let mut body = minutes_view(&meeting, &mut read);
    body.insert("id".into(), json!(meeting.id));
    body.insert("version".into(), json!(version));
    let resource = format!(
        "meeting/{}/minutes",
        meeting.id.as_deref().unwrap_or_default()
    );
    let answer = read.finish(&resource, body).await?;
    Ok(with_etag(version, answer))
}

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
    let reader = Reader::new("meetings", &caller, request_id.as_deref());
    let mut read = m.guard.read(&case_id, &reader).await?;
    caller.require(&CASE_WORKERS)?;
    let rows = projection::meetings_of_case(m.log.db(), &case_id).await?;
    let participants = projection::participants_of_case(m.log.db(), &case_id).await?;
    let lead = read.case().lead_agency.clone();
    let mut meetings = Vec::with_capacity(rows.len());
    for (id, title, starts_at, ends_at, status, sequence, location, version) in rows {
        let mut v = Map::new();
        v.insert("id".into(), json!(id));
        v.insert("title".into(), meetings_text(&mut read, &lead, title));
        v.insert("status".into(), json!(status));
        match (parse_time(&starts_at), parse_time(&ends_at)) {
            (Some(s), Some(e)) => times(&mut v, s, e),
            _ => {
                v.insert("starts_at".into(), json!(starts_at));
                v.insert("ends_at".into(), json!(ends_at));
            }
        }
        if let Some(location) = location {
            if read.allows(Item::Location) {
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
    let body = json!({ "case_id": case_id, "meetings": meetings });
    Ok(read.finish("meetings", body).await?.into_response())
}

pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
