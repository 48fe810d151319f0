//! The tasks read model, and the webhook outbox, fed from `task` events.

use chrono::NaiveDate;
use serde_json::json;
use sqlx::AnyConnection;
use verkosto_eventlog::{decode_event, ApplyError, Db, Error, Projection, RecordedEvent};

use crate::domain::{Task, TaskEvent};

pub struct TasksProjection;

pub const NAME: &str = "tasks";

/// Inserts a new task's row (a repeat is ignored).
pub(crate) async fn insert_task(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
    task: &TaskEvent,
) -> Result<(), ApplyError> {
    let TaskEvent::TaskCreated {
        task_id,
        case_id,
        lead_agency,
        source,
        description,
        category,
        assignee,
        due,
        ..
    } = task
    else {
        return Ok(());
    };
    sqlx::query(
        "INSERT INTO tasks_tasks (id, case_id, lead_agency, source_kind, source_ref, description, \
         category, assignee, due, status, overdue, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open', 0, $10, $10, $11) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(task_id)
    .bind(case_id)
    .bind(lead_agency)
    .bind(&source.kind)
    .bind(&source.reference)
    .bind(description)
    .bind(category.as_str())
    .bind(assignee)
    .bind(due.map(|d| d.to_string()))
    .bind(&event.occurred_at)
    .bind(event.version)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Queues one delivery per active webhook of `agency`.
async fn queue_webhooks(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
    agency: &str,
    kind: &str,
) -> Result<(), ApplyError> {
    let row: Option<(String, String, String, Option<String>, String)> = sqlx::query_as(
        "SELECT case_id, category, assignee, due, status FROM tasks_tasks WHERE id = $1",
    )
    .bind(&event.stream_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((case_id, category, assignee, due, status)) = row else {
        return Ok(());
    };
    let hooks: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM tasks_webhooks WHERE agency = $1 AND removed = 0")
            .bind(agency)
            .fetch_all(&mut *conn)
            .await?;
    // No description: the receiver reads it through the API, where
    // consent filters it.
    let payload = json!({
        "type": kind,
        "timestamp": event.occurred_at,
        "data": {
            "task_id": event.stream_id,
            "case_id": case_id,
            "category": category,
            "assignee": assignee,
            "due": due,
            "status": status,
        }
    })
    .to_string();
    for (hook,) in hooks {
        sqlx::query(
            "INSERT INTO tasks_webhook_outbox (message_id, webhook_id, payload, attempts, next_attempt_at) \
             VALUES ($1, $2, $3, 0, $4) ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(format!("msg_{}_{hook}", event.event_id))
        .bind(&hook)
        .bind(&payload)
        .bind(&event.occurred_at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn update(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
    set: &str,
    value: Option<String>,
) -> Result<(), ApplyError> {
    sqlx::query(&format!(
        "UPDATE tasks_tasks SET {set}, updated_at = $2, version = $3 WHERE id = $4"
    ))
    .bind(value)
    .bind(&event.occurred_at)
    .bind(event.version)
    .bind(&event.stream_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[async_trait::async_trait]
impl Projection for TasksProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    // Its webhook messages have stable ids: queued again, they are sent once.
    fn only_replayable_effects(&self) -> bool {
        true
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        event.stream_type == "task"
            || (event.stream_type == "case"
                && matches!(event.event_type.as_str(), "CaseClosed" | "CaseErased"))
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        if event.stream_type == "case" && event.event_type == "CaseClosed" {
            // Read as a tolerant reader of the wire contract: the outcome only.
            let outcome = event.payload["CaseClosed"]["outcome"]
                .as_str()
                .unwrap_or("other");
            sqlx::query(
                "INSERT INTO tasks_closed_cases (case_id, outcome) VALUES ($1, $2) \
                 ON CONFLICT (case_id) DO NOTHING",
            )
            .bind(&event.stream_id)
            .bind(outcome)
            .execute(&mut *conn)
            .await?;
            return Ok(());
        }
        if event.stream_type == "case" {
            // Erased: the case's tasks leave no row behind.
            for table in ["tasks_tasks", "tasks_closed_cases"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE case_id = $1"))
                    .bind(&event.stream_id)
                    .execute(&mut *conn)
                    .await?;
            }
            return Ok(());
        }
        let decoded = decode_event::<Task>(event).map_err(|e| ApplyError::Poison(e.to_string()))?;
        match &decoded {
            TaskEvent::TaskCreated { assignee, .. } => {
                insert_task(conn, event, &decoded).await?;
                queue_webhooks(conn, event, assignee, "task.created").await?;
            }
            TaskEvent::TaskAccepted { by, .. } => {
                update(
                    conn,
                    event,
                    "status = 'accepted', accepted_by = $1",
                    Some(by.clone()),
                )
                .await?;
            }
            TaskEvent::TaskCompleted { note, .. } => {
                update(
                    conn,
                    event,
                    "status = 'done', outcome_note = $1",
                    note.clone(),
                )
                .await?;
            }
            TaskEvent::TaskDeclined { reason, .. } => {
                update(
                    conn,
                    event,
                    "status = 'declined', outcome_note = $1",
                    Some(reason.clone()),
                )
                .await?;
            }
            TaskEvent::TaskReassigned { to, .. } => {
                update(
                    conn,
                    event,
                    "status = 'open', assignee = $1, accepted_by = NULL, outcome_note = NULL",
                    Some(to.clone()),
                )
                .await?;
                queue_webhooks(conn, event, to, "task.reassigned").await?;
            }
            TaskEvent::TaskCancelled { reason, .. } => {
                update(
                    conn,
                    event,
                    "status = 'cancelled', outcome_note = $1",
                    Some(reason.clone()),
                )
                .await?;
            }
            TaskEvent::TaskOverdue { .. } => {
                update(
                    conn,
                    event,
                    "overdue = 1, accepted_by = COALESCE($1, accepted_by)",
                    None,
                )
                .await?;
                let row: Option<(String, String)> =
                    sqlx::query_as("SELECT assignee, lead_agency FROM tasks_tasks WHERE id = $1")
                        .bind(&event.stream_id)
                        .fetch_optional(&mut *conn)
                        .await?;
                if let Some((assignee, lead)) = row {
                    queue_webhooks(conn, event, &assignee, "task.overdue").await?;
                    if lead != assignee {
                        queue_webhooks(conn, event, &lead, "task.overdue").await?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn reset(&self, conn: &mut AnyConnection) -> Result<(), Error> {
        // Webhooks and the outbox are not derived: a replay re-queues
        // nothing that was queued before (message ids are stable).
        for table in ["tasks_tasks", "tasks_closed_cases"] {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

// The reads of `tasks_tasks` for the endpoints and the sweep: with the
// writes above, the one place that knows the table's shape.

/// A task row of the read model.
#[derive(sqlx::FromRow)]
pub(crate) struct TaskRow {
    /// The task's id.
    pub id: String,
    /// The case it belongs to.
    pub case_id: String,
    /// The case's lead agency: its facilitators see the task once it is
    /// declined or overdue.
    pub lead_agency: String,
    /// The kind of its source (`action_item`, `no_show`, ...).
    pub source_kind: String,
    /// Its source's reference, within the kind.
    pub source_ref: String,
    /// What is to be done.
    pub description: String,
    /// The category of client data it concerns, as on the wire.
    pub category: String,
    /// The agency whose work it is now.
    pub assignee: String,
    /// The day it is due (`YYYY-MM-DD`), if any.
    pub due: Option<String>,
    /// `open`, `accepted`, `done`, `declined` or `cancelled`; overdue is apart.
    pub status: String,
    /// 1 once it has gone overdue, else 0.
    pub overdue: i64,
    /// The user who accepted it; cleared by a reassignment.
    pub accepted_by: Option<String>,
    /// The completion note, or why it was declined or cancelled; cleared by a
    /// reassignment.
    pub outcome_note: Option<String>,
    /// When it was made.
    pub created_at: String,
    /// When its last event happened.
    pub updated_at: String,
    /// The task stream's version.
    pub version: i64,
}

const COLUMNS: &str = "id, case_id, lead_agency, source_kind, source_ref, description, category, \
    assignee, due, status, overdue, accepted_by, outcome_note, created_at, updated_at, version";

impl TaskRow {
    /// `overdue` is shown as the status of a task that is still to be done.
    pub(crate) fn shown_status(&self) -> &str {
        if self.overdue != 0 && (self.status == "open" || self.status == "accepted") {
            "overdue"
        } else {
            &self.status
        }
    }
}

/// One task's row.
pub(crate) async fn task(db: &Db, id: &str) -> Result<Option<TaskRow>, Error> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM tasks_tasks WHERE id = $1"))
            .bind(id)
            .fetch_optional(db.reader())
            .await?,
    )
}

/// The tasks of `agency` that `user` accepted.
pub(crate) async fn accepted_by(db: &Db, agency: &str, user: &str) -> Result<Vec<TaskRow>, Error> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tasks_tasks WHERE assignee = $1 AND accepted_by = $2 ORDER BY due, id"
    ))
    .bind(agency)
    .bind(user)
    .fetch_all(db.reader())
    .await?)
}

/// The agency's own tasks and, with `escalations`, the tasks declined or
/// gone overdue in the cases it leads.
pub(crate) async fn inbox_of(
    db: &Db,
    agency: &str,
    escalations: bool,
) -> Result<Vec<TaskRow>, Error> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tasks_tasks WHERE assignee = $1 \
         OR ($2 = 1 AND lead_agency = $1 AND (status = 'declined' \
             OR (overdue = 1 AND status IN ('open', 'accepted')))) \
         ORDER BY due, id"
    ))
    .bind(agency)
    .bind(escalations as i64)
    .fetch_all(db.reader())
    .await?)
}

/// The tasks still to be done whose due date is before `today`, not yet
/// marked overdue.
/// The tasks still to be done of closed cases, with each case's outcome.
pub(crate) async fn tasks_of_closed_cases(db: &Db) -> Result<Vec<(String, String)>, Error> {
    Ok(sqlx::query_as(
        "SELECT t.id, c.outcome FROM tasks_tasks t \
         JOIN tasks_closed_cases c ON c.case_id = t.case_id \
         WHERE t.status IN ('open', 'accepted', 'declined')",
    )
    .fetch_all(db.reader())
    .await?)
}

pub(crate) async fn overdue_candidates(db: &Db, today: NaiveDate) -> Result<Vec<String>, Error> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM tasks_tasks WHERE due IS NOT NULL AND due < $1 \
         AND status IN ('open', 'accepted') AND overdue = 0",
    )
    .bind(today.to_string())
    .fetch_all(db.reader())
    .await?)
}
