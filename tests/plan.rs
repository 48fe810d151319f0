//! The one agreed plan, end to end in both modes: propose, request changes,
//! re-propose, approvals by every member, the client's agreement; a later
//! draft that leaves the agreed version standing; concurrent edits; and
//! reads filtered by consent.

use serde_json::{json, Value};
use verkosto_e2e::{both_modes, Verkosto};

/// The case these tests share.
async fn case_with_network(v: &Verkosto) -> verkosto_e2e::DemoCase {
    v.case_with_network(
        json!({ "pseudonym": "P-1", "languages": ["ro"], "interpreter_language": "ro" }),
    )
    .await
}

fn draft(goal: &str) -> Value {
    json!({
        "goals": [goal],
        "measures": [
            { "id": "m1", "category": "health", "responsible_agency": "health-hus", "description": "Health check", "due": "2026-12-01" },
            { "id": "m2", "category": "legal", "responsible_agency": "police-helsinki", "description": "Interview with counsel", "due": null }
        ]
    })
}

async fn plan(v: &Verkosto, token: &str, case: &str) -> Value {
    let (status, body) = v
        .get(token, &format!("/api/v1/cases/{case}/plan"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

both_modes!(
    the_plan_is_agreed_by_every_member_and_the_client,
    |mode| async move {
        let v = Verkosto::start_demo(mode).await.unwrap();
        let c = case_with_network(&v).await;
        let base = format!("/api/v1/cases/{}/plan", c.id);

        let empty = plan(&v, &c.fiona, &c.id).await;
        assert_eq!(empty["agreed"], Value::Null);
        assert_eq!(empty["pending"], Value::Null);

        let (status, body) = v
            .put(
                &c.fiona,
                &format!("{base}/draft"),
                &draft("I want to feel safe"),
            )
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        let (status, body) = v
            .post(&c.fiona, &format!("{base}/draft/propose"), &json!({}))
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["plan_version"], 1);

        // Health-hus asks for changes: version 1 goes back to draft.
        let (status, body) = v
            .post(
                &c.hanna,
                &format!("{base}/versions/1/request-changes"),
                &json!({ "comment": "Make it two checks" }),
            )
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        let after = plan(&v, &c.fiona, &c.id).await;
        assert_eq!(after["pending"], Value::Null);
        assert_eq!(after["draft"]["goals"], json!(["I want to feel safe"]));
        // Approving a version that is not pending: 422 naming it.
        let (status, body) = v
            .post(&c.hanna, &format!("{base}/versions/1/approve"), &json!({}))
            .await
            .unwrap();
        assert_eq!(status, 422, "{body}");
        assert!(body["detail"].as_str().unwrap().starts_with("plan_version"));

        v.put(
            &c.fiona,
            &format!("{base}/draft"),
            &draft("I want to feel safe and work"),
        )
        .await
        .unwrap();
        let (_, body) = v
            .post(&c.fiona, &format!("{base}/draft/propose"), &json!({}))
            .await
            .unwrap();
        assert_eq!(body["plan_version"], 2);
        for token in [&c.fiona, &c.hanna] {
            let (status, body) = v
                .post(token, &format!("{base}/versions/2/approve"), &json!({}))
                .await
                .unwrap();
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["agreed"], false);
        }
        let (status, body) = v
        .post(&c.fiona, &format!("{base}/versions/2/client-agreement"),
              &json!({ "method": "verbal", "language": "ro", "interpreter": "booked interpreter" }))
        .await
        .unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["agreed"], false);
        let pending = plan(&v, &c.fiona, &c.id).await;
        assert_eq!(pending["pending"]["awaiting"], json!(["police-helsinki"]));
        let (_, body) = v
            .post(&c.liisa, &format!("{base}/versions/2/approve"), &json!({}))
            .await
            .unwrap();
        assert_eq!(body["agreed"], true, "{body}");

        let agreed = plan(&v, &c.fiona, &c.id).await;
        assert_eq!(agreed["agreed"]["plan_version"], 2);
        assert_eq!(
            agreed["agreed"]["goals"],
            json!(["I want to feel safe and work"])
        );
        assert_eq!(
            agreed["agreed"]["approved_by"],
            json!(["assistance-system", "health-hus", "police-helsinki"])
        );
        assert_eq!(
            agreed["agreed"]["client_agreement"]["interpreter"],
            "booked interpreter"
        );
        assert_eq!(agreed["pending"], Value::Null);

        // The agreed version carries each measure for the tasks service.
        let log = v.log().await.unwrap();
        let events = log.read_stream("plan", &c.id).await.unwrap();
        let last = events.last().unwrap();
        assert_eq!(last.event_type, "PlanAgreed");
        assert_eq!(
            last.payload["PlanAgreed"]["measures"][1]["responsible_agency"],
            "police-helsinki"
        );

        // A new draft and a new proposal leave version 2 agreed until 3 is.
        v.put(&c.fiona, &format!("{base}/draft"), &draft("New goal"))
            .await
            .unwrap();
        v.post(&c.fiona, &format!("{base}/draft/propose"), &json!({}))
            .await
            .unwrap();
        let later = plan(&v, &c.fiona, &c.id).await;
        assert_eq!(later["agreed"]["plan_version"], 2);
        assert_eq!(later["pending"]["plan_version"], 3);

        // An agency joining while version 3 is pending must approve it too.
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
            &format!("/api/v1/cases/{}/invitations/accept", c.id),
            &json!({}),
        )
        .await
        .unwrap();
        for token in [&c.fiona, &c.hanna, &c.liisa] {
            v.post(token, &format!("{base}/versions/3/approve"), &json!({}))
                .await
                .unwrap();
        }
        v.post(
            &c.fiona,
            &format!("{base}/versions/3/client-agreement"),
            &json!({ "method": "written", "language": "ro" }),
        )
        .await
        .unwrap();
        let waiting = plan(&v, &c.fiona, &c.id).await;
        assert_eq!(waiting["agreed"]["plan_version"], 2);
        assert_eq!(waiting["pending"]["awaiting"], json!(["migri"]));
        // Removing the agency that has not approved completes the version.
        let (status, _) = v
            .delete(&c.fiona, &format!("/api/v1/cases/{}/members/migri", c.id))
            .await
            .unwrap();
        assert_eq!(status, 204);
        let done = plan(&v, &c.fiona, &c.id).await;
        assert_eq!(done["agreed"]["plan_version"], 3, "{done}");
        v.stop().await;
    }
);

