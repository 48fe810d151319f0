//! The writes of tasks: the lifecycle actions (accept, complete, decline,
//! reassign, cancel) and a task made by hand.

use axum::extract::{Path, State};
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::json;
use verkosto_auth::Role;
use verkosto_eventlog::Outcome;
use verkosto_guard::CaseAccess;
use verkosto_http::{command_response, Caller, Problem, Unparsed};
use verkosto_policy::Category;
use verkosto_types::{AgencyId, Text};

use crate::domain::{Source, TaskCommand, TaskEvent};
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

/// A lifecycle command, but for the moment it is recorded at.
type Lifecycle = Box<dyn FnOnce(DateTime<Utc>) -> TaskCommand + Send>;

pub(crate) async fn act(
    State(t): State<Tasks>,
    Path((id, action)): Path<(String, String)>,
    write: Unparsed,
) -> Result<Response, Problem> {
    let (_row, access) = load(&t, &id, &write.caller).await?;
    let write = write.parse_or_default::<ActionBody>()?;
    let (caller, body) = (&write.caller, &write.body);
    let agency = caller.0.agency.clone();
    let user = caller.0.user.clone();
    fn required<T: Into<String>>(field: &str, value: Option<T>) -> Result<String, Problem> {
        value
            .map(Into::into)
            .ok_or_else(|| Problem::invalid(field, "is required"))
    }
    let command: Lifecycle = match action.as_str() {
        "accept" => {
            caller.require(&WORKERS)?;
            Box::new(move |at| TaskCommand::Accept { agency, user, at })
        }
        "complete" => {
            caller.require(&WORKERS)?;
            let note = body.note.clone().map(String::from);
            Box::new(move |at| TaskCommand::Complete {
                agency,
                user,
                note,
                at,
            })
        }
        "decline" => {
            caller.require(&WORKERS)?;
            let reason = required("reason", body.reason.clone())?;
            Box::new(move |at| TaskCommand::Decline {
                agency,
                user,
                reason,
                at,
            })
        }
        "reassign" => {
            caller.require(&[Role::Facilitator])?;
            let to = required("assignee", body.assignee.clone())?;
            if !access.is_member(&to) {
                return Err(Problem::invalid(
                    "assignee",
                    format!("{to} is not in this case's network"),
                ));
            }
            Box::new(move |at| TaskCommand::Reassign { by: agency, to, at })
        }
        "cancel" => {
            caller.require(&[Role::Facilitator])?;
            let reason = required("reason", body.reason.clone())?;
            Box::new(move |at| TaskCommand::Cancel {
                by: agency,
                reason,
                at,
            })
        }
        _ => return Err(Problem::not_found(format!("no action {action}"))),
    };
    let answer = {
        let id = id.clone();
        move |v: i64| (200, json!({ "id": id, "version": v }))
    };
    let outcome = t
        .commands()
        .execute(&id, write, answer.clone(), |_, at| command(at))
        .await?;
    // A fresh answer tells the task's new status too; a replay, the first answer.
    let status = match &outcome {
        Outcome::Committed { aggregate, .. } => aggregate.status.as_str(),
        Outcome::Replayed(_) => "",
    };
    Ok(command_response(outcome, |appended| {
        let (s, mut b) = answer(appended.version);
        b["status"] = json!(status);
        (s, b)
    }))
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
    Path(case_id): Path<String>,
    write: Unparsed,
) -> Result<Response, Problem> {
    // Membership before the body: an outsider learns nothing.
    let access = t.member_case(&case_id, &write.caller.0.agency).await?;
    if access.closed_at.is_some() {
        return Err(Problem::conflict(format!(
            "case {case_id} is closed: it takes no new tasks"
        )));
    }
    write.caller.require(&[Role::Facilitator])?;
    let write = write.parse::<NewTask>()?;
    let assignee = String::from(write.body.assignee.clone());
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
    let created = |task: NewTask, at| {
        vec![TaskEvent::TaskCreated {
            task_id: task_id.clone(),
            case_id,
            lead_agency: access.lead_agency.clone(),
            source,
            description: task.description.into(),
            category: task.category,
            assignee,
            due: task.due,
            at,
        }]
    };
    let outcome = t
        .commands()
        .start(&task_id, write, answer.clone(), created)
        .await?;
    Ok(command_response(outcome, |a| answer(a.version)))
}
