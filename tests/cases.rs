//! Cases end to end: opening, the network built by invitation, who sees a
//! case at all, warnings, and bad input, in both modes.

use serde_json::{json, Value};
use verkosto_e2e::{both_modes, Verkosto};

async fn open(v: &Verkosto, token: &str, body: Value) -> String {
    let (status, answer) = v.post(token, "/api/v1/cases", &body).await.unwrap();
    assert_eq!(status, 201, "{answer}");
    answer["id"].as_str().unwrap().to_string()
}

both_modes!(
    the_network_is_built_by_invitation_and_only_members_see_the_case,
    |mode| async move {
        let v = Verkosto::start_demo(mode).await.unwrap();
        let fiona = v.token("fiona").await.unwrap();
        let hanna = v.token("hanna").await.unwrap();
        let matti = v.token("matti").await.unwrap();
        let case = open(
            &v,
            &fiona,
            json!({ "pseudonym": "A-1027", "languages": ["ro"], "interpreter_language": "ro",
                    "flags": { "minor": true, "safety_risk": true } }),
        )
        .await;
        let path = format!("/api/v1/cases/{case}");

        let (status, header) = v.get(&fiona, &path).await.unwrap();
        assert_eq!(status, 200, "{header}");
        assert_eq!(header["lead_agency"], "assistance-system");
        assert_eq!(header["members"], json!(["assistance-system"]));
        assert_eq!(
            header["flags"],
            json!({ "minor": true, "safety_risk": true })
        );
        assert_eq!(header["consent_version"], 0);
        assert_eq!(header["warnings"], json!(["minor_without_child_welfare"]));

        // Invited is not yet a member: health-hus sees only the invitation.
        let (status, body) = v
            .post(
                &fiona,
                &format!("{path}/members"),
                &json!({ "agency": "health-hus", "purpose": "health assessment" }),
            )
            .await
            .unwrap();
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["status"], "invited");
        let (_, invitations) = v.get(&hanna, "/api/v1/invitations").await.unwrap();
        assert_eq!(
            invitations["invitations"][0],
            json!({ "case_id": case, "pseudonym": "A-1027", "lead_agency": "assistance-system",
                    "purpose": "health assessment",
                    "invited_at": invitations["invitations"][0]["invited_at"] })
        );
        for p in [
            path.clone(),
            format!("{path}/records"),
            format!("{path}/consent"),
        ] {
            assert_eq!(v.get(&hanna, &p).await.unwrap().0, 404, "{p}");
            assert_eq!(v.get(&matti, &p).await.unwrap().0, 404, "{p}");
        }
        let (_, cases) = v.get(&hanna, "/api/v1/cases").await.unwrap();
        assert_eq!(cases["cases"], json!([]));
        // An outsider cannot accept someone else's invitation.
        let accept = format!("{path}/invitations/accept");
        assert_eq!(v.post(&matti, &accept, &json!({})).await.unwrap().0, 404);

        let (status, body) = v.post(&hanna, &accept, &json!({})).await.unwrap();
        assert_eq!(status, 200, "{body}");
        let (status, header) = v.get(&hanna, &path).await.unwrap();
        assert_eq!(status, 200, "{header}");
        assert_eq!(
            header["members"],
            json!(["assistance-system", "health-hus"])
        );
        let (_, cases) = v.get(&hanna, "/api/v1/cases").await.unwrap();
        assert_eq!(cases["cases"][0]["id"], case.as_str());
        let (_, invitations) = v.get(&hanna, "/api/v1/invitations").await.unwrap();
        assert_eq!(invitations["invitations"], json!([]));

        // A member that is not the lead may not invite.
        let (status, _) = v
            .post(
                &hanna,
                &format!("{path}/members"),
                &json!({ "agency": "migri", "purpose": "x" }),
            )
            .await
            .unwrap();
        assert_eq!(status, 403);

        // Child welfare joins: the minor warning goes.
        let lasse = v.token("lasse").await.unwrap();
        v.post(
            &fiona,
            &format!("{path}/members"),
            &json!({ "agency": "child-welfare-helsinki", "purpose": "child's rights" }),
        )
        .await
        .unwrap();
        v.post(&lasse, &accept, &json!({})).await.unwrap();
        let (_, header) = v.get(&fiona, &path).await.unwrap();
        assert_eq!(header["warnings"], json!([]));

        // Removing a member: the case is gone for it.
        let (status, _) = v
            .delete(&fiona, &format!("{path}/members/health-hus"))
            .await
            .unwrap();
        assert_eq!(status, 204);
        assert_eq!(v.get(&hanna, &path).await.unwrap().0, 404);
        assert_eq!(
            v.get(&hanna, &format!("{path}/records")).await.unwrap().0,
            404
        );
        v.stop().await;
    }
);

