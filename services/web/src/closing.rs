//! The end of a case, for the lead's facilitator: its state on the case
//! page, closing it, legal holds, and erasure; and the page every 410 of
//! the API becomes. Closing and erasing cannot be undone, so each first
//! shows a page that names the case and asks again; erasure also asks for
//! the case's pseudonym to be typed, which nobody does by accident.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde_json::{json, Value};

use crate::api::Answer;
use crate::i18n::Lang;
use crate::layout::{csrf, field_error, form_error, invalid, layout, FormError};
use crate::session::{field, Page};
use crate::{s, Web};

/// How a case can end (the API's `outcome`), in the order the form offers them.
pub const OUTCOMES: [&str; 5] = [
    "goals_met",
    "moved_away",
    "client_withdrew",
    "transferred",
    "other",
];

/// The legal grounds for erasure (the API's `legal_basis`).
pub const LEGAL_BASES: [&str; 5] = [
    "retention_expired",
    "data_subject_request",
    "purpose_fulfilled",
    "order",
    "opened_in_error",
];

/// A value's message: `outcome-goals-met`, `basis-retention-expired`.
pub(crate) fn label(lang: Lang, prefix: &str, value: &str) -> String {
    lang.t(&format!("{prefix}-{}", value.replace('_', "-")))
}

/// Whether the case header says the case is closed.
pub fn is_closed(header: &Value) -> bool {
    header["status"] == "closed"
}

/// The ids of the legal holds in force on the case.
fn holds(header: &Value) -> Vec<&str> {
    header["legal_holds"]
        .as_array()
        .into_iter()
        .flatten()
        .map(s)
        .collect()
}

/// What `details` (a list of `{hold_id, reason, placed_by, placed_at}`)
/// says of hold `id`.
pub(crate) fn detail<'h>(details: &'h Value, id: &str) -> Option<&'h Value> {
    details.as_array()?.iter().find(|d| d["hold_id"] == id)
}

/// A hold as a person weighs it before releasing it: why, by whom and
/// when; its id only when nothing more is known.
pub(crate) fn hold_line(lang: Lang, id: &str, detail: Option<&Value>) -> Markup {
    html! {
        @match detail.filter(|d| d["reason"].is_string()) {
            Some(d) => {
                (lang.ta("hold-line", &[
                    ("reason", s(&d["reason"]).to_string()),
                    ("agency", s(&d["placed_by"]).to_string()),
                    ("date", lang.moment(s(&d["placed_at"]))),
                ]))
            }
            None => code { (id) },
        }
        " "
    }
}

/// The page for a case that was erased: what the API's 410 means, said
/// plainly, with the way back. `fallback` is the case id the page asked
/// for, when the answer names none.
pub fn erased(page: &Page, answer: &Answer, fallback: &str) -> Response {
    let lang = page.lang;
    let id = answer
        .erased()
        .filter(|c| !c.is_empty())
        .unwrap_or(fallback);
    let auditor = page.me.as_ref().is_some_and(|me| me.is("auditor"));
    let body = html! {
        div.danger-box role="status" {
            p { (lang.ta("erased-body", &[("id", id.to_string())])) }
            p { (lang.t("erased-audit")) }
        }
        @if auditor {
            p { a href={ "/audit?case=" (crate::session::encode(id)) } { (lang.t("erased-to-audit")) } }
            p { a href="/audit/retention" { (lang.t("retention-title")) } }
        } @else {
            p { a href="/" { (lang.t("erased-back")) } }
        }
    };
    let mut response = page.respond(layout(page, &lang.t("erased-title"), body));
    *response.status_mut() = http::StatusCode::GONE;
    response
}

/// The state rows of the case header (every member sees them): open or
/// closed, when and how, and the legal holds in force.
pub fn state_rows(lang: Lang, header: &Value) -> Markup {
    let holds = holds(header);
    html! {
        dt { (lang.t("case-status")) }
        dd {
            @if is_closed(header) {
                (closed_line(lang, header))
            } @else {
                (lang.t("case-status-open"))
            }
        }
        @if !holds.is_empty() {
            dt { (lang.t("case-legal-holds")) }
            dd { (lang.tn("case-legal-holds-count", holds.len() as u64)) }
        }
    }
}

/// "Closed on <date> – <outcome>".
fn closed_line(lang: Lang, header: &Value) -> Markup {
    html! {
        (lang.ta("case-status-closed", &[("date", lang.moment(s(&header["closed_at"])))]))
        @if let Some(outcome) = header["outcome"].as_str() { " – " (label(lang, "outcome", outcome)) }
    }
}

