//! Tasks end to end, in both modes: made by agreed plans and declined
//! invitations, exactly once however often their events are delivered;
//! the lifecycle and who may act; overdue escalation on the injected clock;
//! consent on descriptions; and signed webhooks to a real receiver.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use verkosto_e2e::{both_modes, Mode, Verkosto};

async fn start(mode: Mode) -> Verkosto {
    Verkosto::start_with(mode, &["--demo", "--demo-case", "off", "--dev-clock"])
        .await
        .unwrap()
}

/// The case these tests share.
async fn case_with_network(v: &Verkosto) -> verkosto_e2e::DemoCase {
    v.case_with_network(json!({ "pseudonym": "T-1", "languages": ["fi"] }))
        .await
}

/// The inbox, polled until `ready` holds (tasks made by reactions arrive
/// shortly after their source; reads never sleep a fixed time).
async fn inbox_until(
    v: &Verkosto,
    token: &str,
    query: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = v
            .get(token, &format!("/api/v1/tasks{query}"))
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        if ready(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "inbox never got there: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn count(body: &Value) -> usize {
    body["tasks"].as_array().unwrap().len()
}

async fn agree_plan(v: &Verkosto, c: &verkosto_e2e::DemoCase) {
    let base = format!("/api/v1/cases/{}/plan", c.id);
    let draft = json!({
        "goals": ["Safety first"],
        "measures": [
            { "id": "m1", "category": "health", "responsible_agency": "health-hus", "description": "Health check", "due": "2030-01-10" },
            { "id": "m2", "category": "legal", "responsible_agency": "police-helsinki", "description": "Hearing", "due": null }
        ]
    });
    assert_eq!(
        v.put(&c.fiona, &format!("{base}/draft"), &draft)
            .await
            .unwrap()
            .0,
        200
    );
    v.post(&c.fiona, &format!("{base}/draft/propose"), &json!({}))
        .await
        .unwrap();
    for token in [&c.fiona, &c.hanna, &c.liisa] {
        v.post(token, &format!("{base}/versions/1/approve"), &json!({}))
            .await
            .unwrap();
    }
    let (_, body) = v
        .post(
            &c.fiona,
            &format!("{base}/versions/1/client-agreement"),
            &json!({ "method": "verbal", "language": "fi" }),
        )
        .await
        .unwrap();
    assert_eq!(body["agreed"], true, "{body}");
}

/// Makes the reactions consumer replay every event from the start (and,
/// distributed, has a new process read the whole stream again), then waits
/// until it has caught up again.
async fn replay_reactions(v: &mut Verkosto) {
    let log = v.log().await.unwrap();
    sqlx::query("DELETE FROM checkpoints WHERE name = 'tasks-reactions'")
        .execute(log.db().writer())
        .await
        .unwrap();
    if v.mode == Mode::Distributed {
        // Without a checkpoint, the new process reads the stream from its start.
        v.kill9().await.unwrap();
        v.spawn_process().await.unwrap();
    }
    let head = log.head_position().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let at: Option<i64> =
            sqlx::query_scalar("SELECT position FROM checkpoints WHERE name = 'tasks-reactions'")
                .fetch_optional(log.db().reader())
                .await
                .unwrap();
        if at.is_some_and(|p| p >= head) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reactions never caught up again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

both_modes!(sources_make_exactly_one_task_each, |mode| async move {
    let mut v = start(mode).await;
    let c = case_with_network(&v).await;
    agree_plan(&v, &c).await;

    // Two measures, two tasks, each with its responsible agency.
    let hanna = inbox_until(&v, &c.hanna, "", |b| count(b) == 1).await;
    assert_eq!(hanna["tasks"][0]["source"]["kind"], "plan_measure");
    assert_eq!(hanna["tasks"][0]["assignee"], "health-hus");
    assert_eq!(hanna["tasks"][0]["due"], "2030-01-10");
    let liisa = inbox_until(&v, &c.liisa, "", |b| count(b) == 1).await;
    assert_eq!(liisa["tasks"][0]["source"]["ref"], format!("{}/m2", c.id));

    // A declined invitation reaches the lead as a task with the reason.
    let matti = v.token("matti").await.unwrap();
    v.post(
        &c.fiona,
        &format!("/api/v1/cases/{}/members", c.id),
        &json!({ "agency": "migri", "purpose": "residence" }),
    )
    .await
    .unwrap();
    v.post(
        &matti,
        &format!("/api/v1/cases/{}/invitations/decline", c.id),
        &json!({ "reason": "not our matter" }),
    )
    .await
    .unwrap();
    let fiona = inbox_until(&v, &c.fiona, "", |b| count(b) == 1).await;
    assert_eq!(fiona["tasks"][0]["source"]["kind"], "invitation_declined");
    assert!(fiona["tasks"][0]["description"]
        .as_str()
        .unwrap()
        .contains("not our matter"));

    // Replaying and redelivering every source event adds nothing.
    replay_reactions(&mut v).await;
    let log = v.log().await.unwrap();
    let tasks: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT stream_id) FROM events WHERE stream_type = 'task'",
    )
    .fetch_one(log.db().reader())
    .await
    .unwrap();
    assert_eq!(tasks, 3);
    let created: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE event_type = 'TaskCreated'")
            .fetch_one(log.db().reader())
            .await
            .unwrap();
    assert_eq!(created, 3);
    assert_eq!(count(&inbox_until(&v, &c.hanna, "", |_| true).await), 1);
    v.stop().await;
});

