//! The task: one piece of work for one agency, from one source.

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use verkosto_policy::Category;
use verkosto_types::Refusal;

/// Where a task came from. `kind` + `reference` identify the source; a
/// source gives exactly one task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Source {
    /// `action_item`, `plan_measure`, `no_show`, `invitation_declined`,
    /// `coming_of_age` or `manual`.
    pub kind: String,
    /// What it came from, within its kind: `<meeting>/<item>` for an action
    /// item, `<case>/<measure>` for a plan measure, the meeting for a no-show,
    /// the event for a declined invitation, `<case>/<day>` for coming of age, a
    /// fresh id for a manual task.
    #[serde(rename = "ref")]
    pub reference: String,
}

impl Source {
    /// The task id for this source: the same source always gives the same
    /// id, so a redelivered or replayed event cannot make a second task.
    pub fn task_id(&self) -> String {
        let digest = Sha256::digest(format!("{}\n{}", self.kind, self.reference));
        format!("task-{}", &hex::encode(digest)[..32])
    }
}

/// Events of the `task` stream (its id is the task id).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum TaskEvent {
    /// A new task, open, for its assignee agency.
    TaskCreated {
        /// The task's id, derived from its source: one source, one task.
        task_id: String,
        /// The case the task belongs to: only its network sees it.
        case_id: String,
        /// The case's lead agency: a declined or overdue task comes back to it.
        lead_agency: String,
        /// Where the task came from.
        source: Source,
        /// What is to be done; shown only to readers allowed the task's
        /// category.
        description: String,
        /// The category of client data the task concerns.
        category: Category,
        /// The member agency whose work it is.
        assignee: String,
        /// The day it is due, if any: past it and still to be done, it goes
        /// overdue.
        due: Option<NaiveDate>,
        /// When it was made; for a task made from another service's event, that
        /// event's time.
        at: DateTime<Utc>,
    },
    /// A user of the assignee agency took the task on.
    TaskAccepted {
        /// The user of the assignee agency who took it on: it is in their own
        /// list now.
        by: String,
        /// When it was accepted.
        at: DateTime<Utc>,
    },
    /// The assignee agency did it.
    TaskCompleted {
        /// The user of the assignee agency who completed it.
        by: String,
        /// What was done, as that user wrote it.
        note: Option<String>,
        /// When it was completed.
        at: DateTime<Utc>,
    },
    /// The agency would not: back to the lead facilitator.
    TaskDeclined {
        /// The user of the assignee agency who declined it.
        by: String,
        /// Why, as that user wrote it, for the lead.
        reason: String,
        /// When it was declined.
        at: DateTime<Utc>,
    },
    /// The lead gave the task to another member agency.
    TaskReassigned {
        /// The agency it was assigned to.
        from: String,
        /// The member agency it is assigned to now: open again, for it to
        /// accept.
        to: String,
        /// When it was reassigned.
        at: DateTime<Utc>,
    },
    /// No longer needed: circumstances changed.
    TaskCancelled {
        /// Why it is no longer needed, as the lead wrote it.
        reason: String,
        /// When it was cancelled.
        at: DateTime<Utc>,
    },
    /// The due date passed with the task still open: escalated to the lead.
    TaskOverdue {
        /// The due date that passed.
        due: NaiveDate,
        /// When the sweep found it overdue.
        at: DateTime<Utc>,
    },
}

verkosto_eventlog::domain_event!(
    TaskEvent,
    sealed {
        TaskCreated: ["description"],
        TaskCompleted: ["note"],
        TaskDeclined: ["reason"],
        TaskCancelled: ["reason"],
    }
);

impl verkosto_eventlog::DataSubject for Task {
    /// A task belongs to its case (known from `TaskCreated` on).
    fn data_subject<'a>(&'a self, _id: &'a str) -> Option<&'a str> {
        Some(self.case_id.as_str()).filter(|c| !c.is_empty())
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    Open,
    Accepted,
    Done,
    Declined,
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Accepted => "accepted",
            Status::Done => "done",
            Status::Declined => "declined",
            Status::Cancelled => "cancelled",
        }
    }

    /// Still someone's work to do.
    pub fn is_active(self) -> bool {
        matches!(self, Status::Open | Status::Accepted)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// The task's id; none until it is created.
    pub id: Option<String>,
    /// The case it belongs to.
    pub case_id: String,
    /// The case's lead agency: only its facilitator reassigns or cancels the
    /// task.
    pub lead_agency: String,
    /// The agency whose work it is now: only it accepts, completes or declines.
    pub assignee: String,
    /// The day it is due, if any.
    pub due: Option<NaiveDate>,
    /// Where it stands in its lifecycle.
    pub status: Status,
    /// Whether it has gone overdue; it stays so, whatever happens next.
    pub overdue: bool,
}

