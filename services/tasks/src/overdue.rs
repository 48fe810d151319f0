//! The overdue sweep: a task past its due date, still open or accepted,
//! becomes overdue (an event), which escalates it to the lead facilitator.
//! Runs every minute and whenever the dev clock is moved: the dev-only
//! `POST /api/v1/dev/clock` moves the injected clock and sweeps at once.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use verkosto_auth::Role;
use verkosto_eventlog::{
    format_time, Actor, AggregateStore, CommandMeta, Cursor, EventLog, Execution, Outcome,
};
use verkosto_http::{Caller, JsonBody, Problem};

use crate::domain::{Task, TaskCommand};
use crate::service::Tasks;
use verkosto_eventlog::clock::Clock;

/// Marks every task overdue whose due date has passed; returns how many,
/// and the cursor of the last event written.
pub async fn sweep(
    log: &EventLog,
    clock: &Clock,
) -> Result<(usize, Option<Cursor>), verkosto_eventlog::Error> {
    let today = clock.today();
    let ids = crate::projection::overdue_candidates(log.db(), today).await?;
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

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClockMove {
    /// How far to move the clock forward, in seconds (at most ten years).
    advance_seconds: i64,
}

/// Tests move the injected clock forward; the overdue sweep runs at once.
pub(crate) async fn dev_clock(
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
    let (marked, last) = sweep(&t.log, &t.clock).await?;
    if let Some(cursor) = last {
        t.commands().wait_for(cursor).await;
    }
    t.sweep.notify_one();
    Ok(Json(
        json!({ "now": format_time(t.clock.now()), "marked_overdue": marked }),
    ))
}
