//! Consent that cannot fail open, at the edges a review found: meeting
//! headers are client data, a removed agency is out of every service at
//! once, an event a process cannot read withholds its case until it is
//! read or resolved, and minors consent only to what the case allows.

use std::time::Duration;

use serde_json::{json, Value};
use verkosto_e2e::{both_modes, DemoCase, Mode, Split, Verkosto};

fn in_hours(h: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::hours(h))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A meeting of the case, police and health care taking part.
async fn schedule(v: &Verkosto, c: &DemoCase, title: &str) -> String {
    let body = json!({
        "title": title, "starts_at": in_hours(72), "ends_at": in_hours(73),
        "location": "LEAKPLACE", "participants": ["health-hus", "police-helsinki"],
        "client_attends": true, "interpreter_language": null, "agenda": ["LEAKAGENDA"],
        "lead_time_override_reason": null,
    });
    let (status, answer) = v
        .post(&c.fiona, &format!("/api/v1/cases/{}/meetings", c.id), &body)
        .await
        .unwrap();
    assert_eq!(status, 201, "{answer}");
    answer["id"].as_str().unwrap().to_string()
}

/// A meeting with the police taking part, and a task for them.
async fn meeting_and_task(v: &Verkosto, c: &DemoCase, title: &str) -> (String, String) {
    let meeting = schedule(v, c, title).await;
    let task =
        json!({ "description": "Interview", "category": "legal", "assignee": "police-helsinki" });
    let task = ok(v, &c.fiona, &format!("/api/v1/cases/{}/tasks", c.id), task).await;
    (meeting, task["id"].as_str().unwrap().to_string())
}

async fn ok(v: &Verkosto, token: &str, path: &str, body: Value) -> Value {
    let (status, answer) = v.post(token, path, &body).await.unwrap();
    assert!(status < 300, "{path}: {status} {answer}");
    answer
}

both_modes!(meeting_headers_are_client_data, |mode| async move {
    let v = Verkosto::start_demo(mode).await.unwrap();
    let c = v
        .case_with_network(json!({ "pseudonym": "F-1", "languages": ["fi"], "flags": { "minor": false, "safety_risk": true } }))
        .await;
    let id = schedule(&v, &c, "LEAKTITLE").await;
    let meeting = format!("/api/v1/meetings/{id}");
    ok(
        &v,
        &c.hanna,
        &format!("{meeting}/rsvp"),
        json!({ "response": "accept", "comment": "LEAKHEALTHRSVP" }),
    )
    .await;
    ok(
        &v,
        &c.fiona,
        &format!("{meeting}/reschedule"),
        json!({ "starts_at": in_hours(96), "ends_at": in_hours(97), "reason": "LEAKRESCHEDULE" }),
    )
    .await;
    ok(
        &v,
        &c.fiona,
        &format!("{meeting}/attendance"),
        json!({ "present": ["assistance-system"], "client_present": false }),
    )
    .await;
    let other = schedule(&v, &c, "LEAKOTHER").await;
    ok(
        &v,
        &c.fiona,
        &format!("/api/v1/meetings/{other}/cancel"),
        json!({ "reason": "LEAKCANCEL" }),
    )
    .await;

    // The police have no consent at all: nothing of what was written shows.
    let paths = [
        meeting.clone(),
        format!("/api/v1/meetings/{other}"),
        format!("/api/v1/meetings?case={}", c.id),
        format!("{meeting}/minutes"),
    ];
    for path in &paths {
        let (status, body) = v.get(&c.liisa, path).await.unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        assert!(!body.to_string().contains("LEAK"), "{path}: {body}");
        if !path.ends_with("/minutes") {
            assert!(body["withheld"].as_u64().unwrap() > 0, "{path}: {body}");
        }
        assert_eq!(body["consent_fresh"], true);
    }
    let (_, police) = v.get(&c.liisa, &meeting).await.unwrap();
    assert_eq!(police["title"], Value::Null);
    assert_eq!(police["attendance"]["client_present"], Value::Null);
    assert_eq!(police["rsvps"][0]["comment"], Value::Null);

    // Health care sees its own answer's comment (it wrote it), nothing else.
    let (_, health) = v.get(&c.hanna, &meeting).await.unwrap();
    assert_eq!(health["rsvps"][0]["comment"], "LEAKHEALTHRSVP", "{health}");
    assert_eq!(health["title"], Value::Null);

    // With consent for `meetings`, the police read the header.
    ok(
        &v,
        &c.fiona,
        &format!("/api/v1/cases/{}/consent/grants", c.id),
        json!({
        "recipient": "police-helsinki", "categories": ["meetings"], "purpose": "network meetings",
        "obtained": { "method": "written", "language": "fi" } }),
    )
    .await;
    let (_, police) = v.get(&c.liisa, &meeting).await.unwrap();
    assert_eq!(police["title"], "LEAKTITLE");
    assert_eq!(police["reschedules"][0]["reason"], "LEAKRESCHEDULE");
    assert_eq!(police["attendance"]["client_present"], false);
    // The place stays contact data under the safety rule.
    assert!(!police.to_string().contains("LEAKPLACE"), "{police}");
    v.stop().await;
});

