//! Calendar feeds: `GET /api/v1/calendar/{agency}.ics?token=..` for calendar
//! clients (no bearer token: the feed token in the URL stands for it), and
//! the endpoints that issue, list and revoke those tokens.

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Extension, Json, Router};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use verkosto_auth::Role;
use verkosto_eventlog::{format_time, AggregateStore, CommandMeta, Execution};
use verkosto_guard::{ReadSet, Reader};
use verkosto_http::{Caller, Problem, RequestId};
use verkosto_policy::Item;

use crate::feed_token::{
    new_token, new_token_id, token_hash, CalendarFeed, CalendarFeedCommand, FeedToken,
    DEFAULT_DAYS, MAX_DAYS,
};
use crate::ics::{calendar, CalendarEvent};
use crate::member::CASE_WORKERS;
use crate::projection;
use crate::read::parse_time;
use crate::Meetings;

pub(crate) fn routes() -> Router<Meetings> {
    Router::new()
        // The old `GET .../feed-token` minted a token as a side effect of a
        // GET; it is gone. Its DELETE stays: all of the caller's own tokens.
        .route("/api/v1/calendar/feed-token", delete(revoke_own_tokens))
        .route(
            "/api/v1/calendar/feed-tokens",
            get(list_tokens).post(issue_token),
        )
        .route(
            "/api/v1/calendar/feed-tokens/{token_id}",
            delete(revoke_token),
        )
        .route("/api/v1/calendar/{file}", get(feed))
}

fn feeds(m: &Meetings) -> AggregateStore<CalendarFeed> {
    AggregateStore::new(m.log.clone())
}

fn feed_path(agency: &str, token: &str) -> String {
    format!("/api/v1/calendar/{agency}.ics?token={token}")
}

/// The body of `POST /api/v1/calendar/feed-tokens` (optional as a whole).
#[derive(Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewFeedToken {
    /// How many days the token lives: 1 to 366, 180 when not given.
    #[serde(default)]
    expires_in_days: Option<i64>,
}

/// The answer to an issue: the only time the token is ever shown.
#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct IssuedFeedToken {
    /// The token's id, to list and revoke it by.
    token_id: String,
    /// The token itself; only its SHA-256 is kept.
    token: String,
    /// When it stops opening the feed.
    expires_at: String,
    /// The agency whose feed it opens (the `{agency}` of the feed's path).
    agency: String,
    /// The feed's path, token included, for a calendar subscription.
    url: String,
}

/// A token as lists show it: never the token itself, nor its hash.
#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct FeedTokenView {
    /// The token's id, to revoke it by.
    token_id: String,
    /// The user it belongs to.
    owner: String,
    /// When it was issued.
    created_at: String,
    /// When it stops (or stopped) opening the feed.
    expires_at: String,
    /// `active`, `expired` or `revoked`.
    state: String,
    /// When it was revoked; null: not revoked.
    revoked_at: Option<String>,
}

#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct FeedTokenList {
    /// Newest first.
    tokens: Vec<FeedTokenView>,
}

impl FeedTokenView {
    fn of(t: &FeedToken, now: DateTime<Utc>) -> FeedTokenView {
        FeedTokenView {
            token_id: t.token_id.clone(),
            owner: t.owner.clone(),
            created_at: format_time(t.created_at),
            expires_at: format_time(t.expires_at),
            state: t.state_at(now).to_string(),
            revoked_at: t.revoked_at.map(format_time),
        }
    }
}

/// Issues a new feed token to the caller, for the caller's own agency.
/// Only facilitators and liaisons: the feed shows what they may read of
/// meetings, and no one else reads meetings. Without an idempotency key on
/// purpose: the answer holds the token, which must not be stored anywhere.
async fn issue_token(
    State(m): State<Meetings>,
    caller: Caller,
    raw: axum::body::Bytes,
) -> Result<Response, Problem> {
    caller.require(&CASE_WORKERS)?;
    let body: NewFeedToken = if raw.iter().all(u8::is_ascii_whitespace) {
        NewFeedToken::default()
    } else {
        verkosto_http::parse_json(&raw)?
    };
    let days = body.expires_in_days.unwrap_or(DEFAULT_DAYS);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(Problem::invalid(
            "expires_in_days",
            format!("must be between 1 and {MAX_DAYS} days"),
        ));
    }
    let agency = caller.0.agency.clone();
    let token = new_token();
    let token_id = new_token_id();
    let meta = CommandMeta::new(caller.actor());
    // Expiry on the log's clock, which the feed checks it by.
    let expires_at = meta.occurred_at + Duration::days(days);
    let command = CalendarFeedCommand::Issue {
        agency: agency.clone(),
        token_id: token_id.clone(),
        owner: caller.0.user.clone(),
        token_sha256: token_hash(&token),
        expires_at,
        at: meta.occurred_at,
    };
    feeds(&m)
        .execute(&agency, command, &(), Execution::new(meta))
        .await
        .map_err(Problem::from)?;
    let answer = IssuedFeedToken {
        token_id,
        url: feed_path(&agency, &token),
        agency,
        token,
        expires_at: format_time(expires_at),
    };
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(answer),
    )
        .into_response())
}

