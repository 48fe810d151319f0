//! The meetings service: scheduling, attendance, minutes and calendar feeds
//! for network meetings.
//!
//! Owns the `meeting` and `calendar-feed` streams and the `meetings_*`
//! tables. Every read of client data goes through the consent guard
//! (`verkosto-guard`): membership first (404 to outsiders), then consent
//! item by item, then the access record, then the answer.
//!
//! `ClientAbsent` and `MinutesPublished` are consumed by the tasks service.

mod calendar;
pub mod domain;
pub mod feed_token;
pub mod ics;
mod member;
mod projection;
mod read;
mod routes;

use std::time::Duration;

use axum::extract::FromRef;
use axum::Router;
use verkosto_eventlog::EventLog;
use verkosto_eventlog::Progress;
use verkosto_guard::Guard;
use verkosto_http::AuthState;

pub use domain::MeetingEvent;
pub use feed_token::CalendarFeedEvent;
pub use projection::MeetingsProjection;

/// The meetings service.
#[derive(Clone)]
pub struct Meetings {
    /// The event log: the `meeting` and `calendar-feed` streams, and the
    /// `meetings_*` tables.
    pub log: EventLog,
    /// The `meetings_*` read model's progress.
    pub progress: Progress,
    /// The consent guard: every read of client data goes through it, and
    /// commands check the case's network with it.
    pub guard: Guard,
    /// Token verification for the `Caller` extractor.
    pub auth: AuthState,
    /// How long before a meeting an interpreter must be booked.
    pub interpreter_lead_time: Duration,
}

impl FromRef<Meetings> for AuthState {
    fn from_ref(m: &Meetings) -> AuthState {
        m.auth.clone()
    }
}

pub fn router(meetings: Meetings) -> Router {
    Router::new()
        .merge(routes::routes())
        .merge(calendar::routes())
        .with_state(meetings)
}

/// Creates the meetings service's tables.
pub async fn migrate(db: &verkosto_eventlog::Db) -> Result<(), verkosto_eventlog::Error> {
    // One SQL for both backends.
    let migrations = sqlx::migrate!("./migrations");
    db.run_migrations(&migrations, &migrations).await
}

