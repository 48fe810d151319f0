//! One case as the caller's agency may see it: header, warnings, network,
//! records (with how much consent withheld), the plan, the consent matrix;
//! and, for the lead's facilitator, the forms that change them.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde_json::{json, Value};

use crate::i18n::Lang;
use crate::layout::{csrf, field_error, form_error, invalid, layout, FormError};
use crate::pages::refusal;
use crate::session::Page;
use crate::{s, Web};

pub const CATEGORIES: [&str; 10] = [
    "identity",
    "contact",
    "narrative",
    "health",
    "legal",
    "residence",
    "social",
    "plan",
    "meetings",
    "tasks",
];

pub async fn show(State(web): State<Web>, page: Page, Path(id): Path<String>) -> Response {
    render(&web, &page, &id, None).await
}

/// A consent form's agency choice (the network but the lead) and its
/// category boxes (`c-<category>`, read back by [`checked`]).
fn agency_and_categories(
    lang: Lang,
    select_id: &str,
    name: &str,
    agencies: &[&String],
    legend: &str,
    error: Markup,
) -> Markup {
    html! {
        label for=(select_id) { (lang.t("grant-recipient")) }
        select id=(select_id) name=(name) {
            @for a in agencies { option value=(a) { (a) } }
        }
        fieldset {
            legend { (lang.t(legend)) }
            @for c in CATEGORIES {
                label { input type="checkbox" name={ "c-" (c) } value="on"; " " (lang.t(&format!("category-{c}"))) } " "
            }
            (error)
        }
    }
}

fn category_select(lang: Lang, id: &str, selected: &str) -> Markup {
    html! {
        select id=(id) name="category" {
            @for c in CATEGORIES {
                option value=(c) selected[c == selected] { (lang.t(&format!("category-{c}"))) }
            }
        }
    }
}