/// Every endpoint that names the case, read by `token`: (path, status).
async fn case_reads(
    v: &Verkosto,
    token: &str,
    case: &str,
    meeting: &str,
    task: &str,
) -> Vec<(String, u16)> {
    let mut answers = Vec::new();
    for path in [
        format!("/api/v1/cases/{case}"),
        format!("/api/v1/cases/{case}/records"),
        format!("/api/v1/cases/{case}/plan"),
        format!("/api/v1/cases/{case}/consent"),
        format!("/api/v1/meetings?case={case}"),
        format!("/api/v1/meetings/{meeting}"),
        format!("/api/v1/meetings/{meeting}/minutes"),
        format!("/api/v1/tasks/{task}"),
    ] {
        let (status, _) = v.get(token, &path).await.unwrap();
        answers.push((path, status));
    }
    answers
}

both_modes!(
    a_removed_agency_is_out_of_every_service_at_once,
    |mode| async move {
        let v = Verkosto::start_demo(mode).await.unwrap();
        let c = v
            .case_with_network(json!({ "pseudonym": "F-2", "languages": ["fi"] }))
            .await;
        let (meeting, task) = meeting_and_task(&v, &c, "Removal").await;
        for (path, status) in case_reads(&v, &c.liisa, &c.id, &meeting, &task).await {
            assert_eq!(status, 200, "{path} before the removal");
        }
        let (status, _) = v
            .delete(
                &c.fiona,
                &format!("/api/v1/cases/{}/members/police-helsinki", c.id),
            )
            .await
            .unwrap();
        assert_eq!(status, 204);
        // At once: no waiting, no retry.
        for (path, status) in case_reads(&v, &c.liisa, &c.id, &meeting, &task).await {
            assert_eq!(status, 404, "{path} right after the removal");
        }
        let (_, inbox) = v.get(&c.liisa, "/api/v1/tasks").await.unwrap();
        assert!(!inbox.to_string().contains(&c.id), "{inbox}");
        v.stop().await;
    }
);

/// Separate processes, and the stream down when the agency is removed: the
/// meetings and tasks services cannot hear of it, and still answer 404,
/// because a view that may be behind takes its network from the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removal_reaches_every_service_while_the_stream_is_down() {
    let mut split = Split::start(&["relay", "cases", "consent", "meetings", "tasks"])
        .await
        .unwrap();
    let fiona = split.token("fiona").await.unwrap();
    let liisa = split.token("liisa").await.unwrap();
    let case = split
        .case_with_member(&fiona, "F-3", "police-helsinki", &liisa)
        .await
        .unwrap();
    // The meetings and tasks services learn of the network from the stream.
    let list = format!("/api/v1/meetings?case={case}");
    let mut member = false;
    for _ in 0..100 {
        if split.get("meetings", &liisa, &list).await.unwrap().0 == 200 {
            member = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(member, "the meetings service saw the police join");
    let (status, task) = split
        .post("tasks", &fiona, &format!("/api/v1/cases/{case}/tasks"),
              &json!({ "description": "Interview", "category": "legal", "assignee": "police-helsinki" }))
        .await
        .unwrap();
    assert_eq!(status, 201, "{task}");
    let task = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());
    assert_eq!(split.get("tasks", &liisa, &task).await.unwrap().0, 200);

    split.kill9("relay").await.unwrap();
    let (status, _) = split
        .delete_as(
            "cases",
            &fiona,
            &format!("/api/v1/cases/{case}/members/police-helsinki"),
        )
        .await
        .unwrap();
    assert_eq!(status, 204);
    let (status, body) = split.get("meetings", &liisa, &list).await.unwrap();
    assert_eq!(status, 404, "{body}");
    let (status, body) = split.get("tasks", &liisa, &task).await.unwrap();
    assert_eq!(status, 404, "{body}");
    // The lead still reads, everything withheld: its view is behind.
    let (status, body) = split.get("meetings", &fiona, &list).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["consent_fresh"], false);
    split.stop().await;
}

