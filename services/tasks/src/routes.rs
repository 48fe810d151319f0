//! `/api/v1/tasks`, `/api/v1/cases/{id}/tasks`, `/api/v1/webhooks` and the
//! dev-only clock.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRef, Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::Notify;
use verkosto_auth::Role;
use verkosto_eventlog::{
    encode_event, format_time, AggregateStore, Appended, Error as LogError, EventLog,
    ExpectedVersion, NewEvent, Outcome, Progress,
};
use verkosto_guard::{CaseAccess, CaseRead, Guard, ReadSet, Reader};
use verkosto_http::{
    commit_idempotent, earlier_answer, parse_json, AuthState, Caller, JsonBody, Problem, RequestId,
    WriteConditions,
};
use verkosto_policy::{Category, Item};
use verkosto_types::{AgencyId, Text};

use crate::clock::Clock;
use crate::domain::{Source, Task, TaskCommand, TaskEvent};

/// The tasks service.
#[derive(Clone)]
pub struct Tasks {
    pub log: EventLog,
    /// The `tasks_tasks` read model's progress.
    pub progress: Progress,
    pub guard: Guard,
    pub auth: AuthState,
    pub clock: Clock,
    /// Wakes the overdue sweep.
    pub sweep: Arc<Notify>,
    /// Serve `POST /api/v1/dev/clock` (tests only).
    pub dev_clock: bool,
    /// Where webhooks may point.
    pub outbound: crate::outbound::Policy,
}

impl FromRef<Tasks> for AuthState {
    fn from_ref(t: &Tasks) -> AuthState {
        t.auth.clone()
    }
}

const READ_YOUR_WRITES: Duration = Duration::from_secs(5);
const WORKERS: [Role; 2] = [Role::Facilitator, Role::Liaison];

pub fn router(tasks: Tasks) -> Router {
    Router::new()
        .route("/api/v1/tasks", get(inbox))
        .route("/api/v1/tasks/{id}", get(one_task))
        .route("/api/v1/tasks/{id}/{action}", post(act))
        .route("/api/v1/cases/{id}/tasks", post(create_task))
        .route(
            "/api/v1/webhooks",
            post(register_webhook).get(list_webhooks),
        )
        .route("/api/v1/webhooks/{id}", delete(remove_webhook))
        .route("/api/v1/dev/clock", post(dev_clock))
        .with_state(tasks)
}

impl Tasks {
    async fn wait(&self, appended: &Appended) {
        if let Some(cursor) = appended.last_cursor() {
            if !self.progress.wait_for(cursor, READ_YOUR_WRITES).await {
                tracing::warn!(%cursor, "tasks read model is behind");
            }
        }
    }

    /// The case, fresh, or 404 unless `agency` is in its network.
    async fn member_case(&self, case_id: &str, agency: &str) -> Result<CaseAccess, Problem> {
        self.guard
            .case(case_id)
            .await?
            .filter(|c| c.is_member(agency))
            .ok_or_else(|| Problem::not_found(format!("no case {case_id}")))
    }
}

/// A task row of the read model.
#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    case_id: String,
    lead_agency: String,
    source_kind: String,
    source_ref: String,
    description: String,
    category: String,
    assignee: String,
    due: Option<String>,
    status: String,
    overdue: i64,
    accepted_by: Option<String>,
    outcome_note: Option<String>,
    created_at: String,
    updated_at: String,
    version: i64,
}

const COLUMNS: &str = "id, case_id, lead_agency, source_kind, source_ref, description, category, \
    assignee, due, status, overdue, accepted_by, outcome_note, created_at, updated_at, version";

impl Row {
    /// `overdue` is shown as the status of a task that is still to be done.
    fn shown_status(&self) -> &str {
        if self.overdue != 0 && (self.status == "open" || self.status == "accepted") {
            "overdue"
        } else {
            &self.status
        }
    }