both_modes!(
    a_declined_invitation_leaves_the_network_as_it_was,
    |mode| async move {
        let v = Verkosto::start_demo(mode).await.unwrap();
        let fiona = v.token("fiona").await.unwrap();
        let liisa = v.token("liisa").await.unwrap();
        let case = open(
            &v,
            &fiona,
            json!({ "pseudonym": "C-3", "languages": ["en"] }),
        )
        .await;
        let path = format!("/api/v1/cases/{case}");
        v.post(
            &fiona,
            &format!("{path}/members"),
            &json!({ "agency": "police-helsinki", "purpose": "criminal process" }),
        )
        .await
        .unwrap();
        let (status, body) = v
            .post(&liisa, &format!("{path}/invitations/decline"), &json!({}))
            .await
            .unwrap();
        assert_eq!(status, 422, "{body}");
        assert!(body["detail"].as_str().unwrap().contains("reason"));
        let (status, body) = v
            .post(
                &liisa,
                &format!("{path}/invitations/decline"),
                &json!({ "reason": "not our district" }),
            )
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        let (_, header) = v.get(&fiona, &path).await.unwrap();
        assert_eq!(header["members"], json!(["assistance-system"]));
        assert_eq!(header["invited"], json!([]));
        assert_eq!(v.get(&liisa, &path).await.unwrap().0, 404);
        // The lead may invite again.
        let (status, _) = v
            .post(
                &fiona,
                &format!("{path}/members"),
                &json!({ "agency": "police-helsinki", "purpose": "criminal process" }),
            )
            .await
            .unwrap();
        assert_eq!(status, 201);
        v.stop().await;
    }
);

both_modes!(bad_case_input_names_the_field, |mode| async move {
    let v = Verkosto::start_demo(mode).await.unwrap();
    let fiona = v.token("fiona").await.unwrap();
    let hanna = v.token("hanna").await.unwrap();
    let bad: Vec<(Value, &str)> = vec![
        (json!({ "languages": ["ro"] }), "pseudonym"),
        (json!({ "pseudonym": "", "languages": ["ro"] }), "pseudonym"),
        (json!({ "pseudonym": "A", "languages": [] }), "languages"),
        (
            json!({ "pseudonym": "A", "languages": ["Romanian"] }),
            "languages[0]",
        ),
        (
            json!({ "pseudonym": "A", "languages": ["ro"], "interpreter_language": "R" }),
            "interpreter_language",
        ),
        (
            json!({ "pseudonym": "A", "languages": ["ro"], "flags": { "minor": "yes" } }),
            "flags.minor",
        ),
        (
            json!({ "pseudonym": "A", "languages": ["ro"], "colour": "red" }),
            "colour",
        ),
    ];
    for (body, field) in bad {
        let (status, answer) = v.post(&fiona, "/api/v1/cases", &body).await.unwrap();
        assert!(status == 422 || status == 400, "{body}: {status} {answer}");
        let detail = answer["detail"].as_str().unwrap();
        assert!(
            detail.contains(field),
            "{body}: {detail} should name {field}"
        );
    }
    // Only facilitators open cases.
    let (status, _) = v
        .post(
            &hanna,
            "/api/v1/cases",
            &json!({ "pseudonym": "A", "languages": ["ro"] }),
        )
        .await
        .unwrap();
    assert_eq!(status, 403);
    let case = open(&v, &fiona, json!({ "pseudonym": "A", "languages": ["ro"] })).await;
    let (_, header) = v
        .get(&fiona, &format!("/api/v1/cases/{case}"))
        .await
        .unwrap();
    assert_eq!(header["warnings"], json!(["no_interpreter_language"]));
    // The languages are sealed in the log: the warning is worked out from
    // their text, not from the ciphertext.
    let finnish = open(&v, &fiona, json!({ "pseudonym": "B", "languages": ["fi"] })).await;
    let (_, header) = v
        .get(&fiona, &format!("/api/v1/cases/{finnish}"))
        .await
        .unwrap();
    assert_eq!(header["warnings"], json!([]), "{header}");
    let members = format!("/api/v1/cases/{case}/members");
    for (body, field) in [
        (json!({ "agency": "nobody", "purpose": "x" }), "agency"),
        (json!({ "agency": "migri" }), "purpose"),
        (json!({ "agency": "migri", "purpose": " " }), "purpose"),
    ] {
        let (status, answer) = v.post(&fiona, &members, &body).await.unwrap();
        assert_eq!(status, 422, "{body}: {answer}");
        assert!(answer["detail"].as_str().unwrap().contains(field));
    }
    // Records: unknown category, empty body, correcting a stranger.
    let records = format!("/api/v1/cases/{case}/records");
    for (body, field) in [
        (json!({ "category": "gossip", "body": "x" }), "category"),
        (json!({ "category": "health", "body": "" }), "body"),
        (
            json!({ "category": "health", "body": "x", "corrects": "rec-nope" }),
            "corrects",
        ),
    ] {
        let (status, answer) = v.post(&fiona, &records, &body).await.unwrap();
        assert_eq!(status, 422, "{body}: {answer}");
        assert!(answer["detail"].as_str().unwrap().contains(field));
    }
    // A correction points at the record it corrects; both stay.
    let (_, first) = v
        .post(
            &fiona,
            &records,
            &json!({ "category": "health", "body": "first" }),
        )
        .await
        .unwrap();
    let first_id = first["id"].as_str().unwrap();
    let (status, _) = v
        .post(
            &fiona,
            &records,
            &json!({ "category": "health", "body": "corrected", "corrects": first_id }),
        )
        .await
        .unwrap();
    assert_eq!(status, 201);
    let (_, list) = v.get(&fiona, &records).await.unwrap();
    assert_eq!(list["records"].as_array().unwrap().len(), 2);
    assert_eq!(list["records"][1]["corrects"], first_id);
    v.stop().await;
});

