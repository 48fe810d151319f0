//! The overdue sweep: a task past its due date, still open or accepted,
//! becomes overdue (an event), which escalates it to the lead facilitator.
//! Runs every minute and whenever the dev clock is moved.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use verkosto_eventlog::{Actor, AggregateStore, CommandMeta, Cursor, EventLog, Execution, Outcome};

use crate::clock::Clock;
use crate::domain::{Task, TaskCommand};

/// Marks every task overdue whose due date has passed; returns how many,
/// and the cursor of the last event written.
pub async fn sweep(
    log: &EventLog,
    clock: &Clock,
) -> Result<(usize, Option<Cursor>), verkosto_eventlog::Error> {
    let today = clock.today();
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM tasks_tasks WHERE due IS NOT NULL AND due < $1 \
         AND status IN ('open', 'accepted') AND overdue = 0",
    )
    .bind(today.to_string())
    .fetch_all(log.db().reader())
    .await?;
    let store = AggregateStore::<Task>::new(log.clone());
    let mut marked = 0;
    let mut last = None;
    for id in ids {
        let mut meta = CommandMeta::new(Actor::system());
        meta.occurred_at = clock.now();
        let command = TaskCommand::MarkOverdue {
            today,
            at: clock.now(),
        };
        match store.execute(&id, command, &(), Execution::new(meta)).await {
            Ok(Outcome::Committed { appended, .. }) if !appended.events.is_empty() => {
                marked += 1;
                last = appended.last_cursor().max(last);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(task = %id, error = %e, "could not mark a task overdue"),
        }
    }
    Ok((marked, last))
}

/// Sweeps every minute, or at once when `wake` is notified.
pub async fn run_sweeper(
    log: EventLog,
    clock: Clock,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    loop {
        if let Err(e) = sweep(&log, &clock).await {
            tracing::warn!(error = %e, "overdue sweep failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = wake.notified() => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
