//! Meetings in the web app: the case's meetings and scheduling (with the
//! interpreter lead-time rule explained where it applies), one meeting's
//! page with answers, attendance and the minutes editor, and the calendar
//! feed link.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde_json::{json, Value};

use crate::case_page::CATEGORIES;
use crate::i18n::Lang;
use crate::layout::{csrf, form_error, layout, FormError};
use crate::meetings_section::meeting_title;
use crate::pages::refusal;
use crate::session::Page;
use crate::{s, Web};

/// A `datetime-local` value (Helsinki wall clock) as RFC 3339 UTC.
fn to_utc(local: &str) -> Option<String> {
    let naive = chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M").ok()?;
    Some(verkosto_types::time::from_helsinki_local(naive).to_rfc3339())
}

pub async fn schedule(
    State(web): State<Web>,
    page: Page,
    Path(case_id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let token = match page.form_token(&form) {
        Ok(token) => token,
        Err(answer) => return *answer,
    };
    let get = |k: &str| crate::session::field(&form, k);
    let optional = |k: &str| crate::session::optional_field(&form, k);
    let participants: Vec<&str> = form.keys().filter_map(|k| k.strip_prefix("p-")).collect();
    let agenda: Vec<&str> = form
        .get("agenda")
        .map(|a| a.lines().map(str::trim).filter(|l| !l.is_empty()).collect())
        .unwrap_or_default();
    let body = json!({
        "title": get("title"),
        "starts_at": to_utc(&get("starts_at")).unwrap_or_else(|| get("starts_at")),
        "ends_at": to_utc(&get("ends_at")).unwrap_or_else(|| get("ends_at")),
        "location": optional("location"),
        "participants": participants,
        "client_attends": form.contains_key("client_attends"),
        "interpreter_language": optional("interpreter_language"),
        "agenda": agenda,
        "lead_time_override_reason": optional("lead_time_override_reason"),
    });
    let answer = web
        .api
        .post(&format!("/api/v1/cases/{case_id}/meetings"), token, &body)
        .await;
    if answer.ok() {
        let id = s(&answer.body["id"]);
        return Redirect::to(&format!("/meetings/{id}")).into_response();
    }
    if answer.erased().is_some() {
        return crate::closing::erased(&page, &answer, &case_id);
    }
    let error = refusal("meeting", &answer, form);
    let mut response = crate::case_page::render(&web, &page, &case_id, Some(&error)).await;
    *response.status_mut() = http::StatusCode::UNPROCESSABLE_ENTITY;
    response
}

pub async fn show(State(web): State<Web>, page: Page, Path(id): Path<String>) -> Response {
    render(&web, &page, &id, None).await
}

fn minutes_revision(lang: Lang, r: &Value) -> Markup {
    html! {
        h4 { (lang.ta("minutes-revision", &[("revision", r["revision"].to_string())])) }
        ul {
            @for n in r["notes"].as_array().into_iter().flatten() {
                li { (lang.t(&format!("category-{}", s(&n["category"])))) ": " (s(&n["text"])) }
            }
            @for d in r["decisions"].as_array().into_iter().flatten() {
                li { (lang.t("minutes-decision")) ": " (s(d)) }
            }
            @for a in r["action_items"].as_array().into_iter().flatten() {
                li { (lang.t("minutes-action")) ": " (s(&a["description"])) " → " (s(&a["assignee"])) }
            }
        }
        p { (lang.t("minutes-approved-by")) ": "
            (r["approved_by"].as_array().into_iter().flatten().map(|a| s(&a["agency"]).to_string()).collect::<Vec<_>>().join(", ")) }
    }
}

async fn render(web: &Web, page: &Page, id: &str, error: Option<&FormError>) -> Response {
    let (Some(token), Some(me)) = (&page.token, &page.me) else {
        return page.to_signin();
    };
    let lang = page.lang;
    let answer = web.api.get(&format!("/api/v1/meetings/{id}"), token).await;
    if answer.erased().is_some() {
        return crate::closing::erased(page, &answer, "");
    }
    if !answer.ok() {
        let body = html! { p.error role="alert" { (answer.detail()) } };
        let mut response = page.respond(layout(page, &lang.t("meeting-not-found"), body));
        *response.status_mut() =
            http::StatusCode::from_u16(answer.status).unwrap_or(http::StatusCode::NOT_FOUND);
        return response;
    }
    let m = &answer.body;
    let is_lead = s(&m["lead_agency"]) == me.agency && me.is("facilitator");
    let participant = m["participants"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|p| s(p) == me.agency);
    let body = html! {
        p { a href={ "/cases/" (s(&m["case_id"])) } { (lang.t("meeting-back-to-case")) } }
        dl {
            dt { (lang.t("meeting-when")) } dd { (lang.moment(s(&m["starts_at"]))) " – " (lang.moment(s(&m["ends_at"]))) " (" (s(&m["time_zone"])) ")" }
            dt { (lang.t("meeting-location")) } dd { (m["location"].as_str().unwrap_or("–")) }
            dt { (lang.t("meeting-participants")) } dd { (m["participants"].as_array().into_iter().flatten().map(s).collect::<Vec<_>>().join(", ")) }
            dt { (lang.t("meeting-interpreter-language")) } dd { (m["interpreter_language"].as_str().unwrap_or("–")) }
            dt { (lang.t("meeting-status")) } dd { (lang.t(&format!("meeting-status-{}", s(&m["status"])))) }
        }
        (form_error(error, "meeting-action", lang))
        @if participant {
            form.inline method="post" action={ "/meetings/" (id) "/rsvp-accept" } { (csrf(page)) button type="submit" { (lang.t("meeting-rsvp-accept")) } }
            " "
            form.inline method="post" action={ "/meetings/" (id) "/rsvp-decline" } { (csrf(page)) button type="submit" { (lang.t("meeting-rsvp-decline")) } }
        }
        section aria-labelledby="minutes-h" {
            h2 id="minutes-h" { (lang.t("minutes-title")) }
            p.notice role="status" { (lang.tn("meeting-withheld", m["withheld"].as_u64().unwrap_or(0))) }
            @for r in m["minutes"]["revisions"].as_array().into_iter().flatten() {
                (minutes_revision(lang, r))
            }
            @if participant && m["minutes"]["revisions"].as_array().is_some_and(|r| !r.is_empty()) {
                form method="post" action={ "/meetings/" (id) "/approve" } { (csrf(page)) button type="submit" { (lang.t("minutes-approve")) } }
            }
            @if is_lead {
                h3 { (lang.t("minutes-edit")) }
                form.stacked method="post" action={ "/meetings/" (id) "/minutes" } {
                    (csrf(page))
                    @for i in 0..3 {
                        fieldset {
                            legend { (lang.ta("minutes-note-n", &[("n", (i + 1).to_string())])) }
                            label for={ "note" (i) "-category" } { (lang.t("record-category")) }
                            select id={ "note" (i) "-category" } name={ "note" (i) "-category" } { @for c in CATEGORIES { option value=(c) { (lang.t(&format!("category-{c}"))) } } }
                            label for={ "note" (i) "-text" } { (lang.t("record-body")) }
                            textarea id={ "note" (i) "-text" } name={ "note" (i) "-text" } rows="2" {}
                        }
                    }
                    label for="decisions" { (lang.t("minutes-decisions")) }
                    textarea id="decisions" name="decisions" rows="2" {}
                    @for i in 0..3 {
                        fieldset {
                            legend { (lang.ta("minutes-action-n", &[("n", (i + 1).to_string())])) }
                            label for={ "a" (i) "-description" } { (lang.t("plan-description")) }
                            input id={ "a" (i) "-description" } name={ "a" (i) "-description" };
                            label for={ "a" (i) "-category" } { (lang.t("record-category")) }
                            select id={ "a" (i) "-category" } name={ "a" (i) "-category" } { @for c in CATEGORIES { option value=(c) { (lang.t(&format!("category-{c}"))) } } }
                            label for={ "a" (i) "-assignee" } { (lang.t("plan-responsible")) }
                            select id={ "a" (i) "-assignee" } name={ "a" (i) "-assignee" } { @for p in m["participants"].as_array().into_iter().flatten() { option value=(s(p)) { (s(p)) } } }
                            label for={ "a" (i) "-due" } { (lang.t("plan-due")) }
                            input type="date" id={ "a" (i) "-due" } name={ "a" (i) "-due" };
                        }
                    }
                    button type="submit" name="then" value="save" { (lang.t("minutes-save")) }
                    button type="submit" name="then" value="publish" { (lang.t("minutes-publish")) }
                }
            }
        }
    };
    page.respond(layout(page, &meeting_title(lang, m), body))
}

pub async fn act(
    State(web): State<Web>,
    page: Page,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let token = match page.form_token(&form) {
        Ok(token) => token,
        Err(answer) => return *answer,
    };
    let get = |k: &str| crate::session::field(&form, k);
    let answer = match action.as_str() {
        "rsvp-accept" | "rsvp-decline" => {
            let response = if action == "rsvp-accept" {
                "accept"
            } else {
                "decline"
            };
            web.api
                .post(
                    &format!("/api/v1/meetings/{id}/rsvp"),
                    token,
                    &json!({ "response": response }),
                )
                .await
        }
        "approve" => {
            web.api
                .post(
                    &format!("/api/v1/meetings/{id}/minutes/approve"),
                    token,
                    &json!({}),
                )
                .await
        }
        "minutes" => {
            let notes: Vec<Value> = (0..3)
                .filter(|i| !get(&format!("note{i}-text")).is_empty())
                .map(|i| json!({ "category": get(&format!("note{i}-category")), "text": get(&format!("note{i}-text")) }))
                .collect();
            let decisions: Vec<String> = get("decisions")
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect();
            let items: Vec<Value> = (0..3)
                .filter(|i| !get(&format!("a{i}-description")).is_empty())
                .map(|i| {
                    let due = Some(get(&format!("a{i}-due"))).filter(|d| !d.is_empty());
                    json!({ "id": format!("a{}", i + 1), "description": get(&format!("a{i}-description")),
                            "category": get(&format!("a{i}-category")), "assignee": get(&format!("a{i}-assignee")), "due": due })
                })
                .collect();
            let body = json!({ "notes": notes, "decisions": decisions, "action_items": items });
            let saved = web
                .api
                .call(
                    http::Method::PUT,
                    &format!("/api/v1/meetings/{id}/minutes"),
                    Some(token),
                    Some(&body),
                )
                .await;
            if saved.ok() && get("then") == "publish" {
                web.api
                    .post(
                        &format!("/api/v1/meetings/{id}/minutes/publish"),
                        token,
                        &json!({}),
                    )
                    .await
            } else {
                saved
            }
        }
        _ => return Redirect::to(&format!("/meetings/{id}")).into_response(),
    };
    if answer.ok() {
        return Redirect::to(&format!("/meetings/{id}")).into_response();
    }
    let error = refusal("meeting-action", &answer, form);
    render(&web, &page, &id, Some(&error)).await
}

/// The signed-in user's calendar links, with a revoke button each.
pub async fn calendar_links(
    State(web): State<Web>,
    page: Page,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    let Some(token) = &page.token else {
        return page.to_signin();
    };
    let notice = query.contains_key("revoked").then(|| {
        html! { p.notice role="status" { (page.lang.t("calendar-link-revoked")) } }
    });
    calendar_page(&web, &page, token, notice.unwrap_or_else(|| html! {})).await
}

/// A new calendar-feed link for the caller (shown once, with its expiry).
pub async fn calendar_link(
    State(web): State<Web>,
    page: Page,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let token = match page.form_token(&form) {
        Ok(token) => token,
        Err(answer) => return *answer,
    };
    let lang = page.lang;
    let answer = web
        .api
        .post("/api/v1/calendar/feed-tokens", token, &json!({}))
        .await;
    let shown = html! {
        @if answer.ok() {
            p role="status" {
                (lang.ta("calendar-link-new", &[("date", lang.moment(s(&answer.body["expires_at"])))]))
            }
            p { code { (s(&answer.body["url"])) } }
        } @else {
            p.error role="alert" { (answer.detail()) }
        }
    };
    calendar_page(&web, &page, token, shown).await
}

/// Revokes one of the user's calendar links.
pub async fn revoke_calendar_link(
    State(web): State<Web>,
    page: Page,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let token = match page.form_token(&form) {
        Ok(token) => token,
        Err(answer) => return *answer,
    };
    let answer = web
        .api
        .call(
            http::Method::DELETE,
            &format!("/api/v1/calendar/feed-tokens/{id}"),
            Some(token),
            None,
        )
        .await;
    if answer.ok() {
        return Redirect::to("/calendar-link?revoked=1").into_response();
    }
    let error = html! { p.error role="alert" { (answer.detail()) } };
    calendar_page(&web, &page, token, error).await
}

/// The calendar page: `top` (a new link, a notice or an error), the user's
/// links, and the button for a new one.
async fn calendar_page(web: &Web, page: &Page, token: &str, top: Markup) -> Response {
    let lang = page.lang;
    let list = web.api.get("/api/v1/calendar/feed-tokens", token).await;
    let tokens = list.body["tokens"].as_array().cloned().unwrap_or_default();
    let body = html! {
        (top)
        p { (lang.t("calendar-link-about")) }
        form method="post" action="/calendar-link" {
            (csrf(page))
            button type="submit" { (lang.t("calendar-link-get")) }
        }
        @if !list.ok() {
            p.error role="alert" { (list.detail()) }
        } @else if tokens.is_empty() {
            p { (lang.t("calendar-links-none")) }
        } @else {
            table {
                caption { (lang.t("calendar-links-caption")) }
                thead { tr {
                    th scope="col" { (lang.t("calendar-link-created")) }
                    th scope="col" { (lang.t("calendar-link-expires")) }
                    th scope="col" { (lang.t("calendar-link-state")) }
                    th scope="col" { (lang.t("task-actions")) }
                } }
                tbody {
                    @for t in &tokens {
                        @let id = s(&t["token_id"]);
                        tr {
                            td { (lang.moment(s(&t["created_at"]))) }
                            td { (lang.moment(s(&t["expires_at"]))) }
                            td { (lang.t(&format!("calendar-link-state-{}", s(&t["state"])))) }
                            td {
                                @if t["state"] == "active" {
                                    form.inline method="post" action={ "/calendar-link/" (id) "/revoke" } {
                                        (csrf(page))
                                        button type="submit" { (lang.t("calendar-link-revoke")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        p { a href="/tasks" { (lang.t("nav-tasks")) } }
    };
    page.respond(layout(page, &lang.t("calendar-link-title"), body))
}