#[derive(Clone, Debug)]
pub enum TaskCommand {
    Accept {
        /// The caller's agency: it must be the assignee.
        agency: String,
        /// The caller, who takes the task on.
        user: String,
        /// When, on the service's clock.
        at: DateTime<Utc>,
    },
    Complete {
        /// The caller's agency: it must be the assignee.
        agency: String,
        /// The caller, who completed it.
        user: String,
        /// What was done, if said.
        note: Option<String>,
        /// When, on the service's clock.
        at: DateTime<Utc>,
    },
    Decline {
        /// The caller's agency: it must be the assignee.
        agency: String,
        /// The caller, who declines it.
        user: String,
        /// Why, for the lead.
        reason: String,
        /// When, on the service's clock.
        at: DateTime<Utc>,
    },
    Reassign {
        /// The caller's agency: only the lead reassigns.
        by: String,
        /// The member agency to assign it to.
        to: String,
        /// When, on the service's clock.
        at: DateTime<Utc>,
    },
    Cancel {
        /// The caller's agency: only the lead cancels.
        by: String,
        /// Why it is no longer needed.
        reason: String,
        /// When, on the service's clock.
        at: DateTime<Utc>,
    },
    /// From the overdue sweep: `today` is the injected clock's date.
    MarkOverdue { today: NaiveDate, at: DateTime<Utc> },
    /// From the closing of the task's case: a task still to be done is
    /// cancelled, with `reason`; any other is left as it ended.
    CancelWithCase {
        /// Why: the case was closed, and how.
        reason: String,
        /// When, on the service's clock.
        at: DateTime<Utc>,
    },
}

impl Task {
    fn by_assignee(&self, agency: &str) -> Result<(), Refusal> {
        if agency == self.assignee {
            Ok(())
        } else {
            Err(Refusal::not_allowed(
                "only the assignee agency acts on this task",
            ))
        }
    }

    fn by_lead(&self, agency: &str) -> Result<(), Refusal> {
        if agency == self.lead_agency {
            Ok(())
        } else {
            Err(Refusal::not_allowed(
                "only the lead agency's facilitator reassigns or cancels tasks",
            ))
        }
    }

    fn in_status(&self, allowed: &[Status], action: &str) -> Result<(), Refusal> {
        if allowed.contains(&self.status) {
            Ok(())
        } else {
            Err(Refusal::conflict(format!(
                "status: a task that is {} cannot be {action}",
                self.status.as_str()
            )))
        }
    }
}

impl Aggregate for Task {
    const TYPE: &'static str = "task";
    type Command = TaskCommand;
    type Event = TaskEvent;
    type Error = Refusal;
    type Services = ();

