//! Tasks made by other services' events: a minutes action item, an agreed
//! plan measure, a client no-show, a declined invitation, the day a minor
//! client comes of age. Exactly one task
//! per source: the task id is derived from the source, and creating an
//! existing task stream is a no-op, so redelivery and replay add nothing.
//!
//! The sources are read as a tolerant reader of the wire contract
//! (`proto/`), only the fields needed here. Their client text arrives
//! sealed: it is opened in-process to make the task's description, which
//! is sealed again, under the same case's key, when the task is appended.

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::Aggregate;
use serde::Deserialize;
use sqlx::AnyConnection;
use verkosto_eventlog::{
    decode_event, encode_events, Actor, ApplyError, CommandMeta, Error, EventLog, ExpectedVersion,
    Projection, RecordedEvent,
};
use verkosto_policy::Category;

use crate::domain::{Source, Task, TaskEvent};
use crate::projection::insert_task;

pub struct TaskReactions {
    /// The event log the tasks are appended to, in the consumer's transaction.
    pub log: EventLog,
}

pub const NAME: &str = "tasks-reactions";

#[derive(Deserialize)]
struct ActionItem {
    /// Unique in the minutes: with the meeting id, the task's source.
    id: String,
    /// What is to be done.
    description: String,
    /// The category of client data it concerns.
    category: Category,
    /// The agency that is to do it.
    assignee: String,
    /// The day it is due, if any.
    due: Option<NaiveDate>,
}

#[derive(Deserialize)]
struct MinutesPublished {
    /// The meeting the minutes are of.
    meeting_id: String,
    /// The meeting's case.
    case_id: String,
    /// The case's lead agency.
    lead_agency: String,
    /// The revision's action items: one task each.
    action_items: Vec<ActionItem>,
}