both_modes!(the_lifecycle_and_who_may_act, |mode| async move {
    let v = start(mode).await;
    let c = case_with_network(&v).await;
    let new_task = |assignee: &str| json!({ "description": "Arrange housing", "category": "social", "assignee": assignee, "due": "2030-01-01" });
    let tasks_path = format!("/api/v1/cases/{}/tasks", c.id);
    let (status, body) = v
        .post(&c.fiona, &tasks_path, &new_task("health-hus"))
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let act = |token: &str, action: &str, body: Value| {
        let (v, id, token, action) = (&v, id.clone(), token.to_string(), action.to_string());
        async move {
            v.post(&token, &format!("/api/v1/tasks/{id}/{action}"), &body)
                .await
                .unwrap()
        }
    };

    // Another member agency: 403. An outsider: 404.
    assert_eq!(act(&c.liisa, "accept", json!({})).await.0, 403);
    let matti = v.token("matti").await.unwrap();
    assert_eq!(act(&matti, "accept", json!({})).await.0, 404);
    assert_eq!(
        v.post(&matti, &tasks_path, &new_task("migri"))
            .await
            .unwrap()
            .0,
        404
    );

    let (status, body) = act(&c.hanna, "accept", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "accepted");
    let (_, mine) = v.get(&c.hanna, "/api/v1/tasks?scope=mine").await.unwrap();
    assert_eq!(count(&mine), 1);
    let (status, body) = act(&c.hanna, "decline", json!({})).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["detail"].as_str().unwrap().starts_with("reason"));
    let (status, body) = act(&c.hanna, "decline", json!({ "reason": "no capacity" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "declined");
    // Declined goes back to the lead, who reassigns it.
    let escalated = inbox_until(&v, &c.fiona, "?status=declined", |b| count(b) == 1).await;
    assert_eq!(escalated["tasks"][0]["escalation"], true);
    assert_eq!(escalated["tasks"][0]["outcome_note"], "no capacity");
    assert_eq!(
        act(
            &c.hanna,
            "reassign",
            json!({ "assignee": "police-helsinki" })
        )
        .await
        .0,
        403
    );
    let (status, body) = act(&c.fiona, "reassign", json!({ "assignee": "migri" })).await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = act(
        &c.fiona,
        "reassign",
        json!({ "assignee": "police-helsinki" }),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = act(&c.liisa, "complete", json!({ "note": "housing arranged" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "done");
    assert_eq!(
        act(&c.fiona, "cancel", json!({ "reason": "late" })).await.0,
        409
    );

    // Cancelled: no longer needed, told apart from declined and done.
    let (_, body) = v
        .post(&c.fiona, &tasks_path, &new_task("health-hus"))
        .await
        .unwrap();
    let second = body["id"].as_str().unwrap().to_string();
    let (status, _) = v
        .post(
            &c.fiona,
            &format!("/api/v1/tasks/{second}/cancel"),
            &json!({ "reason": "client moved" }),
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    let (_, cancelled) = v
        .get(&c.hanna, "/api/v1/tasks?status=cancelled")
        .await
        .unwrap();
    assert_eq!(cancelled["tasks"][0]["id"], second.as_str());
    let (_, done) = v.get(&c.liisa, "/api/v1/tasks?status=done").await.unwrap();
    assert_eq!(done["tasks"][0]["id"], id.as_str());

    // Bad input names the field.
    for (body, field) in [
        (
            json!({ "description": "", "category": "social", "assignee": "health-hus" }),
            "description",
        ),
        (
            json!({ "description": "x", "category": "gossip", "assignee": "health-hus" }),
            "category",
        ),
        (
            json!({ "description": "x", "category": "social", "assignee": "migri" }),
            "assignee",
        ),
        (
            json!({ "description": "x", "category": "social", "assignee": "health-hus", "due": "soon" }),
            "due",
        ),
    ] {
        let (status, answer) = v.post(&c.fiona, &tasks_path, &body).await.unwrap();
        assert_eq!(status, 422, "{body}: {answer}");
        assert!(
            answer["detail"].as_str().unwrap().contains(field),
            "{answer}"
        );
    }
    let (status, _) = v.get(&c.hanna, "/api/v1/tasks?status=lost").await.unwrap();
    assert_eq!(status, 422);
    v.stop().await;
});

both_modes!(
    overdue_tasks_escalate_on_the_injected_clock,
    |mode| async move {
        let v = start(mode).await;
        let c = case_with_network(&v).await;
        let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
            .date_naive()
            .to_string();
        let (_, body) = v
        .post(
            &c.fiona,
            &format!("/api/v1/cases/{}/tasks", c.id),
            &json!({ "description": "Book a doctor", "category": "health", "assignee": "health-hus", "due": tomorrow }),
        )
        .await
        .unwrap();
        let id = body["id"].as_str().unwrap().to_string();
        let (_, before) = v
            .get(&c.fiona, "/api/v1/tasks?status=overdue")
            .await
            .unwrap();
        assert_eq!(count(&before), 0);

        let admin = v.token("admin").await.unwrap();
        let (status, moved) = v
            .post(
                &admin,
                "/api/v1/dev/clock",
                &json!({ "advance_seconds": 3 * 86_400 }),
            )
            .await
            .unwrap();
        assert_eq!(status, 200, "{moved}");
        assert_eq!(moved["marked_overdue"], 1);
        let (_, hanna) = v
            .get(&c.hanna, "/api/v1/tasks?status=overdue")
            .await
            .unwrap();
        assert_eq!(hanna["tasks"][0]["id"], id.as_str());
        let (_, lead) = v
            .get(&c.fiona, "/api/v1/tasks?status=overdue")
            .await
            .unwrap();
        assert_eq!(lead["tasks"][0]["id"], id.as_str());
        assert_eq!(lead["tasks"][0]["escalation"], true);
        // Only admins move the clock.
        assert_eq!(
            v.post(
                &c.fiona,
                "/api/v1/dev/clock",
                &json!({ "advance_seconds": 1 })
            )
            .await
            .unwrap()
            .0,
            403
        );
        v.stop().await;
    }
);

both_modes!(
    a_description_is_withheld_unless_consent_allows_its_category,
    |mode| async move {
        let v = start(mode).await;
        let c = case_with_network(&v).await;
        v.post(
        &c.fiona,
        &format!("/api/v1/cases/{}/tasks", c.id),
        &json!({ "description": "Therapy referral", "category": "health", "assignee": "health-hus" }),
    )
    .await
    .unwrap();
        let (_, inbox) = v.get(&c.hanna, "/api/v1/tasks").await.unwrap();
        assert_eq!(inbox["tasks"][0]["description"], Value::Null);
        assert_eq!(inbox["tasks"][0]["category"], "health");
        assert_eq!(inbox["withheld"], 1);
        v.post(
        &c.fiona,
        &format!("/api/v1/cases/{}/consent/grants", c.id),
        &json!({ "recipient": "health-hus", "categories": ["health"], "purpose": "care", "obtained": { "method": "written", "language": "fi" } }),
    )
    .await
    .unwrap();
        let (_, inbox) = v.get(&c.hanna, "/api/v1/tasks").await.unwrap();
        assert_eq!(inbox["tasks"][0]["description"], "Therapy referral");
        assert_eq!(inbox["withheld"], 0);
        assert_eq!(inbox["tasks"][0]["consent_version"], 1);
        v.stop().await;
    }
);

/// What the test's receiver saw: (webhook-id, timestamp, signature, body).
type Seen = Arc<Mutex<Vec<(String, String, String, String)>>>;

/// A local HTTP receiver that answers 500 to the first `failures` calls.
async fn receiver(failures: usize) -> (String, Seen) {
    use axum::http::{HeaderMap, StatusCode};
    let seen: Seen = Arc::default();
    let calls = Arc::new(Mutex::new(0usize));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let seen = seen.clone();
            move |headers: HeaderMap, body: String| {
                let (seen, calls) = (seen.clone(), calls.clone());
                async move {
                    let h = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string()
                    };
                    seen.lock().unwrap().push((
                        h("webhook-id"),
                        h("webhook-timestamp"),
                        h("webhook-signature"),
                        body,
                    ));
                    let mut n = calls.lock().unwrap();
                    *n += 1;
                    if *n <= failures {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::NO_CONTENT
                    }
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), seen)
}

/// Standard Webhooks verification, written here independently of the
/// service (RustCrypto's HMAC, not ring).
fn verify(secret: &str, id: &str, timestamp: &str, signature: &str, body: &str) -> bool {
    use hmac::{Mac, SimpleHmac};
    let b64 = base64::engine::general_purpose::STANDARD;
    let Some(key) = secret
        .strip_prefix("whsec_")
        .and_then(|k| b64.decode(k).ok())
    else {
        return false;
    };
    let mut mac = SimpleHmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let expected = format!("v1,{}", b64.encode(mac.finalize().into_bytes()));
    signature.split(' ').any(|s| s == expected)
}

both_modes!(
    webhooks_are_signed_and_retried_until_acknowledged,
    |mode| async move {
        // The receiver is on loopback: the operator opens it to webhooks.
        let (url, seen) = receiver(2).await;
        let host = url
            .trim_start_matches("http://")
            .trim_end_matches("/hook")
            .to_string();
        let v = Verkosto::start_with(
            mode,
            &[
                "--demo",
                "--demo-case",
                "off",
                "--dev-clock",
                "--webhook-allow-host",
                &host,
            ],
        )
        .await
        .unwrap();
        let c = case_with_network(&v).await;
        // Webhooks are the agency's admin's or its lead facilitator's.
        let (status, body) = v
            .post(&c.hanna, "/api/v1/webhooks", &json!({ "url": url }))
            .await
            .unwrap();
        assert_eq!(status, 403, "{body}");
        let (status, hook) = v
            .post(&c.fiona, "/api/v1/webhooks", &json!({ "url": url }))
            .await
            .unwrap();
        assert_eq!(status, 201, "{hook}");
        let secret = hook["secret"].as_str().unwrap().to_string();
        assert!(secret.starts_with("whsec_"));
        let (status, _) = v
            .post(
                &c.fiona,
                "/api/v1/webhooks",
                &json!({ "url": "ftp://nowhere" }),
            )
            .await
            .unwrap();
        assert_eq!(status, 422);

        v.post(
        &c.fiona,
        &format!("/api/v1/cases/{}/tasks", c.id),
        &json!({ "description": "Secret detail", "category": "health", "assignee": "assistance-system" }),
    )
    .await
    .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while seen.lock().unwrap().len() < 3 {
            assert!(
                Instant::now() < deadline,
                "only {} deliveries",
                seen.lock().unwrap().len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let seen = seen.lock().unwrap().clone();
        // The same message three times (500, 500, then acknowledged), each signed.
        assert!(seen.iter().all(|s| s.0 == seen[0].0 && s.3 == seen[0].3));
        for (id, timestamp, signature, body) in &seen {
            assert!(
                verify(&secret, id, timestamp, signature, body),
                "{signature}"
            );
            assert!(!verify(
                "whsec_d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldA==",
                id,
                timestamp,
                signature,
                body
            ));
        }
        let payload: Value = serde_json::from_str(&seen[0].3).unwrap();
        assert_eq!(payload["type"], "task.created");
        assert_eq!(payload["data"]["assignee"], "assistance-system");
        // No client data in the delivery: the receiver reads it through the API.
        assert!(!seen[0].3.contains("Secret detail"));
        v.stop().await;
    }
);

both_modes!(
    minutes_and_a_no_show_make_their_tasks_exactly_once,
    |mode| async move {
        let mut v = start(mode).await;
        let c = case_with_network(&v).await;
        let starts = chrono::Utc::now() + chrono::Duration::days(3);
        let (status, meeting) = v
        .post(
            &c.fiona,
            &format!("/api/v1/cases/{}/meetings", c.id),
            &json!({
                "title": "Network meeting", "starts_at": starts.to_rfc3339(),
                "ends_at": (starts + chrono::Duration::hours(1)).to_rfc3339(),
                "location": "Room 4", "participants": ["assistance-system", "health-hus", "police-helsinki"],
                "client_attends": true, "interpreter_language": null, "agenda": ["Plan"],
                "lead_time_override_reason": null
            }),
        )
        .await
        .unwrap();
        assert_eq!(status, 201, "{meeting}");
        let id = meeting["id"].as_str().unwrap().to_string();

        // The client did not come: one follow-up task for the lead, even when
        // attendance is recorded twice.
        for _ in 0..2 {
            let (status, body) = v
            .post(
                &c.fiona,
                &format!("/api/v1/meetings/{id}/attendance"),
                &json!({ "present": ["assistance-system", "health-hus"], "client_present": false }),
            )
            .await
            .unwrap();
            assert_eq!(status, 200, "{body}");
        }
        let lead = inbox_until(&v, &c.fiona, "", |b| count(b) == 1).await;
        assert_eq!(lead["tasks"][0]["source"]["kind"], "no_show");
        assert_eq!(lead["tasks"][0]["assignee"], "assistance-system");
        assert!(lead["tasks"][0]["description"]
            .as_str()
            .unwrap()
            .contains("exact reason"));

        // Minutes with three action items: three tasks, one per assignee.
        let items = json!([
            { "id": "a1", "description": "Book a health check", "category": "health", "assignee": "health-hus", "due": "2030-12-01" },
            { "id": "a2", "description": "Ask about the interview", "category": "legal", "assignee": "police-helsinki", "due": null },
            { "id": "a3", "description": "Find housing", "category": "social", "assignee": "assistance-system", "due": null }
        ]);
        let minutes = json!({ "notes": [{ "category": "health", "text": "Discussed care" }], "decisions": ["Meet again"], "action_items": items });
        let (status, body) = v
            .put(
                &c.fiona,
                &format!("/api/v1/meetings/{id}/minutes"),
                &minutes,
            )
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        let (status, body) = v
            .post(
                &c.fiona,
                &format!("/api/v1/meetings/{id}/minutes/publish"),
                &json!({}),
            )
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        let hanna = inbox_until(&v, &c.hanna, "", |b| count(b) == 1).await;
        assert_eq!(
            hanna["tasks"][0]["source"],
            json!({ "kind": "action_item", "ref": format!("{id}/a1") })
        );
        inbox_until(&v, &c.liisa, "", |b| count(b) == 1).await;
        inbox_until(&v, &c.fiona, "", |b| count(b) == 2).await;

        // A corrected revision republishes the same items: still three tasks.
        let mut corrected = minutes.clone();
        corrected["decisions"] = json!(["Meet again in January"]);
        v.put(
            &c.fiona,
            &format!("/api/v1/meetings/{id}/minutes"),
            &corrected,
        )
        .await
        .unwrap();
        let (status, body) = v
            .post(
                &c.fiona,
                &format!("/api/v1/meetings/{id}/minutes/publish"),
                &json!({}),
            )
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");

        // Replaying and redelivering every source event adds nothing either.
        replay_reactions(&mut v).await;
        let log = v.log().await.unwrap();
        let created: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE event_type = 'TaskCreated'")
                .fetch_one(log.db().reader())
                .await
                .unwrap();
        assert_eq!(created, 4);
        v.stop().await;
    }
);
