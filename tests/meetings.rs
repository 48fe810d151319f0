//! Network meetings, end to end in both modes: scheduling under the
//! interpreter lead time, rescheduling, answers, attendance with exactly one
//! no-show event, minutes with revisions and approvals, consent filtering
//! of minutes and locations, 404 for outsiders, and the calendar feed read
//! by an independent iCalendar parser.

use chrono::{Duration, SecondsFormat, Utc};
use serde_json::{json, Value};
use verkosto_e2e::{both_modes, Verkosto};

/// A case led by fiona (assistance-system) with health-hus (hanna) and
/// police-helsinki (liisa) in its network; nora (ngo-support) is outside.
struct Net {
    case: String,
    fiona: String,
    hanna: String,
    liisa: String,
    nora: String,
}

async fn network(v: &Verkosto, pseudonym: &str, safety_risk: bool) -> Net {
    let fiona = v.token("fiona").await.unwrap();
    let hanna = v.token("hanna").await.unwrap();
    let liisa = v.token("liisa").await.unwrap();
    let nora = v.token("nora").await.unwrap();
    let (status, body) = v
        .post(
            &fiona,
            "/api/v1/cases",
            &json!({ "pseudonym": pseudonym, "languages": ["ro"], "interpreter_language": "ro",
                     "flags": { "minor": false, "safety_risk": safety_risk } }),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    let case = body["id"].as_str().unwrap().to_string();
    for (agency, token) in [("health-hus", &hanna), ("police-helsinki", &liisa)] {
        let (status, body) = v
            .post(
                &fiona,
                &format!("/api/v1/cases/{case}/members"),
                &json!({ "agency": agency, "purpose": "network meetings" }),
            )
            .await
            .unwrap();
        assert_eq!(status, 201, "{body}");
        let (status, body) = v
            .post(
                token,
                &format!("/api/v1/cases/{case}/invitations/accept"),
                &json!({}),
            )
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
    }
    Net {
        case,
        fiona,
        hanna,
        liisa,
        nora,
    }
}

/// RFC 3339 for now plus `hours`.
fn in_hours(hours: i64) -> String {
    (Utc::now() + Duration::hours(hours)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn meeting_body(starts_in_hours: i64, interpreter: Option<&str>) -> Value {
    json!({
        "title": "Network meeting about housing",
        "starts_at": in_hours(starts_in_hours),
        "ends_at": in_hours(starts_in_hours + 1),
        "location": "Room 3, Main St 1; Helsinki",
        "participants": ["health-hus"],
        "client_attends": true,
        "interpreter_language": interpreter,
        "agenda": ["Housing", "Health check"],
        "lead_time_override_reason": null,
    })
}

async fn schedule(v: &Verkosto, n: &Net, body: &Value) -> String {
    let (status, answer) = v
        .post(
            &n.fiona,
            &format!("/api/v1/cases/{}/meetings", n.case),
            body,
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{answer}");
    answer["id"].as_str().unwrap().to_string()
}

async fn meeting(v: &Verkosto, token: &str, id: &str) -> Value {
    let (status, body) = v
        .get(token, &format!("/api/v1/meetings/{id}"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

fn detail(body: &Value) -> &str {
    body["detail"].as_str().unwrap_or_default()
}

/// Asserts a 422 whose detail starts with `field`.
fn assert_invalid(status: u16, body: &Value, field: &str) {
    assert_eq!(status, 422, "{body}");
    assert!(
        detail(body).starts_with(&format!("{field}: ")),
        "expected {field}: {body}"
    );
}

both_modes!(
    scheduling_keeps_the_interpreter_lead_time_and_names_bad_fields,
    |mode| async move {
        let v = Verkosto::start_demo(mode).await.unwrap();
        let n = network(&v, "A-1027", false).await;
        let path = format!("/api/v1/cases/{}/meetings", n.case);

        // An interpreter is needed and the meeting is in 2 hours: refused.
        let soon = meeting_body(2, Some("ro"));
        let (status, body) = v.post(&n.fiona, &path, &soon).await.unwrap();
        assert_invalid(status, &body, "starts_at");
        assert!(detail(&body).contains("24 h"), "{body}");
        // With a reason it is set, and the reason is kept.
        let mut with_reason = soon.clone();
        with_reason["lead_time_override_reason"] = json!("court hearing tomorrow");
        let id = schedule(&v, &n, &with_reason).await;
        assert!(id.starts_with("meeting-"), "{id}");
        let m = meeting(&v, &n.fiona, &id).await;
        assert_eq!(m["lead_time_override_reason"], "court hearing tomorrow");
        assert_eq!(m["interpreter_language"], "ro");
        assert_eq!(m["interpreter_booking"], "not_booked");
        assert_eq!(m["status"], "scheduled");
        assert_eq!(m["time_zone"], "Europe/Helsinki");
        assert!(m["starts_at"].as_str().unwrap().ends_with('Z'));
        let local = m["starts_at_local"].as_str().unwrap();
        assert!(
            local.ends_with("+02:00") || local.ends_with("+03:00"),
            "{local}"
        );
        // The lead always takes part.
        assert_eq!(
            m["participants"],
            json!(["assistance-system", "health-hus"])
        );
        // The log keeps the reason sealed (the read above opened it).
        let log = v.log().await.unwrap();
        let events = log.read_stream("meeting", &id).await.unwrap();
        let stored = events[0].payload["MeetingScheduled"]["lead_time_override_reason"]
            .as_str()
            .unwrap();
        assert!(stored.starts_with(&format!("vks1.{}.", n.case)), "{stored}");
        assert!(!stored.contains("court"), "{stored}");

        // The lead records the interpreter's booking.
        let (status, body) = v
            .post(
                &n.fiona,
                &format!("/api/v1/meetings/{id}/interpreter"),
                &json!({ "status": "booked" }),
            )
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            meeting(&v, &n.hanna, &id).await["interpreter_booking"],
            "booked"
        );

        // Without an interpreter, soon is fine.
        schedule(&v, &n, &meeting_body(2, None)).await;

        // Bad input names the field.
        let cases: Vec<(Value, &str)> = vec![
            (
                json!({ "starts_at": in_hours(-1), "ends_at": in_hours(1) }),
                "starts_at",
            ),
            (
                json!({ "starts_at": in_hours(50), "ends_at": in_hours(49) }),
                "ends_at",
            ),
            (
                json!({ "participants": ["health-hus", "ngo-support"] }),
                "participants[1]",
            ),
            (json!({ "title": "  " }), "title"),
            (json!({ "starts_at": "tomorrow at noon" }), "starts_at"),
            (
                json!({ "interpreter_language": "Romanian" }),
                "interpreter_language",
            ),
            (json!({ "agenda": [""] }), "agenda[0]"),
            (json!({ "colour": "blue" }), "body"),
        ];
        for (change, field) in cases {
            let mut body = meeting_body(72, Some("ro"));
            for (k, val) in change.as_object().unwrap() {
                body[k] = val.clone();
            }
            let (status, answer) = v.post(&n.fiona, &path, &body).await.unwrap();
            if field == "body" {
                assert_eq!(status, 422, "{answer}");
                assert!(detail(&answer).contains("colour"), "{answer}");
            } else {
                assert_invalid(status, &answer, field);
            }
        }
        // A member that does not lead: 403; an outsider: 404.
        let (status, body) = v
            .post(&n.liisa, &path, &meeting_body(72, None))
            .await
            .unwrap();
        assert_eq!(status, 403, "{body}");
        let (status, body) = v
            .post(&n.nora, &path, &meeting_body(72, None))
            .await
            .unwrap();
        assert_eq!(status, 404, "{body}");

        // Rescheduling: the same checks, then a new time and a higher sequence.
        let resched = format!("/api/v1/meetings/{id}/reschedule");
        let (status, body) = v
            .post(
                &n.fiona,
                &resched,
                &json!({ "starts_at": in_hours(3), "ends_at": in_hours(4), "reason": "room taken" }),
            )
            .await
            .unwrap();
        assert_invalid(status, &body, "starts_at");
        let (status, body) = v
            .post(
                &n.fiona,
                &resched,
                &json!({ "starts_at": in_hours(48), "ends_at": in_hours(46), "reason": "room taken" }),
            )
            .await
            .unwrap();
        assert_invalid(status, &body, "ends_at");
        let new_start = in_hours(48);
        let (status, body) = v
            .post(
                &n.fiona,
                &resched,
                &json!({ "starts_at": new_start, "ends_at": in_hours(49), "reason": "room taken" }),
            )
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        let m = meeting(&v, &n.hanna, &id).await;
        assert_eq!(m["starts_at"], json!(new_start));
        assert_eq!(m["sequence"], 1);
        // A reason is client data (`meetings`): health-hus has no consent.
        assert_eq!(m["reschedules"][0]["reason"], Value::Null, "{m}");
        let lead = meeting(&v, &n.fiona, &id).await;
        assert_eq!(lead["reschedules"][0]["reason"], "room taken");

        // The list of the case's meetings, for members only.
        let (status, list) = v
            .get(&n.hanna, &format!("/api/v1/meetings?case={}", n.case))
            .await
            .unwrap();
        assert_eq!(status, 200, "{list}");
        assert_eq!(list["meetings"].as_array().unwrap().len(), 2);
        assert!(list["consent_version"].is_number());
        let (status, body) = v.get(&n.hanna, "/api/v1/meetings").await.unwrap();
        assert_invalid(status, &body, "case");
        let (status, body) = v
            .get(&n.nora, &format!("/api/v1/meetings?case={}", n.case))
            .await
            .unwrap();
        assert_eq!(status, 404, "{body}");
        v.stop().await;
    }
);

both_modes!(
    answers_attendance_and_exactly_one_no_show,
    |mode| async move {
        let v = Verkosto::start_demo(mode).await.unwrap();
        let n = network(&v, "A-2001", false).await;
        let id = schedule(&v, &n, &meeting_body(72, None)).await;
        let rsvp = format!("/api/v1/meetings/{id}/rsvp");

        let (status, body) = v
            .post(
                &n.hanna,
                &rsvp,
                &json!({ "response": "accept", "comment": "I'll bring the report" }),
            )
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        // A member that is not a participant: 403. An outsider: 404.
        let (status, body) = v
            .post(&n.liisa, &rsvp, &json!({ "response": "accept" }))
            .await
            .unwrap();
        assert_eq!(status, 403, "{body}");
        let (status, body) = v
            .post(&n.nora, &rsvp, &json!({ "response": "accept" }))
            .await
            .unwrap();
        assert_eq!(status, 404, "{body}");
        let (status, body) = v
            .post(&n.hanna, &rsvp, &json!({ "response": "maybe" }))
            .await
            .unwrap();
        assert_invalid(status, &body, "response");
        let m = meeting(&v, &n.fiona, &id).await;
        assert_eq!(m["rsvps"][0]["agency"], "health-hus");
        assert_eq!(m["rsvps"][0]["response"], "accept");

        // Attendance: only participants can be present.
        let attendance = format!("/api/v1/meetings/{id}/attendance");
        let (status, body) = v
            .post(
                &n.fiona,
                &attendance,
                &json!({ "present": ["police-helsinki"], "client_present": true }),
            )
            .await
            .unwrap();
        assert_invalid(status, &body, "present[0]");
        // The client was to come and did not, recorded twice: one event.
        for _ in 0..2 {
            let (status, body) = v
                .post(
                    &n.fiona,
                    &attendance,
                    &json!({ "present": ["assistance-system", "health-hus"], "client_present": false }),
                )
                .await
                .unwrap();
            assert_eq!(status, 200, "{body}");
        }
        let log = v.log().await.unwrap();
        let events = log.read_stream("meeting", &id).await.unwrap();
        let absent: Vec<_> = events
            .iter()
            .filter(|e| e.event_type == "ClientAbsent")
            .collect();
        assert_eq!(absent.len(), 1, "{events:?}");
        let body = &absent[0].payload["ClientAbsent"];
        assert_eq!(body["meeting_id"], json!(id));
        assert_eq!(body["case_id"], json!(n.case));
        assert_eq!(body["lead_agency"], "assistance-system");
        assert!(body["starts_at"].is_string() && body["at"].is_string());
        assert_eq!(
            events
                .iter()
                .filter(|e| e.event_type == "AttendanceRecorded")
                .count(),
            2
        );
        let m = meeting(&v, &n.hanna, &id).await;
        assert_eq!(m["status"], "held");
        // Whether the client came is client data (`meetings`): withheld
        // from health-hus, which has no consent for it.
        assert_eq!(m["attendance"]["client_present"], Value::Null, "{m}");
        assert_eq!(m["client_absence_reported"], Value::Null);
        let lead = meeting(&v, &n.fiona, &id).await;
        assert_eq!(lead["attendance"]["client_present"], false);
        assert_eq!(lead["client_absence_reported"], true);
        let (_, list) = v
            .get(&n.hanna, &format!("/api/v1/meetings?case={}", n.case))
            .await
            .unwrap();
        assert_eq!(list["meetings"][0]["status"], "held", "{list}");
        v.stop().await;
    }
);

fn minutes(notes: Value, items: Value) -> Value {
    json!({ "notes": notes, "decisions": ["Meet again in December"], "action_items": items })
}

fn three_items() -> Value {
    json!([
        { "id": "a1", "description": "Book a health check", "category": "health", "assignee": "health-hus", "due": "2026-12-01" },
        { "id": "a2", "description": "Ask about the interview", "category": "legal", "assignee": "police-helsinki", "due": null },
        { "id": "a3", "description": "Find housing", "category": "social", "assignee": "assistance-system", "due": null }
    ])
}

both_modes!(
    minutes_are_published_approved_and_corrected,
    |mode| async move {
        let v = Verkosto::start_demo(mode).await.unwrap();
        let n = network(&v, "A-3001", false).await;
        let mut body = meeting_body(72, None);
        body["participants"] = json!(["health-hus", "police-helsinki"]);
        let id = schedule(&v, &n, &body).await;
        let path = format!("/api/v1/meetings/{id}/minutes");
        let notes = json!([{ "category": "health", "text": "Health check went well" }]);

        // Bad minutes name the field.
        let bad: Vec<(Value, &str)> = vec![
            (
                minutes(json!([{ "category": "gossip", "text": "x" }]), json!([])),
                "notes[0].category",
            ),
            (
                minutes(
                    notes.clone(),
                    json!([
                        { "id": "a1", "description": "x", "category": "health", "assignee": "health-hus" },
                        { "id": "a1", "description": "y", "category": "health", "assignee": "health-hus" }
                    ]),
                ),
                "action_items[1].id",
            ),
            (
                minutes(
                    notes.clone(),
                    json!([{ "id": "a1", "description": "x", "category": "health", "assignee": "ngo-support" }]),
                ),
                "action_items[0].assignee",
            ),
            (
                minutes(
                    notes.clone(),
                    json!([{ "id": "a1", "description": "x", "category": "health", "assignee": "health-hus", "due": "soon" }]),
                ),
                "action_items[0].due",
            ),
        ];
        for (body, field) in bad {
            let (status, answer) = v.put(&n.fiona, &path, &body).await.unwrap();
            assert_invalid(status, &answer, field);
        }
        // Only the lead writes minutes.
        let (status, answer) = v
            .put(&n.hanna, &path, &minutes(notes.clone(), three_items()))
            .await
            .unwrap();
        assert_eq!(status, 403, "{answer}");
        // Nothing to publish yet.
        let (status, answer) = v
            .post(&n.fiona, &format!("{path}/publish"), &json!({}))
            .await
            .unwrap();
        assert_eq!(status, 409, "{answer}");

        let (status, answer) = v
            .put(&n.fiona, &path, &minutes(notes.clone(), three_items()))
            .await
            .unwrap();
        assert_eq!(status, 200, "{answer}");
        // Saving the same draft again appends nothing, though the stored
        // draft is sealed: the meeting compares the text, not ciphertext.
        let saved = v
            .log()
            .await
            .unwrap()
            .read_stream("meeting", &id)
            .await
            .unwrap()
            .len();
        let (status, again) = v
            .put(&n.fiona, &path, &minutes(notes.clone(), three_items()))
            .await
            .unwrap();
        assert_eq!(
            (status, &again["version"]),
            (200, &answer["version"]),
            "{again}"
        );
        let log = v.log().await.unwrap();
        assert_eq!(log.read_stream("meeting", &id).await.unwrap().len(), saved);
        let (status, answer) = v
            .post(&n.fiona, &format!("{path}/publish"), &json!({}))
            .await
            .unwrap();
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["revision"], 1);
        let log = v.log().await.unwrap();
        let published: Vec<Value> = log
            .read_stream("meeting", &id)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.event_type == "MinutesPublished")
            .map(|e| e.payload["MinutesPublished"].clone())
            .collect();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0]["revision"], 1);
        assert_eq!(published[0]["case_id"], json!(n.case));
        assert_eq!(published[0]["lead_agency"], "assistance-system");
        assert_eq!(published[0]["action_items"].as_array().unwrap().len(), 3);
        assert_eq!(published[0]["action_items"][0]["due"], "2026-12-01");

        // Each participant approves; a member outside the meeting cannot.
        for token in [&n.fiona, &n.hanna, &n.liisa] {
            let (status, answer) = v
                .post(token, &format!("{path}/approve"), &json!({}))
                .await
                .unwrap();
            assert_eq!(status, 200, "{answer}");
        }
        let m = meeting(&v, &n.fiona, &id).await;
        let approved: Vec<&str> = m["minutes"]["revisions"][0]["approved_by"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["agency"].as_str().unwrap())
            .collect();
        assert_eq!(
            approved,
            vec!["assistance-system", "health-hus", "police-helsinki"]
        );
        assert_eq!(m["minutes"]["awaiting_approval"], json!([]));

        // A correction: revision 2, with revision 1 kept as it was.
        let corrected = json!([{ "id": "a1", "description": "Book two health checks", "category": "health", "assignee": "health-hus", "due": null }]);
        let (status, answer) = v
            .put(&n.fiona, &path, &minutes(notes.clone(), corrected))
            .await
            .unwrap();
        assert_eq!(status, 200, "{answer}");
        let (status, answer) = v
            .post(&n.fiona, &format!("{path}/publish"), &json!({}))
            .await
            .unwrap();
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["revision"], 2);
        let m = meeting(&v, &n.fiona, &id).await;
        let revisions = m["minutes"]["revisions"].as_array().unwrap();
        assert_eq!(revisions.len(), 2);
        assert_eq!(revisions[0]["revision"], 1);
        assert_eq!(revisions[0]["action_items"].as_array().unwrap().len(), 3);
        assert_eq!(revisions[1]["revision"], 2);
        assert_eq!(revisions[1]["latest"], true);
        assert_eq!(
            revisions[1]["action_items"][0]["description"],
            "Book two health checks"
        );
        assert_eq!(revisions[1]["approved_by"], json!([]));
        assert_eq!(
            m["minutes"]["awaiting_approval"].as_array().unwrap().len(),
            3
        );
        let events = log.read_stream("meeting", &id).await.unwrap();
        let second = events
            .iter()
            .rev()
            .find(|e| e.event_type == "MinutesPublished")
            .unwrap();
        assert_eq!(second.payload["MinutesPublished"]["revision"], 2);
        assert_eq!(
            second.payload["MinutesPublished"]["action_items"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        v.stop().await;
    }
);

async fn grant(v: &Verkosto, n: &Net, recipient: &str, categories: Value) {
    let (status, body) = v
        .post(
            &n.fiona,
            &format!("/api/v1/cases/{}/consent/grants", n.case),
            &json!({ "recipient": recipient, "categories": categories, "purpose": "network meetings",
                     "valid_until": null,
                     "obtained": { "method": "written", "language": "ro", "grantor": "self" } }),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
}

fn note_categories(m: &Value, revision: usize) -> Vec<String> {
    m["minutes"]["revisions"][revision]["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["category"].as_str().unwrap().to_string())
        .collect()
}

both_modes!(
    minutes_and_locations_are_filtered_by_consent,
    |mode| async move {
        let v = Verkosto::start_demo(mode).await.unwrap();
        let n = network(&v, "A-4001", true).await;
        let mut body = meeting_body(72, None);
        body["participants"] = json!(["health-hus", "police-helsinki"]);
        let id = schedule(&v, &n, &body).await;
        let path = format!("/api/v1/meetings/{id}/minutes");
        let notes = json!([
            { "category": "health", "text": "Health check went well" },
            { "category": "legal", "text": "The interview is next week" },
            { "category": "narrative", "text": "What the client told" }
        ]);
        let items = json!([
            { "id": "a1", "description": "Book a health check", "category": "health", "assignee": "health-hus" }
        ]);
        let (status, answer) = v
            .put(&n.fiona, &path, &minutes(notes, items))
            .await
            .unwrap();
        assert_eq!(status, 200, "{answer}");
        let (status, answer) = v
            .post(&n.fiona, &format!("{path}/publish"), &json!({}))
            .await
            .unwrap();
        assert_eq!(status, 200, "{answer}");

        // Health-hus may read health and meetings; the police nothing.
        grant(&v, &n, "health-hus", json!(["health", "meetings"])).await;

        let lead = meeting(&v, &n.fiona, &id).await;
        assert_eq!(
            note_categories(&lead, 0),
            vec!["health", "legal", "narrative"]
        );
        assert_eq!(lead["withheld"], 0);
        assert_eq!(lead["location"], "Room 3, Main St 1; Helsinki");

        let health = meeting(&v, &n.hanna, &id).await;
        assert_eq!(note_categories(&health, 0), vec!["health"]);
        assert_eq!(
            health["minutes"]["revisions"][0]["decisions"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(health["agenda"].as_array().unwrap().len(), 2);
        assert_eq!(
            health["minutes"]["revisions"][0]["action_items"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        // Two notes withheld, and the location (safety risk, no contact grant).
        assert_eq!(health["withheld"], 3, "{health}");
        assert!(health.get("location").is_none(), "{health}");
        assert_eq!(health["consent_version"], 1);
        assert_eq!(health["consent_fresh"], true);
        // The title is client data (`meetings`), which health-hus may read.
        assert_eq!(health["title"], "Network meeting about housing");
        // No draft for anyone but the lead.
        assert_eq!(health["minutes"]["draft"], Value::Null);

        let police = meeting(&v, &n.liisa, &id).await;
        assert_eq!(note_categories(&police, 0), Vec::<String>::new());
        assert_eq!(police["minutes"]["revisions"][0]["decisions"], json!([]));
        assert_eq!(police["agenda"], json!([]));
        // 3 notes, 1 decision, 1 action item, 2 agenda items, the location,
        // and of the header the title, client_attends and the absence flag.
        assert_eq!(police["withheld"], 11, "{police}");
        assert!(police.get("location").is_none());
        assert_eq!(police["title"], Value::Null);
        assert_eq!(police["client_attends"], Value::Null);

        // The minutes alone, filtered the same way.
        let (status, alone) = v.get(&n.liisa, &path).await.unwrap();
        assert_eq!(status, 200, "{alone}");
        assert_eq!(alone["revisions"][0]["notes"], json!([]));
        assert_eq!(alone["withheld"], 5);

        // The list hides the location the same way.
        let (_, list) = v
            .get(&n.hanna, &format!("/api/v1/meetings?case={}", n.case))
            .await
            .unwrap();
        assert!(list["meetings"][0].get("location").is_none(), "{list}");
        assert_eq!(list["withheld"], 1);

        // Granted contact, health-hus sees where the meeting is.
        grant(&v, &n, "health-hus", json!(["contact"])).await;
        let health = meeting(&v, &n.hanna, &id).await;
        assert_eq!(health["location"], "Room 3, Main St 1; Helsinki");
        assert_eq!(health["withheld"], 2);
        assert_eq!(health["consent_version"], 2);

        // Every read left an access record.
        let log = v.log().await.unwrap();
        let n_records: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM access_log WHERE service = 'meetings' AND case_id = $1",
        )
        .bind(&n.case)
        .fetch_one(log.db().reader())
        .await
        .unwrap();
        assert!(n_records >= 6, "{n_records}");
        v.stop().await;
    }
);

both_modes!(
    an_outsider_gets_404_on_every_meeting_endpoint,
    |mode| async move {
        let v = Verkosto::start_demo(mode).await.unwrap();
        let n = network(&v, "A-5001", false).await;
        let id = schedule(&v, &n, &meeting_body(72, None)).await;
        let m = format!("/api/v1/meetings/{id}");
        let calls: Vec<(&str, String, Value)> = vec![
            ("GET", m.clone(), Value::Null),
            ("GET", format!("{m}/minutes"), Value::Null),
            (
                "GET",
                format!("/api/v1/meetings?case={}", n.case),
                Value::Null,
            ),
            (
                "POST",
                format!("/api/v1/cases/{}/meetings", n.case),
                meeting_body(72, None),
            ),
            (
                "POST",
                format!("{m}/reschedule"),
                json!({ "starts_at": in_hours(80), "ends_at": in_hours(81), "reason": "x" }),
            ),
            ("POST", format!("{m}/cancel"), json!({ "reason": "x" })),
            (
                "POST",
                format!("{m}/interpreter"),
                json!({ "status": "booked" }),
            ),
            ("POST", format!("{m}/rsvp"), json!({ "response": "accept" })),
            (
                "POST",
                format!("{m}/attendance"),
                json!({ "present": [], "client_present": true }),
            ),
            ("PUT", format!("{m}/minutes"), minutes(json!([]), json!([]))),
            ("POST", format!("{m}/minutes/publish"), json!({})),
            ("POST", format!("{m}/minutes/approve"), json!({})),
            // Even with a body that is wrong: the meeting is not revealed.
            ("POST", format!("{m}/rsvp"), json!({ "response": 42 })),
        ];
        for (method, path, body) in &calls {
            let (status, answer) = match *method {
                "GET" => v.get(&n.nora, path).await.unwrap(),
                "PUT" => v.put(&n.nora, path, body).await.unwrap(),
                _ => v.post(&n.nora, path, body).await.unwrap(),
            };
            assert_eq!(status, 404, "{method} {path}: {answer}");
        }
        // A meeting that does not exist looks the same.
        let (status, _) = v
            .get(&n.fiona, "/api/v1/meetings/meeting-nope")
            .await
            .unwrap();
        assert_eq!(status, 404);
        v.stop().await;
    }
);

/// The VEVENTs of a feed, each as its properties `(name, value)`.
fn parse_feed(text: &str) -> Vec<Vec<(String, String)>> {
    let mut parser = ical::IcalParser::new(std::io::BufReader::new(text.as_bytes()));
    let calendar = parser.next().expect("one calendar").expect("parses");
    assert!(parser.next().is_none(), "one VCALENDAR only");
    calendar
        .events
        .into_iter()
        .map(|e| {
            e.properties
                .into_iter()
                .map(|p| (p.name, p.value.unwrap_or_default()))
                .collect()
        })
        .collect()
}

fn prop<'a>(event: &'a [(String, String)], name: &str) -> Option<&'a str> {
    event
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn event_of<'a>(
    events: &'a [Vec<(String, String)>],
    meeting: &str,
) -> Vec<&'a Vec<(String, String)>> {
    let uid = format!("{meeting}@verkosto");
    events
        .iter()
        .filter(|e| prop(e, "UID") == Some(&uid))
        .collect()
}

async fn fetch_feed(v: &Verkosto, url: &str) -> (u16, String, String) {
    let r = v.http().get(v.url(url)).send().await.unwrap();
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|c| c.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, content_type, r.text().await.unwrap())
}

/// Issues a feed token (`body` as given) and returns the answer.
async fn issue(v: &Verkosto, token: &str, body: &Value) -> (u16, Value) {
    v.post(token, "/api/v1/calendar/feed-tokens", body)
        .await
        .unwrap()
}

async fn feed_url(v: &Verkosto, token: &str) -> String {
    let (status, body) = issue(v, token, &json!({})).await;
    assert_eq!(status, 201, "{body}");
    assert!(body["token"].as_str().unwrap().len() >= 32);
    body["url"].as_str().unwrap().to_string()
}

/// The 404 of a feed: status and problem body, whatever the reason.
async fn feed_refusal(v: &Verkosto, url: &str) -> (u16, Value) {
    let r = v.http().get(v.url(url)).send().await.unwrap();
    verkosto_e2e::answer(r).await.unwrap()
}

/// Waits until the meetings read model has every event of the log. A write
/// waits for it only so long (5 s: shared/http's `Commands`) and
/// then answers anyway; on a loaded machine the feed, which a calendar
/// client reads and not the writer, may be read before it has caught up.
async fn meetings_read_model_caught_up(v: &Verkosto) {
    let log = v.log().await.unwrap();
    verkosto_e2e::scaleout::wait_for_consumers(
        &log,
        [&"meetings".to_string()],
        std::time::Duration::from_secs(60),
    )
    .await
    .unwrap();
}

both_modes!(
    the_calendar_feed_follows_changes_and_hides_what_it_must,
    |mode| async move {
        let v = Verkosto::start_demo(mode).await.unwrap();
        let open = network(&v, "A-1027", false).await;
        let risky = network(&v, "B-2002", true).await;

        let moved = schedule(&v, &open, &meeting_body(72, None)).await;
        let (status, body) = v
            .post(
                &open.fiona,
                &format!("/api/v1/meetings/{moved}/reschedule"),
                &json!({ "starts_at": in_hours(96), "ends_at": in_hours(97), "reason": "room taken" }),
            )
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        let cancelled = schedule(&v, &open, &meeting_body(100, None)).await;
        let (status, body) = v
            .post(
                &open.fiona,
                &format!("/api/v1/meetings/{cancelled}/cancel"),
                &json!({ "reason": "the client moved" }),
            )
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        let hidden = schedule(&v, &risky, &meeting_body(72, None)).await;
        // A meeting health-hus is not in: not in its feed.
        let mut police_only = meeting_body(120, None);
        police_only["participants"] = json!(["police-helsinki"]);
        let elsewhere = schedule(&v, &open, &police_only).await;

        meetings_read_model_caught_up(&v).await;
        let url = feed_url(&v, &open.hanna).await;
        assert!(
            url.starts_with("/api/v1/calendar/health-hus.ics?token="),
            "{url}"
        );
        let (status, content_type, text) = fetch_feed(&v, &url).await;
        assert_eq!(status, 200, "{text}");
        assert!(content_type.starts_with("text/calendar"), "{content_type}");
        assert!(text.ends_with("END:VCALENDAR\r\n"));
        assert!(
            text.split("\r\n").all(|line| line.len() <= 75),
            "a line is longer than 75 octets"
        );
        let events = parse_feed(&text);
        assert_eq!(events.len(), 3, "{text}");

        let m = event_of(&events, &moved);
        assert_eq!(m.len(), 1, "a rescheduled meeting appears once");
        assert_eq!(prop(m[0], "SEQUENCE"), Some("1"));
        assert_eq!(prop(m[0], "STATUS"), Some("CONFIRMED"));
        assert!(prop(m[0], "DTSTART").unwrap().ends_with('Z'));
        assert!(prop(m[0], "DTEND").unwrap().ends_with('Z'));
        assert!(prop(m[0], "DTSTAMP").is_some());
        assert_eq!(prop(m[0], "SUMMARY"), Some("Network meeting A-1027"));
        assert_eq!(
            prop(m[0], "LOCATION"),
            Some("Room 3\\, Main St 1\\; Helsinki")
        );
        let c = event_of(&events, &cancelled);
        assert_eq!(prop(c[0], "STATUS"), Some("CANCELLED"));
        assert_eq!(prop(c[0], "SEQUENCE"), Some("1"));
        let h = event_of(&events, &hidden);
        assert_eq!(prop(h[0], "SUMMARY"), Some("Network meeting B-2002"));
        assert_eq!(
            prop(h[0], "LOCATION"),
            None,
            "safety risk, no contact grant"
        );
        assert!(event_of(&events, &elsewhere).is_empty());
        assert!(!text.contains("housing"), "the title never reaches a feed");

        // The lead sees the location of the safety-risk meeting.
        let lead_url = feed_url(&v, &risky.fiona).await;
        let (_, _, lead_text) = fetch_feed(&v, &lead_url).await;
        let lead_events = parse_feed(&lead_text);
        assert!(prop(event_of(&lead_events, &hidden)[0], "LOCATION").is_some());

        // Wrong, missing or revoked tokens, and odd names: 404 problem JSON.
        let path = "/api/v1/calendar/health-hus.ics";
        for bad in [
            format!("{path}?token=nope"),
            path.to_string(),
            url.replace("health-hus.ics", "police-helsinki.ics"),
            url.replace(".ics", ".txt"),
        ] {
            let r = v.http().get(v.url(&bad)).send().await.unwrap();
            let (status, body) = verkosto_e2e::answer(r).await.unwrap();
            assert_eq!(status, 404, "{bad}: {body}");
        }
        // Revoking all of one's own tokens (the old DELETE) ends them.
        let (status, body) = v
            .delete(&open.hanna, "/api/v1/calendar/feed-token")
            .await
            .unwrap();
        assert_eq!(status, 204, "{body}");
        let (status, body) = feed_refusal(&v, &url).await;
        assert_eq!(status, 404, "revoked: {body}");
        // A new token works again.
        let again = feed_url(&v, &open.hanna).await;
        assert_eq!(fetch_feed(&v, &again).await.0, 200);
        v.stop().await;
    }
);

/// Registers a user (as the built-in admin) and returns a token for them.
async fn user(v: &Verkosto, id: &str, agency: &str, roles: &[&str]) -> String {
    let admin = v.token("admin").await.unwrap();
    let (status, body) = v
        .post(
            &admin,
            "/api/v1/users",
            &json!({ "id": id, "agency": agency, "roles": roles, "display_name": id }),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    v.token(id).await.unwrap()
}

fn ids(list: &Value) -> Vec<&str> {
    list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["token_id"].as_str().unwrap())
        .collect()
}

both_modes!(
    feed_tokens_are_per_user_listed_and_revoked_one_by_one,
    |mode| async move {
        let v = Verkosto::start_demo(mode).await.unwrap();
        let hanna = v.token("hanna").await.unwrap();
        let liisa = v.token("liisa").await.unwrap();
        let aino = v.token("aino").await.unwrap();
        let hugo = user(&v, "hugo", "health-hus", &["liaison"]).await;
        let helmi = user(&v, "helmi", "health-hus", &["admin"]).await;

        // The old GET no longer mints anything.
        let r = v
            .http()
            .get(v.url("/api/v1/calendar/feed-token"))
            .bearer_auth(&hanna)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405);

        // Issued by POST: 180 days unless asked, by the log's clock.
        let before = Utc::now();
        let (status, a) = issue(&v, &hanna, &json!({})).await;
        assert_eq!(status, 201, "{a}");
        let expires: chrono::DateTime<Utc> = a["expires_at"].as_str().unwrap().parse().unwrap();
        let days = (expires - before).num_hours() as f64 / 24.0;
        assert!((179.9..180.1).contains(&days), "{a}");
        let a_url = a["url"].as_str().unwrap().to_string();
        assert_eq!(
            a_url,
            format!(
                "/api/v1/calendar/health-hus.ics?token={}",
                a["token"].as_str().unwrap()
            )
        );
        // No body at all is the same as {}.
        let r = v
            .http()
            .post(v.url("/api/v1/calendar/feed-tokens"))
            .bearer_auth(&hanna)
            .send()
            .await
            .unwrap();
        let (status, c) = verkosto_e2e::answer(r).await.unwrap();
        assert_eq!(status, 201, "{c}");
        let (status, b) = issue(&v, &hanna, &json!({ "expires_in_days": 7 })).await;
        assert_eq!(status, 201, "{b}");
        let expires: chrono::DateTime<Utc> = b["expires_at"].as_str().unwrap().parse().unwrap();
        assert_eq!((expires - before).num_days(), 7, "{b}");
        let b_url = b["url"].as_str().unwrap().to_string();
        for bad in [
            json!({ "expires_in_days": 0 }),
            json!({ "expires_in_days": 367 }),
            json!({ "expires_in_days": -5 }),
            json!({ "expires_in_days": "soon" }),
        ] {
            let (status, body) = issue(&v, &hanna, &bad).await;
            assert_eq!(status, 422, "{bad}: {body}");
            assert_eq!(body["field"], "expires_in_days", "{bad}: {body}");
        }
        // Only those who read meetings get a feed.
        assert_eq!(issue(&v, &aino, &json!({})).await.0, 403);
        assert_eq!(issue(&v, &helmi, &json!({})).await.0, 403);

        // The owner's list: ids, times and states, never a token or a hash.
        let (status, list) = v.get(&hanna, "/api/v1/calendar/feed-tokens").await.unwrap();
        assert_eq!(status, 200, "{list}");
        let all = [
            b["token_id"].as_str().unwrap(),
            c["token_id"].as_str().unwrap(),
            a["token_id"].as_str().unwrap(),
        ];
        assert_eq!(ids(&list), all, "newest first");
        for t in list["tokens"].as_array().unwrap() {
            assert_eq!(t["state"], "active");
            assert_eq!(t["owner"], "hanna");
            assert!(
                t["created_at"].is_string() && t["revoked_at"].is_null(),
                "{t}"
            );
        }
        let text = list.to_string();
        for secret in [&a, &b, &c] {
            let token = secret["token"].as_str().unwrap();
            assert!(!text.contains(token), "a token is never listed");
            assert!(!text.contains(&verkosto_meetings::feed_token::token_hash(token)));
        }
        // A colleague's list is the colleague's; only an admin sees the agency's.
        let (_, hugos) = v.get(&hugo, "/api/v1/calendar/feed-tokens").await.unwrap();
        assert!(ids(&hugos).is_empty(), "{hugos}");
        let agency_view = "/api/v1/calendar/feed-tokens?scope=agency";
        assert_eq!(v.get(&hugo, agency_view).await.unwrap().0, 403);
        let (status, body) = v
            .get(&hanna, "/api/v1/calendar/feed-tokens?scope=all")
            .await
            .unwrap();
        assert_eq!(
            (status, body["field"].as_str()),
            (422, Some("scope")),
            "{body}"
        );
        let (status, theirs) = v.get(&helmi, agency_view).await.unwrap();
        assert_eq!(status, 200, "{theirs}");
        assert_eq!(ids(&theirs), all);
        // Another agency's admin-less user sees none of it.
        let (_, liisas) = v.get(&liisa, "/api/v1/calendar/feed-tokens").await.unwrap();
        assert!(ids(&liisas).is_empty(), "{liisas}");

        // Only the owner or an admin of the agency revokes; to anyone
        // else a token id is unknown.
        let revoke = |id: &Value| format!("/api/v1/calendar/feed-tokens/{}", id.as_str().unwrap());
        for stranger in [&hugo, &liisa] {
            let (status, body) = v.delete(stranger, &revoke(&a["token_id"])).await.unwrap();
            assert_eq!(status, 404, "{body}");
        }
        let (status, body) = v
            .delete(&hanna, "/api/v1/calendar/feed-tokens/feedtoken-nope")
            .await
            .unwrap();
        assert_eq!(status, 404, "{body}");
        assert_eq!(fetch_feed(&v, &a_url).await.0, 200);

        // One by one: the owner revokes a, an admin revokes b; c stays.
        let (status, body) = v.delete(&hanna, &revoke(&a["token_id"])).await.unwrap();
        assert_eq!((status, body), (204, Value::Null));
        let (status, body) = v.delete(&helmi, &revoke(&b["token_id"])).await.unwrap();
        assert_eq!((status, body), (204, Value::Null));
        // Revoking again changes nothing.
        assert_eq!(
            v.delete(&hanna, &revoke(&a["token_id"])).await.unwrap().0,
            204
        );

        // A revoked token's feed answers exactly like an unknown one's.
        let unknown = feed_refusal(&v, "/api/v1/calendar/health-hus.ics?token=0000").await;
        assert_eq!(unknown.0, 404);
        for url in [&a_url, &b_url] {
            let (status, mut body) = feed_refusal(&v, url).await;
            let mut same = unknown.1.clone();
            for b in [&mut body, &mut same] {
                b.as_object_mut().unwrap().remove("request_id");
            }
            assert_eq!((status, body), (404, same), "{url}");
        }
        assert_eq!(fetch_feed(&v, c["url"].as_str().unwrap()).await.0, 200);
        let (_, list) = v.get(&hanna, "/api/v1/calendar/feed-tokens").await.unwrap();
        let states: Vec<&str> = list["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["state"].as_str().unwrap())
            .collect();
        assert_eq!(states, ["revoked", "active", "revoked"], "{list}");
        assert!(list["tokens"][0]["revoked_at"].is_string(), "{list}");
        v.stop().await;
    }
);

both_modes!(
    an_old_agency_wide_feed_token_log_still_loads,
    |mode| async move {
        use verkosto_eventlog::{Actor, CommandMeta, ExpectedVersion, NewEvent};
        let v = Verkosto::start_demo(mode).await.unwrap();
        let hanna = v.token("hanna").await.unwrap();
        // The stream as the older build left it: agency-wide tokens, one
        // revocation of them all, and one more token after it.
        let old = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let hash = verkosto_meetings::feed_token::token_hash(old);
        let at = Utc::now().to_rfc3339();
        let stored = [
            (
                "FeedTokenIssued",
                json!({ "FeedTokenIssued": { "agency": "health-hus", "token_sha256": hash, "issued_by": "hanna", "at": at } }),
            ),
            (
                "FeedTokensRevoked",
                json!({ "FeedTokensRevoked": { "agency": "health-hus", "revoked_by": "hanna", "at": at } }),
            ),
            (
                "FeedTokenIssued",
                json!({ "FeedTokenIssued": { "agency": "health-hus", "token_sha256": hash, "issued_by": "hanna", "at": at } }),
            ),
        ];
        let events = stored
            .into_iter()
            .map(|(event_type, payload)| NewEvent {
                event_type: event_type.into(),
                schema_version: 1,
                payload,
                sealing: None,
            })
            .collect();
        let meta = CommandMeta::new(Actor {
            user: "hanna".into(),
            agency: "health-hus".into(),
        });
        let log = v.log().await.unwrap();
        log.append(
            "calendar-feed",
            "health-hus",
            ExpectedVersion::NoStream,
            events,
            &meta,
            None,
        )
        .await
        .unwrap();

        // The old token was revoked by the upgrade: 404 like any other.
        let url = format!("/api/v1/calendar/health-hus.ics?token={old}");
        let (status, body) = feed_refusal(&v, &url).await;
        assert_eq!(status, 404, "{body}");
        // The stream still loads: listed (nothing of the old kind), added to.
        let (status, list) = v.get(&hanna, "/api/v1/calendar/feed-tokens").await.unwrap();
        assert_eq!(status, 200, "{list}");
        assert!(ids(&list).is_empty(), "{list}");
        let url = feed_url(&v, &hanna).await;
        assert_eq!(fetch_feed(&v, &url).await.0, 200);
        let (status, list) = v.get(&hanna, "/api/v1/calendar/feed-tokens").await.unwrap();
        assert_eq!((status, ids(&list).len()), (200, 1), "{list}");
        v.stop().await;
    }
);

/// Expiry is decided by the log's clock. Two days on, honestly: a meetings
/// process whose machine clock is two days ahead (libfaketime) and that is
/// told to trust it (`--clock-sync system`) stands for the same service two
/// days later. One with the same fast clock that measures the database's
/// (the default) keeps to the log's time and still serves the feed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_feed_token_expires_by_the_logs_clock() {
    let lib = std::env::var("VERKOSTO_FAKETIME_LIB").unwrap_or_default();
    assert!(
        std::path::Path::new(&lib).exists(),
        "libfaketime is needed (VERKOSTO_FAKETIME_LIB={lib:?}); scripts/test.sh installs it"
    );
    let mut split = verkosto_e2e::Split::start(&["relay", "cases", "meetings"])
        .await
        .unwrap();
    let fast = [
        ("LD_PRELOAD", lib.as_str()),
        ("FAKETIME", "+2d"),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    ];
    split.spawn_with("meetings", &[], &fast).await.unwrap();
    split
        .spawn_with("meetings", &["--clock-sync", "system"], &fast)
        .await
        .unwrap();
    let [now, synced, later] = <[String; 3]>::try_from(split.bases("meetings")).unwrap();
    // faketime took effect, and only the synced process corrects for it.
    let offset = |base: String| async move {
        verkosto_e2e::scaleout::gauge(&base, "verkosto_clock_offset_ms")
            .await
            .unwrap()
            .unwrap()
    };
    let two_days = 2 * 86_400_000;
    assert!((offset(synced.clone()).await + two_days).abs() < 60_000);
    assert_eq!(offset(later.clone()).await, 0);

    let hanna = split.token("hanna").await.unwrap();
    let (status, day) = split
        .post(
            "meetings",
            &hanna,
            "/api/v1/calendar/feed-tokens",
            &json!({ "expires_in_days": 1 }),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{day}");
    let (status, year) = split
        .post(
            "meetings",
            &hanna,
            "/api/v1/calendar/feed-tokens",
            &json!({ "expires_in_days": 366 }),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{year}");
    let http = reqwest::Client::new();
    let get = |base: &str, answer: &Value| {
        let url = format!("{base}{}", answer["url"].as_str().unwrap());
        let http = http.clone();
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get(&now, &day).await, 200);
    assert_eq!(
        get(&synced, &day).await,
        200,
        "the log's clock says a day has not passed"
    );
    assert_eq!(
        get(&later, &day).await,
        404,
        "two days later the day-long token has expired"
    );
    assert_eq!(get(&later, &year).await, 200, "a year-long one has not");
    // An expired token reads like an unknown one.
    let r = http
        .get(format!("{later}{}", day["url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    let (_, expired) = verkosto_e2e::answer(r).await.unwrap();
    assert_eq!(expired["detail"], "no such calendar", "{expired}");
    split.stop().await;
}
