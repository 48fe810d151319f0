//! Calendar feeds: `GET /api/v1/calendar/{agency}.ics?token=..` for calendar
//! clients (no bearer token: the feed token in the URL stands for it), and
//! the endpoints that issue and revoke those tokens.

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::json;
use verkosto_eventlog::{AggregateStore, CommandMeta, Execution};
use verkosto_guard::{ReadSet, Reader};
use verkosto_http::{Caller, Problem, RequestId};
use verkosto_policy::Item;

use crate::feed_token::{new_token, token_hash, CalendarFeed, CalendarFeedCommand};
use crate::ics::{calendar, CalendarEvent};
use crate::read::parse_time;
use crate::Meetings;

pub(crate) fn routes() -> Router<Meetings> {
    Router::new()
        .route(
            "/api/v1/calendar/feed-token",
            get(issue_token).delete(revoke_tokens),
        )
        .route("/api/v1/calendar/{file}", get(feed))
}

fn feeds(m: &Meetings) -> AggregateStore<CalendarFeed> {
    AggregateStore::new(m.log.clone())
}

fn feed_path(agency: &str, token: &str) -> String {
    format!("/api/v1/calendar/{agency}.ics?token={token}")
}

/// Issues a new feed token for the caller's own agency. Without an
/// idempotency key on purpose: the answer holds the token, which must not
/// be stored anywhere.
async fn issue_token(State(m): State<Meetings>, caller: Caller) -> Result<Response, Problem> {
    let agency = caller.0.agency.clone();
    let token = new_token();
    let meta = CommandMeta::new(caller.actor());
    let command = CalendarFeedCommand::Issue {
        agency: agency.clone(),
        token_sha256: token_hash(&token),
        by: caller.0.user.clone(),
        at: meta.occurred_at,
    };
    feeds(&m)
        .execute(&agency, command, &(), Execution::new(meta))
        .await
        .map_err(Problem::from)?;
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({ "agency": agency, "token": token, "url": feed_path(&agency, &token) })),
    )
        .into_response())
}

/// Revokes every feed token of the caller's agency.
async fn revoke_tokens(State(m): State<Meetings>, caller: Caller) -> Result<Response, Problem> {
    let agency = caller.0.agency.clone();
    let meta = CommandMeta::new(caller.actor());
    let command = CalendarFeedCommand::Revoke {
        agency: agency.clone(),
        by: caller.0.user.clone(),
        at: meta.occurred_at,
    };
    feeds(&m)
        .execute(&agency, command, &(), Execution::new(meta))
        .await
        .map_err(Problem::from)?;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

/// Every way to fail looks the same: no such calendar.
fn no_calendar() -> Problem {
    Problem::not_found("no such calendar")
}

/// `(id, case_id, starts_at, ends_at, status, sequence, location, changed_at)`
type FeedRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<String>,
    String,
);

async fn feed(
    State(m): State<Meetings>,
    Path(file): Path<String>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    request_id: Option<Extension<RequestId>>,
) -> Result<Response, Problem> {
    let agency = file.strip_suffix(".ics").ok_or_else(no_calendar)?;
    let Ok(Query(params)) = query else {
        return Err(no_calendar());
    };
    let token = params.get("token").map(String::as_str).unwrap_or_default();
    if agency.is_empty() || !feeds(&m).load(agency).await?.aggregate.accepts(token) {
        return Err(no_calendar());
    }
    let rows: Vec<FeedRow> = sqlx::query_as(
        "SELECT m.id, m.case_id, m.starts_at, m.ends_at, m.status, m.sequence, m.location, m.changed_at \
         FROM meetings_meetings m JOIN meetings_participants p ON p.meeting_id = m.id \
         WHERE p.agency = $1 ORDER BY m.starts_at, m.id",
    )
    .bind(agency)
    .fetch_all(m.log.db().reader())
    .await
    .map_err(verkosto_eventlog::Error::from)?;

    // Each case read once: a case the agency has left shows nothing, and
    // each leaves its access record.
    let reader = Reader {
        user: "calendar-feed".into(),
        agency: agency.to_string(),
        service: "meetings",
        request_id: request_id.map(|r| r.0 .0.clone()),
    };
    let mut reads = ReadSet::new(&m.guard, reader);
    let now = verkosto_eventlog::clock::now();
    let mut events = Vec::with_capacity(rows.len());
    for (id, case_id, starts_at, ends_at, status, sequence, location, changed_at) in rows {
        let Some(read) = reads.case(&case_id).await? else {
            continue;
        };
        let (Some(starts_at), Some(ends_at)) = (parse_time(&starts_at), parse_time(&ends_at))
        else {
            continue;
        };
        let location = location.filter(|_| read.allows(Item::Location));
        events.push(CalendarEvent {
            uid: format!("{id}@verkosto"),
            sequence: u32::try_from(sequence).unwrap_or(0),
            stamp: parse_time(&changed_at).unwrap_or(now),
            starts_at,
            ends_at,
            // No title: it may hold client data. The pseudonym is the header.
            summary: format!("Network meeting {}", read.case().pseudonym),
            cancelled: status == "cancelled",
            location,
        });
    }
    let events = reads
        .finish(&format!("calendar/{agency}"), events)
        .await?
        .into_body();
    let body = calendar(&format!("Verkosto {agency}"), &events);
    Ok((
        [
            (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response())
}
