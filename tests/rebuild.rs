//! Any projection can be dropped and rebuilt by replay with the same result,
//! and redelivered events have no second effect.

use serde_json::json;
use verkosto_e2e::{agency, both_modes, Verkosto};
use verkosto_eventlog::EventLog;

async fn directory_rows(log: &EventLog) -> Vec<(String, String, String)> {
    let mut rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT id, kind, name FROM dir_agencies UNION ALL SELECT id, agency, roles FROM dir_users",
    )
    .fetch_all(log.db().reader())
    .await
    .unwrap();
    rows.sort();
    rows
}

both_modes!(
    the_directory_rebuilds_identically_and_ignores_redelivery,
    |mode| async move {
        let mut v = Verkosto::start(mode).await.unwrap();
        let admin = v.token("admin").await.unwrap();
        for i in 0..5 {
            let (status, _) = v
                .post(
                    &admin,
                    "/api/v1/agencies",
                    &agency(&format!("ngo-{i}"), "ngo"),
                )
                .await
                .unwrap();
            assert_eq!(status, 201);
        }
        let user = json!({ "id": "nora", "agency": "ngo-1", "roles": ["liaison", "facilitator"], "display_name": "Nora" });
        assert_eq!(v.post(&admin, "/api/v1/users", &user).await.unwrap().0, 201);
        let log = v.log().await.unwrap();
        let before = directory_rows(&log).await;
        assert_eq!(before.len(), 6);

        // Redeliver every event: the checkpoint makes it a no-op.
        let projection = verkosto_directory::DirectoryProjection;
        let all = verkosto_e2e::read_everything(&log).await.unwrap();
        log.apply_batch(&projection, &all).await.unwrap();
        assert_eq!(directory_rows(&log).await, before);

        v.halt().await;
        // Drop and rebuild, twice.
        for _ in 0..2 {
            log.reset_projection(&projection).await.unwrap();
            assert!(directory_rows(&log).await.is_empty());
            log.catch_up(&projection).await.unwrap();
            assert_eq!(directory_rows(&log).await, before);
        }
    }
);

/// Every row of the cases, guard and tasks read models, as text.
async fn service_rows(log: &EventLog) -> Vec<String> {
    let queries = [
        "SELECT id || '|' || pseudonym || '|' || lead_agency || '|' || CAST(minor AS TEXT) || '|' || CAST(safety_risk AS TEXT) || '|' || CAST(version AS TEXT) FROM cases_headers",
        "SELECT case_id || '|' || agency || '|' || status || '|' || COALESCE(purpose, '') FROM cases_network",
        "SELECT consumer || '|' || case_id || '|' || lead_agency || '|' || pseudonym || '|' || CAST(minor AS TEXT) || '|' || CAST(safety_risk AS TEXT) FROM guard_cases",
        "SELECT consumer || '|' || case_id || '|' || agency FROM guard_members",
        "SELECT consumer || '|' || case_id || '|' || CAST(version AS TEXT) || '|' || payload FROM guard_consent",
        "SELECT id || '|' || case_id || '|' || assignee || '|' || status || '|' || CAST(overdue AS TEXT) || '|' || COALESCE(accepted_by, '') || '|' || COALESCE(outcome_note, '') || '|' || updated_at || '|' || CAST(version AS TEXT) FROM tasks_tasks",
    ];
    let mut rows = Vec::new();
    for q in queries {
        let found: Vec<String> = sqlx::query_scalar(q)
            .fetch_all(log.db().reader())
            .await
            .unwrap();
        rows.extend(found.into_iter().map(|r| format!("{q:.30}: {r}")));
    }
    rows.sort();
    rows
}