    /// The task as `reader` may see it: the description and outcome note
    /// only when the reader's agency may read the task's category.
    fn view(&self, read: &mut CaseRead) -> Value {
        let reader = read.agency().to_string();
        let category: Option<Category> = self.category.parse().ok();
        // A task of a category this build does not know is withheld.
        let readable = match category {
            Some(c) => read.allows(Item::Data(c)),
            None => false,
        };
        json!({
            "id": self.id,
            "case_id": self.case_id,
            "source": { "kind": self.source_kind, "ref": self.source_ref },
            "description": readable.then_some(&self.description),
            "category": self.category,
            "assignee": self.assignee,
            "due": self.due,
            "status": self.shown_status(),
            "overdue": self.overdue != 0,
            "accepted_by": self.accepted_by,
            "outcome_note": if readable { self.outcome_note.as_ref() } else { None },
            "escalation": self.assignee != reader && self.lead_agency == reader,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "version": self.version,
            "consent_version": read.consent_version(),
        })
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct InboxQuery {
    scope: Option<String>,
    status: Option<String>,
    case: Option<String>,
}

const STATUSES: [&str; 6] = [
    "open",
    "accepted",
    "done",
    "declined",
    "cancelled",
    "overdue",
];

async fn inbox(
    State(t): State<Tasks>,
    caller: Caller,
    query: Result<Query<InboxQuery>, axum::extract::rejection::QueryRejection>,
    request_id: Option<Extension<RequestId>>,
) -> Result<Response, Problem> {
    caller.require(&WORKERS)?;
    let Query(q) = query.map_err(|e| Problem::bad_request(format!("query: {e}")))?;
    let scope = q.scope.as_deref().unwrap_or("agency");
    if scope != "agency" && scope != "mine" {
        return Err(Problem::invalid("scope", "must be agency or mine"));
    }
    if let Some(s) = &q.status {
        if !STATUSES.contains(&s.as_str()) {
            return Err(Problem::invalid(
                "status",
                format!("must be one of {}", STATUSES.join(", ")),
            ));
        }
    }
    let agency = caller.0.agency.clone();
    let rows: Vec<Row> = if scope == "mine" {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM tasks_tasks WHERE assignee = $1 AND accepted_by = $2 ORDER BY due, id"
        ))
        .bind(&agency)
        .bind(&caller.0.user)
        .fetch_all(t.log.db().reader())
        .await
    } else {
        // The agency's own tasks, and for the lead's facilitators the
        // escalations: tasks declined or gone overdue in cases it leads.
        let escalations = caller.0.has_role(Role::Facilitator);
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM tasks_tasks WHERE assignee = $1 \
             OR ($2 = 1 AND lead_agency = $1 AND (status = 'declined' \
                 OR (overdue = 1 AND status IN ('open', 'accepted')))) \
             ORDER BY due, id"
        ))
        .bind(&agency)
        .bind(escalations as i64)
        .fetch_all(t.log.db().reader())
        .await
    }
    .map_err(LogError::from)?;

    let mut by_case: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for row in rows {
        if q.status.as_deref().is_some_and(|s| s != row.shown_status()) {
            continue;
        }
        if q.case.as_deref().is_some_and(|c| c != row.case_id) {
            continue;
        }
        by_case.entry(row.case_id.clone()).or_default().push(row);
    }
    let reader = Reader::new("tasks", &caller, request_id.as_deref());
    let mut reads = ReadSet::new(&t.guard, reader).at(t.clock.now());
    let mut tasks = Vec::new();
    for (case_id, rows) in by_case {
        // A case the agency has left shows none of its tasks.
        let Some(read) = reads.case(&case_id).await? else {
            continue;
        };
        for row in &rows {
            tasks.push(row.view(read));
        }
    }
    Ok(reads
        .finish("inbox", json!({ "tasks": tasks }))
        .await?
        .into_response())
}

async fn one_task(
    State(t): State<Tasks>,
    caller: Caller,
    Path(id): Path<String>,
    request_id: Option<Extension<RequestId>>,
) -> Result<Response, Problem> {
    let row = task_row(&t, &id).await?;
    let reader = Reader::new("tasks", &caller, request_id.as_deref());
    let not_found = || Problem::not_found(format!("no task {id}"));
    let mut read = t
        .guard
        .read(&row.case_id, &reader)
        .await
        .map_err(|e| e.or_not_found(not_found))?
        .at(t.clock.now());
    caller.require(&WORKERS)?;
    let view = row.view(&mut read);
    Ok(read
        .finish(&format!("task/{id}"), view)
        .await?
        .into_response())
}

/// The task's row, or 404.
async fn task_row(t: &Tasks, id: &str) -> Result<Row, Problem> {
    let row: Option<Row> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM tasks_tasks WHERE id = $1"))
            .bind(id)
            .fetch_optional(t.log.db().reader())
            .await
            .map_err(LogError::from)?;
    row.ok_or_else(|| Problem::not_found(format!("no task {id}")))
}

