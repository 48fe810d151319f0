//! The tasks service's state, shared by its endpoints.

use std::sync::Arc;

use axum::extract::FromRef;
use tokio::sync::Notify;
use verkosto_auth::Role;
use verkosto_eventlog::{EventLog, Progress};
use verkosto_guard::{CaseAccess, Guard};
use verkosto_http::{AuthState, Commands, Problem};

use crate::domain::Task;
use crate::projection::{self, TaskRow};
use verkosto_eventlog::clock::Clock;

/// The tasks service.
#[derive(Clone)]
pub struct Tasks {
    /// The event log: the `task` and `webhook` streams, and the `tasks_*`
    /// tables.
    pub log: EventLog,
    /// The `tasks_tasks` read model's progress.
    pub progress: Progress,
    /// The consent guard: every read of client data goes through it, and
    /// writes check the case's network with it.
    pub guard: Guard,
    /// Token verification for the `Caller` extractor.
    pub auth: AuthState,
    /// The service's clock, which tests move: due dates and overdue go by it.
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

/// Who works with tasks: facilitators and liaisons.
pub(crate) const WORKERS: [Role; 2] = [Role::Facilitator, Role::Liaison];

impl Tasks {
    /// The task commands: recorded by the service's clock (the one tests
    /// move), each waiting for the `tasks_tasks` read model to show it.
    pub(crate) fn commands(&self) -> Commands<Task> {
        let clock = self.clock.clone();
        Commands::new(self.log.clone(), self.progress.clone(), "tasks")
            .with_clock(move || clock.now())
    }

    /// The case, fresh, or 404 unless `agency` is in its network.
    pub(crate) async fn member_case(
        &self,
        case_id: &str,
        agency: &str,
    ) -> Result<CaseAccess, Problem> {
        self.guard
            .case(case_id)
            .await?
            .filter(|c| c.is_member(agency))
            .ok_or_else(|| Problem::not_found(format!("no case {case_id}")))
    }

    /// The task's row, or 404.
    pub(crate) async fn task_row(&self, id: &str) -> Result<TaskRow, Problem> {
        projection::task(self.log.db(), id)
            .await?
            .ok_or_else(|| Problem::not_found(format!("no task {id}")))
    }
}
