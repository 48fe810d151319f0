//! The tasks service's router: `/api/v1/tasks`, `/api/v1/cases/{id}/tasks`,
//! `/api/v1/webhooks` and the dev-only clock, and its OpenAPI operations.

use axum::routing::{delete, get, post};
use axum::Router;

use crate::service::Tasks;
use crate::{commands, inbox, overdue, webhooks_api};

pub fn router(tasks: Tasks) -> Router {
    Router::new()
        .route("/api/v1/tasks", get(inbox::inbox))
        .route("/api/v1/tasks/{id}", get(inbox::one_task))
        .route("/api/v1/tasks/{id}/{action}", post(commands::act))
        .route("/api/v1/cases/{id}/tasks", post(commands::create_task))
        .route(
            "/api/v1/webhooks",
            post(webhooks_api::register_webhook).get(webhooks_api::list_webhooks),
        )
        .route(
            "/api/v1/webhooks/{id}",
            delete(webhooks_api::remove_webhook),
        )
        .route("/api/v1/dev/clock", post(overdue::dev_clock))
        .with_state(tasks)
}

/// The tasks service's operations, for the OpenAPI document.
pub fn api_doc() -> Vec<verkosto_http::openapi::Operation> {
    use verkosto_http::openapi::{Operation as Op, Source};
    let new_one = [("id", Source::Answer("/id"))];
    let assignee = "a facilitator or liaison of the assignee agency";
    let lead = "the lead agency's facilitator";
    let mut ops = vec![
        Op::new(
            "get",
            "/api/v1/tasks",
            "tasks",
            "The caller agency's inbox (descriptions filtered by consent)",
        )
        .who("facilitator or liaison")
        .query("scope", "agency (default) or mine")
        .query(
            "status",
            "open, accepted, done, declined, cancelled or overdue",
        )
        .query("case", "only this case")
        .answer(200, "tasks, withheld"),
        Op::new("get", "/api/v1/tasks/{id}", "tasks", "One task")
            .who("a member of the task's case")
            .answer(200, "The task"),
        Op::new(
            "post",
            "/api/v1/cases/{id}/tasks",
            "tasks",
            "Create a task by hand",
        )
        .who("a facilitator of a member agency")
        .body::<commands::NewTask>()
        .answer(201, "id")
        .links_under(201, "/api/v1/tasks/{id}", &new_one),
        Op::new(
            "post",
            "/api/v1/webhooks",
            "tasks",
            "Register a webhook for the caller's agency",
        )
        .who("an admin, or a facilitator of an agency that leads a case")
        .body::<webhooks_api::NewWebhook>()
        .answer(201, "id and the secret (shown once)")
        .link(201, "delete", "/api/v1/webhooks/{id}", &new_one)
        .answer(
            403,
            "Not an admin, nor a facilitator of an agency that leads a case",
        )
        .answer(
            422,
            "url refused (code webhook_url_refused): not https, or a loopback, link-local, \
             private, shared, multicast, reserved, documentation or metadata address \
             (also when the name resolves to one), unless the operator allowlisted the host",
        ),
        Op::new("get", "/api/v1/webhooks", "tasks", "The agency's webhooks")
            .answer(200, "webhooks"),
        Op::new(
            "delete",
            "/api/v1/webhooks/{id}",
            "tasks",
            "Remove a webhook",
        )
        .answer(204, "Removed"),
    ];
    for (action, summary, who) in [
        ("accept", "Accept the task", assignee),
        ("complete", "Report the task done", assignee),
        (
            "decline",
            "Decline the task, with a reason (back to the lead)",
            assignee,
        ),
        ("reassign", "Give the task to another member agency", lead),
        ("cancel", "Cancel: no longer needed", lead),
    ] {
        let path: &'static str =
            Box::leak(format!("/api/v1/tasks/{{id}}/{action}").into_boxed_str());
        ops.push(
            Op::new("post", path, "tasks", summary)
                .who(who)
                .body::<commands::ActionBody>()
                .answer(200, "id, status, version"),
        );
    }
    ops
}