/// The task's row and its case; 404 unless the caller's agency is in the case.
async fn load(t: &Tasks, id: &str, caller: &Caller) -> Result<(Row, CaseAccess), Problem> {
    let row = task_row(t, id).await?;
    let not_found = || Problem::not_found(format!("no task {id}"));
    let access = t
        .member_case(&row.case_id, &caller.0.agency)
        .await
        .map_err(|_| not_found())?;
    Ok((row, access))
}

#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    note: Option<Text<2000>>,
    reason: Option<Text<2000>>,
    assignee: Option<AgencyId>,
}

async fn act(
    State(t): State<Tasks>,
    caller: Caller,
    conditions: WriteConditions,
    Path((id, action)): Path<(String, String)>,
    raw: Bytes,
) -> Result<Response, Problem> {
    let (_row, access) = load(&t, &id, &caller).await?;
    let body: ActionBody = if raw.is_empty() {
        ActionBody::default()
    } else {
        parse_json(&raw)?
    };
    let agency = caller.0.agency.clone();
    let user = caller.0.user.clone();
    let at = t.clock.now();
    fn required<T: Into<String>>(field: &str, value: Option<T>) -> Result<String, Problem> {
        value
            .map(Into::into)
            .ok_or_else(|| Problem::invalid(field, "is required"))
    }
    let command = match action.as_str() {
        "accept" => {
            caller.require(&WORKERS)?;
            TaskCommand::Accept { agency, user, at }
        }
        "complete" => {
            caller.require(&WORKERS)?;
            TaskCommand::Complete {
                agency,
                user,
                note: body.note.map(String::from),
                at,
            }
        }
        "decline" => {
            caller.require(&WORKERS)?;
            TaskCommand::Decline {
                agency,
                user,
                reason: required("reason", body.reason)?,
                at,
            }
        }
        "reassign" => {
            caller.require(&[Role::Facilitator])?;
            let to = required("assignee", body.assignee)?;
            if !access.is_member(&to) {
                return Err(Problem::invalid(
                    "assignee",
                    format!("{to} is not in this case's network"),
                ));
            }
            TaskCommand::Reassign { by: agency, to, at }
        }
        "cancel" => {
            caller.require(&[Role::Facilitator])?;
            TaskCommand::Cancel {
                by: agency,
                reason: required("reason", body.reason)?,
                at,
            }
        }
        _ => return Err(Problem::not_found(format!("no action {action}"))),
    };
    let answer = {
        let id = id.clone();
        move |v: i64| (200, json!({ "id": id, "version": v }))
    };
    let mut execution = conditions.execution(&caller, &raw, answer.clone());
    execution.meta.occurred_at = at;
    let store = AggregateStore::<Task>::new(t.log.clone());
    let outcome = store.execute(&id, command, &(), execution).await?;
    let (status, mut body) = match &outcome {
        Outcome::Committed {
            appended,
            aggregate,
        } => {
            t.wait(appended).await;
            let (s, mut b) = answer(appended.version);
            b["status"] = json!(aggregate.status.as_str());
            (s, b)
        }
        Outcome::Replayed(stored) => (stored.status, stored.response.clone()),
    };
    body["id"] = json!(id);
    Ok((
        axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK),
        Json(body),
    )
        .into_response())
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct NewTask {
    description: Text<2000>,
    category: Category,
    assignee: AgencyId,
    #[serde(default)]
    due: Option<NaiveDate>,
}

async fn create_task(
    State(t): State<Tasks>,
    caller: Caller,
    conditions: WriteConditions,
    Path(case_id): Path<String>,
    raw: Bytes,
) -> Result<Response, Problem> {
    // Membership before the body: an outsider learns nothing.
    let access = t.member_case(&case_id, &caller.0.agency).await?;
    caller.require(&[Role::Facilitator])?;
    let NewTask {
        description,
        category,
        assignee,
        due,
    } = parse_json(&raw)?;
    let (description, assignee) = (String::from(description), String::from(assignee));
    if !access.is_member(&assignee) {
        return Err(Problem::invalid(
            "assignee",
            format!("{assignee} is not in this case's network"),
        ));
    }
    let source = Source {
        kind: "manual".into(),
        reference: uuid::Uuid::now_v7().simple().to_string(),
    };
    let task_id = source.task_id();
    let answer = {
        let id = task_id.clone();
        move |_v: i64| (201, json!({ "id": id }))
    };
    let execution = conditions.execution(&caller, &raw, answer.clone());
    if let Some(idem) = &execution.idempotency {
        if let Some(stored) = t.log.idempotent_answer(&idem.scope, &idem.key).await? {
            if stored.request_hash != idem.request_hash {
                return Err(Problem::invalid(
                    "Idempotency-Key",
                    "this key was already used with a different request",
                ));
            }
            return Ok((
                axum::http::StatusCode::from_u16(stored.status)
                    .unwrap_or(axum::http::StatusCode::OK),
                Json(stored.response),
            )
                .into_response());
        }
    }
    let event = TaskEvent::TaskCreated {
        task_id: task_id.clone(),
        case_id,
        lead_agency: access.lead_agency.clone(),
        source,
        description,
        category,
        assignee,
        due,
        at: t.clock.now(),
    };
    let new = encode_event::<Task>(&event)?;
    let appended = t
        .log
        .append(
            "task",
            &task_id,
            ExpectedVersion::NoStream,
            vec![new],
            &execution.meta,
            execution.idempotency.clone(),
        )
        .await
        .map_err(|e| match e {
            LogError::IdempotencyRace => Problem::conflict(
                "a concurrent request with the same Idempotency-Key won; retry it",
            ),
            e => e.into(),
        })?;
    t.wait(&appended).await;
    let (status, body) = answer(appended.version);
    Ok((
        axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::CREATED),
        Json(body),
    )
        .into_response())
}