/// The lead facilitator's section at the end of the case page: closing an
/// open case; holds and erasure of a closed one. What the API would refuse
/// is not offered, and the page says why.
pub fn section(page: &Page, id: &str, header: &Value, error: Option<&FormError>) -> Markup {
    let lang = page.lang;
    let holds = holds(header);
    let value = |form: &str, name: &str| error.map(|e| e.value(form, name)).unwrap_or_default();
    html! {
        section aria-labelledby="closing-h" {
            h2 id="closing-h" { (lang.t("closing-title")) }
            (form_error(error, "close", lang))
            @if is_closed(header) {
                // Where a hold or release lands: the state, said first.
                p.notice { (closed_line(lang, header)) }
            } @else {
                h3 { (lang.t("closing-close")) }
                p { (lang.t("closing-explained")) }
                form.stacked method="post" action={ "/cases/" (id) "/close" } {
                    (csrf(page))
                    label for="close-outcome" { (lang.t("closing-outcome")) }
                    select id="close-outcome" name="outcome" aria-invalid=[invalid(error, "close", "outcome")] {
                        @for o in OUTCOMES {
                            option value=(o) selected[value("close", "outcome") == o] { (label(lang, "outcome", o)) }
                        }
                    }
                    (field_error(error, "close", "outcome"))
                    label for="close-note" { (lang.t("closing-note")) }
                    textarea id="close-note" name="note" rows="3" aria-describedby="close-note-hint" aria-invalid=[invalid(error, "close", "note")] { (value("close", "note")) }
                    small id="close-note-hint" { (lang.t("closing-note-hint")) }
                    (field_error(error, "close", "note"))
                    button type="submit" { (lang.t("closing-submit")) }
                }
            }
            h3 { (lang.t("hold-title")) }
            p { (lang.t("hold-explained")) }
            @if holds.is_empty() {
                p { (lang.t("hold-none")) }
            } @else {
                ul.holds {
                    @for hold in &holds {
                        li {
                            (hold_line(lang, hold, detail(&header["legal_hold_details"], hold)))
                            form.inline method="post" action={ "/cases/" (id) "/holds/" (hold) "/release" } {
                                (csrf(page))
                                button type="submit" aria-label=(lang.ta("hold-release-named", &[("hold", hold.to_string())])) { (lang.t("hold-release")) }
                            }
                        }
                    }
                }
            }
            (form_error(error, "hold", lang))
            @if is_closed(header) {
                form.stacked method="post" action={ "/cases/" (id) "/legal-hold" } {
                    (csrf(page))
                    label for="hold-reason" { (lang.t("hold-reason")) }
                    input id="hold-reason" name="reason" required aria-describedby="hold-reason-hint" aria-invalid=[invalid(error, "hold", "reason")] value=(value("hold", "reason"));
                    small id="hold-reason-hint" { (lang.t("hold-reason-hint")) }
                    (field_error(error, "hold", "reason"))
                    button type="submit" { (lang.t("hold-place")) }
                }
            } @else {
                p { (lang.t("hold-when-closed")) }
            }
            h3 { (lang.t("erase-title")) }
            (form_error(error, "erase", lang))
            @if !is_closed(header) {
                p { (lang.t("erase-when-closed")) }
            } @else if !holds.is_empty() {
                p.warning { (lang.t("erase-blocked-by-hold")) }
            } @else {
                p { (lang.t("erase-explained")) }
                form.stacked method="post" action={ "/cases/" (id) "/erase" } {
                    (csrf(page))
                    label for="erase-basis" { (lang.t("erase-basis")) }
                    select id="erase-basis" name="legal_basis" aria-invalid=[invalid(error, "erase", "legal_basis")] {
                        @for b in LEGAL_BASES {
                            option value=(b) selected[value("erase", "legal_basis") == b] { (label(lang, "legal-basis", b)) }
                        }
                    }
                    (field_error(error, "erase", "legal_basis"))
                    label for="erase-reason" { (lang.t("erase-reason")) }
                    input id="erase-reason" name="reason" required aria-describedby="erase-reason-hint" aria-invalid=[invalid(error, "erase", "reason")] value=(value("erase", "reason"));
                    small id="erase-reason-hint" { (lang.t("erase-reason-hint")) }
                    (field_error(error, "erase", "reason"))
                    button.danger type="submit" { (lang.t("erase-submit")) }
                }
            }
        }
    }
}