both_modes!(
    each_reader_sees_the_measures_its_consent_allows,
    |mode| async move {
        let v = Verkosto::start_demo(mode).await.unwrap();
        let c = case_with_network(&v).await;
        let base = format!("/api/v1/cases/{}/plan", c.id);
        v.put(&c.fiona, &format!("{base}/draft"), &draft("Safety"))
            .await
            .unwrap();
        v.post(&c.fiona, &format!("{base}/draft/propose"), &json!({}))
            .await
            .unwrap();
        let hanna = plan(&v, &c.hanna, &c.id).await;
        assert_eq!(hanna["pending"]["measures"], json!([]));
        assert_eq!(hanna["pending"]["goals"], Value::Null);
        assert_eq!(hanna["withheld"], 3);
        assert_eq!(hanna["draft"], Value::Null);
        v.post(
            &c.fiona,
            &format!("/api/v1/cases/{}/consent/grants", c.id),
            &json!({ "recipient": "health-hus", "categories": ["health", "plan"], "purpose": "care",
                 "obtained": { "method": "written", "language": "ro" } }),
        )
        .await
        .unwrap();
        let hanna = plan(&v, &c.hanna, &c.id).await;
        assert_eq!(hanna["pending"]["goals"], json!(["Safety"]));
        let ids: Vec<&str> = hanna["pending"]["measures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec!["m1"]);
        assert_eq!(hanna["withheld"], 1);
        assert_eq!(hanna["consent_version"], 1);
        let fiona = plan(&v, &c.fiona, &c.id).await;
        assert_eq!(fiona["withheld"], 0);
        v.stop().await;
    }
);

both_modes!(
    concurrent_draft_edits_never_lose_an_edit_silently,
    |mode| async move {
        let v = Verkosto::start_demo(mode).await.unwrap();
        let c = case_with_network(&v).await;
        let base = format!("/api/v1/cases/{}/plan", c.id);
        v.put(&c.fiona, &format!("{base}/draft"), &draft("First"))
            .await
            .unwrap();
        let version = plan(&v, &c.fiona, &c.id).await["version"].as_i64().unwrap();
        let edit = |goal: &'static str| {
            let v = &v;
            let url = v.url(&format!("{base}/draft"));
            let token = c.fiona.clone();
            async move {
                let r = v
                    .http()
                    .put(url)
                    .bearer_auth(token)
                    .header("if-match", format!("\"{version}\""))
                    .json(&draft(goal))
                    .send()
                    .await
                    .unwrap();
                verkosto_e2e::answer(r).await.unwrap().0
            }
        };
        let (a, b) = tokio::join!(edit("Edit A"), edit("Edit B"));
        let mut statuses = vec![a, b];
        statuses.sort();
        assert_eq!(statuses, vec![200, 412]);
        v.stop().await;
    }
);

