//! The end of a case: closing it, legal holds, erasure. Erasure destroys
//! the case's key: every later read of it answers 410, its read-model rows
//! are gone, the log still verifies and still rebuilds the read models,
//! the auditor sees who erased it and why, and the other cases are as
//! they were.

use serde_json::{json, Value};
use verkosto_e2e::{both_modes, Mode, Verkosto};

async fn post(v: &Verkosto, token: &str, path: &str, body: Value) -> (u16, Value) {
    v.post(token, path, &body).await.unwrap()
}

async fn status_of(v: &Verkosto, token: &str, path: &str) -> (u16, Value) {
    v.get(token, path).await.unwrap()
}

/// A case led by fiona's agency with hanna's agency in it, a record, a
/// meeting and a task; returns the case id and the meeting's and task's ids.
async fn case_with_data(
    v: &Verkosto,
    fiona: &str,
    hanna: &str,
    pseudonym: &str,
) -> (String, String, String) {
    let (s, body) = post(
        v,
        fiona,
        "/api/v1/cases",
        json!({ "pseudonym": pseudonym, "languages": ["fi"], "flags": { "minor": false, "safety_risk": false } }),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let case = body["id"].as_str().unwrap().to_string();
    let c = format!("/api/v1/cases/{case}");
    let (s, body) = post(
        v,
        fiona,
        &format!("{c}/members"),
        json!({ "agency": "health-hus", "purpose": "care" }),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let (s, body) = post(v, hanna, &format!("{c}/invitations/accept"), json!({})).await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = post(
        v,
        fiona,
        &format!("{c}/records"),
        json!({ "category": "health", "body": "a record" }),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let starts = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    let ends =
        (chrono::Utc::now() + chrono::Duration::days(3) + chrono::Duration::hours(1)).to_rfc3339();
    let (s, body) = post(
        v,
        fiona,
        &format!("{c}/meetings"),
        json!({ "title": "Network meeting", "starts_at": starts, "ends_at": ends, "location": "Room 1",
                "participants": ["health-hus"], "client_attends": false, "interpreter_language": null,
                "agenda": ["Plan"], "lead_time_override_reason": null }),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let meeting = body["id"].as_str().unwrap().to_string();
    let (s, body) = post(
        v,
        fiona,
        &format!("{c}/tasks"),
        json!({ "description": "Book a check-up", "category": "health", "assignee": "health-hus", "due": null }),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let task = body["id"].as_str().unwrap().to_string();
    (case, meeting, task)
}

both_modes!(
    a_closed_case_on_hold_is_kept_and_an_erased_one_answers_410,
    |mode| async move {
        let mut v = Verkosto::start_demo(mode).await.unwrap();
        let fiona = v.token("fiona").await.unwrap();
        let hanna = v.token("hanna").await.unwrap();
        let aino = v.token("aino").await.unwrap();
        let (case, meeting, task) = case_with_data(&v, &fiona, &hanna, "E-1").await;
        let (other, _, _) = case_with_data(&v, &fiona, &hanna, "E-2").await;
        let c = format!("/api/v1/cases/{case}");

        // An open case is not erased; bad input names its field.
        let erase =
            json!({ "reason": "retention period over", "legal_basis": "retention_expired" });
        let (s, body) = post(&v, &fiona, &format!("{c}/erasure"), erase.clone()).await;
        assert_eq!(s, 409, "{body}");
        assert!(
            body["detail"].as_str().unwrap().contains("close it first"),
            "{body}"
        );
        let (s, body) = post(
            &v,
            &fiona,
            &format!("{c}/erasure"),
            json!({ "reason": "x", "legal_basis": "because" }),
        )
        .await;
        assert_eq!(
            (s, body["field"].as_str()),
            (422, Some("legal_basis")),
            "{body}"
        );
        let (s, body) = post(
            &v,
            &fiona,
            &format!("{c}/close"),
            json!({ "outcome": "done" }),
        )
        .await;
        assert_eq!(
            (s, body["field"].as_str()),
            (422, Some("outcome")),
            "{body}"
        );
        // Only the lead closes.
        let (s, body) = post(
            &v,
            &hanna,
            &format!("{c}/close"),
            json!({ "outcome": "goals_met" }),
        )
        .await;
        assert_eq!(s, 403, "{body}");

        // Closed: no new records, meetings or tasks; closing twice is refused.
        let (s, body) = post(
            &v,
            &fiona,
            &format!("{c}/close"),
            json!({ "outcome": "goals_met", "note": "well done" }),
        )
        .await;
        assert_eq!(s, 200, "{body}");
        let (s, body) = post(
            &v,
            &fiona,
            &format!("{c}/close"),
            json!({ "outcome": "goals_met" }),
        )
        .await;
        assert_eq!(s, 409, "{body}");
        let (s, body) = post(
            &v,
            &fiona,
            &format!("{c}/records"),
            json!({ "category": "health", "body": "late" }),
        )
        .await;
        assert_eq!(s, 409, "{body}");
        let (s, body) = post(
        &v,
        &fiona,
        &format!("{c}/tasks"),
        json!({ "description": "late", "category": "health", "assignee": "health-hus", "due": null }),
    )
    .await;
        assert_eq!(s, 409, "{body}");
        let (s, _) = status_of(&v, &fiona, &c).await;
        assert_eq!(s, 200, "a closed case is still read");

        // A legal hold (the auditor's) blocks erasure until it is released.
        let (s, body) = post(
            &v,
            &aino,
            &format!("{c}/legal-hold"),
            json!({ "reason": "investigation 123/2026" }),
        )
        .await;
        assert_eq!(s, 201, "{body}");
        let hold = body["hold_id"].as_str().unwrap().to_string();
        // The lead sees why, by whom and since when.
        let (_, header) = status_of(&v, &fiona, &c).await;
        assert_eq!(header["legal_holds"], json!([hold]), "{header}");
        let detail = &header["legal_hold_details"][0];
        assert_eq!(
            (detail["hold_id"].as_str(), detail["reason"].as_str()),
            (Some(hold.as_str()), Some("investigation 123/2026")),
            "{header}"
        );
        assert!(
            detail["placed_by"].is_string() && detail["placed_at"].is_string(),
            "{header}"
        );
        let (s, body) = post(&v, &fiona, &format!("{c}/erasure"), erase.clone()).await;
        assert_eq!(s, 409, "{body}");
        assert!(
            body["detail"].as_str().unwrap().contains("legal hold"),
            "{body}"
        );
        let (s, body) = post(
            &v,
            &fiona,
            &format!("{c}/legal-hold/{hold}/release"),
            json!({}),
        )
        .await;
        assert_eq!(s, 200, "{body}");

        // Found by its pseudonym (however it is spelled) through the blind
        // index: by its members among their cases, by the auditor anywhere.
        let found = until(
            &v,
            &fiona,
            "/api/v1/cases?pseudonym=%20e-1%20",
            |s, body| s == 200 && !body["cases"].as_array().unwrap().is_empty(),
        )
        .await;
        assert_eq!(found["cases"].as_array().unwrap().len(), 1, "{found}");
        assert_eq!(found["cases"][0]["id"], json!(case), "{found}");
        let (s, found) = status_of(&v, &aino, "/api/v1/audit/cases?pseudonym=E-1").await;
        assert_eq!(s, 200, "{found}");
        assert_eq!(found["cases"][0]["case_id"], json!(case), "{found}");
        assert_eq!(found["cases"][0]["status"], "closed", "{found}");
        let (s, body) = status_of(&v, &aino, "/api/v1/audit/cases?pseudonym=").await;
        assert_eq!(
            (s, body["field"].as_str()),
            (422, Some("pseudonym")),
            "{body}"
        );
        let (s, _) = status_of(&v, &fiona, "/api/v1/audit/cases?pseudonym=E-1").await;
        assert_eq!(s, 403);

        // Erased.
        let (s, body) = post(&v, &fiona, &format!("{c}/erasure"), erase.clone()).await;
        assert_eq!(s, 200, "{body}");
        // Its index entries went with its key.
        for (who, path) in [
            (&fiona, "/api/v1/cases?pseudonym=E-1"),
            (&aino, "/api/v1/audit/cases?pseudonym=E-1"),
        ] {
            let (s, found) = status_of(&v, who, path).await;
            assert_eq!(
                (s, found["cases"].as_array().map(Vec::len)),
                (200, Some(0)),
                "{path}: {found}"
            );
        }
        for path in [
            c.clone(),
            format!("{c}/records"),
            format!("{c}/plan"),
            format!("{c}/consent"),
            format!("/api/v1/meetings?case={case}"),
            format!("/api/v1/meetings/{meeting}"),
        ] {
            let (s, body) = status_of(&v, &fiona, &path).await;
            assert_eq!(s, 410, "GET {path}: {body}");
            assert_eq!(body["case_id"], json!(case), "{body}");
        }
        let (s, body) = post(&v, &fiona, &format!("{c}/erasure"), erase.clone()).await;
        assert_eq!(s, 410, "{body}");
        let (s, body) = post(
            &v,
            &hanna,
            &format!("/api/v1/tasks/{task}/accept"),
            json!({}),
        )
        .await;
        assert!(s == 404 || s == 410, "{s} {body}");
        let (_, inbox) = status_of(&v, &hanna, "/api/v1/tasks?scope=agency").await;
        let ids: Vec<&str> = inbox["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["case_id"].as_str())
            .collect();
        assert!(!ids.contains(&case.as_str()), "{inbox}");
        assert!(ids.contains(&other.as_str()), "{inbox}");
        let (_, cases) = status_of(&v, &fiona, "/api/v1/cases").await;
        assert!(!cases.to_string().contains(&case), "{cases}");

        // The other case is as it was.
        let (s, body) = status_of(&v, &fiona, &format!("/api/v1/cases/{other}/records")).await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["records"][0]["body"], "a record", "{body}");
        let (s, body) = status_of(&v, &fiona, &format!("/api/v1/cases/{other}")).await;
        assert_eq!(
            (s, body["pseudonym"].as_str()),
            (200, Some("E-2")),
            "{body}"
        );

        // The auditor: the log verifies, the erasure is on record.
        let (s, report) = status_of(&v, &aino, "/api/v1/audit/verify").await;
        assert_eq!((s, report["ok"].as_bool()), (200, Some(true)), "{report}");
        let (s, history) = status_of(
            &v,
            &aino,
            &format!("/api/v1/audit/cases/{case}/consent/history"),
        )
        .await;
        assert_eq!(s, 200, "{history}");
        assert_eq!(
            history["erased"]["legal_basis"], "retention_expired",
            "{history}"
        );
        assert_eq!(
            history["erased"]["reason"], "retention period over",
            "{history}"
        );
        assert_eq!(history["erased"]["actor"]["user"], "fiona", "{history}");

        // The key is gone from the key store; the other case's is there.
        let keys = match mode {
            Mode::Embedded => {
                let kek = verkosto_keys::FileKeys::load(v.data_dir().join("kek")).unwrap();
                let url = format!("sqlite://{}", v.data_dir().join("keys.db").display());
                verkosto_keys::KeyStore::open(&url, std::sync::Arc::new(kek))
                    .await
                    .unwrap()
            }
            Mode::Distributed => {
                let kek = verkosto_keys::FileKeys::parse(verkosto_testkit::TEST_KEK).unwrap();
                verkosto_keys::KeyStore::open(&v.database_url, std::sync::Arc::new(kek))
                    .await
                    .unwrap()
            }
        };
        assert!(keys.existing_case_key(&case).await.unwrap().is_none());
        assert!(keys.existing_case_key(&other).await.unwrap().is_some());
        keys.close().await;

        // A rebuild from the log gives the read models as they are.
        let nats = v.nats.as_ref().map(|n| n.url());
        verkosto_e2e::checker::wait_for_recovery(
            &v.database_url,
            nats.as_deref(),
            std::time::Duration::from_secs(30),
        )
        .await
        .unwrap();
        v.halt().await;
        let report = verkosto_e2e::checker::check(&v.database_url, nats.as_deref(), &[])
            .await
            .unwrap();
        assert!(report.rows_compared > 0, "{report:?}");
    }
);

/// Runs the `verkosto` binary on the embedded store in `data_dir` with the
/// data directory's own key-encryption key (not the tests' shared one).
fn cli(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    verkosto_testkit::verkosto_std()
        .env_remove("VERKOSTO_KEY")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_key_rotation_an_older_key_store_backup_opens_nothing() {
    let mut v = Verkosto::start_demo(Mode::Embedded).await.unwrap();
    let fiona = v.token("fiona").await.unwrap();
    let hanna = v.token("hanna").await.unwrap();
    let (case, _, _) = case_with_data(&v, &fiona, &hanna, "K-1").await;
    let (other, _, _) = case_with_data(&v, &fiona, &hanna, "K-2").await;
    let data = v.data_dir().to_path_buf();

    // A backup while it runs: the log and the key store, apart, no KEK.
    let scratch = tempfile::tempdir().unwrap();
    let backup = scratch.path().join("backup");
    let out = cli(&data, &["backup", backup.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(backup.join("log/verkosto.db").is_file() && backup.join("keys/keys.db").is_file());
    let copied: Vec<_> = std::fs::read_dir(backup.join("keys"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        copied,
        vec![std::ffi::OsString::from("keys.db")],
        "no KEK in a backup"
    );

    // The case is erased, then the KEK rotated (every process stopped).
    let c = format!("/api/v1/cases/{case}");
    let (s, body) = post(
        &v,
        &fiona,
        &format!("{c}/close"),
        json!({ "outcome": "moved_away" }),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let erase = json!({ "reason": "the client asked", "legal_basis": "data_subject_request" });
    let (s, body) = post(&v, &fiona, &format!("{c}/erasure"), erase).await;
    assert_eq!(s, 200, "{body}");
    v.halt().await;
    let before = std::fs::read_to_string(data.join("kek")).unwrap();
    let out = cli(&data, &["keys", "rotate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = std::fs::read_to_string(data.join("kek")).unwrap();
    assert_ne!(before, after, "a new key-encryption key");
    assert!(!data.join("kek.next").exists());

    // The deployment reads on under the new KEK.
    v.restart_with(&["--demo", "--demo-case", "off"])
        .await
        .unwrap();
    let fiona = v.token("fiona").await.unwrap();
    let (s, body) = status_of(&v, &fiona, &format!("/api/v1/cases/{other}/records")).await;
    assert_eq!(
        (s, body["records"][0]["body"].as_str()),
        (200, Some("a record")),
        "{body}"
    );
    let (s, _) = status_of(&v, &fiona, &c).await;
    assert_eq!(s, 410);
    v.halt().await;

    // The backup made before the rotation holds the erased case's key,
    // wrapped by a KEK that no longer exists: it opens nothing, and
    // restoring it is refused.
    let kek = verkosto_keys::FileKeys::load(data.join("kek")).unwrap();
    let url = format!("sqlite://{}", backup.join("keys/keys.db").display());
    let opened = verkosto_keys::KeyStore::open(&url, std::sync::Arc::new(kek)).await;
    assert!(
        matches!(opened, Err(verkosto_keys::KeyError::UnknownKek(_))),
        "{:?}",
        opened.map(|_| ())
    );
    let fresh = scratch.path().join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    std::fs::copy(data.join("kek"), fresh.join("kek")).unwrap();
    let out = cli(&fresh, &["restore", backup.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not open with this key-encryption key"),
        "{stderr}"
    );
    assert!(!fresh.join("verkosto.db").exists() && !fresh.join("keys.db").exists());

    // A backup made now restores, and erased stays erased in it.
    let now = scratch.path().join("now");
    let out = cli(&data, &["backup", now.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&fresh, &["restore", now.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kek = verkosto_keys::FileKeys::load(fresh.join("kek")).unwrap();
    let url = format!("sqlite://{}", fresh.join("keys.db").display());
    let keys = verkosto_keys::KeyStore::open(&url, std::sync::Arc::new(kek))
        .await
        .unwrap();
    assert!(keys.existing_case_key(&case).await.unwrap().is_none());
    assert!(keys.existing_case_key(&other).await.unwrap().is_some());
    keys.close().await;
}

/// POSTs `body` to `path` as `token`, checks the answer's status, and
/// returns the answer.
async fn post_expecting(v: &Verkosto, token: &str, path: &str, body: Value, status: u16) -> Value {
    let (s, answer) = post(v, token, path, body).await;
    assert_eq!(s, status, "POST {path}: {answer}");
    answer
}

/// Polls `GET path` as `token` until `done` holds of the answer (30 s at
/// most: the sweeps run at once when the clock moves, and the test fails
/// on a sweep that never comes).
async fn until(v: &Verkosto, token: &str, path: &str, done: impl Fn(u16, &Value) -> bool) -> Value {
    for _ in 0..300 {
        let (s, body) = status_of(v, token, path).await;
        if done(s, &body) {
            return body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("GET {path} never got there");
}

both_modes!(
    closing_a_case_cancels_its_open_tasks_with_the_reason,
    |mode| async move {
        let v = Verkosto::start_demo(mode).await.unwrap();
        let fiona = v.token("fiona").await.unwrap();
        let hanna = v.token("hanna").await.unwrap();
        let (case, _, task) = case_with_data(&v, &fiona, &hanna, "C-1").await;
        let c = format!("/api/v1/cases/{case}");
        // Hanna may read the task's text (and so its cancellation's reason).
        let grant = json!({ "recipient": "health-hus", "categories": ["health"], "purpose": "care",
                "valid_until": null, "obtained": { "method": "written", "language": "fi", "grantor": "self" } });
        post_expecting(&v, &fiona, &format!("{c}/consent/grants"), grant, 201).await;
        // A task done before the closing stays done.
        let task_done = json!({ "description": "Done already", "category": "health", "assignee": "health-hus", "due": null });
        let body = post_expecting(&v, &fiona, &format!("{c}/tasks"), task_done, 201).await;
        let done = body["id"].as_str().unwrap().to_string();
        for step in ["accept", "complete"] {
            post_expecting(
                &v,
                &hanna,
                &format!("/api/v1/tasks/{done}/{step}"),
                json!({}),
                200,
            )
            .await;
        }

        post_expecting(
            &v,
            &fiona,
            &format!("{c}/close"),
            json!({ "outcome": "moved_away" }),
            200,
        )
        .await;
        let cancelled = until(&v, &hanna, &format!("/api/v1/tasks/{task}"), |_, t| {
            t["status"] == "cancelled"
        })
        .await;
        assert_eq!(
            cancelled["outcome_note"], "The case was closed (the client moved away).",
            "{cancelled}"
        );
        let (s, body) = status_of(&v, &hanna, &format!("/api/v1/tasks/{done}")).await;
        assert_eq!((s, body["status"].as_str()), (200, Some("done")), "{body}");
        let (_, list) = status_of(&v, &fiona, "/api/v1/cases").await;
        let listed = list["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == json!(case))
            .unwrap();
        assert_eq!(listed["status"], "closed", "{list}");
        let (s, case_view) = status_of(&v, &fiona, &c).await;
        assert_eq!(s, 200, "{case_view}");
        assert_eq!(
            (case_view["status"].as_str(), case_view["outcome"].as_str()),
            (Some("closed"), Some("moved_away")),
            "{case_view}"
        );
        v.stop().await;
    }
);

both_modes!(
    the_retention_sweep_erases_what_is_due_and_nothing_else,
    |mode| async move {
        let v = Verkosto::start_with(
            mode,
            &[
                "--demo",
                "--demo-case",
                "off",
                "--retention",
                "1y",
                "--dev-clock",
            ],
        )
        .await
        .unwrap();
        let fiona = v.token("fiona").await.unwrap();
        let hanna = v.token("hanna").await.unwrap();
        let aino = v.token("aino").await.unwrap();
        let admin = v.token("admin").await.unwrap();
        let close = json!({ "outcome": "goals_met" });
        let (old, _, _) = case_with_data(&v, &fiona, &hanna, "R-old").await;
        let (held, _, _) = case_with_data(&v, &fiona, &hanna, "R-held").await;
        let (open, _, _) = case_with_data(&v, &fiona, &hanna, "R-open").await;
        for case in [&old, &held] {
            post_expecting(
                &v,
                &fiona,
                &format!("/api/v1/cases/{case}/close"),
                close.clone(),
                200,
            )
            .await;
        }
        let body = post_expecting(
            &v,
            &aino,
            &format!("/api/v1/cases/{held}/legal-hold"),
            json!({ "reason": "court order 7/2026" }),
            201,
        )
        .await;
        let hold = body["hold_id"].as_str().unwrap().to_string();

        // Only auditors list what is due.
        let (s, _) = status_of(&v, &fiona, "/api/v1/audit/retention").await;
        assert_eq!(s, 403);
        let (s, list) = status_of(&v, &aino, "/api/v1/audit/retention").await;
        assert_eq!(s, 200, "{list}");
        assert_eq!(list["period"], "1y", "{list}");
        let listed: Vec<(&str, bool)> = list["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["case_id"].as_str().unwrap(),
                    c["legal_hold"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            listed,
            vec![(old.as_str(), false), (held.as_str(), true)],
            "{list}"
        );
        let held_row = &list["cases"][1];
        assert_eq!(
            (
                held_row["holds"][0]["hold_id"].as_str(),
                held_row["holds"][0]["reason"].as_str()
            ),
            (Some(hold.as_str()), Some("court order 7/2026")),
            "the auditor sees why the case is held: {list}"
        );
        assert!(held_row["holds"][0]["placed_at"].is_string(), "{list}");
        let first = &list["cases"][0];
        let closed_at =
            chrono::DateTime::parse_from_rfc3339(first["closed_at"].as_str().unwrap()).unwrap();
        let erase_after =
            chrono::DateTime::parse_from_rfc3339(first["erase_after"].as_str().unwrap()).unwrap();
        assert!(
            (erase_after - closed_at).num_days() >= 365,
            "a year after closing: {first}"
        );

        // A year and a day on: the old case goes, the held one stays; a case
        // closed now is not due for another year, an open one never.
        post_expecting(
            &v,
            &admin,
            "/api/v1/dev/clock",
            json!({ "advance_seconds": 366 * 86_400 }),
            200,
        )
        .await;
        post_expecting(
            &v,
            &fiona,
            &format!("/api/v1/cases/{open}/close"),
            close.clone(),
            200,
        )
        .await;
        let recent = open;
        until(&v, &fiona, &format!("/api/v1/cases/{old}"), |s, _| s == 410).await;
        for case in [&held, &recent] {
            let (s, body) = status_of(&v, &fiona, &format!("/api/v1/cases/{case}")).await;
            assert_eq!(s, 200, "{case}: {body}");
        }
        let (_, list) = status_of(&v, &aino, "/api/v1/audit/retention").await;
        let listed: Vec<&str> = list["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["case_id"].as_str().unwrap())
            .collect();
        assert_eq!(listed, vec![held.as_str(), recent.as_str()], "{list}");
        let (s, history) = status_of(
            &v,
            &aino,
            &format!("/api/v1/audit/cases/{old}/consent/history"),
        )
        .await;
        assert_eq!(s, 200, "{history}");
        assert_eq!(
            history["erased"]["legal_basis"], "retention_expired",
            "{history}"
        );
        assert!(
            history["erased"]["reason"]
                .as_str()
                .unwrap()
                .contains("retention period (1y)"),
            "{history}"
        );

        // Released, the held case is erased at the next sweep.
        post_expecting(
            &v,
            &aino,
            &format!("/api/v1/cases/{held}/legal-hold/{hold}/release"),
            json!({}),
            200,
        )
        .await;
        post_expecting(
            &v,
            &admin,
            "/api/v1/dev/clock",
            json!({ "advance_seconds": 60 }),
            200,
        )
        .await;
        until(&v, &fiona, &format!("/api/v1/cases/{held}"), |s, _| {
            s == 410
        })
        .await;
        let (s, body) = status_of(&v, &fiona, &format!("/api/v1/cases/{recent}")).await;
        assert_eq!(s, 200, "{body}");
        let (s, report) = status_of(&v, &aino, "/api/v1/audit/verify").await;
        assert_eq!((s, report["ok"].as_bool()), (200, Some(true)), "{report}");
        v.stop().await;
    }
);
