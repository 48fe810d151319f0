//! The web app: server-rendered pages for facilitators, liaisons and
//! auditors, in Finnish, Swedish and English. Every page gets its data from
//! the HTTP API as the signed-in user ([`api::ApiClient`]), so the same
//! checks and the same consent filter apply: there is no side door.

pub mod api;
mod audit_page;
mod case_page;
mod closing;
mod closing_forms;
pub mod i18n;
mod layout;
mod meetings_page;
mod meetings_section;
pub mod oidc;
mod pages;
mod retention_page;
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
        // Before `/cases/{id}/{action}`: axum prefers the fixed segment.
        .route("/cases/{id}/close", post(closing_forms::close_form))
        .route("/cases/{id}/legal-hold", post(closing_forms::hold_form))
        .route("/cases/{id}/erase", post(closing_forms::erase_form))
        .route(
            "/cases/{id}/holds/{hold}/release",
            post(closing_forms::release),
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
        .route("/audit/retention", get(retention_page::show))
        .route("/audit/retention/{case}/hold", post(retention_page::place))
        .route(
            "/audit/retention/{case}/holds/{hold}/release",
            post(retention_page::release),
        )
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

/// The web app's settings, from the command line.
pub struct Settings {
    /// The base URL of a process that serves the API (`--api-url`); without
    /// it the pages call this process's own API, which must then serve cases.
    pub api_url: Option<String>,
    /// Dev sign-in (choose a demo user) is on.
    pub dev: bool,
    /// Sign-in with the organisation's identity provider, when configured.
    pub oidc: Option<oidc::Shared>,
    /// How long a session lasts without a request.
    pub idle_timeout: std::time::Duration,
    /// The longest a session lasts.
    pub max_age: std::time::Duration,
    /// Whether the cookies carry `Secure`: asked when the web starts, so
    /// that flags it refuses stop only a process that runs the web.
    pub secure_cookies: Box<dyn FnOnce() -> anyhow::Result<bool> + Send>,
}

impl Default for Settings {
    /// The flags' defaults: no API URL, no dev sign-in, no OIDC, sessions
    /// of 30 minutes idle and 12 hours at most, `Secure` cookies.
    fn default() -> Self {
        Settings {
            api_url: None,
            dev: false,
            oidc: None,
            idle_timeout: std::time::Duration::from_secs(30 * 60),
            max_age: std::time::Duration::from_secs(12 * 3600),
            secure_cookies: Box::new(|| Ok(true)),
        }
    }
}

/// The web app as the binary runs it: in `--target all` and `web`, with the
/// sweeper of ended sessions. Sessions live in this process's database, so
/// every web replica shares them and a sign-out ends one everywhere.
pub fn module(settings: Settings) -> verkosto_service::Module {
    let Settings {
        api_url,
        dev,
        oidc,
        idle_timeout,
        max_age,
        secure_cookies,
    } = settings;
    verkosto_service::Module::new("web", &["all", "web"])
        .migration(|db| async move { migrate(&db).await })
        .start(move |ctx| {
            // The pages call the API: this process's own, or another's.
            let api = match api_url {
                Some(base) => ApiClient::Remote {
                    http: reqwest::Client::new(),
                    base: base.trim_end_matches('/').to_string(),
                },
                None if ctx.runs("cases") => ApiClient::Local(ctx.api.clone()),
                None => {
                    anyhow::bail!("--target web needs --api-url (a process that serves the API)")
                }
            };
            let sessions =
                Sessions::new(ctx.db().clone(), idle_timeout, max_age, secure_cookies()?);
            Ok(router(Web {
                api,
                dev,
                oidc,
                sessions,
            }))
        })
        .worker("session sweep", move |ctx| {
            // Sweeping sets no cookie: `Secure` or not is all the same here.
            let sessions = Sessions::new(ctx.db().clone(), idle_timeout, max_age, true);
            run_sweeper(sessions, ctx.shutdown.clone())
        })
}