/// The caller's own tokens; with `scope=agency`, an admin's view of every
/// token of the admin's agency (to revoke a leaked one whoever holds it).
async fn list_tokens(
    State(m): State<Meetings>,
    caller: Caller,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<FeedTokenList>, Problem> {
    let Query(params) = query.map_err(|_| Problem::invalid("scope", "must be mine or agency"))?;
    let everyone = match params.get("scope").map(String::as_str) {
        None | Some("mine") => false,
        Some("agency") => {
            caller.require(&[Role::Admin])?;
            true
        }
        Some(_) => return Err(Problem::invalid("scope", "must be mine or agency")),
    };
    let feed = feeds(&m).load(&caller.0.agency).await?.aggregate;
    let now = verkosto_eventlog::clock::now();
    let mut tokens: Vec<FeedTokenView> = feed
        .tokens
        .values()
        .filter(|t| everyone || t.owner == caller.0.user)
        .map(|t| FeedTokenView::of(t, now))
        .collect();
    tokens.reverse();
    Ok(Json(FeedTokenList { tokens }))
}

/// Revokes one token: its owner, or an admin of its agency. Anyone else,
/// like an unknown id, gets 404: a token id reveals nothing.
async fn revoke_token(
    State(m): State<Meetings>,
    caller: Caller,
    Path(token_id): Path<String>,
) -> Result<Response, Problem> {
    let agency = caller.0.agency.clone();
    let store = feeds(&m);
    let feed = store.load(&agency).await?.aggregate;
    let mine = |t: &&FeedToken| t.owner == caller.0.user || caller.0.has_role(Role::Admin);
    if feed.token(&token_id).filter(mine).is_none() {
        return Err(Problem::not_found(format!("no feed token {token_id}")));
    }
    let meta = CommandMeta::new(caller.actor());
    let command = CalendarFeedCommand::Revoke {
        agency: agency.clone(),
        token_id,
        by: caller.0.user.clone(),
        at: meta.occurred_at,
    };
    store
        .execute(&agency, command, &(), Execution::new(meta))
        .await
        .map_err(Problem::from)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Revokes every token of the caller's own.
async fn revoke_own_tokens(State(m): State<Meetings>, caller: Caller) -> Result<Response, Problem> {
    let agency = caller.0.agency.clone();
    let meta = CommandMeta::new(caller.actor());
    let command = CalendarFeedCommand::RevokeAllOf {
        agency: agency.clone(),
        owner: caller.0.user.clone(),
        by: caller.0.user.clone(),
        at: meta.occurred_at,
    };
    feeds(&m)
        .execute(&agency, command, &(), Execution::new(meta))
        .await
        .map_err(Problem::from)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Every way to fail looks the same: no such calendar.
fn no_calendar() -> Problem {
    Problem::not_found("no such calendar")
}

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
    // Unknown, revoked and expired tokens all answer the same 404; expiry
    // by the log's clock, the one every process shares.
    let now = verkosto_eventlog::clock::now();
    if agency.is_empty() {
        return Err(no_calendar());
    }
    let feed = feeds(&m).load(agency).await?.aggregate;
    let owner = feed
        .accepts(token, now)
        .map(|t| t.owner.clone())
        .ok_or_else(no_calendar)?;
    let rows = projection::feed_of(m.log.db(), agency).await?;

    // Each case read once: a case the agency has left shows nothing, and
    // each leaves its access record.
    // The access record names the user whose token read the feed.
    let reader = Reader {
        user: owner,
        agency: agency.to_string(),
        service: "meetings",
        request_id: request_id.map(|r| r.0 .0.clone()),
    };
    let mut reads = ReadSet::new(&m.guard, reader);
    let mut events = Vec::with_capacity(rows.len());
    for (id, case_id, starts_at, ends_at, status, sequence, location, changed_at) in rows {
        let Some(read) = reads.case(&case_id).await? else {
            continue;
        };
        let (Some(starts_at), Some(ends_at)) = (parse_time(&starts_at), parse_time(&ends_at))
        else {
            continue;
        };
        // Sealed text is opened here: a calendar is not JSON the guard opens.
        let location = location
            .filter(|_| read.allows(Item::Location))
            .and_then(|l| read.open(&l));
        let pseudonym = read.open(&read.case().pseudonym).unwrap_or_default();
        events.push(CalendarEvent {
            uid: format!("{id}@verkosto"),
            sequence: u32::try_from(sequence).unwrap_or(0),
            stamp: parse_time(&changed_at).unwrap_or(now),
            starts_at,
            ends_at,
            // No title: it may hold client data. The pseudonym is the header.
            summary: format!("Network meeting {pseudonym}"),
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
