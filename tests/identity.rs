//! Identity endpoints: agencies, users and dev tokens, in both modes, with
//! the bad input every public endpoint must refuse cleanly.

use serde_json::{json, Value};
use verkosto_e2e::{agency, both_modes, Mode, Verkosto};

async fn raw_post(
    v: &Verkosto,
    token: &str,
    path: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let r = v
        .http()
        .post(v.url(path))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    verkosto_e2e::answer(r).await.unwrap()
}

fn detail(body: &Value) -> &str {
    body["detail"].as_str().unwrap_or("")
}

both_modes!(
    agencies_and_users_are_registered_and_listed,
    |mode| async move {
        let v = Verkosto::start(mode).await.unwrap();
        let admin = v.token("admin").await.unwrap();
        let (status, body) = v
            .post(
                &admin,
                "/api/v1/agencies",
                &agency("police-helsinki", "police"),
            )
            .await
            .unwrap();
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["id"], "police-helsinki");
        // Read-your-writes: the list shows it at once.
        let (_, list) = v.get(&admin, "/api/v1/agencies").await.unwrap();
        assert_eq!(list["agencies"][0]["id"], "police-helsinki");
        assert_eq!(list["agencies"][0]["kind"], "police");
        assert_eq!(list["agencies"][0]["name"]["sv"], "police-helsinki sv");

        let user = json!({ "id": "liisa", "agency": "police-helsinki", "roles": ["liaison"], "display_name": "Liisa" });
        let (status, body) = v.post(&admin, "/api/v1/users", &user).await.unwrap();
        assert_eq!(status, 201, "{body}");
        let liisa = v.token("liisa").await.unwrap();
        // A liaison may list agencies but not register them.
        assert_eq!(v.get(&liisa, "/api/v1/agencies").await.unwrap().0, 200);
        let (status, _) = v
            .post(&liisa, "/api/v1/agencies", &agency("ngo-x", "ngo"))
            .await
            .unwrap();
        assert_eq!(status, 403);
        v.stop().await;
    }
);

both_modes!(
    bad_input_answers_4xx_problems_naming_the_field,
    |mode| async move {
        let v = Verkosto::start(mode).await.unwrap();
        let admin = v.token("admin").await.unwrap();
        assert_eq!(
            v.post(
                &admin,
                "/api/v1/agencies",
                &agency("health-hus", "health_care")
            )
            .await
            .unwrap()
            .0,
            201
        );

        let (status, body) = raw_post(&v, &admin, "/api/v1/agencies", "{\"id\": \"x\",").await;
        assert_eq!(status, 400, "{body}");
        assert!(detail(&body).contains("malformed JSON"), "{body}");

        let (status, body) = v
            .post(
                &admin,
                "/api/v1/agencies",
                &json!({ "id": "ngo-a", "kind": "ngo" }),
            )
            .await
            .unwrap();
        assert_eq!(
            (status, body["field"].as_str()),
            (422, Some("name")),
            "{body}"
        );

        let (status, body) = v
            .post(
                &admin,
                "/api/v1/agencies",
                &json!({ "id": "ngo-a", "kind": "ngo", "name": { "fi": "a", "sv": "b" } }),
            )
            .await
            .unwrap();
        assert_eq!(
            (status, body["field"].as_str()),
            (422, Some("name.en")),
            "{body}"
        );

        let (status, body) = v
            .post(&admin, "/api/v1/agencies", &agency("ngo-a", "pirates"))
            .await
            .unwrap();
        assert_eq!(
            (status, body["field"].as_str()),
            (422, Some("kind")),
            "{body}"
        );
        assert!(detail(&body).contains("unknown variant"), "{body}");

        let (status, body) = v
            .post(&admin, "/api/v1/agencies", &agency("Bad Id!", "ngo"))
            .await
            .unwrap();
        assert_eq!(
            (status, body["field"].as_str()),
            (422, Some("id")),
            "{body}"
        );

        let (status, body) = v
            .post(
                &admin,
                "/api/v1/agencies",
                &agency("health-hus", "health_care"),
            )
            .await
            .unwrap();
        assert_eq!(status, 409, "{body}");
        assert!(detail(&body).starts_with("id:"), "{body}");

        let mut extra = agency("ngo-b", "ngo");
        extra["lead_agency"] = json!("police-helsinki");
        let (status, body) = v.post(&admin, "/api/v1/agencies", &extra).await.unwrap();
        assert_eq!(
            status, 422,
            "unknown fields are refused, never applied: {body}"
        );

        let huge = format!("{{\"id\":\"ngo-c\",\"kind\":\"ngo\",\"name\":{{\"fi\":\"{}\",\"sv\":\"a\",\"en\":\"a\"}}}}", "x".repeat(300_000));
        let (status, body) = raw_post(&v, &admin, "/api/v1/agencies", huge).await;
        assert_eq!(status, 413, "{body}");

        let (status, body) =
            raw_post(&v, &admin, "/api/v1/agencies", vec![b'{', 0xff, 0xfe, b'}']).await;
        assert_eq!(status, 400, "{body}");

        let (status, body) = v
        .post(&admin, "/api/v1/agencies", &json!({ "id": "ngo-d", "kind": "ngo", "name": { "fi": "a\u{0}b", "sv": "a", "en": "a" } }))
        .await
        .unwrap();
        assert_eq!(
            (status, body["field"].as_str()),
            (422, Some("name.fi")),
            "{body}"
        );

        // Users: unknown agency, empty roles, unknown role, missing field.
        for (body, field) in [
            (
                json!({ "id": "u1", "agency": "nowhere", "roles": ["liaison"], "display_name": "U" }),
                "agency",
            ),
            (
                json!({ "id": "u1", "agency": "health-hus", "roles": [], "display_name": "U" }),
                "roles",
            ),
            (
                json!({ "id": "u1", "agency": "health-hus", "roles": ["king"], "display_name": "U" }),
                "roles[0]",
            ),
            (
                json!({ "id": "u1", "agency": "health-hus", "roles": ["liaison"] }),
                "display_name",
            ),
        ] {
            let (status, answer) = v.post(&admin, "/api/v1/users", &body).await.unwrap();
            assert_eq!(
                (status, answer["field"].as_str()),
                (422, Some(field)),
                "{answer}"
            );
        }

        // Nothing of the refused writes reached the log.
        let (_, list) = v.get(&admin, "/api/v1/agencies").await.unwrap();
        assert_eq!(list["agencies"].as_array().unwrap().len(), 1);
        v.stop().await;
    }
);

