//! The client's text is sealed at rest and on the stream. A case whose
//! every free-text field holds a marker: its permitted readers see every
//! marker; then, with the processes stopped, no byte of the embedded data
//! directory, of the PostgreSQL cluster's files (after a `CHECKPOINT`), of
//! the nats-server's store, or of the process's log holds one. The case's
//! id, which stays clear, is found in the same files: the search reads
//! where the data is.

use std::path::{Path, PathBuf};

use chrono::{Duration, SecondsFormat, Utc};
use serde_json::{json, Value};
use sqlx::Connection;
use verkosto_e2e::{both_modes, Verkosto};

/// Markers: one per field, all sharing a prefix no other test writes.
struct Markers {
    prefix: String,
    made: Vec<String>,
}

impl Markers {
    fn new() -> Markers {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Markers {
            prefix: format!("Mrk{}", &id[..12]),
            made: Vec::new(),
        }
    }

    /// The marker of `field`.
    fn of(&mut self, field: &str) -> String {
        let marker = format!("{}-{field}", self.prefix);
        self.made.push(marker.clone());
        marker
    }
}

fn in_hours(hours: i64) -> String {
    (Utc::now() + Duration::hours(hours)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn ok(v: &Verkosto, token: &str, path: &str, body: Value, status: u16) -> Value {
    let (got, answer) = v.post(token, path, &body).await.unwrap();
    assert_eq!(got, status, "POST {path}: {answer}");
    answer
}

/// The id of what a POST made (201).
async fn created(v: &Verkosto, token: &str, path: &str, body: Value) -> String {
    ok(v, token, path, body, 201).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn read(v: &Verkosto, token: &str, path: &str) -> Value {
    let (status, body) = v.get(token, path).await.unwrap();
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// A case with a marker in every text field the API takes, and the
/// answers of every read of it, as the lead facilitator, an invited
/// agency, a member and the auditor see them.
async fn marked_case(v: &Verkosto, m: &mut Markers) -> (String, Vec<Value>) {
    let fiona = v.token("fiona").await.unwrap();
    let hanna = v.token("hanna").await.unwrap();
    let liisa = v.token("liisa").await.unwrap();
    let nora = v.token("nora").await.unwrap();
    let aino = v.token("aino").await.unwrap();
    let mut reads = Vec::new();

    let case = created(
        v,
        &fiona,
        "/api/v1/cases",
        json!({ "pseudonym": m.of("pseudonym"), "languages": ["ro"], "interpreter_language": "ro",
                "flags": { "minor": false, "safety_risk": true } }),
    )
    .await;
    let c = format!("/api/v1/cases/{case}");

    // The network: two accept, one declines with a reason.
    for (agency, token) in [
        ("health-hus", &hanna),
        ("police-helsinki", &liisa),
        ("ngo-support", &nora),
    ] {
        let purpose = m.of(&format!("purpose-{agency}"));
        ok(
            v,
            &fiona,
            &format!("{c}/members"),
            json!({ "agency": agency, "purpose": purpose }),
            201,
        )
        .await;
        reads.push(read(v, token, "/api/v1/invitations").await);
        if agency == "ngo-support" {
            let reason = m.of("invitation-declined");
            ok(
                v,
                token,
                &format!("{c}/invitations/decline"),
                json!({ "reason": reason }),
                200,
            )
            .await;
        } else {
            ok(v, token, &format!("{c}/invitations/accept"), json!({}), 200).await;
        }
    }

    // Consent: one grant kept, one withdrawn.
    let grant = |purpose: String, interpreter: String| {
        json!({ "recipient": "health-hus", "categories": ["health", "meetings", "social", "contact"],
                "purpose": purpose, "valid_until": null,
                "obtained": { "method": "written", "language": "ro", "interpreter": interpreter,
                              "grantor": "self" } })
    };
    let kept = grant(m.of("grant-purpose"), m.of("grant-interpreter"));
    ok(v, &fiona, &format!("{c}/consent/grants"), kept, 201).await;
    let withdrawn = grant(m.of("grant2-purpose"), m.of("grant2-interpreter"));
    let answer = ok(v, &fiona, &format!("{c}/consent/grants"), withdrawn, 201).await;
    let grant_id = answer["grant_id"].as_str().unwrap();
    let reason = m.of("withdraw-reason");
    ok(
        v,
        &fiona,
        &format!("{c}/consent/grants/{grant_id}/withdraw"),
        json!({ "reason": reason }),
        200,
    )
    .await;

    // The plan: changes requested once, then agreed.
    let draft = json!({ "goals": [m.of("goal")], "measures": [
        { "id": "m1", "category": "health", "responsible_agency": "health-hus",
          "description": m.of("measure"), "due": null } ] });
    let (status, body) = v
        .put(&fiona, &format!("{c}/plan/draft"), &draft)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let n = ok(
        v,
        &fiona,
        &format!("{c}/plan/draft/propose"),
        json!({}),
        200,
    )
    .await["plan_version"]
        .clone();
    let comment = m.of("changes-comment");
    ok(
        v,
        &liisa,
        &format!("{c}/plan/versions/{n}/request-changes"),
        json!({ "comment": comment }),
        200,
    )
    .await;
    // The lead sees what was asked for while it works on the draft.
    reads.push(read(v, &fiona, &format!("{c}/plan")).await);
    let n = ok(
        v,
        &fiona,
        &format!("{c}/plan/draft/propose"),
        json!({}),
        200,
    )
    .await["plan_version"]
        .clone();
    for token in [&fiona, &hanna, &liisa] {
        ok(
            v,
            token,
            &format!("{c}/plan/versions/{n}/approve"),
            json!({}),
            200,
        )
        .await;
    }
    let agreement = json!({ "method": "verbal", "language": "ro", "interpreter": m.of("agreement-interpreter") });
    ok(
        v,
        &fiona,
        &format!("{c}/plan/versions/{n}/client-agreement"),
        agreement,
        200,
    )
    .await;

    // Meetings: one rescheduled, answered and minuted; one cancelled.
    let meeting = |title: String, location: String, agenda: String| {
        json!({ "title": title, "starts_at": in_hours(72), "ends_at": in_hours(73),
                "location": location, "participants": ["health-hus", "police-helsinki"],
                "client_attends": true, "interpreter_language": null, "agenda": [agenda],
                "lead_time_override_reason": null })
    };
    let body = meeting(m.of("title"), m.of("location"), m.of("agenda"));
    let id = created(v, &fiona, &format!("{c}/meetings"), body).await;
    let reason = m.of("reschedule-reason");
    let moved = json!({ "starts_at": in_hours(96), "ends_at": in_hours(97), "reason": reason });
    ok(
        v,
        &fiona,
        &format!("/api/v1/meetings/{id}/reschedule"),
        moved,
        200,
    )
    .await;
    let comment = m.of("rsvp-comment");
    ok(
        v,
        &hanna,
        &format!("/api/v1/meetings/{id}/rsvp"),
        json!({ "response": "accept", "comment": comment }),
        200,
    )
    .await;
    let minutes = json!({ "notes": [{ "category": "health", "text": m.of("note") }],
        "decisions": [m.of("decision")],
        "action_items": [{ "id": "a1", "description": m.of("action-item"), "category": "health",
                           "assignee": "health-hus", "due": null }] });
    let (status, body) = v
        .put(&fiona, &format!("/api/v1/meetings/{id}/minutes"), &minutes)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    ok(
        v,
        &fiona,
        &format!("/api/v1/meetings/{id}/minutes/publish"),
        json!({}),
        200,
    )
    .await;
    let body = meeting(m.of("title2"), m.of("location2"), m.of("agenda2"));
    let other = created(v, &fiona, &format!("{c}/meetings"), body).await;
    let reason = m.of("cancel-reason");
    ok(
        v,
        &fiona,
        &format!("/api/v1/meetings/{other}/cancel"),
        json!({ "reason": reason }),
        200,
    )
    .await;

    // Tasks: one by hand (declined), the action item's (completed), the
    // plan measure's (cancelled).
    let task = json!({ "description": m.of("task"), "category": "social",
                       "assignee": "police-helsinki", "due": null });
    let manual = created(v, &fiona, &format!("{c}/tasks"), task).await;
    let reason = m.of("task-decline");
    ok(
        v,
        &liisa,
        &format!("/api/v1/tasks/{manual}/decline"),
        json!({ "reason": reason }),
        200,
    )
    .await;
    let inbox = read(v, &hanna, "/api/v1/tasks?scope=agency").await;
    for t in inbox["tasks"].as_array().unwrap() {
        let id = t["id"].as_str().unwrap();
        match t["source"]["kind"].as_str().unwrap() {
            "action_item" => {
                let note = m.of("task-note");
                ok(
                    v,
                    &hanna,
                    &format!("/api/v1/tasks/{id}/complete"),
                    json!({ "note": note }),
                    200,
                )
                .await;
            }
            "plan_measure" => {
                let reason = m.of("task-cancel");
                ok(
                    v,
                    &fiona,
                    &format!("/api/v1/tasks/{id}/cancel"),
                    json!({ "reason": reason }),
                    200,
                )
                .await;
            }
            _ => {}
        }
    }

    // A record.
    let record = json!({ "category": "health", "body": m.of("record") });
    ok(v, &fiona, &format!("{c}/records"), record, 201).await;

    // Every read of it.
    for path in [
        c.clone(),
        format!("{c}/records"),
        format!("{c}/plan"),
        format!("{c}/consent"),
        format!("/api/v1/meetings?case={case}"),
        format!("/api/v1/meetings/{id}"),
        format!("/api/v1/meetings/{other}"),
        "/api/v1/tasks?scope=agency".into(),
        "/api/v1/tasks?scope=agency&status=cancelled".into(),
        "/api/v1/tasks?scope=agency&status=done".into(),
    ] {
        reads.push(read(v, &fiona, &path).await);
    }
    for token in [&hanna, &liisa] {
        for status in ["open", "done", "declined", "cancelled"] {
            reads.push(
                read(
                    v,
                    token,
                    &format!("/api/v1/tasks?scope=agency&status={status}"),
                )
                .await,
            );
        }
    }
    reads.push(
        read(
            v,
            &aino,
            &format!("/api/v1/audit/cases/{case}/consent/history"),
        )
        .await,
    );
    (case, reads)
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// The files under `dirs` whose bytes hold `needle`.
fn holding(dirs: &[PathBuf], needle: &str) -> Vec<PathBuf> {
    let needle = needle.as_bytes();
    dirs.iter()
        .flat_map(|d| files(d))
        .filter(|f| {
            std::fs::read(f).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
        })
        .collect()
}

/// The test cluster's data directory, after a `CHECKPOINT` that writes
/// every page out.
async fn postgres_files() -> PathBuf {
    let admin = verkosto_testkit::PgServer::shared().await.admin_url();
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query("CHECKPOINT").execute(&mut conn).await.unwrap();
    let dir: String = sqlx::query_scalar("SHOW data_directory")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let dir = PathBuf::from(dir);
    assert!(
        dir.is_dir(),
        "the test cluster's data directory {} is not on this machine: the search needs it",
        dir.display()
    );
    dir
}

both_modes!(
    client_text_is_sealed_at_rest_and_on_the_stream,
    |mode| async move {
        let mut v = Verkosto::start_demo(mode).await.unwrap();
        let mut m = Markers::new();
        let (case, reads) = marked_case(&v, &mut m).await;

        // The permitted readers see every marker, and nothing sealed.
        let seen = serde_json::to_string(&reads).unwrap();
        let unseen: Vec<&String> = m
            .made
            .iter()
            .filter(|x| !seen.contains(x.as_str()))
            .collect();
        assert!(unseen.is_empty(), "no read shows {unseen:?}");
        assert!(!seen.contains("vks1."), "a read shows sealed text: {seen}");

        // With everything stopped, no file holds a marker.
        let log = v.child().map(|c| c.log_path().to_path_buf());
        v.halt().await;
        let dirs = match v.nats.as_mut() {
            None => vec![v.data_dir().to_path_buf()],
            Some(nats) => {
                nats.stop().unwrap();
                vec![nats.store_dir(), postgres_files().await]
            }
        };
        for dir in &dirs {
            assert!(
                !holding(std::slice::from_ref(dir), &case).is_empty(),
                "the case id is nowhere under {}: the search does not see the data",
                dir.display()
            );
        }
        let leaked = holding(&dirs, &m.prefix);
        assert!(leaked.is_empty(), "client text in the clear in {leaked:?}");
        if let Some(log) = log {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(
                !text.contains(&m.prefix),
                "client text in the log {}",
                log.display()
            );
        }

        // Erased: its reads answer 410, the log still verifies, and still
        // no file holds a marker.
        if let Some(nats) = v.nats.as_mut() {
            nats.restart().await.unwrap();
        }
        v.restart_with(&["--demo", "--demo-case", "off"])
            .await
            .unwrap();
        let fiona = v.token("fiona").await.unwrap();
        let c = format!("/api/v1/cases/{case}");
        ok(
            &v,
            &fiona,
            &format!("{c}/close"),
            json!({ "outcome": "other" }),
            200,
        )
        .await;
        let header = read(&v, &fiona, &c).await;
        for hold in header["legal_holds"].as_array().into_iter().flatten() {
            let hold = hold.as_str().unwrap();
            let path = format!("{c}/legal-hold/{hold}/release");
            ok(&v, &fiona, &path, json!({}), 200).await;
        }
        let erasure = json!({ "reason": "test", "legal_basis": "data_subject_request" });
        ok(&v, &fiona, &format!("{c}/erasure"), erasure, 200).await;
        let (s, body) = v.get(&fiona, &c).await.unwrap();
        assert_eq!((s, &body["case_id"]), (410, &json!(case)), "{body}");
        let aino = v.token("aino").await.unwrap();
        let (s, report) = v.get(&aino, "/api/v1/audit/verify").await.unwrap();
        assert_eq!((s, report["ok"].as_bool()), (200, Some(true)), "{report}");
        v.halt().await;
        if let Some(nats) = v.nats.as_mut() {
            nats.stop().unwrap();
        }
        let dirs = match v.nats.as_ref() {
            None => vec![v.data_dir().to_path_buf()],
            Some(nats) => vec![nats.store_dir(), postgres_files().await],
        };
        let leaked = holding(&dirs, &m.prefix);
        assert!(
            leaked.is_empty(),
            "client text in the clear after erasure in {leaked:?}"
        );
    }
);
