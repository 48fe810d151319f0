//! The web app: server-rendered pages for facilitators, liaisons and
//! auditors, in Finnish, Swedish and English. Every page gets its data from
//! the HTTP API as the signed-in user ([`api::ApiClient`]), so the same
//! checks and the same consent filter apply: there is no side door.

pub mod api;
mod audit_page;
mod case_page;
pub mod i18n;
mod layout;
mod meetings_page;
mod meetings_section;
pub mod oidc;
mod pages;
pub mod session;
mod tasks_page;

use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

pub use api::ApiClient;
use session::Page;
pub use session::{migrate, run_sweeper, Sessions};

/// The web app's state.
#[derive(Clone)]
pub struct Web {
    /// The HTTP API the pages are made from, called as the signed-in user.
    pub api: ApiClient,
    /// Dev sign-in (choose a demo user) is on.
    pub dev: bool,
    /// Sign-in with the organisation's identity provider, when configured.
    pub oidc: Option<oidc::Shared>,
    /// The sessions, kept server-side in this process's database.
    pub sessions: Sessions,
}

pub fn router(web: Web) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/assets/app.css", get(stylesheet))
        .route("/signin", get(pages::signin_page).post(pages::signin))
        .route("/signout", post(pages::signout))
        .route("/oidc/start", get(oidc::start))
        .route("/oidc/callback", get(oidc::callback))
        .route("/lang", post(pages::set_language))
        .route("/cases", post(pages::open_case))
        .route(
            "/invitations/{case}/{answer}",
            post(pages::answer_invitation),
        )
        .route("/cases/{id}", get(case_page::show))
        .route("/cases/{id}/{action}", post(case_page::act))
        .route(
            "/cases/{id}/grants/{grant}/withdraw",
            post(case_page::withdraw),
        )
        .route("/cases/{id}/meetings", post(meetings_page::schedule))
        .route("/meetings/{id}", get(meetings_page::show))
        .route("/meetings/{id}/{action}", post(meetings_page::act))
        .route(
            "/calendar-link",
            get(meetings_page::calendar_links).post(meetings_page::calendar_link),
        )
        .route(
            "/calendar-link/{id}/revoke",
            post(meetings_page::revoke_calendar_link),
        )
        .route("/tasks", get(tasks_page::show))
        .route("/tasks/{id}/{action}", post(tasks_page::act))
        .route("/audit", get(audit_page::show))
        .route("/audit/access-log.csv", get(audit_page::access_log_csv))
        .with_state(web)
}

async fn stylesheet() -> Response {
    (
        [(http::header::CONTENT_TYPE, "text/css; charset=utf-8")],
        layout::CSS,
    )
        .into_response()
}

/// A JSON string from an API answer, or "" (absent fields show as nothing).
fn s(v: &serde_json::Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// A refused form post (bad CSRF token): a plain page saying so.
fn forbidden(page: &Page) -> Response {
    let body = maud::html! { p.error role="alert" { (page.lang.t("csrf-failed")) } };
    let mut response = page.respond(layout::layout(page, &page.lang.t("error-title"), body));
    *response.status_mut() = http::StatusCode::FORBIDDEN;
    response
}
