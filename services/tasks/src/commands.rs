//! The writes of tasks: the lifecycle actions (accept, complete, decline,
//! reassign, cancel) and a task made by hand.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::json;
use verkosto_auth::Role;
use verkosto_eventlog::{
    encode_event, AggregateStore, Error as LogError, ExpectedVersion, Outcome,
};
use verkosto_guard::CaseAccess;
use verkosto_http::{parse_json, Caller, Problem, WriteConditions};
use verkosto_policy::Category;
use verkosto_types::{AgencyId, Text};

use crate::domain::{Source, Task, TaskCommand, TaskEvent};
use crate::projection::TaskRow;
use crate::service::{Tasks, WORKERS};

/// The task's row and its case; 404 unless the caller's agency is in the case.
async fn load(t: &Tasks, id: &str, caller: &Caller) -> Result<(TaskRow, CaseAccess), Problem> {
    let row = t.task_row(id).await?;
    let not_found = || Problem::not_found(format!("no task {id}"));
    let access = t
        .member_case(&row.case_id, &caller.0.agency)
        .await
        .map_err(|_| not_found())?;
    Ok((row, access))
}

#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActionBody {
    /// For `complete`: what was done.
    note: Option<Text<2000>>,
    /// For `decline` and `cancel`, which require it: why.
    reason: Option<Text<2000>>,
    /// For `reassign`, which requires it: the member agency to assign the task
    /// to.
    assignee: Option<AgencyId>,
}

pub(crate) async fn act(
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
pub(crate) struct NewTask {
    /// What is to be done.
    description: Text<2000>,
    /// The category of client data it concerns: who may read the description
    /// follows from it.
    category: Category,
    /// The member agency whose work it is.
    assignee: AgencyId,
    /// The day it is due, if any.
    #[serde(default)]
    due: Option<NaiveDate>,
}

pub(crate) async fn create_task(
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