/// An API refusal as the form's error. The field only when the API names
/// one: a conflict's detail does not start with a field.
fn refused(form: &str, answer: &Answer, values: HashMap<String, String>) -> FormError {
    FormError {
        form: form.to_string(),
        field: answer.body["field"].as_str().map(str::to_string),
        detail: answer.detail(),
        values,
    }
}

/// The case page again with `error` by its form (the 410 page if the case
/// is gone meanwhile).
async fn again(web: &Web, page: &Page, id: &str, error: FormError, status: u16) -> Response {
    let mut response = crate::case_page::render(web, page, id, Some(&error)).await;
    if response.status() != http::StatusCode::GONE {
        *response.status_mut() =
            http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::UNPROCESSABLE_ENTITY);
    }
    response
}

/// After an API call from one of this section's forms: back to the case on
/// success, the erased page on 410, else the case page with the refusal.
async fn after(
    web: &Web,
    page: &Page,
    id: &str,
    form_name: &str,
    answer: Answer,
    form: HashMap<String, String>,
) -> Response {
    if answer.ok() {
        // Closed: the top, where the state and what it means are. A hold:
        // back where the user was, the holds listed.
        let to = if form_name == "close" {
            format!("/cases/{id}")
        } else {
            format!("/cases/{id}#closing-h")
        };
        return Redirect::to(&to).into_response();
    }
    if answer.erased().is_some() {
        return erased(page, &answer, id);
    }
    let status = if answer.status == 409 { 409 } else { 422 };
    again(web, page, id, refused(form_name, &answer, form), status).await
}

/// `POST /cases/{id}/close`: first the confirmation, then (`confirm=yes`) the close.
pub async fn close(
    web: &Web,
    page: &Page,
    id: &str,
    token: &str,
    form: HashMap<String, String>,
) -> Response {
    if form.get("confirm").map(String::as_str) != Some("yes") {
        let header = web.api.get(&format!("/api/v1/cases/{id}"), token).await;
        if !header.ok() {
            return crate::case_page::render(web, page, id, None).await;
        }
        if is_closed(&header.body) {
            // A page from before someone closed it: the case page says so.
            return Redirect::to(&format!("/cases/{id}")).into_response();
        }
        return confirm_close(page, id, &header.body, &form);
    }
    let note = Some(field(&form, "note")).filter(|n| !n.is_empty());
    let answer = web
        .api
        .post(
            &format!("/api/v1/cases/{id}/close"),
            token,
            &json!({ "outcome": field(&form, "outcome"), "note": note }),
        )
        .await;
    after(web, page, id, "close", answer, form).await
}

/// The page that asks once more before a case is closed, naming it.
fn confirm_close(
    page: &Page,
    id: &str,
    header: &Value,
    form: &HashMap<String, String>,
) -> Response {
    let lang = page.lang;
    let pseudonym = s(&header["pseudonym"]).to_string();
    let outcome = field(form, "outcome");
    let note = field(form, "note");
    let named = [("pseudonym", pseudonym.clone()), ("id", id.to_string())];
    let body = html! {
        p { (lang.ta("close-confirm-lead", &named)) }
        dl {
            dt { (lang.t("closing-outcome")) } dd { (label(lang, "outcome", &outcome)) }
            dt { (lang.t("closing-note")) } dd { @if note.is_empty() { "–" } @else { (note) } }
        }
        p.warning { (lang.t("close-confirm-effect")) }
        form.stacked method="post" action={ "/cases/" (id) "/close" } {
            (csrf(page))
            input type="hidden" name="outcome" value=(outcome);
            input type="hidden" name="note" value=(note);
            input type="hidden" name="confirm" value="yes";
            button type="submit" { (lang.ta("close-confirm-submit", &named)) }
        }
        p { a href={ "/cases/" (id) } { (lang.t("confirm-cancel")) } }
    };
    page.respond(layout(page, &lang.ta("close-confirm-title", &named), body))
}

/// `POST /cases/{id}/legal-hold`: the lead's facilitator places a hold.
pub async fn place_hold(
    web: &Web,
    page: &Page,
    id: &str,
    token: &str,
    form: HashMap<String, String>,
) -> Response {
    let answer = web
        .api
        .post(
            &format!("/api/v1/cases/{id}/legal-hold"),
            token,
            &json!({ "reason": field(&form, "reason") }),
        )
        .await;
    after(web, page, id, "hold", answer, form).await
}