/// Events of the `webhook` stream (its id is the webhook id). The secret is
/// not in them: it stays in the tasks service's table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum WebhookEvent {
    WebhookRegistered {
        webhook_id: String,
        agency: String,
        url: String,
        at: chrono::DateTime<chrono::Utc>,
    },
    WebhookRemoved {
        webhook_id: String,
        at: chrono::DateTime<chrono::Utc>,
    },
}

fn webhook_event(event: &WebhookEvent) -> Result<NewEvent, Problem> {
    let event_type = match event {
        WebhookEvent::WebhookRegistered { .. } => "WebhookRegistered",
        WebhookEvent::WebhookRemoved { .. } => "WebhookRemoved",
    };
    Ok(NewEvent {
        event_type: event_type.into(),
        schema_version: 1,
        payload: serde_json::to_value(event).map_err(LogError::from)?,
    })
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct NewWebhook {
    url: String,
}

/// The stable code of a refused webhook URL.
const URL_REFUSED: &str = "webhook_url_refused";

/// An agency-wide webhook is the agency's admin's, or a facilitator's whose
/// agency leads a case: the lead facilitator of the contract, who answers
/// for the tasks that flow from the cases the agency leads.
async fn may_register_webhooks(t: &Tasks, caller: &Caller) -> Result<(), Problem> {
    if caller.0.has_role(Role::Admin) {
        return Ok(());
    }
    caller.require(&[Role::Admin, Role::Facilitator])?;
    if t.guard.leads_a_case(&caller.0.agency).await? {
        return Ok(());
    }
    Err(Problem::forbidden(
        "webhooks are registered by an admin, or by a facilitator of an agency that leads a case",
    ))
}

async fn register_webhook(
    State(t): State<Tasks>,
    caller: Caller,
    conditions: WriteConditions,
    body: JsonBody<NewWebhook>,
) -> Result<Response, Problem> {
    may_register_webhooks(&t, &caller).await?;
    let url = body.value.url.trim().to_string();
    let webhook_id = format!("wh-{}", uuid::Uuid::now_v7().simple());
    // The secret is shown once, now; a retry with the same key cannot show it again.
    let execution = conditions.execution(&caller, &body.raw, {
        let (id, agency, url) = (webhook_id.clone(), caller.0.agency.clone(), url.clone());
        move |_v| (201, json!({ "id": id, "agency": agency, "url": url, "secret": null, "note": "the secret was shown in the first answer" }))
    });
    // A retry answers as the first time did, even if the rules changed since.
    if let Some(first) = earlier_answer(&t.log, execution.idempotency.as_ref()).await? {
        return Ok(first);
    }
    let parsed = reqwest::Url::parse(&url)
        .ok()
        .filter(|_| url.len() <= 2000)
        .ok_or_else(|| {
            Problem::invalid_code("url", URL_REFUSED, "must be an absolute https URL")
        })?;
    t.outbound
        .check_registration(&parsed)
        .await
        .map_err(|refused| Problem::invalid_code("url", URL_REFUSED, refused.to_string()))?;
    let secret = crate::webhooks::new_secret();
    let at = t.clock.now();
    let event = WebhookEvent::WebhookRegistered {
        webhook_id: webhook_id.clone(),
        agency: caller.0.agency.clone(),
        url: url.clone(),
        at,
    };
    let mut tx = t.log.db().begin().await?;
    let appended = t
        .log
        .append_in(
            &mut tx,
            "webhook",
            &webhook_id,
            ExpectedVersion::NoStream,
            vec![webhook_event(&event)?],
            &execution.meta,
        )
        .await?;
    sqlx::query("INSERT INTO tasks_webhooks (id, agency, url, secret, created_at, removed) VALUES ($1, $2, $3, $4, $5, 0)")
        .bind(&webhook_id)
        .bind(&caller.0.agency)
        .bind(&url)
        .bind(&secret)
        .bind(format_time(at))
        .execute(&mut *tx)
        .await
        .map_err(LogError::from)?;
    let committed = commit_idempotent(&t.log, tx, execution.idempotency.as_ref(), appended.version);
    if let Some(first) = committed.await? {
        return Ok(first);
    }
    t.log.announce(&appended);
    Ok((
        axum::http::StatusCode::CREATED,
        Json(json!({ "id": webhook_id, "agency": caller.0.agency, "url": url, "secret": secret })),
    )
        .into_response())
}

async fn list_webhooks(State(t): State<Tasks>, caller: Caller) -> Result<Json<Value>, Problem> {
    caller.require(&WORKERS)?;
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT id, url, created_at FROM tasks_webhooks WHERE agency = $1 AND removed = 0 ORDER BY created_at",
    )
    .bind(&caller.0.agency)
    .fetch_all(t.log.db().reader())
    .await
    .map_err(LogError::from)?;
    let hooks: Vec<Value> = rows
        .into_iter()
        .map(|(id, url, created_at)| json!({ "id": id, "url": url, "created_at": created_at }))
        .collect();
    Ok(Json(json!({ "webhooks": hooks })))
}