both_modes!(
    an_unreadable_consent_event_withholds_its_case_until_resolved,
    |mode| async move {
        let v = Verkosto::start_demo(mode).await.unwrap();
        let c = v
            .case_with_network(json!({ "pseudonym": "F-4", "languages": ["fi"] }))
            .await;
        let grants = format!("/api/v1/cases/{}/consent/grants", c.id);
        let obtained = json!({ "method": "written", "language": "fi" });
        ok(&v, &c.fiona, &grants, json!({ "recipient": "health-hus", "categories": ["health"], "purpose": "care", "obtained": obtained })).await;
        ok(
            &v,
            &c.fiona,
            &format!("/api/v1/cases/{}/records", c.id),
            json!({ "category": "health", "body": "LEAKHEALTH" }),
        )
        .await;
        let records = format!("/api/v1/cases/{}/records", c.id);
        let (_, before) = v.get(&c.hanna, &records).await.unwrap();
        assert!(before.to_string().contains("LEAKHEALTH"));

        // A newer version, mid-upgrade, records a withdrawal this one cannot read.
        let log = v.log().await.unwrap();
        let event_id = unreadable_withdrawal(&log, &c.id).await;

        // Every read of the case withholds everything, and says so.
        let (status, stale) = until(
            || v.get(&c.hanna, &records),
            |_, b| b["consent_fresh"] == false,
        )
        .await;
        assert_eq!(status, 200, "{stale}");
        assert_eq!(stale["consent_fresh"], false, "the view went stale");
        assert!(!stale.to_string().contains("LEAKHEALTH"), "{stale}");
        assert_eq!(stale["withheld"], 1);
        // Consent changes wait for a view they can trust.
        let (status, body) = v
        .post(&c.fiona, &grants, &json!({ "recipient": "police-helsinki", "categories": ["legal"], "purpose": "p", "obtained": obtained }))
        .await
        .unwrap();
        assert_eq!(status, 503, "{body}");
        // Operators see it.
        let ready: Value = v.get_public("/readyz").await.unwrap();
        assert_eq!(ready["stale_cases"], json!([c.id]), "{ready}");
        assert_eq!(ready["unreadable_events"][0]["event_id"], event_id.as_str());
        let metrics = v
            .http()
            .get(v.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("verkosto_guard_unreadable_events 1"),
            "{metrics}"
        );

        // An operator decides, on the command line, and it is logged.
        let url = v.database_url.clone();
        let out = verkosto_testkit::verkosto()
            .args([
                "guard",
                "resolve",
                "--event",
                &event_id,
                "--reason",
                "the withdrawal is recorded again by hand",
                "--operator",
                "oona",
            ])
            .args(store_args(mode, &url))
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let resolved = log
            .read_stream(verkosto_guard::OPERATOR_STREAM, &c.id)
            .await
            .unwrap();
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].actor.user, "oona");
        let (_, fresh) = until(
            || v.get(&c.hanna, &records),
            |_, b| b["consent_fresh"] == true,
        )
        .await;
        assert_eq!(
            fresh["consent_fresh"], true,
            "resolved: the case reads again"
        );
        v.stop().await;
    }
);

/// Appends a withdrawal as a newer version might write it (schema 9, a
/// shape this build cannot read); returns its event id.
async fn unreadable_withdrawal(log: &verkosto_eventlog::EventLog, case: &str) -> String {
    let meta = verkosto_eventlog::CommandMeta::new(verkosto_eventlog::Actor {
        user: "fiona".into(),
        agency: "assistance-system".into(),
    });
    let event = verkosto_eventlog::NewEvent {
        event_type: "ConsentWithdrawn".into(),
        schema_version: 9,
        payload: json!({ "ConsentWithdrawn": { "grant_ref": { "id": "?" } } }),
        sealing: None,
    };
    let appended = log
        .append(
            "consent",
            case,
            verkosto_eventlog::ExpectedVersion::Any,
            vec![event],
            &meta,
            None,
        )
        .await
        .unwrap();
    appended.events[0].event_id.to_string()
}