    async fn handle(
        &mut self,
        command: TaskCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Refusal> {
        if self.id.is_none() {
            return Err(Refusal::unknown("no such task"));
        }
        let event = match command {
            TaskCommand::Accept { agency, user, at } => {
                self.by_assignee(&agency)?;
                self.in_status(&[Status::Open], "accepted")?;
                TaskEvent::TaskAccepted { by: user, at }
            }
            TaskCommand::Complete {
                agency,
                user,
                note,
                at,
            } => {
                self.by_assignee(&agency)?;
                self.in_status(&[Status::Open, Status::Accepted], "completed")?;
                TaskEvent::TaskCompleted { by: user, note, at }
            }
            TaskCommand::Decline {
                agency,
                user,
                reason,
                at,
            } => {
                self.by_assignee(&agency)?;
                self.in_status(&[Status::Open, Status::Accepted], "declined")?;
                TaskEvent::TaskDeclined {
                    by: user,
                    reason,
                    at,
                }
            }
            TaskCommand::Reassign { by, to, at } => {
                self.by_lead(&by)?;
                self.in_status(
                    &[Status::Open, Status::Accepted, Status::Declined],
                    "reassigned",
                )?;
                if to == self.assignee && self.status != Status::Declined {
                    return Err(Refusal::invalid(
                        "assignee",
                        "the task is already assigned to this agency",
                    ));
                }
                TaskEvent::TaskReassigned {
                    from: self.assignee.clone(),
                    to,
                    at,
                }
            }
            TaskCommand::Cancel { by, reason, at } => {
                self.by_lead(&by)?;
                self.in_status(
                    &[Status::Open, Status::Accepted, Status::Declined],
                    "cancelled",
                )?;
                TaskEvent::TaskCancelled { reason, at }
            }
            TaskCommand::CancelWithCase { reason, at } => {
                if !matches!(
                    self.status,
                    Status::Open | Status::Accepted | Status::Declined
                ) {
                    return Ok(());
                }
                TaskEvent::TaskCancelled { reason, at }
            }
            TaskCommand::MarkOverdue { today, at } => match self.due {
                Some(due) if due < today && self.status.is_active() && !self.overdue => {
                    TaskEvent::TaskOverdue { due, at }
                }
                _ => return Ok(()),
            },
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: TaskEvent) {
        match event {
            TaskEvent::TaskCreated {
                task_id,
                case_id,
                lead_agency,
                assignee,
                due,
                ..
            } => {
                self.id = Some(task_id);
                self.case_id = case_id;
                self.lead_agency = lead_agency;
                self.assignee = assignee;
                self.due = due;
            }
            TaskEvent::TaskAccepted { .. } => self.status = Status::Accepted,
            TaskEvent::TaskCompleted { .. } => self.status = Status::Done,
            TaskEvent::TaskDeclined { .. } => self.status = Status::Declined,
            TaskEvent::TaskReassigned { to, .. } => {
                self.assignee = to;
                self.status = Status::Open;
            }
            TaskEvent::TaskCancelled { .. } => self.status = Status::Cancelled,
            TaskEvent::TaskOverdue { .. } => self.overdue = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    fn t() -> DateTime<Utc> {
        "2026-11-01T10:00:00Z".parse().unwrap()
    }

    fn created(due: Option<&str>) -> TaskEvent {
        TaskEvent::TaskCreated {
            task_id: "task-1".into(),
            case_id: "case-1".into(),
            lead_agency: "ngo-support".into(),
            source: Source {
                kind: "manual".into(),
                reference: "task-1".into(),
            },
            description: "Health check".into(),
            category: Category::Health,
            assignee: "health-hus".into(),
            due: due.map(|d| d.parse().unwrap()),
            at: t(),
        }
    }

    fn status_of(result: Result<Vec<TaskEvent>, Refusal>) -> u16 {
        verkosto_http::Problem::from(result.unwrap_err()).status
    }

    #[test]
    fn the_same_source_always_gives_the_same_task_id() {
        let a = Source {
            kind: "no_show".into(),
            reference: "meeting-1".into(),
        };
        assert_eq!(a.task_id(), a.clone().task_id());
        let b = Source {
            kind: "no_show".into(),
            reference: "meeting-2".into(),
        };
        assert_ne!(a.task_id(), b.task_id());
    }

    #[test]
    fn only_the_assignee_accepts_and_only_the_lead_cancels() {
        let other = TestFramework::<Task>::with(())
            .given(vec![created(None)])
            .when(TaskCommand::Accept {
                agency: "police-helsinki".into(),
                user: "liisa".into(),
                at: t(),
            })
            .inspect_result();
        assert_eq!(status_of(other), 403);
        let not_lead = TestFramework::<Task>::with(())
            .given(vec![created(None)])
            .when(TaskCommand::Cancel {
                by: "health-hus".into(),
                reason: "x".into(),
                at: t(),
            })
            .inspect_result();
        assert_eq!(status_of(not_lead), 403);
    }

    #[test]
    fn a_done_task_cannot_be_declined() {
        let done = TaskEvent::TaskCompleted {
            by: "hanna".into(),
            note: None,
            at: t(),
        };
        let result = TestFramework::<Task>::with(())
            .given(vec![created(None), done])
            .when(TaskCommand::Decline {
                agency: "health-hus".into(),
                user: "hanna".into(),
                reason: "no".into(),
                at: t(),
            })
            .inspect_result();
        assert_eq!(status_of(result), 409);
    }

    #[test]
    fn a_task_past_its_due_date_becomes_overdue_once() {
        let today: NaiveDate = "2026-12-02".parse().unwrap();
        TestFramework::<Task>::with(())
            .given(vec![created(Some("2026-12-01"))])
            .when(TaskCommand::MarkOverdue { today, at: t() })
            .then_expect_events(vec![TaskEvent::TaskOverdue {
                due: "2026-12-01".parse().unwrap(),
                at: t(),
            }]);
        let overdue = TaskEvent::TaskOverdue {
            due: "2026-12-01".parse().unwrap(),
            at: t(),
        };
        TestFramework::<Task>::with(())
            .given(vec![created(Some("2026-12-01")), overdue])
            .when(TaskCommand::MarkOverdue { today, at: t() })
            .then_expect_events(vec![]);
        // Due today is not yet overdue.
        TestFramework::<Task>::with(())
            .given(vec![created(Some("2026-12-02"))])
            .when(TaskCommand::MarkOverdue { today, at: t() })
            .then_expect_events(vec![]);
    }
}
