//! `/api/v1/audit/...`: what auditors see. History and logs, never client
//! data: the consent record's events, who read what under which consent,
//! and the integrity of the whole log.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use verkosto_auth::Role;
use verkosto_eventlog::{EventLog, RecordedEvent};
use verkosto_guard::Reader;
use verkosto_http::{Caller, Problem, RequestId};
use verkosto_policy::{ConsentEvent, ConsentState};

use crate::matrix::{matrix_answer, parse_at};
use crate::service::ConsentService;

pub(crate) fn routes() -> Router<ConsentService> {
    Router::new()
        .route(
            "/api/v1/audit/cases/{id}/consent/history",
            get(consent_history),
        )
        .route("/api/v1/audit/cases/{id}/access-log", get(access_log))
        .route("/api/v1/audit/cases/{id}/consent", get(consent_at))
        .route("/api/v1/audit/verify", get(verify))
}

/// One consent change as the auditor sees it.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryEntry {
    /// The change's version in the case's consent record: 1, 2, …
    pub seq: i64,
    /// The event's type name (`ConsentGranted`, …).
    #[serde(rename = "type")]
    pub event_type: String,
    /// When it was recorded: the event's `occurred_at` (RFC 3339, UTC, microseconds).
    pub at: String,
    /// Who recorded it.
    pub actor: verkosto_eventlog::Actor,
    /// The event's fields (the payload inside its type's key); null if absent.
    pub data: Value,
    /// The event's id in the log.
    pub event_id: String,
    /// The event's hash, for checking against `/api/v1/audit/verify`.
    pub hash: String,
}

impl From<&RecordedEvent> for HistoryEntry {
    fn from(e: &RecordedEvent) -> HistoryEntry {
        HistoryEntry {
            seq: e.version,
            event_type: e.event_type.clone(),
            at: e.occurred_at.clone(),
            actor: e.actor.clone(),
            data: e.payload.get(&e.event_type).cloned().unwrap_or(Value::Null),
            event_id: e.event_id.clone(),
            hash: e.hash.clone(),
        }
    }
}

/// A case's consent record and the facts needed to evaluate it, read
/// straight from the log (for auditors, who need no projection).
pub struct Replay {
    /// The case's id.
    pub case_id: String,
    /// The lead agency, from the case's `CaseOpened` (empty if it has none).
    pub lead_agency: String,
    /// Every event of the case's consent stream, in version order.
    pub events: Vec<RecordedEvent>,
    /// Those events folded, with the lead but without the case's facts (flags,
    /// coming of age): add them with `ConsentState::with_case` before judging.
    pub state: ConsentState,
}

/// Replays a case's consent record from the log; None if the case does not exist.
pub async fn replay(log: &EventLog, case_id: &str) -> Result<Option<Replay>, Problem> {
    let case_events = log.read_stream("case", case_id).await?;
    let Some(opened) = case_events.first() else {
        return Ok(None);
    };
    let lead_agency = opened
        .payload
        .pointer("/CaseOpened/lead_agency")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let events = log.read_stream("consent", case_id).await?;
    let mut state = ConsentState::new(lead_agency.clone());
    for e in &events {
        let event: ConsentEvent = serde_json::from_value(e.payload.clone()).map_err(|err| {
            tracing::error!(position = e.position, error = %err, "undecodable consent event");
            Problem::internal()
        })?;
        state.apply(&event);
    }
    Ok(Some(Replay {
        case_id: case_id.to_string(),
        lead_agency,
        events,
        state,
    }))
}

impl Replay {
    /// The events recorded at or before `at`.
    pub fn timeline(&self, at: DateTime<Utc>) -> Vec<HistoryEntry> {
        let n = self.state.version_at(at) as usize;
        self.events[..n].iter().map(HistoryEntry::from).collect()
    }
}

