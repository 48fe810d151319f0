//! Bad input over every write endpoint, table-driven, in both modes.
//!
//! Each endpoint has one body that would be accepted. From it the test
//! derives bad inputs: whole-body ones (deep nesting, invalid UTF-8, an
//! oversized body, the wrong JSON type, unknown fields) and, for every leaf
//! of the body, a set of bad values put at that leaf alone (control
//! characters, bidi overrides, empty strings, huge numbers, the wrong type,
//! overlong text). Every one must answer 4xx as problem JSON, never 5xx or a
//! hang, and a leaf's problem must name that leaf. Nothing may be appended.

use reqwest::Method;
use serde_json::{json, Value};
use verkosto_e2e::{both_modes, Verkosto};

/// A write endpoint and a body it accepts.
struct Endpoint {
    method: Method,
    path: String,
    token: String,
    body: Value,
    /// Leaves where an empty string means "not given" (optional text).
    optional: &'static [&'static str],
    /// Every field is optional, so `{}` is a valid body.
    all_optional: bool,
}

/// What a bad input must produce.
enum Expect {
    /// 4xx problem JSON.
    Refused,
    /// 4xx problem JSON naming this field (in `field` or at the start of `detail`).
    Names(String),
}

/// Marker replaced by raw JSON text that `serde_json::Value` cannot hold.
const RAW: &str = "\u{1}raw-marker\u{1}";

/// Bad values for one leaf: (label, replacement). `None` = raw JSON text.
fn leaf_values(leaf: &Value) -> Vec<(&'static str, Result<Value, &'static str>)> {
    let mut out = vec![
        ("number 1e400", Err("1e400")),
        ("integer 2^70", Err("1180591620717411303424")),
        ("object instead", Ok(json!({ "x": 1 }))),
    ];
    if !leaf.is_boolean() {
        out.extend([
            ("NUL", Ok(json!("a\u{0}b"))),
            ("BEL U+0007", Ok(json!("a\u{7}b"))),
            ("escape U+001B", Ok(json!("a\u{1b}[31mb"))),
            ("bidi override U+202E", Ok(json!("abc\u{202E}fdp.exe"))),
            ("bidi isolate U+2066", Ok(json!("a\u{2066}b"))),
            ("empty string", Ok(json!(""))),
            ("overlong text", Ok(json!("x".repeat(70_000)))),
        ]);
    } else {
        out.push(("string instead of boolean", Ok(json!("yes"))));
    }
    out
}

/// Every leaf of `body`: (path as serde_path_to_error prints it, value).
fn leaves(body: &Value, path: String, out: &mut Vec<(String, Value)>) {
    match body {
        Value::Object(map) => {
            for (k, v) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                leaves(v, p, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                leaves(v, format!("{path}[{i}]"), out);
            }
        }
        leaf => out.push((path, leaf.clone())),
    }
}

/// `body` with the leaf at `path` replaced.
fn replace(body: &Value, path: &str, value: Value) -> Value {
    let mut body = body.clone();
    let mut at = &mut body;
    for part in path.split('.') {
        let (key, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        at = &mut at[key];
        for index in indexes.split(['[', ']']).filter(|s| !s.is_empty()) {
            at = &mut at[index.parse::<usize>().unwrap()];
        }
    }
    *at = value;
    body
}

/// Whole-body bad inputs.
fn body_inputs(base: &Value, all_optional: bool) -> Vec<(String, Vec<u8>, Expect)> {
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let mut out = vec![
        (
            "10,000 nested arrays".to_string(),
            deep(10_000).into_bytes(),
            Expect::Refused,
        ),
        (
            "10,000 nested objects".to_string(),
            format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000)).into_bytes(),
            Expect::Refused,
        ),
        (
            "array nested 10,000 deep in a field".to_string(),
            {
                let key = base
                    .as_object()
                    .and_then(|m| m.keys().next().cloned())
                    .unwrap_or_else(|| "x".to_string());
                format!("{{\"{key}\":{}}}", deep(10_000)).into_bytes()
            },
            Expect::Refused,
        ),
        (
            "invalid UTF-8 in a string".to_string(),
            {
                let mut raw = serde_json::to_vec(&base).unwrap();
                // Put 0xff 0xfe inside the first string value (or add one).
                match raw.iter().position(|b| *b == b':') {
                    Some(colon) if raw.get(colon + 1) == Some(&b'"') => {
                        raw.splice(colon + 2..colon + 2, [0xff, 0xfe]);
                        raw
                    }
                    _ => b"{\"x\":\"\xff\xfe\"}".to_vec(),
                }
            },
            Expect::Refused,
        ),
        (
            "oversized body (1 MiB)".to_string(),
            format!("{{\"x\":\"{}\"}}", "y".repeat(1 << 20)).into_bytes(),
            Expect::Refused,
        ),
        (
            "truncated JSON".to_string(),
            {
                let raw = serde_json::to_vec(&base).unwrap();
                raw[..raw.len() / 2].to_vec()
            },
            Expect::Refused,
        ),
        ("array body".to_string(), b"[]".to_vec(), Expect::Refused),
        ("null body".to_string(), b"null".to_vec(), Expect::Refused),
        (
            "number body".to_string(),
            b"1e400".to_vec(),
            Expect::Refused,
        ),
        (
            "string body".to_string(),
            b"\"go\"".to_vec(),
            Expect::Refused,
        ),
    ];
    // A command without a body takes `{}`; one with fields refuses unknown
    // ones, and `{}` unless all of them are optional.
    if base.as_object().is_some_and(|m| !m.is_empty()) {
        let mut b = base.clone();
        b["lead_agency"] = json!("police-helsinki");
        out.push((
            "unknown field".to_string(),
            serde_json::to_vec(&b).unwrap(),
            Expect::Refused,
        ));
        if !all_optional {
            out.push(("empty object".to_string(), b"{}".to_vec(), Expect::Refused));
        }
    }
    out
}