/// `POST /cases/{id}/holds/{hold}/release`.
pub async fn release(
    State(web): State<Web>,
    page: Page,
    Path((id, hold)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let token = match page.form_token(&form) {
        Ok(token) => token,
        Err(answer) => return *answer,
    };
    let answer = web
        .api
        .post(
            &format!("/api/v1/cases/{id}/legal-hold/{hold}/release"),
            token,
            &json!({}),
        )
        .await;
    after(&web, &page, &id, "hold", answer, form).await
}

/// `POST /cases/{id}/erase`: first the confirmation page, then
/// (`confirm=yes` and the pseudonym typed) the erasure.
pub async fn erase(
    web: &Web,
    page: &Page,
    id: &str,
    token: &str,
    form: HashMap<String, String>,
) -> Response {
    let header = web.api.get(&format!("/api/v1/cases/{id}"), token).await;
    if !header.ok() {
        return crate::case_page::render(web, page, id, None).await;
    }
    let h = &header.body;
    // A page from before the case's state changed: say why, ask nothing.
    let blocked = if !is_closed(h) {
        Some("erase-when-closed")
    } else if !holds(h).is_empty() {
        Some("erase-blocked-by-hold")
    } else {
        None
    };
    if let Some(why) = blocked {
        let error = FormError {
            form: "erase".into(),
            field: None,
            detail: page.lang.t(why),
            values: form,
        };
        return again(web, page, id, error, 409).await;
    }
    if form.get("confirm").map(String::as_str) != Some("yes") {
        return confirm_erase(page, id, h, &form, false);
    }
    // Typed, not clicked: the one check a hurried click cannot pass.
    let typed = field(&form, "typed");
    if typed.trim().to_lowercase() != s(&h["pseudonym"]).trim().to_lowercase() {
        let mut response = confirm_erase(page, id, h, &form, true);
        *response.status_mut() = http::StatusCode::UNPROCESSABLE_ENTITY;
        return response;
    }
    let answer = web
        .api
        .post(
            &format!("/api/v1/cases/{id}/erasure"),
            token,
            &json!({ "reason": field(&form, "reason"), "legal_basis": field(&form, "legal_basis") }),
        )
        .await;
    if answer.ok() {
        // The case answers 410 from now on: its page says it was erased.
        return Redirect::to(&format!("/cases/{id}")).into_response();
    }
    after(web, page, id, "erase", answer, form).await
}

/// The page that asks before erasure: names the case, says what is lost
/// for good, and wants the pseudonym typed. `mistyped`: it was, wrongly.
fn confirm_erase(
    page: &Page,
    id: &str,
    header: &Value,
    form: &HashMap<String, String>,
    mistyped: bool,
) -> Response {
    let lang = page.lang;
    let pseudonym = s(&header["pseudonym"]).to_string();
    let basis = field(form, "legal_basis");
    let reason = field(form, "reason");
    let named = [("pseudonym", pseudonym.clone()), ("id", id.to_string())];
    let body = html! {
        div.danger-box {
            p { strong { (lang.t("erase-confirm-irreversible")) } }
            p { (lang.ta("erase-confirm-effect", &named)) }
        }
        dl {
            dt { (lang.t("erase-basis")) } dd { (label(lang, "legal-basis", &basis)) }
            dt { (lang.t("erase-reason")) } dd { (reason) }
        }
        @if mistyped {
            div.error role="alert" id="typed-error" { (lang.ta("erase-confirm-mistyped", &named)) }
        }
        form.stacked method="post" action={ "/cases/" (id) "/erase" } {
            (csrf(page))
            input type="hidden" name="legal_basis" value=(basis);
            input type="hidden" name="reason" value=(reason);
            input type="hidden" name="confirm" value="yes";
            label for="erase-typed" { (lang.ta("erase-confirm-type", &named)) }
            input id="erase-typed" name="typed" required autocomplete="off" spellcheck="false"
                aria-invalid=[mistyped.then_some("true")] aria-describedby=[mistyped.then_some("typed-error")];
            button.danger type="submit" { (lang.ta("erase-confirm-submit", &named)) }
        }
        p { a href={ "/cases/" (id) } { (lang.t("confirm-cancel")) } }
    };
    page.respond(layout(page, &lang.ta("erase-confirm-title", &named), body))
}
