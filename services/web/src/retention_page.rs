//! The auditor's retention list: every closed case not yet erased, when
//! the retention sweep will erase it, and its legal holds, which the
//! auditor places and releases here. Ids and dates only: the API's list
//! holds no client data.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;

use crate::i18n::Lang;
use crate::layout::{csrf, field_error, form_error, invalid, layout, FormError};
use crate::session::{encode, Page};
use crate::{s, Web};

pub async fn show(State(web): State<Web>, page: Page) -> Response {
    render(&web, &page, None).await
}

/// The retention period (`6y`, `18mo`, `2y6mo`, `90d`, as the API writes
/// it) in words; anything else as it is.
pub fn period(lang: Lang, text: &str) -> String {
    let mut parts = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let Ok(n) = rest[..digits].parse::<u64>() else {
            return text.to_string();
        };
        rest = &rest[digits..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let id = match &rest[..unit_end] {
            "y" => "period-years",
            "mo" => "period-months",
            "d" => "period-days",
            _ => return text.to_string(),
        };
        parts.push(lang.tn(id, n));
        rest = &rest[unit_end..];
    }
    if parts.is_empty() {
        return text.to_string();
    }
    parts.join(" ")
}

async fn render(web: &Web, page: &Page, error: Option<&FormError>) -> Response {
    let Some(token) = &page.token else {
        return page.to_signin();
    };
    let lang = page.lang;
    let list = web.api.get("/api/v1/audit/retention", token).await;
    let cases = list.body["cases"].as_array().cloned().unwrap_or_default();
    let now = chrono::Utc::now();
    let body = html! {
        @if !list.ok() {
            p.error role="alert" { (list.detail()) }
        } @else {
            p { (lang.ta("retention-explained", &[("period", period(lang, s(&list.body["period"])))])) }
            p { (lang.t("hold-explained")) }
            (form_error(error, "retention", lang))
            @if cases.is_empty() {
                p { (lang.t("retention-none")) }
            } @else {
                table.retention {
                    caption { (lang.t("retention-caption")) }
                    thead { tr {
                        th scope="col" { (lang.t("audit-case")) }
                        th scope="col" { (lang.t("retention-closed-at")) }
                        th scope="col" { (lang.t("retention-erase-after")) }
                        th scope="col" { (lang.t("case-legal-holds")) }
                        th scope="col" { (lang.t("hold-place")) }
                    } }
                    tbody {
                        @for c in &cases {
                            @let case = s(&c["case_id"]);
                            @let form = format!("hold-{case}");
                            @let due = chrono::DateTime::parse_from_rfc3339(s(&c["erase_after"])).is_ok_and(|t| t <= now);
                            @let hold_ids: Vec<&str> = c["hold_ids"].as_array().into_iter().flatten().map(s).collect();
                            tr {
                                th scope="row" { a href={ "/audit?case=" (encode(case)) } { (case) } }
                                td { (lang.moment(s(&c["closed_at"]))) }
                                td {
                                    (lang.moment(s(&c["erase_after"])))
                                    @if due && c["legal_hold"] == true { br; (lang.t("retention-due-but-held")) }
                                }
                                td {
                                    @if c["legal_hold"] == true {
                                        strong { (lang.t("retention-on-hold")) }
                                        ul.holds {
                                            @for hold in &hold_ids {
                                                li {
                                                    (crate::closing::hold_line(lang, hold, crate::closing::detail(&c["holds"], hold)))
                                                    form.inline method="post" action={ "/audit/retention/" (case) "/holds/" (hold) "/release" } {
                                                        (csrf(page))
                                                        button type="submit" aria-label=(lang.ta("hold-release-named", &[("hold", hold.to_string())])) { (lang.t("hold-release")) }
                                                    }
                                                }
                                            }
                                        }
                                    } @else {
                                        (lang.t("retention-no-hold"))
                                    }
                                }
                                td {
                                    (form_error(error, &form, lang))
                                    form.stacked method="post" action={ "/audit/retention/" (case) "/hold" } {
                                        (csrf(page))
                                        label for={ "reason-" (case) } { (lang.t("hold-reason")) }
                                        input id={ "reason-" (case) } name="reason" required
                                            aria-invalid=[invalid(error, &form, "reason")]
                                            value=(error.map(|e| e.value(&form, "reason")).unwrap_or_default());
                                        (field_error(error, &form, "reason"))
                                        button type="submit" { (lang.t("hold-place")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let mut response = page.respond(layout(page, &lang.t("retention-title"), body));
    if !list.ok() {
        *response.status_mut() =
            http::StatusCode::from_u16(list.status).unwrap_or(http::StatusCode::BAD_GATEWAY);
    }
    response
}

/// Back to the list, or the list with the refusal by the case's row (the
/// erased page if the sweep erased the case meanwhile).
async fn after(
    web: &Web,
    page: &Page,
    case: &str,
    answer: crate::api::Answer,
    form: HashMap<String, String>,
) -> Response {
    if answer.ok() {
        return Redirect::to("/audit/retention").into_response();
    }
    if answer.erased().is_some() {
        return crate::closing::erased(page, &answer, case);
    }
    let error = crate::closing_forms::refused(&format!("hold-{case}"), &answer, form);
    let mut response = render(web, page, Some(&error)).await;
    *response.status_mut() = http::StatusCode::UNPROCESSABLE_ENTITY;
    response
}

/// `POST /audit/retention/{case}/hold`: the auditor places a legal hold.
pub async fn place(
    State(web): State<Web>,
    page: Page,
    Path(case): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let token = match page.form_token(&form) {
        Ok(token) => token,
        Err(answer) => return *answer,
    };
    let answer = crate::closing_forms::post_hold(&web, token, &case, &form).await;
    after(&web, &page, &case, answer, form).await
}

/// `POST /audit/retention/{case}/holds/{hold}/release`.
pub async fn release(
    State(web): State<Web>,
    page: Page,
    Path((case, hold)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let token = match page.form_token(&form) {
        Ok(token) => token,
        Err(answer) => return *answer,
    };
    let answer = crate::closing_forms::post_release(&web, token, &case, &hold).await;
    after(&web, &page, &case, answer, form).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_written_in_words() {
        assert_eq!(period(Lang("en"), "6y"), "6 years");
        assert_eq!(period(Lang("en"), "2y6mo"), "2 years 6 months");
        assert_eq!(period(Lang("fi"), "1y"), "1 vuosi");
        assert_eq!(period(Lang("sv"), "90d"), "90 dagar");
        assert_eq!(period(Lang("en"), "6 weeks"), "6 weeks");
        assert_eq!(period(Lang("en"), ""), "");
    }
}