/// The bad inputs for one endpoint.
fn inputs(e: &Endpoint) -> Vec<(String, Vec<u8>, Expect)> {
    let mut out = body_inputs(&e.body, e.all_optional);
    let mut all = Vec::new();
    leaves(&e.body, String::new(), &mut all);
    for (path, leaf) in all {
        for (label, value) in leaf_values(&leaf) {
            if label == "empty string" && e.optional.contains(&path.as_str()) {
                continue;
            }
            let raw = match value {
                Ok(v) => serde_json::to_string(&replace(&e.body, &path, v)).unwrap(),
                Err(text) => serde_json::to_string(&replace(&e.body, &path, json!(RAW)))
                    .unwrap()
                    .replace(&serde_json::to_string(RAW).unwrap(), text),
            };
            out.push((
                format!("{path}: {label}"),
                raw.into_bytes(),
                Expect::Names(path.clone()),
            ));
        }
    }
    out
}

async fn send(v: &Verkosto, e: &Endpoint, body: Vec<u8>) -> anyhow::Result<(u16, Value)> {
    let mut attempts = 0;
    loop {
        let sent = v
            .http()
            .request(e.method.clone(), v.url(&e.path))
            .bearer_auth(&e.token)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
        attempts += 1;
        match sent {
            Ok(r) => return verkosto_e2e::answer(r).await,
            // The server answers 413 as soon as the body passes the limit
            // and closes; a client still writing a large body may see only
            // the broken pipe, on a busy machine. Such a write is tried again.
            Err(err) if body.len() > 64 * 1024 && attempts < 5 => {
                eprintln!("{} {}: {err}; trying again", e.method, e.path);
            }
            Err(err) => return Err(err.into()),
        }
    }
}