/// The meetings service's operations, for the OpenAPI document.
pub fn api_doc() -> Vec<verkosto_http::openapi::Operation> {
    use verkosto_http::openapi::{Operation as Op, Source};
    let lead = "the lead agency's facilitator";
    let this_meeting = [("id", Source::Path("id"))];
    let members = "a facilitator or liaison of a member agency";
    let participants = "a facilitator or liaison of a participant agency";
    vec![
        Op::new(
            "post",
            "/api/v1/cases/{id}/meetings",
            "meetings",
            "Schedule a network meeting",
        )
        .who(lead)
        .body::<routes::NewMeeting>()
        .answer(201, "Scheduled: id, version")
        .answer(422, "A rule was broken, e.g. the interpreter lead time")
        .links_under(201, "/api/v1/meetings/{id}", &[("id", Source::Answer("/id"))])
        .link(
            201,
            "get",
            "/api/v1/meetings",
            &[("case", Source::Path("id"))],
        ),
        Op::new(
            "get",
            "/api/v1/meetings",
            "meetings",
            "The meetings of a case",
        )
        .who(members)
        .query("case", "the case id")
        .answer(200, "meetings, withheld, consent_version, consent_fresh"),
        Op::new(
            "get",
            "/api/v1/meetings/{id}",
            "meetings",
            "A meeting, filtered by consent",
        )
        .who(members)
        .answer(200, "Header, minutes revisions, withheld, consent_version"),
        Op::new(
            "post",
            "/api/v1/meetings/{id}/reschedule",
            "meetings",
            "Move the meeting",
        )
        .who(lead)
        .body::<routes::NewTime>()
        .answer(200, "Rescheduled"),
        Op::new(
            "post",
            "/api/v1/meetings/{id}/cancel",
            "meetings",
            "Cancel the meeting",
        )
        .who(lead)
        .body::<routes::Reason>()
        .answer(200, "Cancelled"),
        Op::new(
            "post",
            "/api/v1/meetings/{id}/interpreter",
            "meetings",
            "Set the interpreter booking status",
        )
        .who(lead)
        .body::<routes::Booking>()
        .answer(200, "Set"),
        Op::new(
            "post",
            "/api/v1/meetings/{id}/rsvp",
            "meetings",
            "Accept or decline",
        )
        .who(participants)
        .body::<routes::Rsvp>()
        .answer(200, "Answered"),
        Op::new(
            "post",
            "/api/v1/meetings/{id}/attendance",
            "meetings",
            "Record who came (a client no-show makes one task)",
        )
        .who(lead)
        .body::<routes::Presence>()
        .answer(200, "Recorded"),
        Op::new(
            "put",
            "/api/v1/meetings/{id}/minutes",
            "meetings",
            "Save the minutes",
        )
        .who(lead)
        .body::<domain::Minutes>()
        .answer(200, "Saved")
        .link(200, "post", "/api/v1/meetings/{id}/minutes/publish", &this_meeting),
        Op::new(
            "get",
            "/api/v1/meetings/{id}/minutes",
            "meetings",
            "The minutes, filtered by consent",
        )
        .who(members)
        .answer(
            200,
            "draft (lead only), revisions, withheld, consent_version",
        ),
        Op::new(
            "post",
            "/api/v1/meetings/{id}/minutes/publish",
            "meetings",
            "Publish the saved minutes as a new revision",
        )
        .who(lead)
        .answer(200, "revision")
        .link(200, "post", "/api/v1/meetings/{id}/minutes/approve", &this_meeting),
        Op::new(
            "post",
            "/api/v1/meetings/{id}/minutes/approve",
            "meetings",
            "Approve the latest revision",
        )
        .who(participants)
        .answer(200, "Approved"),
        Op::new(
            "post",
            "/api/v1/calendar/feed-tokens",
            "meetings",
            "Issue a calendar feed token to the caller, for the caller's agency (shown once; no Idempotency-Key, the token is never stored)",
        )
        .who("a facilitator or liaison")
        .optional_body::<calendar::NewFeedToken>()
        .answer_with::<calendar::IssuedFeedToken>(201, "Issued: token_id, token, expires_at, agency, url")
        .link(
            201,
            "delete",
            "/api/v1/calendar/feed-tokens/{token_id}",
            &[("token_id", Source::Answer("/token_id"))],
        )
        .link(
            201,
            "get",
            "/api/v1/calendar/{agency}.ics",
            &[("agency", Source::Answer("/agency")), ("token", Source::Answer("/token"))],
        )
        .answer(422, "expires_in_days is out of range"),
        Op::new(
            "get",
            "/api/v1/calendar/feed-tokens",
            "meetings",
            "The caller's own feed tokens (never the tokens themselves)",
        )
        .who("any signed-in user; scope=agency: an admin, for every token of the admin's agency")
        .query("scope", "mine (the default) or agency (admins only)")
        .answer_with::<calendar::FeedTokenList>(200, "tokens: id, owner, created_at, expires_at, state"),
        Op::new(
            "delete",
            "/api/v1/calendar/feed-tokens/{token_id}",
            "meetings",
            "Revoke one feed token",
        )
        .who("the token's owner, or an admin of its agency")
        .answer(204, "Revoked (or already revoked)")
        .answer(404, "No such token for this caller"),
        Op::new(
            "delete",
            "/api/v1/calendar/feed-token",
            "meetings",
            "Revoke every feed token of the caller's own",
        )
        .answer(204, "Revoked"),
        Op::new(
            "get",
            "/api/v1/calendar/{agency}.ics",
            "meetings",
            "The agency's RFC 5545 feed",
        )
        .public()
        .query("token", "the feed token")
        .answer(200, "text/calendar")
        .answer(404, "Unknown agency, or a wrong, revoked or expired token"),
    ]
}

/// The meetings service's settings, from the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long before a meeting an interpreter must be booked.
    pub interpreter_lead_time: Duration,
}

impl Default for Settings {
    /// The flag's default: 24 hours.
    fn default() -> Self {
        Settings {
            interpreter_lead_time: Duration::from_secs(24 * 3600),
        }
    }
}

/// The meetings service as the binary runs it: in `--target all` and
/// `meetings`.
pub fn module(settings: Settings) -> verkosto_service::Module {
    verkosto_service::Module::new("meetings", &["all", "meetings"])
        .migration(|db| async move { migrate(&db).await })
        .guarded()
        .projection(MeetingsProjection)
        .api_doc(api_doc)
        .start(move |ctx| {
            Ok(router(Meetings {
                log: ctx.log.clone(),
                progress: ctx.progress_of(&MeetingsProjection)?,
                guard: ctx.guard()?,
                auth: ctx.auth.clone(),
                interpreter_lead_time: settings.interpreter_lead_time,
            }))
        })
}
