//! The wire contract in `proto/`: a JSON Schema for the envelope and for
//! each stream's events, and an AsyncAPI document naming the subjects. All
//! generated from the Rust types; a test fails when the committed files
//! differ from what the code generates.

use std::collections::BTreeMap;
use std::path::Path;

use schemars::{schema_for, Schema};
use serde_json::{json, Value};
use verkosto_eventlog::PersonalData;

/// Per event type, the paths of its sealed fields ([`PersonalData::SEALED`]).
type Sealed = &'static [(&'static str, &'static [&'static str])];

/// Every stream on the shared stream: `(stream type, what it is, event
/// schema, its sealed fields)`.
fn streams() -> Vec<(&'static str, &'static str, Schema, Sealed)> {
    vec![
        (
            "agency",
            "An agency of the network: registered by an administrator.",
            schema_for!(verkosto_directory::domain::AgencyEvent),
            <verkosto_directory::domain::AgencyEvent as PersonalData>::SEALED,
        ),
        (
            "user",
            "A user of an agency, with roles.",
            schema_for!(verkosto_directory::domain::UserEvent),
            <verkosto_directory::domain::UserEvent as PersonalData>::SEALED,
        ),
        (
            "case",
            "A client's case: its header and its network, built by invitation.",
            schema_for!(verkosto_cases::domain::CaseEvent),
            <verkosto_cases::domain::CaseEvent as PersonalData>::SEALED,
        ),
        (
            "plan",
            "The one agreed plan of a case: drafts, proposed versions, approvals, the client's agreement. Id: the case id.",
            schema_for!(verkosto_cases::plan::PlanEvent),
            <verkosto_cases::plan::PlanEvent as PersonalData>::SEALED,
        ),
        (
            "meeting",
            "A network meeting of a case: schedule, reschedules, cancellation, interpreter booking, answers, attendance, client no-show, minutes revisions and approvals.",
            schema_for!(verkosto_meetings::domain::MeetingEvent),
            <verkosto_meetings::domain::MeetingEvent as PersonalData>::SEALED,
        ),
        (
            "calendar-feed",
            "The calendar feed tokens of an agency's users: one owner each, an expiry, revoked one by one (only their SHA-256 is kept). Id: the agency id.",
            schema_for!(verkosto_meetings::feed_token::CalendarFeedEvent),
            <verkosto_meetings::feed_token::CalendarFeedEvent as PersonalData>::SEALED,
        ),
        (
            "task",
            "A task for one agency, from one source (action item, plan measure, no-show, declined invitation, manual).",
            schema_for!(verkosto_tasks::domain::TaskEvent),
            <verkosto_tasks::domain::TaskEvent as PersonalData>::SEALED,
        ),
        (
            "webhook",
            "An agency's webhook registration (the secret stays in the tasks service).",
            schema_for!(verkosto_tasks::WebhookEvent),
            &[],
        ),
        (
            "record",
            "A record of the client's information: category, author and the body's hash (the body stays in the cases service).",
            schema_for!(verkosto_cases::RecordEvent),
            &[],
        ),
        (
            "consent",
            "The client's consent record: grants, withdrawals, refusals and statutory bases. Id: the case id.",
            schema_for!(verkosto_policy::ConsentEvent),
            <verkosto_consent::domain::ConsentChanged as PersonalData>::SEALED,
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
    for (stream, description, schema, sealed) in streams() {
        let path = format!("events/{stream}.schema.json");
        let mut schema = schema.to_value();
        mark_sealed(&mut schema, sealed);
        files.insert(path.clone(), pretty(&schema));
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
            "description": format!("Events on the shared JetStream stream. Published by the relay, in the log's commit order, exactly once (Nats-Msg-Id = event id). {SEALED_FORM} Generated by `verkosto proto --write`; do not edit by hand.")
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": { "messages": messages }
    });
    files.insert("asyncapi.json".to_string(), pretty(&asyncapi));
    files
}

/// What a sealed field holds, as the contract says it.
const SEALED_FORM: &str = "Fields marked `x-verkosto-sealed` hold the client's text sealed: \
    `vks1.<case id>.<event id>.<base64url of nonce and ciphertext>`, XChaCha20-Poly1305 under \
    the case's data key with `vks1|<case id>|<event id>` as associated data (a value copied \
    from an earlier event keeps that event's id). Only the services that show the text hold \
    the keys; an erased case's keys are destroyed, and its sealed fields can no longer be opened.";

/// Marks the sealed fields of an event enum's schema: each path of
/// `sealed` (within its variant) must end at a string, which gets
/// `x-verkosto-sealed` and the sealed form in its description. Panics on a
/// variant or path the schema does not have: a typo in a `sealed` list
/// fails the proto test instead of leaving a field in the clear.
fn mark_sealed(schema: &mut Value, sealed: Sealed) {
    for (variant, paths) in sealed {
        let variants = schema["oneOf"].as_array().expect("event enums are oneOf");
        let i = variants
            .iter()
            .position(|v| v["properties"].get(*variant).is_some())
            .unwrap_or_else(|| panic!("sealed: no event type {variant}"));
        for path in *paths {
            let mut at = format!("/oneOf/{i}/properties/{variant}");
            for step in path.split('.') {
                let (name, each) = match step.strip_suffix("[]") {
                    Some(name) => (name, true),
                    None => (step, false),
                };
                at = format!("{}/properties/{name}", resolve(schema, &at));
                if each {
                    at = format!("{}/items", resolve(schema, &at));
                }
            }
            let at = resolve(schema, &at);
            let leaf = schema
                .pointer_mut(&at)
                .unwrap_or_else(|| panic!("sealed: {variant}.{path} is not in the schema"));
            let is_string = match &leaf["type"] {
                Value::String(t) => t == "string",
                Value::Array(ts) => ts.iter().any(|t| t == "string"),
                _ => false,
            };
            assert!(
                is_string,
                "sealed: {variant}.{path} is not a string: {leaf}"
            );
            leaf["x-verkosto-sealed"] = json!(true);
            let described = leaf["description"]
                .as_str()
                .map(|d| format!("{d} "))
                .unwrap_or_default();
            leaf["description"] =
                json!(format!("{described}Sealed (see the stream's description)."));
        }
    }
}

/// The pointer of the schema `at` stands for: through a `$ref`, and through
/// an `anyOf`/`oneOf` whose only other choice is null (an `Option`).
fn resolve(schema: &Value, at: &str) -> String {
    let node = schema
        .pointer(at)
        .unwrap_or_else(|| panic!("sealed: {at} is not in the schema"));
    if let Some(target) = node.get("$ref").and_then(Value::as_str) {
        return resolve(schema, target.trim_start_matches('#'));
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = node.get(key).and_then(Value::as_array) {
            let not_null: Vec<usize> = (0..options.len())
                .filter(|j| options[*j]["type"] != "null")
                .collect();
            if let [only] = not_null[..] {
                return resolve(schema, &format!("{at}/{key}/{only}"));
            }
        }
    }
    at.to_string()
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