async fn remove_webhook(
    State(t): State<Tasks>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    caller.require(&WORKERS)?;
    let owner: Option<String> =
        sqlx::query_scalar("SELECT agency FROM tasks_webhooks WHERE id = $1 AND removed = 0")
            .bind(&id)
            .fetch_optional(t.log.db().reader())
            .await
            .map_err(LogError::from)?;
    if owner.as_deref() != Some(caller.0.agency.as_str()) {
        return Err(Problem::not_found(format!("no webhook {id}")));
    }
    let event = WebhookEvent::WebhookRemoved {
        webhook_id: id.clone(),
        at: t.clock.now(),
    };
    let meta = verkosto_eventlog::CommandMeta::new(caller.actor());
    let mut tx = t.log.db().begin().await?;
    let appended = t
        .log
        .append_in(
            &mut tx,
            "webhook",
            &id,
            ExpectedVersion::Any,
            vec![webhook_event(&event)?],
            &meta,
        )
        .await?;
    sqlx::query("UPDATE tasks_webhooks SET removed = 1 WHERE id = $1")
        .bind(&id)
        .execute(&mut *tx)
        .await
        .map_err(LogError::from)?;
    tx.commit().await.map_err(LogError::from)?;
    t.log.announce(&appended);
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ClockMove {
    advance_seconds: i64,
}

/// Tests move the injected clock forward; the overdue sweep runs at once.
async fn dev_clock(
    State(t): State<Tasks>,
    caller: Caller,
    body: JsonBody<ClockMove>,
) -> Result<Json<Value>, Problem> {
    if !t.dev_clock {
        return Err(Problem::not_found("the dev clock is off"));
    }
    caller.require(&[Role::Admin])?;
    if !(0..=10 * 365 * 86_400).contains(&body.value.advance_seconds) {
        return Err(Problem::invalid(
            "advance_seconds",
            "must be between 0 and ten years",
        ));
    }
    t.clock.advance(body.value.advance_seconds);
    let (marked, last) = crate::overdue::sweep(&t.log, &t.clock).await?;
    if let Some(cursor) = last {
        t.progress.wait_for(cursor, READ_YOUR_WRITES).await;
    }
    t.sweep.notify_one();
    Ok(Json(
        json!({ "now": format_time(t.clock.now()), "marked_overdue": marked }),
    ))
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
        .body::<NewTask>()
        .answer(201, "id")
        .links_under(201, "/api/v1/tasks/{id}", &new_one),
        Op::new(
            "post",
            "/api/v1/webhooks",
            "tasks",
            "Register a webhook for the caller's agency",
        )
        .who("an admin, or a facilitator of an agency that leads a case")
        .body::<NewWebhook>()
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
                .body::<ActionBody>()
                .answer(200, "id, status, version"),
        );
    }
    ops
}