both_modes!(bad_plan_input_names_the_field, |mode| async move {
    let v = Verkosto::start_demo(mode).await.unwrap();
    let c = case_with_network(&v).await;
    let base = format!("/api/v1/cases/{}/plan", c.id);
    let measure = |m: Value| json!({ "goals": ["g"], "measures": [m] });
    let bad: Vec<(Value, &str)> = vec![
        (json!({ "goals": [], "measures": [] }), "goals"),
        (
            measure(json!({ "id": "m1", "category": "health", "description": "d" })),
            "responsible_agency",
        ),
        (
            measure(
                json!({ "id": "m1", "category": "gossip", "responsible_agency": "health-hus", "description": "d" }),
            ),
            "category",
        ),
        (
            measure(
                json!({ "id": "m1", "category": "health", "responsible_agency": "migri", "description": "d" }),
            ),
            "measures[0].responsible_agency",
        ),
        (
            measure(
                json!({ "id": "m1", "category": "health", "responsible_agency": "health-hus", "description": "d", "due": "tomorrow" }),
            ),
            "due",
        ),
    ];
    for (body, field) in bad {
        let (status, answer) = v
            .put(&c.fiona, &format!("{base}/draft"), &body)
            .await
            .unwrap();
        assert_eq!(status, 422, "{body}: {answer}");
        let detail = answer["detail"].as_str().unwrap();
        assert!(
            detail.contains(field),
            "{body}: {detail} should name {field}"
        );
    }
    // Only the lead edits the plan; only members approve.
    assert_eq!(
        v.put(&c.hanna, &format!("{base}/draft"), &draft("x"))
            .await
            .unwrap()
            .0,
        403
    );
    let (status, body) = v
        .post(&c.fiona, &format!("{base}/draft/propose"), &json!({}))
        .await
        .unwrap();
    assert_eq!(status, 422, "{body}");
    let (status, body) = v
        .post(
            &c.hanna,
            &format!("{base}/versions/one/approve"),
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(status, 422, "{body}");
    let matti = v.token("matti").await.unwrap();
    assert_eq!(v.get(&matti, &base).await.unwrap().0, 404);
    assert_eq!(
        v.post(&matti, &format!("{base}/versions/1/approve"), &json!({}))
            .await
            .unwrap()
            .0,
        404
    );
    v.stop().await;
});

both_modes!(many_editors_at_once_lose_no_update, |mode| async move {
    let v = Verkosto::start_demo(mode).await.unwrap();
    let c = case_with_network(&v).await;
    let base = format!("/api/v1/cases/{}/plan", c.id);
    v.put(&c.fiona, &format!("{base}/draft"), &draft("First"))
        .await
        .unwrap();
    let plan_version = plan(&v, &c.fiona, &c.id).await["version"].as_i64().unwrap();
    let consent = format!("/api/v1/cases/{}/consent", c.id);
    let consent_version = v.get(&c.fiona, &consent).await.unwrap().1["consent_version"]
        .as_i64()
        .unwrap();
    // Ten editors of the draft and ten of the consent record, all at once,
    // each with the version it read: one of each wins, every other gets 412.
    let send = |method: reqwest::Method, path: String, version: i64, body: Value| {
        let (v, token) = (&v, c.fiona.clone());
        async move {
            let r = v
                .http()
                .request(method, v.url(&path))
                .bearer_auth(token)
                .header("if-match", format!("\"{version}\""))
                .json(&body)
                .send()
                .await
                .unwrap();
            verkosto_e2e::answer(r).await.unwrap().0
        }
    };
    let mut edits = Vec::new();
    for i in 0..10 {
        edits.push(send(
            reqwest::Method::PUT,
            format!("{base}/draft"),
            plan_version,
            draft(&format!("Edit {i}")),
        ));
        edits.push(send(
            reqwest::Method::POST,
            format!("{consent}/grants"),
            consent_version,
            json!({ "recipient": "health-hus", "categories": ["health"], "purpose": format!("p{i}"),
                        "obtained": { "method": "written", "language": "fi" } }),
        ));
    }
    let statuses = futures::future::join_all(edits).await;
    let (plans, grants): (Vec<_>, Vec<_>) = statuses.chunks(2).map(|p| (p[0], p[1])).unzip();
    for (what, got, ok) in [("draft", plans, 200), ("grant", grants, 201)] {
        assert_eq!(
            got.iter().filter(|s| **s == ok).count(),
            1,
            "{what}: {got:?}"
        );
        assert_eq!(
            got.iter().filter(|s| **s == 412).count(),
            9,
            "{what}: {got:?}"
        );
    }
    // And the log holds exactly one new event on each stream.
    let log = v.log().await.unwrap();
    assert_eq!(
        log.stream_version("plan", &c.id).await.unwrap(),
        plan_version + 1
    );
    assert_eq!(
        log.stream_version("consent", &c.id).await.unwrap(),
        consent_version + 1
    );
    v.stop().await;
});
