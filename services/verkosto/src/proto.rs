//! The wire contract in `proto/`: a JSON Schema for the envelope and for
//! each stream's events, and an AsyncAPI document naming the subjects. All
//! generated from the Rust types; a test fails when the committed files
//! differ from what the code generates.

use std::collections::BTreeMap;
use std::path::Path;

use schemars::{schema_for, Schema};
use serde_json::{json, Value};

/// Every stream on the shared stream: `(stream type, what it is, event schema)`.
fn streams() -> Vec<(&'static str, &'static str, Schema)> {
    vec![
        (
            "agency",
            "An agency of the network: registered by an administrator.",
            schema_for!(verkosto_directory::domain::AgencyEvent),
        ),
        (
            "user",
            "A user of an agency, with roles.",
            schema_for!(verkosto_directory::domain::UserEvent),
        ),
        (
            "case",
            "A client's case: its header and its network, built by invitation.",
            schema_for!(verkosto_cases::domain::CaseEvent),
        ),
        (
            "plan",
            "The one agreed plan of a case: drafts, proposed versions, approvals, the client's agreement. Id: the case id.",
            schema_for!(verkosto_cases::plan::PlanEvent),
        ),
        (
            "meeting",
            "A network meeting of a case: schedule, reschedules, cancellation, interpreter booking, answers, attendance, client no-show, minutes revisions and approvals.",
            schema_for!(verkosto_meetings::domain::MeetingEvent),
        ),
        (
            "calendar-feed",
            "The calendar feed tokens of an agency's users: one owner each, an expiry, revoked one by one (only their SHA-256 is kept). Id: the agency id.",
            schema_for!(verkosto_meetings::feed_token::CalendarFeedEvent),
        ),
        (
            "task",
            "A task for one agency, from one source (action item, plan measure, no-show, declined invitation, manual).",
            schema_for!(verkosto_tasks::domain::TaskEvent),
        ),
        (
            "webhook",
            "An agency's webhook registration (the secret stays in the tasks service).",
            schema_for!(verkosto_tasks::WebhookEvent),
        ),
        (
            "record",
            "A record of the client's information: category, author and the body's hash (the body stays in the cases service).",
            schema_for!(verkosto_cases::RecordEvent),
        ),
        (
            "consent",
            "The client's consent record: grants, withdrawals, refusals and statutory bases. Id: the case id.",
            schema_for!(verkosto_policy::ConsentEvent),
        ),
    ]
}

/// The files of `proto/`, by relative path, as they should be.
pub fn generate() -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let envelope = schema_for!(verkosto_eventlog::RecordedEvent);
    files.insert(
        "envelope.schema.json".to_string(),
        pretty(&envelope.to_value()),
    );
    let mut channels = serde_json::Map::new();
    let mut messages = serde_json::Map::new();
    let mut operations = serde_json::Map::new();
    for (stream, description, schema) in streams() {
        let path = format!("events/{stream}.schema.json");
        files.insert(path.clone(), pretty(&schema.to_value()));
        let message = format!("{stream}Event");
        channels.insert(
            stream.to_string(),
            json!({
                "address": format!("{}.{stream}.{{id}}", verkosto_bus::SUBJECT_PREFIX),
                "description": description,
                "parameters": { "id": { "description": "The stream (aggregate) id." } },
                "messages": { message.clone(): { "$ref": format!("#/components/messages/{message}") } }
            }),
        );
        messages.insert(
            message.clone(),
            json!({
                "name": message,
                "contentType": "application/json",
                "headers": {
                    "type": "object",
                    "properties": {
                        "Nats-Msg-Id": { "type": "string", "description": "The event id; JetStream drops a republished duplicate." },
                        (verkosto_bus::CURSOR_HEADER): { "type": "string", "description": "tx.position: the event's place in the log's commit order." },
                        "Verkosto-Event-Type": { "type": "string" }
                    },
                    "required": ["Nats-Msg-Id", verkosto_bus::CURSOR_HEADER]
                },
                "payload": {
                    "allOf": [
                        { "$ref": "envelope.schema.json" },
                        { "type": "object", "properties": { "payload": { "$ref": path } } }
                    ]
                }
            }),
        );
        operations.insert(
            format!("receive{}", capitalise(stream)),
            json!({
                "action": "receive",
                "channel": { "$ref": format!("#/channels/{stream}") },
                "summary": format!("Consume {stream} events from the {} stream.", verkosto_bus::STREAM_NAME)
            }),
        );
    }
    let asyncapi = json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Verkosto events",
            "version": "1.0.0",
            "description": "Events on the shared JetStream stream. Published by the relay, in the log's commit order, exactly once (Nats-Msg-Id = event id). Generated by `verkosto proto --write`; do not edit by hand."
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": { "messages": messages }
    });
    files.insert("asyncapi.json".to_string(), pretty(&asyncapi));
    files
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).expect("json values serialise") + "\n"
}

/// Paths whose committed content differs from the generated one.
pub fn stale_files(dir: &Path) -> Vec<String> {
    generate()
        .into_iter()
        .filter(|(path, content)| {
            std::fs::read_to_string(dir.join(path)).ok().as_deref() != Some(content.as_str())
        })
        .map(|(path, _)| path)
        .collect()
}

pub fn run(dir: &Path, write: bool) -> anyhow::Result<()> {
    if write {
        for (path, content) in generate() {
            let target = dir.join(&path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&target, content)?;
            println!("wrote {}", target.display());
        }
        return Ok(());
    }
    let stale = stale_files(dir);
    if stale.is_empty() {
        println!("proto/ is up to date");
        Ok(())
    } else {
        anyhow::bail!(
            "proto/ is stale ({}); run `verkosto proto --write`",
            stale.join(", ")
        )
    }
}
