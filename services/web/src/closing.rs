//! The end of a case as pages show it: its state on the case page, the
//! lead facilitator's section with the forms of closing, legal holds and
//! erasure (posted to `closing_forms`), the hold lines, and the page every
//! 410 of the API becomes.

use axum::response::Response;
use maud::{html, Markup};
use serde_json::Value;

use crate::api::Answer;
use crate::i18n::Lang;
use crate::layout::{csrf, field_error, form_error, invalid, layout, FormError};
use crate::s;
use crate::session::Page;

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
pub(crate) fn holds(header: &Value) -> Vec<&str> {
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
