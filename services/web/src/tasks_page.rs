//! The agency's task inbox: accept, complete, decline with a reason.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use serde_json::json;

use crate::layout::{csrf, form_error, layout, FormError};
use crate::pages::refusal;
use crate::session::Page;
use crate::{s, Web};

pub async fn show(State(web): State<Web>, page: Page) -> Response {
    render(&web, &page, None).await
}

async fn render(web: &Web, page: &Page, error: Option<&FormError>) -> Response {
    let Some(token) = &page.token else {
        return page.to_signin();
    };
    let lang = page.lang;
    let inbox = web.api.get("/api/v1/tasks", token).await;
    let tasks = inbox.body["tasks"].as_array().cloned().unwrap_or_default();
    let withheld = inbox.body["withheld"].as_u64().unwrap_or(0);
    let body = html! {
        p.notice role="status" {
            @if withheld == 0 { (lang.t("tasks-nothing-withheld")) }
            @else { (lang.tn("tasks-withheld", withheld)) }
        }
        form method="post" action="/calendar-link" {
            (csrf(page))
            button type="submit" { (lang.t("calendar-link-get")) }
            " " a href="/calendar-link" { (lang.t("calendar-links-mine")) }
        }
        (form_error(error, "task", lang))
        @if tasks.is_empty() {
            p { (lang.t("tasks-none")) }
        } @else {
            table {
                caption { (lang.t("tasks-caption")) }
                thead { tr {
                    th scope="col" { (lang.t("task-description")) }
                    th scope="col" { (lang.t("record-category")) }
                    th scope="col" { (lang.t("plan-due")) }
                    th scope="col" { (lang.t("task-status")) }
                    th scope="col" { (lang.t("task-actions")) }
                } }
                tbody {
                    @for t in &tasks {
                        @let id = s(&t["id"]);
                        tr {
                            td {
                                @if t["description"].is_string() { (s(&t["description"])) }
                                @else { em { (lang.t("task-description-withheld")) } }
                                @if t["escalation"] == true { " " strong { (lang.t("task-escalation")) } }
                            }
                            td { (lang.t(&format!("category-{}", s(&t["category"])))) }
                            td { (t["due"].as_str().map(|d| lang.date(d)).unwrap_or("–".into())) }
                            td { (lang.t(&format!("status-{}", s(&t["status"])))) }
                            td {
                                @if t["escalation"] != true && (t["status"] == "open" || t["status"] == "overdue") {
                                    form.inline method="post" action={ "/tasks/" (id) "/accept" } { (csrf(page)) button type="submit" { (lang.t("task-accept")) } }
                                }
                                @if t["escalation"] != true && (t["status"] == "open" || t["status"] == "accepted" || t["status"] == "overdue") {
                                    " "
                                    form.inline method="post" action={ "/tasks/" (id) "/complete" } { (csrf(page)) button type="submit" { (lang.t("task-complete")) } }
                                    " "
                                    form.inline method="post" action={ "/tasks/" (id) "/decline" } {
                                        (csrf(page))
                                        label for={ "decline-" (id) } { (lang.t("task-decline-reason")) }
                                        " " input id={ "decline-" (id) } name="reason" required;
                                        " " button type="submit" { (lang.t("task-decline")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page.respond(layout(page, &lang.t("tasks-title"), body))
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
    let body = match action.as_str() {
        "decline" => json!({ "reason": form.get("reason").cloned().unwrap_or_default() }),
        "accept" | "complete" => json!({}),
        _ => return Redirect::to("/tasks").into_response(),
    };
    let answer = web
        .api
        .post(&format!("/api/v1/tasks/{id}/{action}"), token, &body)
        .await;
    if answer.ok() {
        return Redirect::to("/tasks").into_response();
    }
    if answer.erased().is_some() {
        return crate::closing::erased(&page, &answer, "");
    }
    let error = refusal("task", &answer, form);
    render(&web, &page, Some(&error)).await
}