fn in_hours(hours: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::hours(hours))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A case with a record, a proposed plan, a grant, a meeting and a task,
/// and one accepted body for each write endpoint.
async fn endpoints(v: &Verkosto) -> Vec<Endpoint> {
    let c = v
        .case_with_network(json!({ "pseudonym": "I-1", "languages": ["ro"] }))
        .await;
    let c2 = v
        .case_with_network(json!({ "pseudonym": "I-2", "languages": ["fi"] }))
        .await;
    let admin = v.token("admin").await.unwrap();
    let case = &c.id;
    let ok = |(status, body): (u16, Value)| {
        assert!((200..300).contains(&status), "{status} {body}");
        body
    };
    let plan = json!({ "goals": ["A safe place to live"], "measures": [{ "id": "m1", "category": "health",
        "responsible_agency": "health-hus", "description": "Health check", "due": "2030-12-01" }] });
    ok(
        v.put(&c.fiona, &format!("/api/v1/cases/{case}/plan/draft"), &plan)
            .await
            .unwrap(),
    );
    ok(v.post(
        &c.fiona,
        &format!("/api/v1/cases/{case}/plan/draft/propose"),
        &json!({}),
    )
    .await
    .unwrap());
    let grant = json!({ "recipient": "police-helsinki", "categories": ["narrative", "legal"],
        "purpose": "criminal_process", "valid_until": null,
        "obtained": { "method": "written", "language": "ro", "interpreter": "booked interpreter", "grantor": "self" } });
    let grant_id = ok(v
        .post(
            &c.fiona,
            &format!("/api/v1/cases/{case}/consent/grants"),
            &grant,
        )
        .await
        .unwrap())["grant_id"]
        .as_str()
        .unwrap()
        .to_string();
    let meeting = json!({ "title": "Network meeting", "starts_at": in_hours(48), "ends_at": in_hours(49),
        "location": "Room 3", "participants": ["health-hus"], "client_attends": true,
        "interpreter_language": "ro", "agenda": ["Housing"], "lead_time_override_reason": null });
    let meeting_id = ok(v
        .post(
            &c.fiona,
            &format!("/api/v1/cases/{case}/meetings"),
            &meeting,
        )
        .await
        .unwrap())["id"]
        .as_str()
        .unwrap()
        .to_string();
    let task = json!({ "description": "Arrange housing", "category": "social", "assignee": "health-hus", "due": "2030-01-01" });
    let task_id = ok(v
        .post(&c.fiona, &format!("/api/v1/cases/{case}/tasks"), &task)
        .await
        .unwrap())["id"]
        .as_str()
        .unwrap()
        .to_string();

    let e = |method: Method, path: String, token: &str, body: Value| Endpoint {
        method,
        path,
        token: token.to_string(),
        body,
        optional: &[],
        all_optional: false,
    };
    let all_optional = |e: Endpoint| Endpoint {
        all_optional: true,
        ..e
    };
    let m = format!("/api/v1/meetings/{meeting_id}");
    vec![
        e(
            Method::POST,
            "/api/v1/agencies".into(),
            &admin,
            verkosto_e2e::agency("ngo-new", "ngo"),
        ),
        e(
            Method::POST,
            "/api/v1/users".into(),
            &admin,
            json!({ "id": "newuser", "agency": "health-hus", "roles": ["liaison"], "display_name": "New" }),
        ),
        Endpoint {
            optional: &["interpreter_language"],
            ..e(
                Method::POST,
                "/api/v1/cases".into(),
                &c.fiona,
                json!({ "pseudonym": "A-1027", "languages": ["ro", "en"], "interpreter_language": "ro",
                    "flags": { "minor": false, "safety_risk": true } }),
            )
        },
        all_optional(e(
            Method::PUT,
            format!("/api/v1/cases/{case}/flags"),
            &c.fiona,
            json!({ "minor": true, "safety_risk": true }),
        )),
        e(
            Method::POST,
            format!("/api/v1/cases/{case}/members"),
            &c.fiona,
            json!({ "agency": "migri", "purpose": "residence permit" }),
        ),
        e(
            Method::POST,
            format!("/api/v1/cases/{case}/records"),
            &c.hanna,
            json!({ "category": "health", "body": "Seen at the clinic" }),
        ),
        // On a case whose plan has no version pending, so it is editable.
        e(
            Method::PUT,
            format!("/api/v1/cases/{}/plan/draft", c2.id),
            &c.fiona,
            plan,
        ),
        e(
            Method::POST,
            format!("/api/v1/cases/{case}/plan/draft/propose"),
            &c.fiona,
            json!({}),
        ),
        e(
            Method::POST,
            format!("/api/v1/cases/{case}/plan/versions/1/approve"),
            &c.hanna,
            json!({}),
        ),
        e(
            Method::POST,
            format!("/api/v1/cases/{case}/invitations/accept"),
            &c.hanna,
            json!({}),
        ),
        e(
            Method::POST,
            format!("/api/v1/cases/{case}/plan/versions/1/request-changes"),
            &c.hanna,
            json!({ "comment": "Two checks, please" }),
        ),
        e(
            Method::POST,
            format!("/api/v1/cases/{case}/plan/versions/1/client-agreement"),
            &c.fiona,
            json!({ "method": "verbal", "language": "ro", "interpreter": "booked interpreter" }),
        ),
        e(
            Method::POST,
            format!("/api/v1/cases/{case}/consent/grants"),
            &c.fiona,
            grant,
        ),
        e(
            Method::POST,
            format!("/api/v1/cases/{case}/consent/grants/{grant_id}/withdraw"),
            &c.fiona,
            json!({ "reason": "the client asked" }),
        ),
        e(
            Method::POST,
            format!("/api/v1/cases/{case}/consent/refusals"),
            &c.fiona,
            json!({ "agency": "police-helsinki", "categories": ["health"] }),
        ),
        e(
            Method::POST,
            format!("/api/v1/cases/{case}/consent/statutory"),
            &c.fiona,
            json!({ "recipient": "police-helsinki", "categories": ["legal"],
                "law_reference": "Criminal Investigation Act 805/2011", "valid_until": null }),
        ),
        Endpoint {
            optional: &["lead_time_override_reason"],
            ..e(
                Method::POST,
                format!("/api/v1/cases/{case}/meetings"),
                &c.fiona,
                meeting,
            )
        },
        e(
            Method::POST,
            format!("{m}/reschedule"),
            &c.fiona,
            json!({ "starts_at": in_hours(72), "ends_at": in_hours(73), "reason": "room taken" }),
        ),
        e(
            Method::POST,
            format!("{m}/cancel"),
            &c.fiona,
            json!({ "reason": "room taken" }),
        ),
        e(
            Method::POST,
            format!("{m}/interpreter"),
            &c.fiona,
            json!({ "status": "booked" }),
        ),
        Endpoint {
            optional: &["comment"],
            ..e(
                Method::POST,
                format!("{m}/rsvp"),
                &c.hanna,
                json!({ "response": "accept", "comment": "I'll bring the report" }),
            )
        },
        e(
            Method::POST,
            format!("{m}/attendance"),
            &c.fiona,
            json!({ "present": ["health-hus"], "client_present": true }),
        ),
        all_optional(e(
            Method::PUT,
            format!("{m}/minutes"),
            &c.fiona,
            json!({ "notes": [{ "category": "health", "text": "Doing better" }], "decisions": ["Keep going"],
                "action_items": [{ "id": "a1", "description": "Book a doctor", "category": "health",
                    "assignee": "health-hus", "due": "2030-01-01" }] }),
        )),
        e(
            Method::POST,
            format!("{m}/minutes/publish"),
            &c.fiona,
            json!({}),
        ),
        e(
            Method::POST,
            format!("{m}/minutes/approve"),
            &c.hanna,
            json!({}),
        ),
        e(
            Method::POST,
            format!("/api/v1/tasks/{task_id}/accept"),
            &c.hanna,
            json!({}),
        ),
        e(
            Method::POST,
            format!("/api/v1/cases/{case}/tasks"),
            &c.fiona,
            task,
        ),
        e(
            Method::POST,
            format!("/api/v1/tasks/{task_id}/decline"),
            &c.hanna,
            json!({ "reason": "no capacity" }),
        ),
        all_optional(e(
            Method::POST,
            format!("/api/v1/tasks/{task_id}/complete"),
            &c.hanna,
            json!({ "note": "housing arranged" }),
        )),
        e(
            Method::POST,
            format!("/api/v1/tasks/{task_id}/reassign"),
            &c.fiona,
            json!({ "assignee": "police-helsinki" }),
        ),
        e(
            Method::POST,
            "/api/v1/webhooks".into(),
            &c.fiona,
            json!({ "url": "https://hooks.example.org/verkosto" }),
        ),
    ]
}

