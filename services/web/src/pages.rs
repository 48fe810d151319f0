//! Sign-in, language, and the home page: the caller's cases, invitations,
//! and (for facilitators) opening a case.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use http::header::SET_COOKIE;
use maud::html;
use serde_json::{json, Value};

use crate::layout::{csrf, field_error, form_error, invalid, layout, FormError};
use crate::session::{local_path, Ended, Page, LANG, SESSION};
use crate::{forbidden, Web};

/// The sign-in page's query: why the last session ended, where to go after.
#[derive(serde::Deserialize, Default)]
pub struct SigninQuery {
    /// `?ended=`: why the last session ended (`idle`, `expired`, …), to say so.
    ended: Option<String>,
    /// `?next=`: the local path to return to after signing in.
    next: Option<String>,
}

pub async fn signin_page(
    State(web): State<Web>,
    page: Page,
    Query(q): Query<SigninQuery>,
) -> Response {
    let lang = page.lang;
    // Why the last session ended: as the redirect said, or as found now.
    let ended = q.ended.as_deref().and_then(Ended::parse).or(page.ended);
    let next = q.next.as_deref().and_then(local_path);
    let users = if web.dev {
        let admin = web
            .api
            .call(
                http::Method::POST,
                "/api/v1/dev/token",
                None,
                Some(&json!({ "user": "admin" })),
            )
            .await;
        let token = admin.body["token"].as_str().unwrap_or_default().to_string();
        let list = web.api.get("/api/v1/users", &token).await;
        list.body["users"].as_array().cloned().unwrap_or_default()
    } else {
        Vec::new()
    };
    let idle_minutes = web.sessions.idle_timeout.as_secs().div_ceil(60);
    let oidc_start = match &next {
        Some(n) => format!("/oidc/start?next={}", crate::session::encode(n)),
        None => "/oidc/start".to_string(),
    };
    let body = html! {
        @match ended {
            Some(Ended::SignedOut) => p.notice role="status" { (lang.t("session-signed-out")) },
            Some(Ended::Idle) => p.notice role="status" { (lang.tn("session-ended-idle", idle_minutes)) },
            Some(Ended::Expired) => p.notice role="status" { (lang.t("session-ended-expired")) },
            Some(Ended::Unknown) => p.notice role="status" { (lang.t("session-ended")) },
            None => {},
        }
        @if web.dev {
            p.notice { (lang.t("signin-dev-explained")) }
            form.stacked method="post" action="/signin" {
                (csrf(&page))
                @if let Some(n) = &next { input type="hidden" name="next" value=(n); }
                label for="user" { (lang.t("signin-choose-user")) }
                select id="user" name="user" {
                    @for u in &users {
                        @let id = u["id"].as_str().unwrap_or_default();
                        @let roles = u["roles"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default();
                        option value=(id) { (u["display_name"].as_str().unwrap_or(id)) " – " (u["agency"].as_str().unwrap_or_default()) " (" (roles) ")" }
                    }
                }
                button type="submit" { (lang.t("sign-in")) }
            }
        }
        @if web.oidc.is_some() {
            p.notice { (lang.t("signin-oidc-explained")) }
            p { a href=(oidc_start) { (lang.t("signin-oidc")) } }
        }
    };
    page.respond(layout(&page, &lang.t("signin-title"), body))
}

pub async fn signin(
    State(web): State<Web>,
    page: Page,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !page.csrf_ok(&form) {
        return forbidden(&page);
    }
    let user = form.get("user").cloned().unwrap_or_default();
    let answer = web
        .api
        .call(
            http::Method::POST,
            "/api/v1/dev/token",
            None,
            Some(&json!({ "user": user })),
        )
        .await;
    let Some(token) = answer.body["token"].as_str().filter(|_| answer.ok()) else {
        return forbidden(&page);
    };
    let to = form
        .get("next")
        .and_then(|n| local_path(n))
        .unwrap_or_else(|| "/".to_string());
    web.sessions.sign_in(&page, token, &to).await
}

/// Signing out ends the session on the server: its cookie, wherever it
/// was copied to, opens nothing after this.
pub async fn signout(
    State(web): State<Web>,
    page: Page,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !page.signed_in() {
        return page.to_signin();
    }
    if !page.csrf_ok(&form) {
        return forbidden(&page);
    }
    if let Err(e) = web.sessions.sign_out(&page).await {
        tracing::error!(error = %e, "cannot end a web session");
        return (
            http::StatusCode::SERVICE_UNAVAILABLE,
            "The service is unavailable; try again.",
        )
            .into_response();
    }
    let mut response = Redirect::to("/signin?ended=signed-out").into_response();
    response
        .headers_mut()
        .append(SET_COOKIE, web.sessions.cookie(SESSION, "", Some(0)));
    response
}

pub async fn set_language(
    State(web): State<Web>,
    page: Page,
    headers: http::HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !page.csrf_ok(&form) {
        return forbidden(&page);
    }
    let lang = form.get("lang").map(String::as_str).unwrap_or("fi");
    let chosen = crate::i18n::Lang::choose(Some(lang), None);
    // Back to where the user was, on this site only.
    let back = headers
        .get(http::header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| r.split_once("://").map(|(_, rest)| rest))
        .and_then(|rest| rest.find('/').map(|i| rest[i..].to_string()))
        .filter(|p| p.starts_with('/') && !p.starts_with("//") && !p.starts_with("/\\"))
        .unwrap_or_else(|| "/".to_string());
    let mut response = Redirect::to(&back).into_response();
    response.headers_mut().append(
        SET_COOKIE,
        web.sessions.cookie(LANG, chosen.0, Some(365 * 86_400)),
    );
    response
}

pub async fn home(State(web): State<Web>, page: Page) -> Response {
    render_home(&web, &page, None).await
}

async fn render_home(web: &Web, page: &Page, error: Option<&FormError>) -> Response {
    let (Some(token), Some(me)) = (&page.token, &page.me) else {
        return page.to_signin();
    };
    if me.is("auditor") {
        return Redirect::to("/audit").into_response();
    }
    let lang = page.lang;
    let cases = web.api.get("/api/v1/cases", token).await;
    let invitations = web.api.get("/api/v1/invitations", token).await;
    let body = html! {
        section aria-labelledby="cases-h" {
            h2 id="cases-h" { (lang.t("cases-title")) }
            @let list = cases.body["cases"].as_array().cloned().unwrap_or_default();
            @if list.is_empty() {
                p { (lang.t("cases-none")) }
            } @else {
                table {
                    caption { (lang.t("cases-caption")) }
                    thead { tr { th scope="col" { (lang.t("case-pseudonym")) } th scope="col" { (lang.t("case-lead")) } th scope="col" { (lang.t("case-flags")) } } }
                    tbody {
                        @for c in &list {
                            tr {
                                td {
                                    a href={ "/cases/" (c["id"].as_str().unwrap_or_default()) } { (c["pseudonym"].as_str().unwrap_or_default()) }
                                    // A closed case is read, not worked on: say so in the list.
                                    @if let Some(closed) = c["closed_at"].as_str() {
                                        " " span.muted { "(" (lang.ta("case-status-closed", &[("date", lang.date(closed))])) ")" }
                                    }
                                }
                                td { (c["lead_agency"].as_str().unwrap_or_default()) }
                                td {
                                    @if c["flags"]["minor"] == true { (lang.t("flag-minor")) " " }
                                    @if c["flags"]["safety_risk"] == true { (lang.t("flag-safety-risk")) }
                                }
                            }
                        }
                    }
                }
            }
        }
        @let pending = invitations.body["invitations"].as_array().cloned().unwrap_or_default();
        @if !pending.is_empty() {
            section aria-labelledby="inv-h" {
                h2 id="inv-h" { (lang.t("invitations-title")) }
                (form_error(error, "invitation", lang))
                ul {
                    @for i in &pending {
                        @let case = i["case_id"].as_str().unwrap_or_default();
                        li {
                            (lang.ta("invitation-line", &[
                                ("pseudonym", i["pseudonym"].as_str().unwrap_or_default().to_string()),
                                ("lead", i["lead_agency"].as_str().unwrap_or_default().to_string()),
                                ("purpose", i["purpose"].as_str().unwrap_or_default().to_string()),
                            ]))
                            form.inline method="post" action={ "/invitations/" (case) "/accept" } {
                                (csrf(page)) " " button type="submit" { (lang.t("invitation-accept")) }
                            }
                            form.inline method="post" action={ "/invitations/" (case) "/decline" } {
                                (csrf(page))
                                " " label for={ "reason-" (case) } { (lang.t("invitation-reason")) }
                                " " input id={ "reason-" (case) } name="reason" required;
                                " " button type="submit" { (lang.t("invitation-decline")) }
                            }
                        }
                    }
                }
            }
        }
        @if me.is("facilitator") {
            section aria-labelledby="open-h" {
                h2 id="open-h" { (lang.t("open-case-title")) }
                (form_error(error, "open-case", lang))
                form.stacked method="post" action="/cases" aria-describedby="open-case-error" {
                    (csrf(page))
                    label for="pseudonym" { (lang.t("case-pseudonym")) }
                    input id="pseudonym" name="pseudonym" aria-invalid=[invalid(error, "open-case", "pseudonym")] required value=(error.map(|e| e.value("open-case", "pseudonym")).unwrap_or_default());
                    (field_error(error, "open-case", "pseudonym"))
                    label for="languages" { (lang.t("case-languages")) }
                    input id="languages" name="languages" aria-invalid=[invalid(error, "open-case", "languages")] required aria-describedby="languages-hint" value=(error.map(|e| e.value("open-case", "languages")).unwrap_or_default());
                    (field_error(error, "open-case", "languages"))
                    small id="languages-hint" { (lang.t("case-languages-hint")) }
                    label for="interpreter_language" { (lang.t("case-interpreter-language")) }
                    input id="interpreter_language" name="interpreter_language" aria-invalid=[invalid(error, "open-case", "interpreter_language")] value=(error.map(|e| e.value("open-case", "interpreter_language")).unwrap_or_default());
                    (field_error(error, "open-case", "interpreter_language"))
                    label { input type="checkbox" name="minor" value="true"; " " (lang.t("flag-minor")) }
                    label { input type="checkbox" name="safety_risk" value="true"; " " (lang.t("flag-safety-risk")) }
                    button type="submit" { (lang.t("open-case-submit")) }
                }
            }
        }
    };
    page.respond(layout(page, &lang.t("home-title"), body))
}

/// Turns an API refusal into the form's error, keeping what was typed.
pub fn refusal(
    form: &str,
    answer: &crate::api::Answer,
    values: HashMap<String, String>,
) -> FormError {
    FormError {
        form: form.to_string(),
        field: answer.field(),
        detail: answer.detail(),
        values,
    }
}

pub async fn open_case(
    State(web): State<Web>,
    page: Page,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let token = match page.form_token(&form) {
        Ok(token) => token,
        Err(answer) => return *answer,
    };
    let get = |k: &str| crate::session::field(&form, k);
    let languages: Vec<String> = get("languages")
        .split([',', ' '])
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let interpreter = Some(get("interpreter_language")).filter(|l| !l.is_empty());
    let body = json!({
        "pseudonym": get("pseudonym"),
        "languages": languages,
        "interpreter_language": interpreter,
        "flags": { "minor": form.contains_key("minor"), "safety_risk": form.contains_key("safety_risk") },
    });
    let answer = web.api.post("/api/v1/cases", token, &body).await;
    if answer.ok() {
        let id = answer.body["id"].as_str().unwrap_or_default();
        return Redirect::to(&format!("/cases/{id}")).into_response();
    }
    let error = refusal("open-case", &answer, form);
    let mut response = render_home(&web, &page, Some(&error)).await;
    *response.status_mut() = http::StatusCode::UNPROCESSABLE_ENTITY;
    response
}

pub async fn answer_invitation(
    State(web): State<Web>,
    page: Page,
    Path((case, answer)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let token = match page.form_token(&form) {
        Ok(token) => token,
        Err(answer) => return *answer,
    };
    let (path, body) = match answer.as_str() {
        "accept" => (
            format!("/api/v1/cases/{case}/invitations/accept"),
            json!({}),
        ),
        _ => (
            format!("/api/v1/cases/{case}/invitations/decline"),
            json!({ "reason": form.get("reason").cloned().unwrap_or_default() }),
        ),
    };
    let result = web.api.post(&path, token, &body).await;
    if result.ok() {
        let to = if answer == "accept" {
            format!("/cases/{case}")
        } else {
            "/".into()
        };
        return Redirect::to(&to).into_response();
    }
    let error = refusal("invitation", &result, form);
    render_home(&web, &page, Some(&error)).await
}