#[derive(Deserialize)]
struct ClientAbsent {
    /// The meeting the client missed: the task's source.
    meeting_id: String,
    /// The meeting's case.
    case_id: String,
    /// The case's lead agency: the task is its own.
    lead_agency: String,
    /// When the meeting began: the task is due two days after that day.
    starts_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct Measure {
    /// Unique in the plan: with the case id, the task's source.
    id: String,
    /// The category of client data it concerns.
    category: Category,
    /// The agency that carries it out: the task's assignee.
    responsible_agency: String,
    /// What is to be done.
    description: String,
    /// The day it is due, if any.
    due: Option<NaiveDate>,
}

#[derive(Deserialize)]
struct PlanAgreed {
    /// The plan's case.
    case_id: String,
    /// The case's lead agency.
    lead_agency: String,
    /// The agreed measures: one task each.
    measures: Vec<Measure>,
}

/// The flags of `CaseOpened` and `FlagsChanged`: only the day a minor
/// client comes of age matters here.
#[derive(Deserialize)]
struct CaseFlags {
    /// The case's lead agency, whose task it is; absent in old `FlagsChanged`
    /// events, which make none.
    #[serde(default)]
    lead_agency: Option<String>,
    /// The case's flags, of which only the day of coming of age is read.
    #[serde(default)]
    flags: ComesOfAge,
}

#[derive(Default, Deserialize)]
struct ComesOfAge {
    /// The day a minor client comes of age, if recorded.
    #[serde(default)]
    comes_of_age: Option<NaiveDate>,
}

#[derive(Deserialize)]
struct InvitationDeclined {
    /// The agency that declined.
    agency: String,
    /// Why, as it wrote it: the task quotes it.
    reason: String,
    /// The case's lead agency: the task is its own.
    lead_agency: String,
}

fn body<'a, T: Deserialize<'a>>(event: &'a RecordedEvent) -> Result<T, ApplyError> {
    // Only an object: serde would also read a struct from an array.
    let inner = event
        .payload
        .get(&event.event_type)
        .filter(|b| b.is_object())
        .ok_or_else(|| ApplyError::Poison(format!("no {} body", event.event_type)))?;
    T::deserialize(inner).map_err(|e| ApplyError::Poison(e.to_string()))
}

fn source(kind: &str, reference: String) -> Source {
    Source {
        kind: kind.into(),
        reference,
    }
}

/// The tasks an event asks for (pure: no I/O).
pub fn tasks_from(event: &RecordedEvent) -> Result<Vec<TaskEvent>, ApplyError> {
    let at = event.occurred_at();
    let created = |case_id: &str,
                   lead: &str,
                   source: Source,
                   description: String,
                   category: Category,
                   assignee: &str,
                   due: Option<NaiveDate>| TaskEvent::TaskCreated {
        task_id: source.task_id(),
        case_id: case_id.to_string(),
        lead_agency: lead.to_string(),
        source,
        description,
        category,
        assignee: assignee.to_string(),
        due,
        at,
    };
    let tasks = match (event.stream_type.as_str(), event.event_type.as_str()) {
        ("meeting", "MinutesPublished") => {
            let m: MinutesPublished = body(event)?;
            m.action_items
                .into_iter()
                .map(|item| {
                    created(
                        &m.case_id,
                        &m.lead_agency,
                        source("action_item", format!("{}/{}", m.meeting_id, item.id)),
                        item.description,
                        item.category,
                        &item.assignee,
                        item.due,
                    )
                })
                .collect()
        }
        ("meeting", "ClientAbsent") => {
            let a: ClientAbsent = body(event)?;
            let day = a.starts_at.date_naive();
            vec![created(
                &a.case_id,
                &a.lead_agency,
                source("no_show", a.meeting_id),
                format!(
                    "The client did not come to the network meeting on {day}: find out the exact reason."
                ),
                Category::Meetings,
                &a.lead_agency,
                Some(day + chrono::Duration::days(2)),
            )]
        }
        ("plan", "PlanAgreed") => {
            let p: PlanAgreed = body(event)?;
            p.measures
                .into_iter()
                .map(|m| {
                    created(
                        &p.case_id,
                        &p.lead_agency,
                        source("plan_measure", format!("{}/{}", p.case_id, m.id)),
                        m.description,
                        m.category,
                        &m.responsible_agency,
                        m.due,
                    )
                })
                .collect()
        }
        ("case", "CaseOpened" | "FlagsChanged") => {
            let f: CaseFlags = body(event)?;
            // One task per recorded day: the guardian's consents end then.
            match (f.flags.comes_of_age, f.lead_agency) {
                (Some(day), Some(lead)) => vec![created(
                    &event.stream_id,
                    &lead,
                    source("coming_of_age", format!("{}/{day}", event.stream_id)),
                    format!(
                        "The client comes of age on {day}: consents given by a guardian or \
                         representative end that day. Ask the client for their own consent."
                    ),
                    Category::Identity,
                    &lead,
                    Some(day),
                )],
                _ => Vec::new(),
            }
        }
        ("case", "InvitationDeclined") => {
            let d: InvitationDeclined = body(event)?;
            vec![created(
                &event.stream_id,
                &d.lead_agency,
                source("invitation_declined", event.event_id.clone()),
                format!("{} declined the invitation: {}", d.agency, d.reason),
                Category::Tasks,
                &d.lead_agency,
                None,
            )]
        }
        _ => Vec::new(),
    };
    Ok(tasks)
}

#[async_trait::async_trait]
impl Projection for TaskReactions {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        matches!(
            (event.stream_type.as_str(), event.event_type.as_str()),
            ("meeting", "MinutesPublished")
                | ("meeting", "ClientAbsent")
                | ("plan", "PlanAgreed")
                | ("case", "InvitationDeclined" | "CaseOpened" | "FlagsChanged")
        )
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        let mut opened = event.clone();
        let sealed = verkosto_keys::sealed_strings(&opened.payload).len();
        if self.log.open_sealed(&mut opened.payload).await? < sealed {
            // The case was erased: no task is made for it any more.
            tracing::debug!(event = %event.event_id, "source of an erased case: no task");
            return Ok(());
        }
        for task in tasks_from(&opened)? {
            let TaskEvent::TaskCreated { task_id, .. } = &task else {
                continue;
            };
            let meta = CommandMeta {
                actor: Actor::system(),
                correlation_id: event.correlation_id.clone(),
                causation_id: Some(event.event_id.clone()),
                occurred_at: verkosto_eventlog::clock::now(),
            };
            let mut state = Task::default();
            state.apply(task.clone());
            let new =
                encode_events(&self.log, &state, task_id, std::slice::from_ref(&task)).await?;
            // Only new streams are written in the consumer's transaction,
            // so commit order and stream order cannot disagree.
            match self
                .log
                .append_on(conn, "task", task_id, ExpectedVersion::NoStream, new, &meta)
                .await
            {
                Ok(appended) => {
                    // Visible in inboxes as soon as this commits; the row
                    // holds the description as sealed in the event.
                    let sealed = decode_event::<Task>(&appended.events[0])?;
                    insert_task(conn, &appended.events[0], &sealed).await?;
                }
                Err(Error::Conflict { .. }) => {
                    // Made before: this delivery is a repeat.
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn reset(&self, _conn: &mut AnyConnection) -> Result<(), Error> {
        // The tasks it made are events: a replay finds them and adds nothing.
        Ok(())
    }
}