both_modes!(
    five_agencies_each_read_exactly_what_decide_allows,
    |mode| async move {
        use verkosto_policy::{decide, decide_item, Category, ConsentEvent, ConsentState};
        let v = Verkosto::start_demo(mode).await.unwrap();
        let fiona = v.token("fiona").await.unwrap();
        let aino = v.token("aino").await.unwrap();
        let case = open(
            &v,
            &fiona,
            json!({ "pseudonym": "F-5", "languages": ["ro"], "interpreter_language": "ro",
                    "flags": { "minor": false, "safety_risk": true } }),
        )
        .await;
        let path = format!("/api/v1/cases/{case}");
        let members = [
            ("health-hus", "hanna"),
            ("police-helsinki", "liisa"),
            ("social-helsinki", "sami"),
            ("ngo-support", "nora"),
        ];
        let mut tokens = vec![("assistance-system".to_string(), fiona.clone())];
        for (agency, user) in members {
            let token = v.token(user).await.unwrap();
            v.post(
                &fiona,
                &format!("{path}/members"),
                &json!({ "agency": agency, "purpose": "support" }),
            )
            .await
            .unwrap();
            let (status, _) = v
                .post(&token, &format!("{path}/invitations/accept"), &json!({}))
                .await
                .unwrap();
            assert_eq!(status, 200);
            tokens.push((agency.to_string(), token));
        }
        // Migri declines: it never joins.
        let matti = v.token("matti").await.unwrap();
        v.post(
            &fiona,
            &format!("{path}/members"),
            &json!({ "agency": "migri", "purpose": "residence" }),
        )
        .await
        .unwrap();
        let (status, _) = v
            .post(
                &matti,
                &format!("{path}/invitations/decline"),
                &json!({ "reason": "no residence matter" }),
            )
            .await
            .unwrap();
        assert_eq!(status, 200);
        let (_, header) = v.get(&fiona, &path).await.unwrap();
        assert_eq!(header["members"].as_array().unwrap().len(), 5);

        // Records in many categories, by the lead and by members.
        for (i, category) in [
            "narrative",
            "health",
            "contact",
            "legal",
            "residence",
            "social",
            "identity",
        ]
        .iter()
        .enumerate()
        {
            let (agency, token) = &tokens[i % tokens.len()];
            let (status, body) = v
                .post(
                    token,
                    &format!("{path}/records"),
                    &json!({ "category": category, "body": format!("{category} by {agency}") }),
                )
                .await
                .unwrap();
            assert_eq!(status, 201, "{body}");
        }
        // A mixed consent record.
        let consent = format!("{path}/consent");
        let obtained = json!({ "method": "written", "language": "ro" });
        let grant = |to: &str, cats: Value| json!({ "recipient": to, "categories": cats, "purpose": "p", "obtained": obtained });
        for body in [
            grant("health-hus", json!(["health", "narrative", "contact"])),
            grant(
                "social-helsinki",
                json!(["social", "narrative", "residence"]),
            ),
            grant("ngo-support", json!(["narrative", "identity"])),
        ] {
            let (status, answer) = v
                .post(&fiona, &format!("{consent}/grants"), &body)
                .await
                .unwrap();
            assert_eq!(status, 201, "{answer}");
        }
        v.post(
            &fiona,
            &format!("{consent}/refusals"),
            &json!({ "agency": "ngo-support", "categories": ["identity"] }),
        )
        .await
        .unwrap();
        v.post(
            &fiona,
            &format!("{consent}/statutory"),
            &json!({ "recipient": "police-helsinki", "categories": ["legal", "narrative"], "law_reference": "Criminal Investigation Act 805/2011" }),
        )
        .await
        .unwrap();

        // The consent record as the auditor replays it, and the records as the lead sees them.
        let (_, history) = v
            .get(
                &aino,
                &format!("/api/v1/audit/cases/{case}/consent/history"),
            )
            .await
            .unwrap();
        let events: Vec<ConsentEvent> = history["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                serde_json::from_value(json!({ e["type"].as_str().unwrap(): e["data"] })).unwrap()
            })
            .collect();
        let state = ConsentState::from_events("assistance-system", &events);
        let (_, all) = v.get(&fiona, &format!("{path}/records")).await.unwrap();
        let all = all["records"].as_array().unwrap().clone();
        assert_eq!(all.len(), 7);

        let now = chrono::Utc::now();
        for (agency, token) in &tokens {
            let expected: Vec<&str> = all
                .iter()
                .filter(|r| {
                    let category: Category = r["category"].as_str().unwrap().parse().unwrap();
                    let author = r["author_agency"].as_str().unwrap();
                    if category == Category::Contact {
                        // Safety risk: only an explicit basis, never authorship.
                        decide(&state, agency, category, now).allowed()
                    } else {
                        decide_item(&state, agency, category, author, now).allowed()
                    }
                })
                .map(|r| r["id"].as_str().unwrap())
                .collect();
            let (status, got) = v.get(token, &format!("{path}/records")).await.unwrap();
            assert_eq!(status, 200);
            let got_ids: Vec<&str> = got["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap())
                .collect();
            assert_eq!(got_ids, expected, "{agency}");
            assert_eq!(
                got["withheld"],
                (all.len() - expected.len()) as u64,
                "{agency}"
            );
            assert_eq!(got["consent_version"], 5);
        }

        // The one who declined, like any outsider, gets 404 on every case endpoint.
        let get_paths = ["", "/records", "/plan", "/consent"];
        for p in get_paths {
            assert_eq!(
                v.get(&matti, &format!("{path}{p}")).await.unwrap().0,
                404,
                "GET {p}"
            );
        }
        let post_paths = [
            "/members",
            "/records",
            "/invitations/accept",
            "/invitations/decline",
            "/plan/draft/propose",
            "/plan/versions/1/approve",
            "/plan/versions/1/request-changes",
            "/plan/versions/1/client-agreement",
            "/consent/grants",
            "/consent/refusals",
            "/consent/statutory",
            "/consent/grants/g/withdraw",
        ];
        for p in post_paths {
            let (status, body) = v
                .post(&matti, &format!("{path}{p}"), &json!({}))
                .await
                .unwrap();
            assert_eq!(status, 404, "POST {p}: {body}");
        }
        assert_eq!(
            v.put(&matti, &format!("{path}/plan/draft"), &json!({}))
                .await
                .unwrap()
                .0,
            404
        );
        assert_eq!(
            v.put(&matti, &format!("{path}/flags"), &json!({}))
                .await
                .unwrap()
                .0,
            404
        );
        assert_eq!(
            v.delete(&matti, &format!("{path}/members/health-hus"))
                .await
                .unwrap()
                .0,
            404
        );
        v.stop().await;
    }
);
