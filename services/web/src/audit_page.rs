//! The auditor's view of one client: the consent timeline, the matrix at
//! any chosen moment, the access log (also as CSV), the integrity check.
//! Never client data: the API's audit endpoints give none.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use serde_json::Value;

use crate::case_page::matrix;
use crate::layout::layout;
use crate::session::{encode, Page};
use crate::{s, Web};

#[derive(Deserialize)]
pub struct AuditQuery {
    /// `?case=`: the case to audit (trimmed); empty or none: no case chosen.
    case: Option<String>,
    /// `?at=`: the moment to replay the consent matrix at (RFC 3339); empty
    /// or none: now.
    at: Option<String>,
    /// `?verify=` present (any value): also check the log's integrity chain.
    verify: Option<String>,
    /// Only reads by this user or agency.
    who: Option<String>,
}

/// Whether an access record matches the `who` filter.
fn matches(read: &Value, who: Option<&str>) -> bool {
    match who.map(str::trim).filter(|w| !w.is_empty()) {
        None => true,
        Some(w) => s(&read["user"]) == w || s(&read["agency"]) == w,
    }
}

pub async fn show(State(web): State<Web>, page: Page, Query(q): Query<AuditQuery>) -> Response {
    let Some(token) = &page.token else {
        return page.to_signin();
    };
    let lang = page.lang;
    let case = q.case.clone().unwrap_or_default().trim().to_string();
    let verify = if q.verify.is_some() {
        Some(web.api.get("/api/v1/audit/verify", token).await)
    } else {
        None
    };
    let (history, log, replay) = if case.is_empty() {
        (None, None, None)
    } else {
        let history = web
            .api
            .get(
                &format!("/api/v1/audit/cases/{case}/consent/history"),
                token,
            )
            .await;
        let log = web
            .api
            .get(&format!("/api/v1/audit/cases/{case}/access-log"), token)
            .await;
        (
            Some(history),
            Some(log),
            Some(q.at.clone().unwrap_or_default()),
        )
    };
    let body = html! {
        form.stacked method="get" action="/audit" {
            label for="audit-case" { (lang.t("audit-case")) }
            input id="audit-case" name="case" value=(case) required;
            label for="audit-at" { (lang.t("audit-at")) }
            input id="audit-at" name="at" value=(q.at.clone().unwrap_or_default()) aria-describedby="audit-at-hint";
            small id="audit-at-hint" { (lang.t("audit-at-hint")) }
            button type="submit" { (lang.t("audit-show")) }
        }
        form method="get" action="/audit" {
            input type="hidden" name="verify" value="1";
            button type="submit" { (lang.t("audit-verify")) }
        }
        @if let Some(v) = &verify {
            @if v.body["ok"] == true {
                p.notice role="status" { (lang.ta("audit-verify-ok", &[("count", v.body["events_checked"].to_string())])) }
            } @else if v.ok() {
                p.error role="alert" { (lang.ta("audit-verify-broken", &[("position", v.body["first_broken"]["position"].to_string()), ("problem", s(&v.body["first_broken"]["problem"]).to_string())])) }
            } @else {
                p.error role="alert" { (v.detail()) }
            }
        }
        @if let Some(history) = &history {
            @if !history.ok() {
                p.error role="alert" { (history.detail()) }
            } @else {
                @let erased = &history.body["erased"];
                @if erased.is_object() {
                    p.danger-box role="status" {
                        (lang.ta("audit-erased", &[
                            ("date", lang.moment(s(&erased["at"]))),
                            ("user", s(&erased["actor"]["user"]).to_string()),
                            ("agency", s(&erased["actor"]["agency"]).to_string()),
                            ("basis", crate::closing::label(lang, "legal-basis", s(&erased["legal_basis"]))),
                            ("reason", s(&erased["reason"]).to_string()),
                        ]))
                    }
                }
                section aria-labelledby="timeline-h" {
                    h2 id="timeline-h" { (lang.t("audit-timeline")) }
                    ol {
                        @for e in history.body["events"].as_array().into_iter().flatten() {
                            li {
                                a href={ "/audit?case=" (encode(&case)) "&at=" (encode(s(&e["at"]))) } { (s(&e["at"])) }
                                " " (lang.t(&format!("event-{}", s(&e["type"])))) " – " (s(&e["actor"]["user"])) "@" (s(&e["actor"]["agency"]))
                                @if let Some(r) = e["data"]["recipient"].as_str().or(e["data"]["agency"].as_str()) { " → " (r) }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(at) = &replay {
            section aria-labelledby="matrix-h" {
                h2 id="matrix-h" { (lang.t("audit-matrix")) @if !at.is_empty() { " " (at) } }
                (matrix_at(&web, token, &case, at, lang).await)
            }
        }
        @if let Some(log) = &log {
            @if log.ok() {
                section aria-labelledby="log-h" {
                    h2 id="log-h" { (lang.t("audit-access-log")) }
                    form method="get" action="/audit" {
                        input type="hidden" name="case" value=(case);
                        label for="audit-who" { (lang.t("audit-filter-who")) }
                        " " input id="audit-who" name="who" value=(q.who.clone().unwrap_or_default());
                        " " button type="submit" { (lang.t("audit-filter")) }
                    }
                    p { a href={ "/audit/access-log.csv?case=" (encode(&case)) "&who=" (encode(q.who.as_deref().unwrap_or(""))) } { (lang.t("audit-csv")) } }
                    table {
                        caption { (lang.t("audit-access-log")) }
                        thead { tr {
                            th scope="col" { (lang.t("audit-when")) } th scope="col" { (lang.t("audit-who")) }
                            th scope="col" { (lang.t("audit-what")) } th scope="col" { (lang.t("audit-returned")) }
                            th scope="col" { (lang.t("audit-withheld")) } th scope="col" { (lang.t("audit-consent-version")) }
                        } }
                        tbody {
                            @for r in log.body["reads"].as_array().into_iter().flatten().filter(|r| matches(r, q.who.as_deref())) {
                                tr {
                                    td { (s(&r["at"])) } td { (s(&r["user"])) "@" (s(&r["agency"])) }
                                    td { (s(&r["service"])) "/" (s(&r["resource"])) }
                                    td { (r["categories_returned"].as_array().into_iter().flatten().map(s).collect::<Vec<_>>().join(", ")) }
                                    td { (r["items_withheld"]) } td { (r["consent_version"]) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page.respond(layout(&page, &lang.t("audit-title"), body))
}

/// The matrix as of `at` (default now), replayed by the consent service.
async fn matrix_at(
    web: &Web,
    token: &str,
    case: &str,
    at: &str,
    lang: crate::i18n::Lang,
) -> maud::Markup {
    let query = if at.is_empty() {
        String::new()
    } else {
        format!("?at={}", encode(at))
    };
    let answer = web
        .api
        .get(&format!("/api/v1/audit/cases/{case}/consent{query}"), token)
        .await;
    if !answer.ok() {
        return html! { p.error role="alert" { (answer.detail()) } };
    }
    html! {
        p { (lang.ta("consent-version", &[("version", answer.body["consent_version"].to_string())])) }
        (matrix(lang, &answer.body))
    }
}

/// The access log as CSV, for the auditor's own tools.
pub async fn access_log_csv(
    State(web): State<Web>,
    page: Page,
    Query(q): Query<AuditQuery>,
) -> Response {
    let Some(token) = &page.token else {
        return page.to_signin();
    };
    let case = q.case.clone().unwrap_or_default();
    let log = web
        .api
        .get(&format!("/api/v1/audit/cases/{case}/access-log"), token)
        .await;
    if !log.ok() {
        return (
            http::StatusCode::from_u16(log.status).unwrap_or(http::StatusCode::BAD_GATEWAY),
            log.detail(),
        )
            .into_response();
    }
    let reads = log.body["reads"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| matches(r, q.who.as_deref()));
    let csv = match access_log_rows(reads) {
        Ok(csv) => csv,
        Err(e) => {
            tracing::error!(error = %e, "cannot write the access log as CSV");
            return (
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "Cannot write the CSV.",
            )
                .into_response();
        }
    };
    (
        [
            (
                http::header::CONTENT_TYPE,
                "text/csv; charset=utf-8".to_string(),
            ),
            (
                http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"access-log-{case}.csv\""),
            ),
        ],
        csv,
    )
        .into_response()
}

/// The CSV's columns, in order.
const COLUMNS: [&str; 12] = [
    "seq",
    "at",
    "user",
    "agency",
    "service",
    "resource",
    "categories_returned",
    "categories_withheld",
    "items_returned",
    "items_withheld",
    "consent_version",
    "consent_fresh",
];

/// Access records as CSV (RFC 4180: comma-separated, CRLF line ends, a
/// field quoted when it holds a comma, quote or line break, its quotes
/// doubled), one row per record under a header row. A list of categories
/// is one field, its items separated by spaces.
fn access_log_rows<'a>(reads: impl Iterator<Item = &'a Value>) -> Result<Vec<u8>, csv::Error> {
    let mut out = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    out.write_record(COLUMNS)?;
    for r in reads {
        let list = |k: &str| {
            r[k].as_array()
                .into_iter()
                .flatten()
                .map(s)
                .collect::<Vec<_>>()
                .join(" ")
        };
        out.write_record([
            r["seq"].to_string(),
            s(&r["at"]).to_string(),
            s(&r["user"]).to_string(),
            s(&r["agency"]).to_string(),
            s(&r["service"]).to_string(),
            s(&r["resource"]).to_string(),
            list("categories_returned"),
            list("categories_withheld"),
            r["items_returned"].to_string(),
            r["items_withheld"].to_string(),
            r["consent_version"].to_string(),
            r["consent_fresh"].to_string(),
        ])?;
    }
    out.into_inner().map_err(|e| e.into_error().into())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::access_log_rows;

    const HEADER: &str = "seq,at,user,agency,service,resource,categories_returned,categories_withheld,items_returned,items_withheld,consent_version,consent_fresh\r\n";

    #[test]
    fn the_header_comes_first_and_an_empty_log_is_only_the_header() {
        let csv = access_log_rows([].iter()).unwrap();
        assert_eq!(String::from_utf8(csv).unwrap(), HEADER);
    }

    #[test]
    fn fields_are_quoted_when_they_must_be() {
        let reads = [
            json!({
                "seq": 7, "at": "2025-01-02T03:04:05Z", "user": "hanna", "agency": "health-hus",
                "service": "cases", "resource": "/api/v1/cases/K-1",
                "categories_returned": ["health", "contact"], "categories_withheld": [],
                "items_returned": 2, "items_withheld": 0, "consent_version": 3, "consent_fresh": true,
            }),
            // What a record never holds today, but the CSV must survive:
            // separators, quotes and line breaks inside a field.
            json!({
                "seq": 8, "at": "2025-01-02T03:04:06Z", "user": "a,b", "agency": "say \"hi\"",
                "service": "two\r\nlines", "resource": "", "categories_returned": ["x"],
                "categories_withheld": ["y", "z"], "items_returned": 0, "items_withheld": 1,
                "consent_version": 4, "consent_fresh": false,
            }),
        ];
        let csv = String::from_utf8(access_log_rows(reads.iter()).unwrap()).unwrap();
        let expected = format!(
            "{HEADER}\
             7,2025-01-02T03:04:05Z,hanna,health-hus,cases,/api/v1/cases/K-1,health contact,,2,0,3,true\r\n\
             8,2025-01-02T03:04:06Z,\"a,b\",\"say \"\"hi\"\"\",\"two\r\nlines\",,x,y z,0,1,4,false\r\n"
        );
        assert_eq!(csv, expected);
    }
}
