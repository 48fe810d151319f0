//! A closed case's tasks still to be done are cancelled, with the case's
//! outcome as the reason. A worker, not a reaction: it appends to task
//! streams that people write to as well, so it runs commands as people
//! do (reloading on a conflict) rather than inside the consumer's
//! transaction. It wakes whenever the tasks read model moves on (which is
//! when a `CaseClosed` or a new task of a closed case can have arrived),
//! and every minute.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use verkosto_eventlog::clock::Clock;
use verkosto_eventlog::{
    Actor, AggregateStore, CommandMeta, Cursor, EventLog, Execution, Outcome, Progress,
};

use crate::domain::{Task, TaskCommand};

/// Why a task of a case closed with `outcome` is no longer needed.
fn reason(outcome: &str) -> String {
    let how = match outcome {
        "goals_met" => "the plan's goals were met",
        "moved_away" => "the client moved away",
        "client_withdrew" => "the client withdrew",
        "transferred" => "the case was transferred",
        _ => "see the case",
    };
    format!("The case was closed ({how}).")
}

/// Cancels every task still to be done of a closed case; returns how many,
/// and the cursor of the last event written.
pub async fn cancel(
    log: &EventLog,
    clock: &Clock,
) -> Result<(usize, Option<Cursor>), verkosto_eventlog::Error> {
    let store = AggregateStore::<Task>::new(log.clone());
    let mut cancelled = 0;
    let mut last = None;
    for (id, outcome) in crate::projection::tasks_of_closed_cases(log.db()).await? {
        let mut meta = CommandMeta::new(Actor::system());
        meta.occurred_at = clock.now();
        let command = TaskCommand::CancelWithCase {
            reason: reason(&outcome),
            at: clock.now(),
        };
        match store.execute(&id, command, &(), Execution::new(meta)).await {
            Ok(Outcome::Committed { appended, .. }) if !appended.events.is_empty() => {
                cancelled += 1;
                last = appended.last_cursor().max(last);
            }
            Ok(_) => {}
            // An erased case: its tasks go with it.
            Err(e) => {
                tracing::warn!(task = %id, error = %e, "could not cancel a closed case's task")
            }
        }
    }
    Ok((cancelled, last))
}

/// Cancels as the read model moves on, or every minute, until `shutdown`.
pub async fn run(log: EventLog, clock: Clock, mut progress: Progress, shutdown: CancellationToken) {
    loop {
        match cancel(&log, &clock).await {
            Ok((0, _)) => {}
            Ok((n, _)) => tracing::info!(tasks = n, "cancelled the tasks of closed cases"),
            Err(e) => tracing::warn!(error = %e, "cancelling closed cases' tasks failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = progress.changed() => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
