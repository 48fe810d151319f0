//! The forms of the end of a case: closing, legal holds and erasure, each
//! posted to the API, and the case page again with the API's refusal.
//! Closing and erasing cannot be undone, so each first shows a page that
//! names the case and asks again; erasure also asks for the case's
//! pseudonym to be typed, which nobody does by accident.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use serde_json::{json, Value};

use crate::api::Answer;
use crate::closing::{erased, holds, is_closed, label};
use crate::layout::{csrf, layout, FormError};
use crate::session::{field, Page};
use crate::{s, Web};

/// An API refusal as the form's error. The field only when the API names
/// one: a conflict's detail does not start with a field.
pub(crate) fn refused(form: &str, answer: &Answer, values: HashMap<String, String>) -> FormError {
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
async fn close(
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
async fn place_hold(
    web: &Web,
    page: &Page,
    id: &str,
    token: &str,
    form: HashMap<String, String>,
) -> Response {
    let answer = post_hold(web, token, id, &form).await;
    after(web, page, id, "hold", answer, form).await
}

/// Places the legal hold `form` gives the reason of on case `id`: for the
/// lead on the case page and the auditor on the retention page alike.
pub(crate) async fn post_hold(
    web: &Web,
    token: &str,
    id: &str,
    form: &HashMap<String, String>,
) -> Answer {
    let body = json!({ "reason": field(form, "reason") });
    web.api
        .post(&format!("/api/v1/cases/{id}/legal-hold"), token, &body)
        .await
}

/// Releases legal hold `hold` of case `id`.
pub(crate) async fn post_release(web: &Web, token: &str, id: &str, hold: &str) -> Answer {
    let path = format!("/api/v1/cases/{id}/legal-hold/{hold}/release");
    web.api.post(&path, token, &json!({})).await
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
    let answer = post_release(&web, token, &id, &hold).await;
    after(&web, &page, &id, "hold", answer, form).await
}

/// `POST /cases/{id}/erase`: first the confirmation page, then
/// (`confirm=yes` and the pseudonym typed) the erasure.
async fn erase(
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

/// The form's fields, the session's token, and `then`.
macro_rules! form_handler {
    ($(#[$doc:meta])* $handler:ident => $then:ident) => {
        $(#[$doc])*
        pub async fn $handler(
            State(web): State<Web>,
            page: Page,
            Path(id): Path<String>,
            Form(form): Form<HashMap<String, String>>,
        ) -> Response {
            match page.form_token(&form) {
                Ok(token) => $then(&web, &page, &id, token, form).await,
                Err(answer) => *answer,
            }
        }
    };
}

form_handler!(
    /// `POST /cases/{id}/close`.
    close_form => close
);
form_handler!(
    /// `POST /cases/{id}/legal-hold`.
    hold_form => place_hold
);
form_handler!(
    /// `POST /cases/{id}/erase`.
    erase_form => erase
);
