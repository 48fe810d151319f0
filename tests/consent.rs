//! Consent end to end: grants, withdrawals and refusals through the HTTP
//! API, read through the cases service's records, in both modes; the
//! point-in-time matrix; and what auditors see.

use serde_json::{json, Value};
use verkosto_e2e::{both_modes, Verkosto};

/// A case led by the assistance system (fiona), with health-hus (hanna)
/// and police-helsinki (liisa) in its network, and three records written
/// by the lead: narrative, health, contact.
struct Scenario {
    case: String,
    fiona: String,
    hanna: String,
    liisa: String,
}

async fn scenario(v: &Verkosto) -> Scenario {
    let fiona = v.token("fiona").await.unwrap();
    let hanna = v.token("hanna").await.unwrap();
    let liisa = v.token("liisa").await.unwrap();
    let (status, body) = v
        .post(
            &fiona,
            "/api/v1/cases",
            &json!({ "pseudonym": "A-1027", "languages": ["ro", "en"], "interpreter_language": "ro",
                     "flags": { "minor": false, "safety_risk": false } }),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["lead_agency"], "assistance-system");
    let case = body["id"].as_str().unwrap().to_string();
    for (agency, token) in [("health-hus", &hanna), ("police-helsinki", &liisa)] {
        let (status, body) = v
            .post(
                &fiona,
                &format!("/api/v1/cases/{case}/members"),
                &json!({ "agency": agency, "purpose": "support" }),
            )
            .await
            .unwrap();
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["status"], "invited");
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
    for (category, text) in [
        ("narrative", "The client's story, told once."),
        ("health", "Needs a health check."),
        ("contact", "Phone +358 40 000 0000"),
    ] {
        let (status, body) = v
            .post(
                &fiona,
                &format!("/api/v1/cases/{case}/records"),
                &json!({ "category": category, "body": text }),
            )
            .await
            .unwrap();
        assert_eq!(status, 201, "{body}");
    }
    Scenario {
        case,
        fiona,
        hanna,
        liisa,
    }
}