both_modes!(
    every_write_endpoint_refuses_bad_input_with_a_4xx_problem,
    |mode| async move {
        // Hundreds of requests at once from one user: the rate limits
        // (tests/limits.rs) would answer before the checks tested here.
        let mut flags = vec!["--demo", "--demo-case", "off"];
        flags.extend(verkosto_e2e::NO_RATE_LIMITS);
        let v = Verkosto::start_with(mode, &flags).await.unwrap();
        let endpoints = endpoints(&v).await;
        let log = v.log().await.unwrap();
        let head_before = read_head(&log).await;

        let mut tried = 0usize;
        let mut failures = Vec::new();
        for e in &endpoints {
            for (label, body, expect) in inputs(e) {
                tried += 1;
                let what = format!("{} {} {label}", e.method, e.path);
                match send(&v, e, body).await {
                    Err(err) => failures.push(format!("{what}: {err:#}")),
                    Ok((status, answer)) if !(400..500).contains(&status) => {
                        failures.push(format!("{what}: {status} {answer}"))
                    }
                    Ok((_, answer)) => {
                        if let Expect::Names(field) = expect {
                            let named = answer["field"].as_str() == Some(field.as_str())
                                || answer["detail"]
                                    .as_str()
                                    .is_some_and(|d| d.starts_with(&format!("{field}:")));
                            if !named {
                                failures.push(format!("{what}: does not name {field}: {answer}"));
                            }
                        }
                    }
                }
            }
        }
        println!(
            "{mode:?}: {tried} bad inputs over {} write endpoints",
            endpoints.len()
        );
        assert!(
            failures.is_empty(),
            "{} of {tried} bad inputs were not refused cleanly:\n{}",
            failures.len(),
            failures.join("\n")
        );
        // Nothing of the refused writes reached the log.
        assert_eq!(read_head(&log).await, head_before);
        v.stop().await;
    }
);

async fn read_head(log: &verkosto_eventlog::EventLog) -> i64 {
    log.count().await.unwrap()
}