both_modes!(bad_tokens_answer_401, |mode| async move {
    let v = Verkosto::start(mode).await.unwrap();
    let admin = v.token("admin").await.unwrap();
    for token in ["", "garbage", "a.b.c", &format!("{admin}x")] {
        let (status, body) = v.get(token, "/api/v1/agencies").await.unwrap();
        assert_eq!(status, 401, "{token}: {body}");
    }
    let r = v
        .http()
        .get(v.url("/api/v1/agencies"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // An expired token, signed with the right key.
    let (_, issuer) = verkosto_auth_for_tests::issuer();
    let expired = issuer.issue_claims(&json!({
        "sub": "admin", "agency": "system", "roles": ["admin"], "iss": "verkosto-dev",
        "aud": "verkosto", "iat": 1, "nbf": 1, "exp": 2,
    }));
    let (status, body) = v.get(&expired, "/api/v1/agencies").await.unwrap();
    assert_eq!(status, 401, "{body}");
    assert!(detail(&body).contains("expired"), "{body}");
    // Unknown users get no token.
    let r = v
        .http()
        .post(v.url("/api/v1/dev/token"))
        .json(&json!({ "user": "mallory" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    v.stop().await;
});

mod verkosto_auth_for_tests {
    /// The dev issuer for the seed the test servers use.
    pub fn issuer() -> (verkosto_auth::Verifier, verkosto_auth::DevIssuer) {
        let seed: Vec<u8> = (0..32).map(|_| 1u8).collect();
        verkosto_auth::Verifier::dev_from_seed(&seed.try_into().unwrap())
    }
}

/// `serve` with no way to sign in refuses to start, and says what to give.
#[tokio::test]
async fn serve_without_sign_in_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(verkosto_testkit::workspace_binary("verkosto"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env_remove("VERKOSTO_DEV_AUTH")
        .env_remove("VERKOSTO_DEMO")
        // As a compose file leaves them: set, but empty.
        .env("VERKOSTO_JWKS_URL", "")
        .env("VERKOSTO_JWT_ISSUER", "")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no sign-in is configured") && stderr.contains("--jwks-url"),
        "{stderr}"
    );
}

/// Secrets stay out of `--help`, and can come from files.
#[tokio::test]
async fn secrets_stay_out_of_help_and_come_from_files() {
    let binary = verkosto_testkit::workspace_binary("verkosto");
    let out = tokio::process::Command::new(&binary)
        .args(["serve", "--help"])
        .env(
            "VERKOSTO_DATABASE_URL",
            "postgres://verkosto:HUNTER2DB@db/verkosto",
        )
        .env("VERKOSTO_OIDC_CLIENT_SECRET", "HUNTER2OIDC")
        .env("VERKOSTO_DEV_KEY_SEED", "HUNTER2SEED")
        .output()
        .await
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--database-url-file"), "{help}");
    assert!(!help.contains("HUNTER2"), "{help}");

    // The log's URL from a file: the audit check runs against it.
    let v = Verkosto::start(Mode::Distributed).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("database-url");
    std::fs::write(&file, format!("{}\n", v.database_url)).unwrap();
    let out = tokio::process::Command::new(&binary)
        .args(["audit", "verify", "--database-url-file"])
        .arg(&file)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"ok\": true"));
    // A missing file is one clear line.
    let out = tokio::process::Command::new(&binary)
        .args(["audit", "verify", "--database-url-file", "/nonexistent/url"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("verkosto: --database-url-file: cannot read"),
        "{stderr}"
    );
    v.stop().await;
}

/// An identity provider as far as Verkosto sees it: a JWKS over HTTP, and
/// tokens signed with its key. Returns its issuer URL and the key.
async fn identity_provider() -> (String, verkosto_auth::DevIssuer) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (_, issuer) = verkosto_auth::Verifier::dev();
    let jwks = issuer.jwks();
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, issuer)
}

/// With the provider's JWKS (embedded mode too): its tokens are taken, dev
/// tokens are not to be had (404), and a token of another key is refused.
#[tokio::test]
async fn with_a_jwks_dev_tokens_are_off_and_the_providers_tokens_work() {
    let (idp, key) = identity_provider().await;
    let jwks = format!("{idp}/jwks");
    let v = Verkosto::start_with(
        Mode::Embedded,
        &[
            "--jwks-url",
            &jwks,
            "--jwt-issuer",
            &idp,
            "--jwt-algorithms",
            "EdDSA",
            "--dev-auth",
            "off",
        ],
    )
    .await
    .unwrap();
    let r = v
        .http()
        .post(v.url("/api/v1/dev/token"))
        .json(&json!({ "user": "admin" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let now = chrono::Utc::now().timestamp();
    let claims = json!({ "iss": idp, "aud": "verkosto", "sub": "admin", "agency": "system",
                         "roles": ["admin"], "iat": now, "nbf": now, "exp": now + 600 });
    let token = key.issue_claims(&claims);
    let (status, body) = v.get(&token, "/api/v1/agencies").await.unwrap();
    assert_eq!(status, 200, "{body}");
    let (_, stranger) = verkosto_auth::Verifier::dev();
    let (status, _) = v
        .get(&stranger.issue_claims(&claims), "/api/v1/agencies")
        .await
        .unwrap();
    assert_eq!(status, 401);
    v.stop().await;
}

/// The demo is a trial: it serves dev tokens without being told.
#[tokio::test]
async fn the_demo_serves_dev_tokens() {
    let v = Verkosto::start_with(Mode::Embedded, &["--demo", "--demo-case", "off"])
        .await
        .unwrap();
    let r = v
        .http()
        .post(v.url("/api/v1/dev/token"))
        .json(&json!({ "user": "admin" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    v.stop().await;
}

both_modes!(
    the_openapi_document_describes_the_real_routes,
    |mode| async move {
        let v = Verkosto::start(mode).await.unwrap();
        let r = v
            .http()
            .get(v.url("/api/v1/openapi.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let doc: Value = r.json().await.unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.len() > 30, "{}", paths.len());
        // Every documented operation exists: without a token it answers
        // 401 (or, for the public ones, anything but 404/405).
        for (path, methods) in paths {
            let concrete = path
                .replace("{id}", "x")
                .replace("{agency}", "x")
                .replace("{n}", "1")
                .replace("{grant_id}", "x")
                .replace("{refusal_id}", "x")
                .replace("{basis_id}", "x")
                .replace("{token_id}", "x");
            for (method, op) in methods.as_object().unwrap() {
                let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let status = v
                    .http()
                    .request(m, v.url(&concrete))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16();
                if path.starts_with("/api/v1/calendar/") && op["security"] == json!([]) {
                    // The feed answers 404 to a wrong token, which this is.
                    assert_eq!(status, 404, "{method} {path}");
                } else if op["security"] == json!([]) {
                    assert!(status != 404 && status != 405, "{method} {path}: {status}");
                } else {
                    assert_eq!(status, 401, "{method} {path}");
                }
            }
        }
        let grant = &paths["/api/v1/cases/{id}/consent/grants"]["post"];
        let schema = &grant["requestBody"]["content"]["application/json"]["schema"];
        assert!(schema["properties"]["categories"].is_object(), "{schema}");
        v.stop().await;
    }
);