fn categories(records: &Value) -> Vec<String> {
    let mut c: Vec<String> = records["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["category"].as_str().unwrap().to_string())
        .collect();
    c.sort();
    c
}

async fn records(v: &Verkosto, token: &str, case: &str) -> Value {
    let (status, body) = v
        .get(token, &format!("/api/v1/cases/{case}/records"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

both_modes!(
    a_withdrawn_category_is_gone_on_the_very_next_read,
    |mode| async move {
        let v = Verkosto::start_demo(mode).await.unwrap();
        let s = scenario(&v).await;

        // Nothing granted: the lead sees all three, health-hus none.
        let lead = records(&v, &s.fiona, &s.case).await;
        assert_eq!(lead["withheld"], 0);
        assert_eq!(categories(&lead).len(), 3);
        let before = records(&v, &s.hanna, &s.case).await;
        assert_eq!(categories(&before), Vec::<String>::new());
        assert_eq!(before["withheld"], 3);
        assert_eq!(before["consent_version"], 0);

        let (status, grant) = v
            .post(
                &s.fiona,
                &format!("/api/v1/cases/{}/consent/grants", s.case),
                &json!({ "recipient": "health-hus", "categories": ["narrative", "health"],
                         "purpose": "health assessment", "valid_until": null,
                         "obtained": { "method": "written", "language": "ro",
                                       "interpreter": "booked interpreter", "grantor": "self" } }),
            )
            .await
            .unwrap();
        assert_eq!(status, 201, "{grant}");
        assert_eq!(grant["consent_version"], 1);
        let grant_id = grant["grant_id"].as_str().unwrap().to_string();

        let granted = records(&v, &s.hanna, &s.case).await;
        assert_eq!(categories(&granted), vec!["health", "narrative"]);
        assert_eq!(granted["withheld"], 1);
        assert_eq!(granted["consent_version"], 1);
        // Police got nothing.
        let police = records(&v, &s.liisa, &s.case).await;
        assert_eq!(police["withheld"], 3);

        // Health-hus writes a legal note of its own: it always sees it.
        let (status, _) = v
            .post(
                &s.hanna,
                &format!("/api/v1/cases/{}/records", s.case),
                &json!({ "category": "legal", "body": "Own note." }),
            )
            .await
            .unwrap();
        assert_eq!(status, 201);
        let between = chrono::Utc::now();

        let (status, body) = v
            .post(
                &s.fiona,
                &format!(
                    "/api/v1/cases/{}/consent/grants/{grant_id}/withdraw",
                    s.case
                ),
                &json!({ "reason": "the client asked" }),
            )
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["consent_version"], 2);

        // The very next read: the withdrawn categories are gone.
        let after = records(&v, &s.hanna, &s.case).await;
        assert_eq!(categories(&after), vec!["legal"]);
        assert_eq!(after["withheld"], 3);
        assert_eq!(after["consent_version"], 2);

        // Withdrawing twice answers 422, naming the grant.
        let (status, body) = v
            .post(
                &s.fiona,
                &format!(
                    "/api/v1/cases/{}/consent/grants/{grant_id}/withdraw",
                    s.case
                ),
                &json!({ "reason": "again" }),
            )
            .await
            .unwrap();
        assert_eq!(status, 422, "{body}");
        assert!(body["detail"].as_str().unwrap().starts_with("grant_id"));

        // The matrix now, and as it was between grant and withdrawal.
        let (status, now) = v
            .get(&s.hanna, &format!("/api/v1/cases/{}/consent", s.case))
            .await
            .unwrap();
        assert_eq!(status, 200, "{now}");
        assert_eq!(now["consent_version"], 2);
        assert_eq!(now["matrix"]["health-hus"]["health"]["allowed"], false);
        assert_eq!(now["matrix"]["health-hus"]["health"]["basis"], "withdrawn");
        assert_eq!(
            now["matrix"]["assistance-system"]["contact"]["basis"],
            "lead"
        );
        let at = between.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let (status, then) = v
            .get(
                &s.hanna,
                &format!("/api/v1/cases/{}/consent?at={at}&grants=true", s.case),
            )
            .await
            .unwrap();
        assert_eq!(status, 200, "{then}");
        assert_eq!(then["consent_version"], 1);
        assert_eq!(then["matrix"]["health-hus"]["health"]["allowed"], true);
        assert_eq!(then["matrix"]["health-hus"]["health"]["basis"], "consent");
        assert_eq!(
            then["matrix"]["health-hus"]["health"]["grant_id"],
            grant_id.as_str()
        );
        assert_eq!(then["matrix"]["health-hus"]["legal"]["basis"], "none");
        assert_eq!(then["grants"][0]["grant_id"], grant_id.as_str());
        assert_eq!(
            then["grants"][0]["obtained"]["interpreter"],
            "booked interpreter"
        );
        assert_eq!(now["grants"], Value::Null);
        v.stop().await;
    }
);

both_modes!(a_refusal_beats_an_earlier_grant, |mode| async move {
    let v = Verkosto::start_demo(mode).await.unwrap();
    let s = scenario(&v).await;
    let consent = format!("/api/v1/cases/{}/consent", s.case);
    let obtained =
        json!({ "method": "verbal", "language": "ro", "interpreter": "booked interpreter" });
    let (status, body) = v
        .post(
            &s.fiona,
            &format!("{consent}/grants"),
            &json!({ "recipient": "police-helsinki", "categories": ["narrative"],
                         "purpose": "criminal_process", "obtained": obtained }),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        categories(&records(&v, &s.liisa, &s.case).await),
        vec!["narrative"]
    );

    let (status, refusal) = v
        .post(
            &s.fiona,
            &format!("{consent}/refusals"),
            &json!({ "agency": "police-helsinki", "categories": ["narrative", "health"] }),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{refusal}");
    let refused = records(&v, &s.liisa, &s.case).await;
    assert_eq!(categories(&refused), Vec::<String>::new());
    assert_eq!(refused["withheld"], 3);
    let (_, matrix) = v.get(&s.liisa, &consent).await.unwrap();
    assert_eq!(
        matrix["matrix"]["police-helsinki"]["narrative"]["basis"],
        "refused"
    );

    // A later grant does not beat the refusal either.
    let (status, _) = v
        .post(
            &s.fiona,
            &format!("{consent}/grants"),
            &json!({ "recipient": "police-helsinki", "categories": ["narrative"],
                         "purpose": "again", "obtained": obtained }),
        )
        .await
        .unwrap();
    assert_eq!(status, 201);
    assert_eq!(records(&v, &s.liisa, &s.case).await["withheld"], 3);

    // Lifting the refusal lets the grants through again.
    let refusal_id = refusal["refusal_id"].as_str().unwrap();
    let (status, body) = v
        .post(
            &s.fiona,
            &format!("{consent}/refusals/{refusal_id}/lift"),
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        categories(&records(&v, &s.liisa, &s.case).await),
        vec!["narrative"]
    );
    v.stop().await;
});

both_modes!(
    consent_changes_are_checked_and_only_the_lead_makes_them,
    |mode| async move {
        let v = Verkosto::start_demo(mode).await.unwrap();
        let s = scenario(&v).await;
        let grants = format!("/api/v1/cases/{}/consent/grants", s.case);
        let obtained = json!({ "method": "written", "language": "ro" });
        let grant = |recipient: &str, categories: Value, until: Value| {
            json!({ "recipient": recipient, "categories": categories, "purpose": "p",
                    "valid_until": until, "obtained": obtained })
        };
        let cases: Vec<(Value, u16, &str)> = vec![
            (
                grant("migri", json!(["health"]), Value::Null),
                422,
                "recipient",
            ),
            (
                grant("health-hus", json!(["dreams"]), Value::Null),
                422,
                "categories",
            ),
            (
                grant("health-hus", json!([]), Value::Null),
                422,
                "categories",
            ),
            (
                grant(
                    "health-hus",
                    json!(["health"]),
                    json!("2020-01-01T00:00:00Z"),
                ),
                422,
                "valid_until",
            ),
            (
                grant("health-hus", json!(["health"]), json!("not a time")),
                422,
                "valid_until",
            ),
            (
                json!({ "recipient": "health-hus", "categories": ["health"], "purpose": "p" }),
                422,
                "obtained",
            ),
        ];
        for (body, status, field) in cases {
            let (got, answer) = v.post(&s.fiona, &grants, &body).await.unwrap();
            assert_eq!(got, status, "{body} -> {answer}");
            let detail = answer["detail"].as_str().unwrap();
            assert!(
                detail.contains(field),
                "{body}: {detail} should name {field}"
            );
        }
        // A member that is not the lead: 403. An outsider (and the
        // merely invited): 404, as if the case did not exist.
        let ok = grant("health-hus", json!(["health"]), Value::Null);
        assert_eq!(v.post(&s.liisa, &grants, &ok).await.unwrap().0, 403);
        let matti = v.token("matti").await.unwrap();
        assert_eq!(v.post(&matti, &grants, &ok).await.unwrap().0, 404);
        assert_eq!(
            v.get(&matti, &format!("/api/v1/cases/{}/consent", s.case))
                .await
                .unwrap()
                .0,
            404
        );
        assert_eq!(
            v.get(&matti, &format!("/api/v1/cases/{}/records", s.case))
                .await
                .unwrap()
                .0,
            404
        );
        let (status, body) = v
            .get(
                &s.hanna,
                &format!("/api/v1/cases/{}/consent?at=yesterday", s.case),
            )
            .await
            .unwrap();
        assert_eq!(status, 400, "{body}");
        assert!(body["detail"].as_str().unwrap().starts_with("at"));
        v.stop().await;
    }
);

both_modes!(
    auditors_see_history_and_reads_but_never_client_data,
    |mode| async move {
        let v = Verkosto::start_demo(mode).await.unwrap();
        let s = scenario(&v).await;
        let aino = v.token("aino").await.unwrap();
        let consent = format!("/api/v1/cases/{}/consent", s.case);
        let obtained = json!({ "method": "written", "language": "ro" });
        let (_, grant) = v
            .post(
                &s.fiona,
                &format!("{consent}/grants"),
                &json!({ "recipient": "health-hus", "categories": ["health"], "purpose": "care", "obtained": obtained }),
            )
            .await
            .unwrap();
        records(&v, &s.hanna, &s.case).await;
        let grant_id = grant["grant_id"].as_str().unwrap();
        v.post(
            &s.fiona,
            &format!("{consent}/grants/{grant_id}/withdraw"),
            &json!({ "reason": "asked" }),
        )
        .await
        .unwrap();
        let (status, basis) = v
            .post(
                &s.fiona,
                &format!("{consent}/statutory"),
                &json!({ "recipient": "police-helsinki", "categories": ["legal"],
                         "law_reference": "Criminal Investigation Act 805/2011" }),
            )
            .await
            .unwrap();
        assert_eq!(status, 201, "{basis}");
        records(&v, &s.hanna, &s.case).await;
        records(&v, &s.liisa, &s.case).await;

        let history_path = format!("/api/v1/audit/cases/{}/consent/history", s.case);
        let (status, history) = v.get(&aino, &history_path).await.unwrap();
        assert_eq!(status, 200, "{history}");
        let types: Vec<&str> = history["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            vec![
                "ConsentGranted",
                "ConsentWithdrawn",
                "StatutoryBasisRecorded"
            ]
        );
        assert_eq!(history["events"][0]["actor"]["user"], "fiona");
        assert_eq!(history["events"][0]["actor"]["agency"], "assistance-system");
        assert_eq!(
            history["events"][2]["data"]["law_reference"],
            "Criminal Investigation Act 805/2011"
        );

        let log_path = format!("/api/v1/audit/cases/{}/access-log", s.case);
        let (status, log) = v.get(&aino, &log_path).await.unwrap();
        assert_eq!(status, 200, "{log}");
        // The auditor's own reads (history, twice) are logged, and marked.
        let (audits, reads): (Vec<&Value>, Vec<&Value>) = log["reads"]
            .as_array()
            .unwrap()
            .iter()
            .partition(|r| r["auditor"] == true);
        assert_eq!(audits.len(), 2, "{log}");
        assert!(audits
            .iter()
            .all(|r| r["user"] == "aino" && r["items_returned"] == 0));
        let reads: Vec<(String, i64, i64)> = reads
            .into_iter()
            .map(|r| {
                (
                    r["agency"].as_str().unwrap().to_string(),
                    r["consent_version"].as_i64().unwrap(),
                    r["items_withheld"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            reads,
            vec![
                ("health-hus".to_string(), 1, 2),
                ("health-hus".to_string(), 3, 3),
                ("police-helsinki".to_string(), 3, 3),
            ]
        );
        assert_eq!(log["reads"][0]["categories_returned"], json!(["health"]));
        assert_eq!(log["reads"][0]["user"], "hanna");
        assert_eq!(log["reads"][0]["auditor"], false);
        // Nothing in the audit answers is client data.
        let text = format!("{history}{log}");
        assert!(!text.contains("The client's story"));
        assert!(!text.contains("+358"));

        // Non-auditors get 403, even the lead.
        for path in [
            &history_path,
            &log_path,
            &"/api/v1/audit/verify".to_string(),
        ] {
            assert_eq!(v.get(&s.fiona, path).await.unwrap().0, 403, "{path}");
        }

        let (status, report) = v.get(&aino, "/api/v1/audit/verify").await.unwrap();
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["ok"], true, "{report}");

        // Edit one consent event behind the log's back (a clear field: its
        // time): verify names it.
        let log = v.log().await.unwrap();
        let position: i64 = sqlx::query_scalar(
            "SELECT position FROM events WHERE stream_type = 'consent' AND stream_id = $1 AND version = 2",
        )
        .bind(&s.case)
        .fetch_one(log.db().reader())
        .await
        .unwrap();
        verkosto_e2e::tamper(
            &log,
            &format!("UPDATE events SET payload = REPLACE(payload, '\"at\":\"2', '\"at\":\"1') WHERE position = {position}"),
        )
        .await;
        let (_, report) = v.get(&aino, "/api/v1/audit/verify").await.unwrap();
        assert_eq!(report["ok"], false, "{report}");
        assert_eq!(report["first_broken"]["position"], position, "{report}");
        v.stop().await;
    }
);

/// Consent and cases in separate processes, as deployed: a withdrawal made
/// through the consent service is honoured by the cases service on the
/// very next read; and when the cases service cannot catch up (the relay is
/// down), it fails closed: it withholds everything and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn separate_services_honour_a_withdrawal_at_once_or_fail_closed() {
    let mut split = verkosto_e2e::Split::start(&["relay", "cases", "consent"])
        .await
        .unwrap();
    let fiona = split.token("fiona").await.unwrap();
    let hanna = split.token("hanna").await.unwrap();
    let (status, body) = split
        .post(
            "cases",
            &fiona,
            "/api/v1/cases",
            &json!({ "pseudonym": "B-7", "languages": ["fi"] }),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    let case = body["id"].as_str().unwrap().to_string();
    let (status, body) = split
        .post(
            "cases",
            &fiona,
            &format!("/api/v1/cases/{case}/members"),
            &json!({ "agency": "health-hus", "purpose": "care" }),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    let (status, body) = split
        .post(
            "cases",
            &hanna,
            &format!("/api/v1/cases/{case}/invitations/accept"),
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    for category in ["health", "narrative"] {
        let (status, body) = split
            .post(
                "cases",
                &fiona,
                &format!("/api/v1/cases/{case}/records"),
                &json!({ "category": category, "body": format!("{category} text") }),
            )
            .await
            .unwrap();
        assert_eq!(status, 201, "{body}");
    }
    let consent = format!("/api/v1/cases/{case}/consent");
    let records_path = format!("/api/v1/cases/{case}/records");
    let obtained = json!({ "method": "written", "language": "fi" });

    // The consent service learns of the new member from the stream: the
    // grant waits for it rather than calling health-hus an outsider.
    let (status, grant) = split
        .post(
            "consent",
            &fiona,
            &format!("{consent}/grants"),
            &json!({ "recipient": "health-hus", "categories": ["health", "narrative"], "purpose": "care", "obtained": obtained }),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{grant}");
    let (_, read) = split.get("cases", &hanna, &records_path).await.unwrap();
    assert_eq!(read["withheld"], 0, "{read}");
    assert_eq!(read["consent_version"], 1);

    let grant_id = grant["grant_id"].as_str().unwrap();
    let (status, _) = split
        .post(
            "consent",
            &fiona,
            &format!("{consent}/grants/{grant_id}/withdraw"),
            &json!({ "reason": "asked" }),
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    let (_, read) = split.get("cases", &hanna, &records_path).await.unwrap();
    assert_eq!(read["records"], json!([]), "{read}");
    assert_eq!(read["withheld"], 2);
    assert_eq!(read["consent_version"], 2);

    // Grant again, then take the relay down: the cases service cannot see
    // the next change, so it must not serve by the old one.
    let (status, grant) = split
        .post(
            "consent",
            &fiona,
            &format!("{consent}/grants"),
            &json!({ "recipient": "health-hus", "categories": ["health"], "purpose": "care", "obtained": obtained }),
        )
        .await
        .unwrap();
    assert_eq!(status, 201);
    let (_, read) = split.get("cases", &hanna, &records_path).await.unwrap();
    assert_eq!(read["withheld"], 1, "{read}");
    split.kill9("relay").await.unwrap();
    let grant_id = grant["grant_id"].as_str().unwrap();
    let (status, _) = split
        .post(
            "consent",
            &fiona,
            &format!("{consent}/grants/{grant_id}/withdraw"),
            &json!({ "reason": "asked again" }),
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    let (status, read) = split.get("cases", &hanna, &records_path).await.unwrap();
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["records"], json!([]), "{read}");
    assert_eq!(read["withheld"], 2);
    assert_eq!(read["consent_fresh"], false);

    // With the relay back, the view catches up and the answer is fresh.
    split.spawn("relay").await.unwrap();
    let (_, read) = split.get("cases", &hanna, &records_path).await.unwrap();
    assert_eq!(read["consent_fresh"], true, "{read}");
    assert_eq!(read["consent_version"], 4);
    assert_eq!(read["withheld"], 2);
    split.stop().await;
}

both_modes!(
    under_safety_risk_contact_data_needs_an_explicit_grant,
    |mode| async move {
        let v = Verkosto::start_demo(mode).await.unwrap();
        let s = scenario(&v).await;
        let path = format!("/api/v1/cases/{}", s.case);
        let (status, _) = v
            .put(
                &s.fiona,
                &format!("{path}/flags"),
                &json!({ "minor": false, "safety_risk": true }),
            )
            .await
            .unwrap();
        assert_eq!(status, 200);
        // Health-hus writes a contact record itself; under safety risk that
        // is not enough to read it back.
        let (status, _) = v
            .post(
                &s.hanna,
                &format!("{path}/records"),
                &json!({ "category": "contact", "body": "Shelter address" }),
            )
            .await
            .unwrap();
        assert_eq!(status, 201);
        let read = records(&v, &s.hanna, &s.case).await;
        assert_eq!(categories(&read), Vec::<String>::new());
        assert_eq!(read["withheld"], 4);
        // The lead sees both contact records.
        let lead = records(&v, &s.fiona, &s.case).await;
        assert_eq!(lead["withheld"], 0);
        let (status, _) = v
            .post(
                &s.fiona,
                &format!("{path}/consent/grants"),
                &json!({ "recipient": "health-hus", "categories": ["contact"], "purpose": "home visits",
                         "obtained": { "method": "verbal", "language": "ro", "grantor": "self" } }),
            )
            .await
            .unwrap();
        assert_eq!(status, 201);
        let read = records(&v, &s.hanna, &s.case).await;
        assert_eq!(categories(&read), vec!["contact", "contact"]);
        v.stop().await;
    }
);

both_modes!(
    the_audit_replay_command_prints_the_matrix_and_its_timeline,
    |mode| async move {
        let v = Verkosto::start_demo(mode).await.unwrap();
        let s = scenario(&v).await;
        let obtained = json!({ "method": "written", "language": "ro" });
        let (_, grant) = v
            .post(
                &s.fiona,
                &format!("/api/v1/cases/{}/consent/grants", s.case),
                &json!({ "recipient": "police-helsinki", "categories": ["legal"], "purpose": "criminal_process", "obtained": obtained }),
            )
            .await
            .unwrap();
        let between = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let grant_id = grant["grant_id"].as_str().unwrap();
        v.post(
            &s.fiona,
            &format!(
                "/api/v1/cases/{}/consent/grants/{grant_id}/withdraw",
                s.case
            ),
            &json!({ "reason": "asked" }),
        )
        .await
        .unwrap();
        let replay = |at: Option<String>| {
            let mut cmd = verkosto_testkit::verkosto_std();
            cmd.args([
                "audit",
                "--database-url",
                &v.database_url,
                "replay",
                "--case",
                &s.case,
                "--json",
            ]);
            if let Some(at) = at {
                cmd.args(["--at", &at]);
            }
            let out = cmd.output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice::<Value>(&out.stdout).unwrap()
        };
        let then = replay(Some(between));
        assert_eq!(then["consent"]["consent_version"], 1);
        assert_eq!(
            then["consent"]["matrix"]["police-helsinki"]["legal"]["allowed"],
            true
        );
        assert_eq!(then["timeline"].as_array().unwrap().len(), 1);
        let now = replay(None);
        assert_eq!(now["consent"]["consent_version"], 2);
        assert_eq!(
            now["consent"]["matrix"]["police-helsinki"]["legal"]["basis"],
            "withdrawn"
        );
        let types: Vec<&str> = now["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, vec!["ConsentGranted", "ConsentWithdrawn"]);
        // The human form names the case and the change.
        let out = verkosto_testkit::verkosto_std()
            .args([
                "audit",
                "--database-url",
                &v.database_url,
                "replay",
                "--case",
                &s.case,
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&s.case) && text.contains("ConsentWithdrawn"),
            "{text}"
        );
        v.stop().await;
    }
);
