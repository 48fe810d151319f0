//! The reads of tasks: an agency's inbox (with the lead's escalations) and
//! one task, each filtered by consent.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;
use serde_json::{json, Value};
use verkosto_auth::Role;
use verkosto_guard::{CaseRead, ReadSet, Reader};
use verkosto_http::{Caller, Problem, RequestId};
use verkosto_policy::{Category, Item};

use crate::projection::{self, TaskRow};
use crate::service::{Tasks, WORKERS};

/// The task as `reader` may see it: the description and outcome note
/// only when the reader's agency may read the task's category.
fn view(row: &TaskRow, read: &mut CaseRead) -> Value {
    let reader = read.agency().to_string();
    let category: Option<Category> = row.category.parse().ok();
    // A task of a category this build does not know is withheld.
    let readable = match category {
        Some(c) => read.allows(Item::Data(c)),
        None => false,
    };
    json!({
        "id": row.id,
        "case_id": row.case_id,
        "source": { "kind": row.source_kind, "ref": row.source_ref },
        "description": readable.then_some(&row.description),
        "category": row.category,
        "assignee": row.assignee,
        "due": row.due,
        "status": row.shown_status(),
        "overdue": row.overdue != 0,
        "accepted_by": row.accepted_by,
        "outcome_note": if readable { row.outcome_note.as_ref() } else { None },
        "escalation": row.assignee != reader && row.lead_agency == reader,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "version": row.version,
        "consent_version": read.consent_version(),
    })
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InboxQuery {
    /// `agency` (the default): the agency's tasks and, for a facilitator, the
    /// escalations of the cases the agency leads; `mine`: the tasks the
    /// caller accepted.
    scope: Option<String>,
    /// Only tasks shown with this status: open, accepted, done, declined,
    /// cancelled or overdue.
    status: Option<String>,
    /// Only the tasks of this case.
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

pub(crate) async fn inbox(
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
    let agency = &caller.0.agency;
    let db = t.log.db();
    let rows = if scope == "mine" {
        projection::accepted_by(db, agency, &caller.0.user).await?
    } else {
        // The agency's own tasks, and for the lead's facilitators the
        // escalations: tasks declined or gone overdue in cases it leads.
        let escalations = caller.0.has_role(Role::Facilitator);
        projection::inbox_of(db, agency, escalations).await?
    };

    let mut by_case: BTreeMap<String, Vec<TaskRow>> = BTreeMap::new();
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
            tasks.push(view(row, read));
        }
    }
    Ok(reads
        .finish("inbox", json!({ "tasks": tasks }))
        .await?
        .into_response())
}

pub(crate) async fn one_task(
    State(t): State<Tasks>,
    caller: Caller,
    Path(id): Path<String>,
    request_id: Option<Extension<RequestId>>,
) -> Result<Response, Problem> {
    let row = t.task_row(&id).await?;
    let reader = Reader::new("tasks", &caller, request_id.as_deref());
    let not_found = || Problem::not_found(format!("no task {id}"));
    let mut read = t
        .guard
        .read(&row.case_id, &reader)
        .await
        .map_err(|e| e.or_not_found(not_found))?
        .at(t.clock.now());
    caller.require(&WORKERS)?;
    let view = view(&row, &mut read);
    Ok(read
        .finish(&format!("task/{id}"), view)
        .await?
        .into_response())
}