async fn consent_history(
    State(s): State<ConsentService>,
    caller: Caller,
    Path(case_id): Path<String>,
    request_id: Option<Extension<RequestId>>,
) -> Result<Json<Value>, Problem> {
    caller.require(&[Role::Auditor])?;
    let replay = replay(&s.log, &case_id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no case {case_id}")))?;
    audited(&s, &caller, request_id, &case_id, "audit/consent-history").await?;
    let events: Vec<HistoryEntry> = replay.events.iter().map(HistoryEntry::from).collect();
    let mut answer = json!({
        "case_id": case_id,
        "lead_agency": replay.lead_agency,
        "consent_version": replay.state.version(),
        "events": events,
        "erased": erasure(&s.log, &case_id).await?,
    });
    // The record is what the auditor judges: its purposes and evidence too.
    s.log.open_sealed(&mut answer).await?;
    Ok(Json(answer))
}

/// The case's erasure, if it was erased: who, when, on what basis and why
/// (the `CaseErased` event holds no client data); null otherwise.
async fn erasure(log: &EventLog, case_id: &str) -> Result<Value, Problem> {
    let events = log.read_stream("case", case_id).await?;
    Ok(events
        .iter()
        .find(|e| e.event_type == "CaseErased")
        .map(|e| {
            let mut erased = e.payload["CaseErased"].clone();
            erased["actor"] = json!(e.actor);
            erased
        })
        .unwrap_or(Value::Null))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AtQuery {
    /// `?at=`: the moment, RFC 3339 with an offset; none: now.
    at: Option<String>,
}

/// The matrix at any moment, replayed from the log, for auditors (who are
/// not members of the case and read no client data, only the record).
async fn consent_at(
    State(s): State<ConsentService>,
    caller: Caller,
    Path(case_id): Path<String>,
    query: Result<axum::extract::Query<AtQuery>, axum::extract::rejection::QueryRejection>,
    request_id: Option<Extension<RequestId>>,
) -> Result<Json<Value>, Problem> {
    caller.require(&[Role::Auditor])?;
    let axum::extract::Query(query) =
        query.map_err(|e| Problem::bad_request(format!("query: {e}")))?;
    let at = parse_at(query.at.as_deref())?;
    let replay = replay(&s.log, &case_id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no case {case_id}")))?;
    // The rules for minors need the case's flags: the guard's copy has them
    // (an erased case's copy keeps none: the record is replayed without).
    let facts = match s.guard.case(&case_id).await {
        Ok(view) => view.map(|view| view.facts().clone()).unwrap_or_default(),
        Err(verkosto_guard::GuardError::Gone(_)) => Default::default(),
        Err(e) => return Err(e.into()),
    };
    let state = replay.state.clone().with_case(facts);
    audited(&s, &caller, request_id, &case_id, "audit/consent").await?;
    let members = std::collections::BTreeSet::new();
    let mut answer = matrix_answer(&case_id, &members, &state, at);
    answer["timeline"] = serde_json::to_value(replay.timeline(at)).unwrap_or_default();
    s.log.open_sealed(&mut answer).await?;
    Ok(Json(answer))
}

async fn access_log(
    State(s): State<ConsentService>,
    caller: Caller,
    Path(case_id): Path<String>,
    request_id: Option<Extension<RequestId>>,
) -> Result<Json<Value>, Problem> {
    caller.require(&[Role::Auditor])?;
    if s.log.stream_version("case", &case_id).await? == 0 {
        return Err(Problem::not_found(format!("no case {case_id}")));
    }
    // Written before the log is read: the answer holds its own record.
    audited(&s, &caller, request_id, &case_id, "audit/access-log").await?;
    let entries = verkosto_guard::read_case_log(s.log.db(), &case_id)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "access log read failed");
            Problem::internal()
        })?;
    Ok(Json(json!({ "case_id": case_id, "reads": entries })))
}

/// An auditor's read of the case's record or log, durably logged (marked
/// as an auditor's) before the answer leaves.
async fn audited(
    s: &ConsentService,
    caller: &Caller,
    request_id: Option<Extension<RequestId>>,
    case_id: &str,
    resource: &str,
) -> Result<(), Problem> {
    let reader = Reader::new("consent", caller, request_id.as_deref());
    Ok(s.guard.record_audit(case_id, &reader, resource).await?)
}

async fn verify(State(s): State<ConsentService>, caller: Caller) -> Result<Json<Value>, Problem> {
    caller.require(&[Role::Auditor])?;
    let report = s.log.verify(|_| {}).await?;
    Ok(Json(
        serde_json::to_value(report).map_err(|_| Problem::internal())?,
    ))
}