/// Polls `read` until `done` holds of its answer (5 s at most).
async fn until<F, Fut>(mut read: F, done: impl Fn(u16, &Value) -> bool) -> (u16, Value)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<(u16, Value)>>,
{
    let mut last = (0, Value::Null);
    for _ in 0..100 {
        last = read().await.unwrap();
        if done(last.0, &last.1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

/// Separate processes: the cases process withholds the case, the consent
/// process refuses changes to it, each says so on `/readyz`, until an
/// operator resolves the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn separate_processes_withhold_a_case_with_an_unreadable_event() {
    let split = Split::start(&["relay", "cases", "consent"]).await.unwrap();
    let fiona = split.token("fiona").await.unwrap();
    let hanna = split.token("hanna").await.unwrap();
    let case = split
        .case_with_member(&fiona, "F-8", "health-hus", &hanna)
        .await
        .unwrap();
    let grants = format!("/api/v1/cases/{case}/consent/grants");
    let grant = json!({ "recipient": "health-hus", "categories": ["health"], "purpose": "care",
                        "obtained": { "method": "written", "language": "fi" } });
    let (status, body) =
        verkosto_e2e::until_current(|| split.post("consent", &fiona, &grants, &grant))
            .await
            .unwrap();
    assert_eq!(status, 201, "{body}");
    let records = format!("/api/v1/cases/{case}/records");
    split
        .post(
            "cases",
            &fiona,
            &records,
            &json!({ "category": "health", "body": "LEAKHEALTH" }),
        )
        .await
        .unwrap();
    let (_, read) = split.get("cases", &hanna, &records).await.unwrap();
    assert!(read.to_string().contains("LEAKHEALTH"), "{read}");

    let log = verkosto_eventlog::EventLog::connect(&split.database_url)
        .await
        .unwrap();
    let event_id = unreadable_withdrawal(&log, &case).await;
    let (_, read) = until(
        || split.get("cases", &hanna, &records),
        |_, b| b["consent_fresh"] == false,
    )
    .await;
    assert_eq!(read["consent_fresh"], false, "{read}");
    assert!(!read.to_string().contains("LEAKHEALTH"), "{read}");
    let (status, body) = until(
        || split.post("consent", &fiona, &grants, &grant),
        |s, _| s == 503,
    )
    .await;
    assert_eq!(status, 503, "{body}");
    for target in ["cases", "consent"] {
        let ready: Value = reqwest::get(format!("{}/readyz", split.base(target)))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(ready["stale_cases"], json!([case]), "{target}: {ready}");
    }

    let out = verkosto_testkit::verkosto()
        .args([
            "guard",
            "resolve",
            "--event",
            &event_id,
            "--reason",
            "recorded again by hand",
            "--operator",
            "oona",
        ])
        .args(["--database-url", &split.database_url])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, read) = until(
        || split.get("cases", &hanna, &records),
        |_, b| b["consent_fresh"] == true,
    )
    .await;
    assert_eq!(read["consent_fresh"], true, "{read}");
    // Consent changes still wait: no version here can fold the record.
    let (status, body) = split
        .post("consent", &fiona, &grants, &grant)
        .await
        .unwrap();
    assert_eq!(status, 503, "{body}");
    split.stop().await;
}

/// The store flags for the command line, as the server under test has them.
fn store_args(mode: Mode, url: &str) -> Vec<String> {
    match mode {
        Mode::Distributed => vec!["--database-url".into(), url.into()],
        Mode::Embedded => {
            let dir = url
                .trim_start_matches("sqlite://")
                .trim_end_matches("/verkosto.db")
                .to_string();
            vec!["--data-dir".into(), dir]
        }
    }
}

both_modes!(
    minors_consent_only_to_what_the_case_allows,
    |mode| async move {
        let v = Verkosto::start_demo(mode).await.unwrap();
        let c = v
            .case_with_network(
                json!({ "pseudonym": "F-5", "languages": ["fi"], "flags": { "minor": true } }),
            )
            .await;
        let grants = format!("/api/v1/cases/{}/consent/grants", c.id);
        let by = |grantor: &str, categories: Value| {
            json!({ "recipient": "health-hus", "categories": categories, "purpose": "care",
                "obtained": { "method": "verbal", "language": "fi", "grantor": grantor } })
        };
        let (status, body) = v
            .post(&c.fiona, &grants, &by("self", json!(["health"])))
            .await
            .unwrap();
        assert_eq!(status, 422, "{body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .starts_with("obtained.grantor"),
            "{body}"
        );

        // The lead records that the child may consent to health care.
        let flags = format!("/api/v1/cases/{}/flags", c.id);
        let (status, body) = v
            .put(
                &c.fiona,
                &flags,
                &json!({ "minor": true, "minor_may_consent": ["health"] }),
            )
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        let (status, body) = v
            .post(&c.fiona, &grants, &by("self", json!(["health"])))
            .await
            .unwrap();
        assert_eq!(status, 201, "{body}");
        let (status, body) = v
            .post(&c.fiona, &grants, &by("self", json!(["health", "legal"])))
            .await
            .unwrap();
        assert_eq!(status, 422, "{body}");
        assert!(body["detail"].as_str().unwrap().contains("legal"), "{body}");

        // A guardian's consent ends the day the client comes of age.
        let (status, _) = v
            .post(&c.fiona, &grants, &by("guardian", json!(["legal"])))
            .await
            .unwrap();
        assert_eq!(status, 201);
        let matrix = format!("/api/v1/cases/{}/consent", c.id);
        let (_, m) = v.get(&c.hanna, &matrix).await.unwrap();
        assert_eq!(m["matrix"]["health-hus"]["legal"]["allowed"], true, "{m}");
        let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).date_naive();
        let (status, body) = v
        .put(&c.fiona, &flags, &json!({ "minor": true, "minor_may_consent": ["health"], "comes_of_age": yesterday }))
        .await
        .unwrap();
        assert_eq!(status, 200, "{body}");
        let (_, m) = v.get(&c.hanna, &matrix).await.unwrap();
        assert_eq!(m["matrix"]["health-hus"]["legal"]["allowed"], false, "{m}");
        assert_eq!(m["matrix"]["health-hus"]["legal"]["basis"], "expired");
        // Come of age, the client's own consent counts for every category.
        assert_eq!(m["matrix"]["health-hus"]["health"]["allowed"], true, "{m}");
        // And the lead facilitator is asked to ask the client again.
        let coming_of_age =
            |t: &Value| t["source"]["kind"] == "coming_of_age" && t["case_id"] == c.id.as_str();
        let (_, inbox) = until(
            || v.get(&c.fiona, "/api/v1/tasks"),
            |_, b| {
                b["tasks"]
                    .as_array()
                    .is_some_and(|ts| ts.iter().any(coming_of_age))
            },
        )
        .await;
        let asked = inbox["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| coming_of_age(t));
        let asked = asked.unwrap_or_else(|| panic!("a task to ask the client again: {inbox}"));
        assert_eq!(asked["assignee"], "assistance-system");
        assert_eq!(asked["due"], yesterday.to_string());

        // Bad input names the field.
        for (body, field) in [
            (
                json!({ "minor": false, "minor_may_consent": ["health"] }),
                "minor_may_consent",
            ),
            (
                json!({ "minor": true, "comes_of_age": "1 April" }),
                "comes_of_age",
            ),
            (
                json!({ "minor": true, "minor_may_consent": ["gossip"] }),
                "minor_may_consent",
            ),
        ] {
            let (status, answer) = v.put(&c.fiona, &flags, &body).await.unwrap();
            assert_eq!(status, 422, "{body}: {answer}");
            assert!(
                answer["detail"].as_str().unwrap().contains(field),
                "{body}: {answer}"
            );
        }
        let (status, answer) = v
        .post(&c.fiona, "/api/v1/cases", &json!({ "pseudonym": "F-6", "languages": ["fi"], "flags": { "minor": false, "minor_may_consent": ["health"] } }))
        .await
        .unwrap();
        assert_eq!(status, 422, "{answer}");
        assert!(
            answer["detail"]
                .as_str()
                .unwrap()
                .starts_with("flags.minor_may_consent"),
            "{answer}"
        );
        v.stop().await;
    }
);

/// Every GET route of the OpenAPI document, by whether it returns client
/// data of a case. A new route fails this test until it is placed here.
const LOGGED: [&str; 13] = [
    "/api/v1/cases/{id}",
    "/api/v1/cases/{id}/consent",
    "/api/v1/cases/{id}/plan",
    "/api/v1/cases/{id}/records",
    "/api/v1/meetings",
    "/api/v1/meetings/{id}",
    "/api/v1/meetings/{id}/minutes",
    "/api/v1/tasks",
    "/api/v1/tasks/{id}",
    "/api/v1/calendar/{agency}.ics",
    // Auditors read no client data, but their reads are logged (marked).
    "/api/v1/audit/cases/{id}/access-log",
    "/api/v1/audit/cases/{id}/consent",
    "/api/v1/audit/cases/{id}/consent/history",
];
/// Routes with no client data: the directory, the caller's own settings,
/// the integrity check (hashes), and the lists of an agency's cases and
/// invitations (a pseudonym stands for the client and names no one).
const NOT_CLIENT_DATA: [&str; 9] = [
    "/api/v1/agencies",
    "/api/v1/users",
    "/api/v1/audit/verify",
    // Case ids, agencies and dates: which case a pseudonym names, and when
    // closed cases are erased.
    "/api/v1/audit/cases",
    "/api/v1/audit/retention",
    "/api/v1/calendar/feed-tokens",
    "/api/v1/cases",
    "/api/v1/invitations",
    "/api/v1/webhooks",
];

async fn access_records(
    log: &verkosto_eventlog::EventLog,
    case: &str,
) -> Vec<(String, String, i64)> {
    sqlx::query_as(
        "SELECT service, resource, auditor FROM access_log WHERE case_id = $1 ORDER BY id",
    )
    .bind(case)
    .fetch_all(log.db().reader())
    .await
    .unwrap()
}

both_modes!(
    every_route_with_client_data_leaves_an_access_record,
    |mode| async move {
        let v = Verkosto::start_demo(mode).await.unwrap();
        let c = v
            .case_with_network(json!({ "pseudonym": "F-7", "languages": ["fi"] }))
            .await;
        let (meeting, task) = meeting_and_task(&v, &c, "Routes").await;
        let feed = v
            .post(&c.liisa, "/api/v1/calendar/feed-tokens", &json!({}))
            .await
            .unwrap()
            .1;
        let feed_token = feed["token"].as_str().expect("a feed token").to_string();
        let aino = v.token("aino").await.unwrap();

        let doc: Value = v.get_public("/api/v1/openapi.json").await.unwrap();
        let mut gets: Vec<String> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, ops)| ops.get("get").is_some())
            .map(|(path, _)| path.clone())
            .collect();
        gets.sort();
        for path in &gets {
            assert!(
                LOGGED.contains(&path.as_str()) || NOT_CLIENT_DATA.contains(&path.as_str()),
                "{path}: does it return client data? Put it in LOGGED or NOT_CLIENT_DATA"
            );
        }
        let log = v.log().await.unwrap();
        for route in LOGGED {
            assert!(
                gets.iter().any(|g| g == route),
                "{route} is in the OpenAPI document"
            );
            let (token, path) = match route {
                "/api/v1/meetings" => (&c.liisa, format!("/api/v1/meetings?case={}", c.id)),
                "/api/v1/tasks" => (&c.liisa, "/api/v1/tasks".to_string()),
                "/api/v1/calendar/{agency}.ics" => (
                    &c.liisa,
                    format!("/api/v1/calendar/police-helsinki.ics?token={feed_token}"),
                ),
                r if r.starts_with("/api/v1/audit/") => (&aino, r.replace("{id}", &c.id)),
                r if r.starts_with("/api/v1/meetings/") => (&c.liisa, r.replace("{id}", &meeting)),
                r if r.starts_with("/api/v1/tasks/") => (&c.liisa, r.replace("{id}", &task)),
                r => (&c.liisa, r.replace("{id}", &c.id)),
            };
            let before = access_records(&log, &c.id).await.len();
            let r = v
                .http()
                .get(v.url(&path))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{path}");
            // Durable before the answer left: already there, no waiting.
            let after = access_records(&log, &c.id).await;
            assert_eq!(
                after.len(),
                before + 1,
                "{path} left one access record: {after:?}"
            );
            let (_, _, auditor) = after.last().unwrap();
            assert_eq!(
                *auditor == 1,
                route.starts_with("/api/v1/audit/"),
                "{path}: {after:?}"
            );
        }
        v.stop().await;
    }
);

