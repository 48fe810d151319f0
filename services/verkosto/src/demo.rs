//! Demo data for `--demo`: the directory's agencies and users, and (with
//! `--demo-case on`, the default) one worked example case, made through the
//! API itself as its users would make it.

use serde_json::{json, Value};
use verkosto_web::ApiClient;

pub async fn load(directory: &verkosto_directory::Directory) -> anyhow::Result<()> {
    verkosto_directory::demo::load(directory)
        .await
        .map_err(|p| anyhow::anyhow!("loading demo data failed: {p}"))?;
    tracing::info!("demo agencies and users loaded");
    Ok(())
}

struct Demo {
    /// The API the demo case is made through, as a client of it would.
    api: ApiClient,
}

impl Demo {
    async fn token(&self, user: &str) -> anyhow::Result<String> {
        let answer = self
            .api
            .call(
                http::Method::POST,
                "/api/v1/dev/token",
                None,
                Some(&json!({ "user": user })),
            )
            .await;
        answer.body["token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("no demo token for {user}: {}", answer.detail()))
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        let answer = self.api.post(path, token, &body).await;
        anyhow::ensure!(answer.ok(), "demo case: {path}: {}", answer.detail());
        Ok(answer.body)
    }

    async fn put(&self, token: &str, path: &str, body: Value) -> anyhow::Result<()> {
        let answer = self
            .api
            .call(http::Method::PUT, path, Some(token), Some(&body))
            .await;
        anyhow::ensure!(answer.ok(), "demo case: {path}: {}", answer.detail());
        Ok(())
    }
}

/// One example case, unless the facilitator already has cases.
pub async fn load_case(api: ApiClient) -> anyhow::Result<()> {
    let demo = Demo { api };
    let fiona = demo.token("fiona").await?;
    let existing = demo.api.get("/api/v1/cases", &fiona).await;
    if existing.body["cases"]
        .as_array()
        .is_some_and(|c| !c.is_empty())
    {
        return Ok(());
    }
    let case = demo
        .post(
            &fiona,
            "/api/v1/cases",
            json!({ "pseudonym": "A-1027", "languages": ["ro", "en"], "interpreter_language": "ro",
                    "flags": { "minor": false, "safety_risk": true } }),
        )
        .await?;
    let id = case["id"].as_str().unwrap_or_default().to_string();
    let members = [
        ("health-hus", "hanna", "health assessment"),
        ("police-helsinki", "liisa", "criminal investigation"),
        ("ngo-support", "nora", "support and accommodation"),
    ];
    for (agency, user, purpose) in members {
        demo.post(
            &fiona,
            &format!("/api/v1/cases/{id}/members"),
            json!({ "agency": agency, "purpose": purpose }),
        )
        .await?;
        let token = demo.token(user).await?;
        demo.post(
            &token,
            &format!("/api/v1/cases/{id}/invitations/accept"),
            json!({}),
        )
        .await?;
    }
    for (category, body) in [
        ("narrative", "Recruited with a promise of restaurant work; documents taken on arrival. Told once, recorded with consent."),
        ("health", "Untreated hand injury; needs a health check and a follow-up."),
        ("contact", "Staying at a safe house; reach through the NGO only."),
    ] {
        demo.post(&fiona, &format!("/api/v1/cases/{id}/records"), json!({ "category": category, "body": body }))
            .await?;
    }
    demo.post(
        &fiona,
        &format!("/api/v1/cases/{id}/consent/grants"),
        json!({ "recipient": "health-hus", "categories": ["health", "narrative"], "purpose": "health assessment",
                "obtained": { "method": "written", "language": "ro", "interpreter": "booked interpreter", "grantor": "self" } }),
    )
    .await?;
    demo.post(
        &fiona,
        &format!("/api/v1/cases/{id}/consent/statutory"),
        json!({ "recipient": "police-helsinki", "categories": ["legal", "narrative"], "law_reference": "Criminal Investigation Act 805/2011" }),
    )
    .await?;
    demo.put(
        &fiona,
        &format!("/api/v1/cases/{id}/plan/draft"),
        json!({ "goals": ["I want to feel safe", "I want to work legally"],
                "measures": [
                    { "id": "m1", "category": "health", "responsible_agency": "health-hus", "description": "Health check and treatment of the hand injury", "due": null },
                    { "id": "m2", "category": "social", "responsible_agency": "ngo-support", "description": "Safe accommodation and daily support", "due": null }
                ] }),
    )
    .await?;
    demo.post(
        &fiona,
        &format!("/api/v1/cases/{id}/plan/draft/propose"),
        json!({}),
    )
    .await?;
    tracing::info!(case = %id, "demo case A-1027 loaded");
    Ok(())
}