pub async fn render(web: &Web, page: &Page, id: &str, error: Option<&FormError>) -> Response {
    let (Some(token), Some(me)) = (&page.token, &page.me) else {
        return page.to_signin();
    };
    let lang = page.lang;
    let header = web.api.get(&format!("/api/v1/cases/{id}"), token).await;
    if header.erased().is_some() {
        return crate::closing::erased(page, &header, id);
    }
    if !header.ok() {
        let body = html! { p.error role="alert" { (header.detail()) } };
        let mut response = page.respond(layout(page, &lang.t("case-not-found"), body));
        *response.status_mut() =
            http::StatusCode::from_u16(header.status).unwrap_or(http::StatusCode::NOT_FOUND);
        return response;
    }
    let h = &header.body;
    let records = web
        .api
        .get(&format!("/api/v1/cases/{id}/records"), token)
        .await;
    let consent = web
        .api
        .get(&format!("/api/v1/cases/{id}/consent?grants=true"), token)
        .await;
    let plan = web
        .api
        .get(&format!("/api/v1/cases/{id}/plan"), token)
        .await;
    let is_lead = s(&h["lead_agency"]) == me.agency;
    let lead_facilitator = is_lead && me.is("facilitator");
    // A closed case takes no new records, meetings or members: no forms for them.
    let closed = crate::closing::is_closed(h);
    let members: Vec<String> = h["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| s(m).to_string())
        .collect();
    let value = |form: &str, name: &str| error.map(|e| e.value(form, name)).unwrap_or_default();
    let meetings = crate::meetings_section::section(web, page, me, token, id, h, error).await;
    // The agencies consent can be given to: the network but the lead.
    let others: Vec<&String> = members.iter().filter(|m| **m != me.agency).collect();

    let body = html! {
        section aria-labelledby="header-h" {
            h2 id="header-h" { (lang.t("case-header")) }
            dl {
                dt { (lang.t("case-lead")) } dd { (s(&h["lead_agency"])) }
                dt { (lang.t("case-languages")) } dd { (h["languages"].as_array().into_iter().flatten().map(s).collect::<Vec<_>>().join(", ")) }
                dt { (lang.t("case-interpreter-language")) } dd { (h["interpreter_language"].as_str().unwrap_or("–")) }
                dt { (lang.t("case-flags")) } dd {
                    @if h["flags"]["minor"] == true { (lang.t("flag-minor")) " " }
                    @if h["flags"]["safety_risk"] == true { (lang.t("flag-safety-risk")) }
                }
                (crate::closing::state_rows(lang, h))
            }
            @if closed {
                p.notice role="status" {
                    (lang.t("case-closed-notice"))
                    @if lead_facilitator { " " a href="#closing-h" { (lang.t("case-closed-to-actions")) } }
                }
            }
            @for w in h["warnings"].as_array().into_iter().flatten() {
                p.warning role="status" { (lang.t(&format!("warning-{}", s(w).replace('_', "-")))) }
            }
        }
        section aria-labelledby="network-h" {
            h2 id="network-h" { (lang.t("network-title")) }
            ul { @for m in &members { li { (m) @if *m == s(&h["lead_agency"]) { " (" (lang.t("network-lead")) ")" } } } }
            @let invited = h["invited"].as_array().cloned().unwrap_or_default();
            @if !invited.is_empty() {
                p { (lang.t("network-invited")) ": " (invited.iter().map(|i| s(&i["agency"]).to_string()).collect::<Vec<_>>().join(", ")) }
            }
            @if lead_facilitator && !closed {
                (form_error(error, "invite", lang))
                form.stacked method="post" action={ "/cases/" (id) "/invite" } {
                    (csrf(page))
                    label for="invite-agency" { (lang.t("network-invite-agency")) }
                    input id="invite-agency" name="agency" required aria-invalid=[invalid(error, "invite", "agency")] value=(value("invite", "agency"));
                    (field_error(error, "invite", "agency"))
                    label for="invite-purpose" { (lang.t("network-invite-purpose")) }
                    input id="invite-purpose" name="purpose" required value=(value("invite", "purpose"));
                    button type="submit" { (lang.t("network-invite-submit")) }
                }
            }
        }
        section aria-labelledby="records-h" {
            h2 id="records-h" { (lang.t("records-title")) }
            @let withheld = records.body["withheld"].as_u64().unwrap_or(0);
            p.notice role="status" {
                @if withheld == 0 { (lang.t("records-nothing-withheld")) }
                @else { (lang.tn("records-withheld", withheld)) }
                @if records.body["consent_fresh"] == false { " " (lang.t("consent-stale")) }
            }
            @for r in records.body["records"].as_array().into_iter().flatten() {
                article {
                    h3 { (lang.t(&format!("category-{}", s(&r["category"])))) " · " (s(&r["author_agency"])) " · " (lang.moment(s(&r["recorded_at"]))) }
                    p { (s(&r["body"])) }
                }
            }
            (form_error(error, "record", lang))
            @if !closed {
            form.stacked method="post" action={ "/cases/" (id) "/record" } {
                (csrf(page))
                label for="record-category" { (lang.t("record-category")) }
                (category_select(lang, "record-category", &value("record", "category")))
                label for="record-body" { (lang.t("record-body")) }
                textarea id="record-body" name="body" rows="4" required aria-invalid=[invalid(error, "record", "body")] { (value("record", "body")) }
                (field_error(error, "record", "body"))
                button type="submit" { (lang.t("record-submit")) }
            }
            }
        }
        section aria-labelledby="plan-h" {
            h2 id="plan-h" { (lang.t("plan-title")) }
            @if plan.body["agreed"].is_object() {
                p { (lang.ta("plan-agreed-version", &[("version", plan.body["agreed"]["plan_version"].to_string())])) }
                (plan_measures(lang, &plan.body["agreed"]))
            } @else {
                p { (lang.t("plan-none-agreed")) }
            }
            @if plan.body["pending"].is_object() {
                @let pending = &plan.body["pending"];
                @let n = pending["plan_version"].to_string();
                p { (lang.ta("plan-pending-version", &[("version", n.clone())])) }
                (plan_measures(lang, pending))
                p { (lang.t("plan-awaiting")) ": " (pending["awaiting"].as_array().into_iter().flatten().map(s).collect::<Vec<_>>().join(", ")) }
                @if pending["client_agreement"].is_object() { p { (lang.t("plan-client-agreed")) } }
                (form_error(error, "plan-version", lang))
                @if pending["awaiting"].as_array().into_iter().flatten().any(|a| s(a) == me.agency) {
                    form.inline method="post" action={ "/cases/" (id) "/plan-approve" } {
                        (csrf(page)) input type="hidden" name="version" value=(n);
                        button type="submit" { (lang.t("plan-approve")) }
                    }
                    " "
                    form.inline method="post" action={ "/cases/" (id) "/plan-changes" } {
                        (csrf(page)) input type="hidden" name="version" value=(n);
                        label for="plan-comment" { (lang.t("plan-comment")) }
                        " " input id="plan-comment" name="comment" required;
                        " " button type="submit" { (lang.t("plan-request-changes")) }
                    }
                }
                @if lead_facilitator && !pending["client_agreement"].is_object() {
                    form.stacked method="post" action={ "/cases/" (id) "/plan-agreement" } {
                        (csrf(page)) input type="hidden" name="version" value=(n);
                        label for="agreement-method" { (lang.t("grant-method")) }
                        select id="agreement-method" name="method" {
                            option value="verbal" { (lang.t("method-verbal")) }
                            option value="written" { (lang.t("method-written")) }
                        }
                        label for="agreement-language" { (lang.t("grant-language")) }
                        input id="agreement-language" name="language" required;
                        label for="agreement-interpreter" { (lang.t("grant-interpreter")) }
                        input id="agreement-interpreter" name="interpreter";
                        button type="submit" { (lang.t("plan-record-agreement")) }
                    }
                }
            }
            @if lead_facilitator && !plan.body["pending"].is_object() {
                h3 { (lang.t("plan-draft")) }
                @let draft = &plan.body["draft"];
                (form_error(error, "plan", lang))
                form.stacked method="post" action={ "/cases/" (id) "/plan" } {
                    (csrf(page))
                    label for="plan-goals" { (lang.t("plan-goals")) }
                    textarea id="plan-goals" name="goals" rows="3" aria-describedby="plan-goals-hint" aria-invalid=[invalid(error, "plan", "goals")] {
                        @if error.is_some_and(|e| e.form == "plan") { (value("plan", "goals")) }
                        @else { (draft["goals"].as_array().into_iter().flatten().map(s).collect::<Vec<_>>().join("\n")) }
                    }
                    small id="plan-goals-hint" { (lang.t("plan-goals-hint")) }
                    (field_error(error, "plan", "goals"))
                    (field_error(error, "plan", "measures"))
                    @let measures = draft["measures"].as_array().cloned().unwrap_or_default();
                    @for i in 0..(measures.len() + 2) {
                        @let m = measures.get(i).cloned().unwrap_or(Value::Null);
                        @let field = |name: &str| -> String {
                            let key = format!("m{i}-{name}");
                            if error.is_some_and(|e| e.form == "plan") { value("plan", &key) } else { m[name].as_str().unwrap_or_default().to_string() }
                        };
                        fieldset {
                            legend { (lang.ta("plan-measure-n", &[("n", (i + 1).to_string())])) }
                            label for={ "m" (i) "-description" } { (lang.t("plan-description")) }
                            input id={ "m" (i) "-description" } name={ "m" (i) "-description" } value=(field("description"));
                            label for={ "m" (i) "-category" } { (lang.t("record-category")) }
                            select id={ "m" (i) "-category" } name={ "m" (i) "-category" } {
                                @for c in CATEGORIES { option value=(c) selected[c == field("category")] { (lang.t(&format!("category-{c}"))) } }
                            }
                            label for={ "m" (i) "-agency" } { (lang.t("plan-responsible")) }
                            select id={ "m" (i) "-agency" } name={ "m" (i) "-responsible_agency" } {
                                @for a in &members { option value=(a) selected[*a == field("responsible_agency")] { (a) } }
                            }
                            label for={ "m" (i) "-due" } { (lang.t("plan-due")) }
                            input type="date" id={ "m" (i) "-due" } name={ "m" (i) "-due" } value=(field("due"));
                        }
                    }
                    button type="submit" name="then" value="save" { (lang.t("plan-save")) }
                    button type="submit" name="then" value="propose" { (lang.t("plan-propose")) }
                }
            }
        }
        (meetings)
        section aria-labelledby="consent-h" {
            h2 id="consent-h" { (lang.t("consent-title")) }
            p { (lang.ta("consent-version", &[("version", consent.body["consent_version"].to_string())])) }
            (matrix(lang, &consent.body))
            @if lead_facilitator {
                h3 { (lang.t("grants-title")) }
                ul {
                    @for g in consent.body["grants"].as_array().into_iter().flatten() {
                        li {
                            (s(&g["recipient"])) ": " (g["categories"].as_array().into_iter().flatten().map(s).collect::<Vec<_>>().join(", "))
                            " – " (lang.ta("grant-obtained", &[
                                ("method", s(&g["obtained"]["method"]).to_string()),
                                ("language", s(&g["obtained"]["language"]).to_string()),
                                ("grantor", s(&g["obtained"]["grantor"]).to_string()),
                            ]))
                            form.inline method="post" action={ "/cases/" (id) "/grants/" (s(&g["grant_id"])) "/withdraw" } {
                                (csrf(page))
                                " " label for={ "why-" (s(&g["grant_id"])) } { (lang.t("withdraw-reason")) }
                                " " input id={ "why-" (s(&g["grant_id"])) } name="reason" required;
                                " " button type="submit" { (lang.t("withdraw-submit")) }
                            }
                        }
                    }
                }
                h3 { (lang.t("refusal-new")) }
                (form_error(error, "refuse", lang))
                form.stacked method="post" action={ "/cases/" (id) "/refuse" } {
                    (csrf(page))
                    (agency_and_categories(lang, "refuse-agency", "agency", &others, "refusal-categories", html! {}))
                    button type="submit" { (lang.t("refusal-submit")) }
                }
                h3 { (lang.t("statutory-new")) }
                (form_error(error, "statutory", lang))
                form.stacked method="post" action={ "/cases/" (id) "/statutory" } {
                    (csrf(page))
                    (agency_and_categories(lang, "statutory-recipient", "recipient", &others, "grant-categories", field_error(error, "statutory", "categories")))
                    label for="statutory-law" { (lang.t("statutory-law")) }
                    input id="statutory-law" name="law_reference" required aria-invalid=[invalid(error, "statutory", "law_reference")] value=(value("statutory", "law_reference"));
                    (field_error(error, "statutory", "law_reference"))
                    button type="submit" { (lang.t("statutory-submit")) }
                }
                h3 { (lang.t("grant-new")) }
                (form_error(error, "grant", lang))
                form.stacked method="post" action={ "/cases/" (id) "/grant" } {
                    (csrf(page))
                    (agency_and_categories(lang, "grant-recipient", "recipient", &others, "grant-categories", field_error(error, "grant", "categories")))
                    label for="grant-purpose" { (lang.t("grant-purpose")) }
                    input id="grant-purpose" name="purpose" required aria-invalid=[invalid(error, "grant", "purpose")] value=(value("grant", "purpose"));
                    (field_error(error, "grant", "purpose"))
                    label for="grant-method" { (lang.t("grant-method")) }
                    select id="grant-method" name="method" {
                        option value="written" { (lang.t("method-written")) }
                        option value="verbal" { (lang.t("method-verbal")) }
                        option value="electronic" { (lang.t("method-electronic")) }
                    }
                    label for="grant-language" { (lang.t("grant-language")) }
                    input id="grant-language" name="language" required aria-invalid=[invalid(error, "grant", "obtained")] value=(value("grant", "language"));
                    (field_error(error, "grant", "obtained"))
                    label for="grant-interpreter" { (lang.t("grant-interpreter")) }
                    input id="grant-interpreter" name="interpreter" value=(value("grant", "interpreter"));
                    label for="grant-grantor" { (lang.t("grant-grantor")) }
                    select id="grant-grantor" name="grantor" {
                        option value="self" { (lang.t("grantor-self")) }
                        option value="guardian" { (lang.t("grantor-guardian")) }
                        option value="representative" { (lang.t("grantor-representative")) }
                    }
                    button type="submit" { (lang.t("grant-submit")) }
                }
            }
        }
        @if lead_facilitator {
            (crate::closing::section(page, id, h, error))
        }
    };
    page.respond(layout(
        page,
        &lang.ta(
            "case-title",
            &[("pseudonym", s(&h["pseudonym"]).to_string())],
        ),
        body,
    ))
}

fn plan_measures(lang: Lang, version: &Value) -> Markup {
    html! {
        @if let Some(goals) = version["goals"].as_array() {
            ul { @for g in goals { li { (s(g)) } } }
        }
        table {
            caption { (lang.t("plan-measures")) }
            thead { tr { th scope="col" { (lang.t("record-category")) } th scope="col" { (lang.t("plan-responsible")) } th scope="col" { (lang.t("plan-description")) } th scope="col" { (lang.t("plan-due")) } } }
            tbody {
                @for m in version["measures"].as_array().into_iter().flatten() {
                    tr { td { (lang.t(&format!("category-{}", s(&m["category"])))) } td { (s(&m["responsible_agency"])) } td { (s(&m["description"])) } td { (m["due"].as_str().map(|d| lang.date(d)).unwrap_or("–".into())) } }
                }
            }
        }
    }
}

/// The consent matrix: agencies by categories, each cell its basis.
pub fn matrix(lang: Lang, consent: &Value) -> Markup {
    html! {
        table {
            caption { (lang.t("consent-matrix")) }
            thead {
                tr {
                    th scope="col" { (lang.t("consent-agency")) }
                    @for c in CATEGORIES { th scope="col" { (lang.t(&format!("category-{c}"))) } }
                }
            }
            tbody {
                @for (agency, row) in consent["matrix"].as_object().into_iter().flatten() {
                    tr {
                        th scope="row" { (agency) }
                        @for c in CATEGORIES {
                            @let cell = &row[c];
                            @let allowed = cell["allowed"] == true;
                            td class=(if allowed { "allowed" } else { "denied" }) {
                                (if allowed { "✓ " } else { "✗ " })
                                (lang.t(&format!("basis-{}", s(&cell["basis"]))))
                            }
                        }
                    }
                }
            }
        }
    }
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
    let optional = |k: &str| crate::session::optional_field(&form, k);
    let (path, body) = match action.as_str() {
        "record" => (
            format!("/api/v1/cases/{id}/records"),
            json!({ "category": get("category"), "body": get("body") }),
        ),
        "invite" => (
            format!("/api/v1/cases/{id}/members"),
            json!({ "agency": get("agency"), "purpose": get("purpose") }),
        ),
        "grant" => {
            let categories: Vec<&str> = CATEGORIES
                .into_iter()
                .filter(|c| form.contains_key(&format!("c-{c}")))
                .collect();
            (
                format!("/api/v1/cases/{id}/consent/grants"),
                json!({
                    "recipient": get("recipient"),
                    "categories": categories,
                    "purpose": get("purpose"),
                    "obtained": { "method": get("method"), "language": get("language"), "interpreter": optional("interpreter"), "grantor": get("grantor") },
                }),
            )
        }
        "refuse" => (
            format!("/api/v1/cases/{id}/consent/refusals"),
            json!({ "agency": get("agency"), "categories": checked(&form) }),
        ),
        "statutory" => (
            format!("/api/v1/cases/{id}/consent/statutory"),
            json!({ "recipient": get("recipient"), "categories": checked(&form), "law_reference": get("law_reference") }),
        ),
        "plan" => return save_plan(&web, &page, &id, token, form).await,
        "plan-approve" | "plan-changes" | "plan-agreement" => {
            let n = get("version");
            match action.as_str() {
                "plan-approve" => (
                    format!("/api/v1/cases/{id}/plan/versions/{n}/approve"),
                    json!({}),
                ),
                "plan-changes" => (
                    format!("/api/v1/cases/{id}/plan/versions/{n}/request-changes"),
                    json!({ "comment": get("comment") }),
                ),
                _ => (
                    format!("/api/v1/cases/{id}/plan/versions/{n}/client-agreement"),
                    json!({ "method": get("method"), "language": get("language"), "interpreter": optional("interpreter") }),
                ),
            }
        }
        _ => return Redirect::to(&format!("/cases/{id}")).into_response(),
    };
    let action = if action.starts_with("plan-") {
        "plan-version".to_string()
    } else {
        action
    };
    let answer = web.api.post(&path, token, &body).await;
    if answer.ok() {
        return Redirect::to(&format!("/cases/{id}")).into_response();
    }
    if answer.erased().is_some() {
        return crate::closing::erased(&page, &answer, &id);
    }
    let error = refusal(&action, &answer, form);
    let mut response = render(&web, &page, &id, Some(&error)).await;
    *response.status_mut() = http::StatusCode::UNPROCESSABLE_ENTITY;
    response
}

/// The categories ticked in a form's `c-<category>` boxes.
fn checked(form: &HashMap<String, String>) -> Vec<&'static str> {
    CATEGORIES
        .into_iter()
        .filter(|c| form.contains_key(&format!("c-{c}")))
        .collect()
}