both_modes!(
    cases_consent_views_and_tasks_rebuild_identically,
    |mode| async move {
        let mut v = Verkosto::start_demo(mode).await.unwrap();
        let fiona = v.token("fiona").await.unwrap();
        let hanna = v.token("hanna").await.unwrap();
        let (_, body) = v
            .post(&fiona, "/api/v1/cases", &json!({ "pseudonym": "R-1", "languages": ["fi"], "flags": { "minor": true, "safety_risk": false } }))
            .await
            .unwrap();
        let case = body["id"].as_str().unwrap().to_string();
        v.post(
            &fiona,
            &format!("/api/v1/cases/{case}/members"),
            &json!({ "agency": "health-hus", "purpose": "care" }),
        )
        .await
        .unwrap();
        v.post(
            &hanna,
            &format!("/api/v1/cases/{case}/invitations/accept"),
            &json!({}),
        )
        .await
        .unwrap();
        v.post(
            &fiona,
            &format!("/api/v1/cases/{case}/members"),
            &json!({ "agency": "migri", "purpose": "residence" }),
        )
        .await
        .unwrap();
        v.post(
            &fiona,
            &format!("/api/v1/cases/{case}/consent/grants"),
            // The client is a minor: the guardian consents.
            &json!({ "recipient": "health-hus", "categories": ["health"], "purpose": "care", "obtained": { "method": "written", "language": "fi", "grantor": "guardian" } }),
        )
        .await
        .unwrap();
        let (_, task) = v
            .post(
                &fiona,
                &format!("/api/v1/cases/{case}/tasks"),
                &json!({ "description": "Check", "category": "health", "assignee": "health-hus" }),
            )
            .await
            .unwrap();
        let task = task["id"].as_str().unwrap();
        v.post(&hanna, &format!("/api/v1/tasks/{task}/accept"), &json!({}))
            .await
            .unwrap();
        // Every kind of case event, so that a rebuild folds each of them:
        // flags changed, an invitation declined, a member removed and
        // invited again.
        let liisa = v.token("liisa").await.unwrap();
        let sami = v.token("sami").await.unwrap();
        let flags = json!({ "minor": true, "safety_risk": true });
        let (status, _) = v
            .put(&fiona, &format!("/api/v1/cases/{case}/flags"), &flags)
            .await
            .unwrap();
        assert_eq!(status, 200);
        for (agency, purpose) in [
            ("police-helsinki", "investigation"),
            ("social-helsinki", "support"),
        ] {
            let invite = json!({ "agency": agency, "purpose": purpose });
            let (status, _) = v
                .post(&fiona, &format!("/api/v1/cases/{case}/members"), &invite)
                .await
                .unwrap();
            assert_eq!(status, 201);
        }
        let decline = format!("/api/v1/cases/{case}/invitations/decline");
        let reason = json!({ "reason": "not a police matter yet" });
        let (status, _) = v.post(&liisa, &decline, &reason).await.unwrap();
        assert_eq!(status, 200);
        let accept = format!("/api/v1/cases/{case}/invitations/accept");
        let (status, _) = v.post(&sami, &accept, &json!({})).await.unwrap();
        assert_eq!(status, 200);
        let (status, _) = v
            .delete(
                &fiona,
                &format!("/api/v1/cases/{case}/members/social-helsinki"),
            )
            .await
            .unwrap();
        assert!(status < 300, "{status}");
        let invite = json!({ "agency": "social-helsinki", "purpose": "support" });
        let (status, _) = v
            .post(&fiona, &format!("/api/v1/cases/{case}/members"), &invite)
            .await
            .unwrap();
        assert_eq!(status, 201);
        // Reads wait for every view to be current.
        v.get(&hanna, &format!("/api/v1/cases/{case}/records"))
            .await
            .unwrap();
        let log = v.log().await.unwrap();
        verkosto_e2e::read_everything(&log).await.unwrap();
        let before = service_rows(&log).await;
        assert_eq!(before.len(), 11, "{before:#?}");
        // Client text sits in the rows sealed under the case's key.
        let sealed = |before_text: String, after_text: &str| {
            let start = format!(": {before_text}vks1.{case}.");
            before
                .iter()
                .any(|r| r.contains(&start) && r.ends_with(after_text))
        };
        assert!(
            !before.iter().any(|r| r.contains("|police-helsinki|")),
            "declined: {before:#?}"
        );
        assert!(sealed(format!("{case}|social-helsinki|invited|"), ""));
        assert!(sealed(format!("{case}|health-hus|member|"), ""));
        assert!(
            sealed(format!("guard-all|{case}|assistance-system|"), "|1|1"),
            "the guard has the new flags: {before:#?}"
        );
        assert!(
            !before
                .iter()
                .any(|r| r.contains("|support") || r.contains("R-1")),
            "client text in the clear: {before:#?}"
        );
        v.halt().await;

        let guard = verkosto_guard::GuardFeed::new("guard-all");
        let projections: [&dyn verkosto_eventlog::Projection; 3] = [
            &verkosto_cases::CasesProjection,
            &guard,
            &verkosto_tasks::TasksProjection,
        ];
        for projection in projections {
            log.reset_projection(projection).await.unwrap();
            log.catch_up(projection).await.unwrap();
            // Redelivery of everything changes nothing either.
            let all = verkosto_e2e::read_everything(&log).await.unwrap();
            log.apply_batch(projection, &all).await.unwrap();
        }
        assert_eq!(service_rows(&log).await, before);
    }
);
