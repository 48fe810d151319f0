//! `verkosto guard ...`: the consent and case events a process could not
//! read, and the operator's logged decision to read on without one.

use serde_json::json;
use verkosto_eventlog::{Actor, CommandMeta, EventLog, ExpectedVersion, NewEvent};
use verkosto_guard::{OPERATOR_STREAM, RESOLVED};

use crate::config::StoreArgs;

async fn open(store: &StoreArgs) -> anyhow::Result<EventLog> {
    let log = EventLog::connect(&store.url()).await?;
    verkosto_guard::migrate(log.db()).await?;
    Ok(log)
}

/// Prints every unreadable event, one line each.
pub async fn unreadable(store: &StoreArgs) -> anyhow::Result<()> {
    let log = open(store).await?;
    let rows: Vec<(String, String, String, String, String, i64, String)> = sqlx::query_as(
        "SELECT consumer, case_id, event_id, stream_type, event_type, position, reason \
         FROM guard_unreadable ORDER BY position, consumer",
    )
    .fetch_all(log.db().reader())
    .await?;
    if rows.is_empty() {
        println!("no unreadable consent or case events");
    }
    for (consumer, case_id, event_id, stream_type, event_type, position, reason) in rows {
        println!("{case_id}\t{event_id}\t{stream_type}/{event_type}\tposition {position}\t{consumer}\t{reason}");
    }
    Ok(())
}

/// Appends the operator's decision to the log: every process's guard then
/// lets the event's case be read without it.
pub async fn resolve(
    store: &StoreArgs,
    event_id: &str,
    reason: &str,
    operator: &str,
) -> anyhow::Result<()> {
    let reason = reason.trim();
    anyhow::ensure!(
        !reason.is_empty(),
        "--reason: say why reads may go on without the event"
    );
    let log = open(store).await?;
    let event = log
        .event_by_id(event_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("--event: no event {event_id} in this log"))?;
    anyhow::ensure!(
        event.stream_type == "consent" || event.stream_type == "case",
        "--event: {event_id} is a {} event; only consent and case events are ever unreadable",
        event.stream_type
    );
    let meta = CommandMeta::new(Actor {
        user: operator.to_string(),
        agency: "system".into(),
    });
    let payload = json!({ RESOLVED: { "event_id": event_id, "reason": reason } });
    log.append(
        OPERATOR_STREAM,
        &event.stream_id,
        ExpectedVersion::Any,
        vec![NewEvent {
            event_type: RESOLVED.into(),
            schema_version: 1,
            payload,
            sealing: None,
        }],
        &meta,
        None,
    )
    .await?;
    println!(
        "resolved: reads of case {} go on without event {event_id} ({}); logged as {operator}",
        event.stream_id, event.event_type
    );
    Ok(())
}