pub async fn withdraw(
    State(web): State<Web>,
    page: Page,
    Path((id, grant)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let token = match page.form_token(&form) {
        Ok(token) => token,
        Err(answer) => return *answer,
    };
    let reason = form.get("reason").cloned().unwrap_or_default();
    let answer = web
        .api
        .post(
            &format!("/api/v1/cases/{id}/consent/grants/{grant}/withdraw"),
            token,
            &json!({ "reason": reason }),
        )
        .await;
    if answer.ok() {
        return Redirect::to(&format!("/cases/{id}")).into_response();
    }
    if answer.erased().is_some() {
        return crate::closing::erased(&page, &answer, &id);
    }
    let error = refusal("grant", &answer, form);
    render(&web, &page, &id, Some(&error)).await
}

/// Saves the draft from the editor's fields (measure rows left empty are
/// dropped) and, when asked, proposes it.
async fn save_plan(
    web: &Web,
    page: &Page,
    id: &str,
    token: &str,
    form: HashMap<String, String>,
) -> Response {
    let get = |k: &str| crate::session::field(&form, k);
    let goals: Vec<String> = get("goals")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let mut measures = Vec::new();
    for i in 0..100 {
        if !form.contains_key(&format!("m{i}-description")) {
            break;
        }
        let description = get(&format!("m{i}-description"));
        if description.is_empty() {
            continue;
        }
        let due = Some(get(&format!("m{i}-due"))).filter(|d| !d.is_empty());
        measures.push(json!({
            "id": format!("m{}", measures.len() + 1),
            "category": get(&format!("m{i}-category")),
            "responsible_agency": get(&format!("m{i}-responsible_agency")),
            "description": description,
            "due": due,
        }));
    }
    let body = json!({ "goals": goals, "measures": measures });
    let saved = web
        .api
        .call(
            http::Method::PUT,
            &format!("/api/v1/cases/{id}/plan/draft"),
            Some(token),
            Some(&body),
        )
        .await;
    let answer = if saved.ok() && get("then") == "propose" {
        web.api
            .post(
                &format!("/api/v1/cases/{id}/plan/draft/propose"),
                token,
                &json!({}),
            )
            .await
    } else {
        saved
    };
    if answer.ok() {
        return Redirect::to(&format!("/cases/{id}")).into_response();
    }
    let error = refusal("plan", &answer, form);
    let mut response = render(web, page, id, Some(&error)).await;
    *response.status_mut() = http::StatusCode::UNPROCESSABLE_ENTITY;
    response
}