/// libfaketime's preload library (scripts/test.sh installs it): a test of
/// clock skew that cannot skew a clock fails, it does not skip.
pub fn faketime_lib() -> String {
    let lib = std::env::var("VERKOSTO_FAKETIME_LIB").unwrap_or_default();
    assert!(
        std::path::Path::new(&lib).exists(),
        "libfaketime is needed (VERKOSTO_FAKETIME_LIB={lib:?}); scripts/test.sh installs it"
    );
    lib
}

/// Grants and withdraws through the consent process, reading through the
/// cases process after each: `rounds` withdrawals in all, on `workers`
/// cases at once. Each process trusts its own clock (`--clock-sync
/// system`), which faketime sets `consent_skew` and `cases_skew` off.
async fn withdrawals_across_skewed_clocks(consent_skew: &str, cases_skew: &str, rounds: usize) {
    let lib = faketime_lib();
    let mut split = Split::start(&["relay"]).await.unwrap();
    for (target, skew) in [("cases", cases_skew), ("consent", consent_skew)] {
        let env = [
            ("LD_PRELOAD", lib.as_str()),
            ("FAKETIME", skew),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ];
        // A load generator (4 writers, 1,500 rounds, retries while a view
        // catches up): the rate limits would answer 429 on a busy machine.
        let mut flags = vec!["--clock-sync", "system"];
        flags.extend(verkosto_e2e::NO_RATE_LIMITS);
        split.spawn_with(target, &flags, &env).await.unwrap();
    }
    let split = std::sync::Arc::new(split);
    let workers = 4;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        let split = split.clone();
        tasks.spawn(async move {
            let fiona = split.token("fiona").await.unwrap();
            let hanna = split.token("hanna").await.unwrap();
            let case = split
                .case_with_member(&fiona, &format!("K-{w}"), "health-hus", &hanna)
                .await
                .unwrap();
            let records = format!("/api/v1/cases/{case}/records");
            let (status, _) = split
                .post("cases", &fiona, &records, &json!({ "category": "health", "body": "LEAKSKEW" }))
                .await
                .unwrap();
            assert_eq!(status, 201);
            let grants = format!("/api/v1/cases/{case}/consent/grants");
            let grant = json!({ "recipient": "health-hus", "categories": ["health"], "purpose": "care",
                                "obtained": { "method": "written", "language": "fi" } });
            for round in 0..rounds / workers {
                let (status, body) = verkosto_e2e::until_current(|| split.post("consent", &fiona, &grants, &grant))
                    .await
                    .unwrap();
                assert_eq!(status, 201, "{body}");
                let id = body["grant_id"].as_str().unwrap();
                // A view that could not catch up on a busy machine says so
                // and withholds; once fresh, the grant shows, whatever the
                // clocks say.
                let (_, read) = until(|| split.get("cases", &hanna, &records), |_, b| b["consent_fresh"] == true).await;
                assert!(read.to_string().contains("LEAKSKEW"), "round {round}: a fresh grant is read: {read}");
                let withdraw = format!("{grants}/{id}/withdraw");
                let (status, body) = split
                    .post("consent", &fiona, &withdraw, &json!({ "reason": "asked" }))
                    .await
                    .unwrap();
                assert_eq!(status, 200, "{body}");
                let (_, read) = split.get("cases", &hanna, &records).await.unwrap();
                assert!(!read.to_string().contains("LEAKSKEW"), "round {round}: read after the withdrawal returned: {read}");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    if let Ok(split) = std::sync::Arc::try_unwrap(split) {
        split.stop().await;
    }
}

/// How many grant-and-withdraw rounds each direction of the skew test
/// makes: by default 1,500, so the two directions check 3,000 reads right
/// after a withdrawal.
fn skew_rounds() -> usize {
    std::env::var("VERKOSTO_SKEW_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_500)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_withdrawal_holds_when_the_consent_clock_runs_ahead() {
    withdrawals_across_skewed_clocks("+5s", "-5s", skew_rounds()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_withdrawal_holds_when_the_consent_clock_runs_behind() {
    withdrawals_across_skewed_clocks("-5s", "+5s", skew_rounds()).await;
}
