//! Identity endpoints: agencies, users and dev tokens, in both modes, with
//! the bad input every public endpoint must refuse cleanly.

use std::time::Duration;

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
    let out = verkosto_testkit::verkosto()
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
        .env("VERKOSTO_KEY", "verkosto-kek-v1:HUNTER2KEK")
        .env(
            "VERKOSTO_KEYS_URL",
            "postgres://keys:HUNTER2KEYS@db/verkosto",
        )
        .output()
        .await
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--database-url-file"), "{help}");
    assert!(help.contains("--key-file"), "{help}");
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

/// A store for the binary's own subcommands, in either mode: its flags
/// (and, distributed, the nats-server that `serve` needs beside it).
struct Store {
    flags: Vec<String>,
    url: String,
    nats: Option<verkosto_testkit::NatsServer>,
    _dir: tempfile::TempDir,
}

impl Store {
    async fn fresh(mode: Mode) -> Store {
        let dir = tempfile::tempdir().unwrap();
        match mode {
            Mode::Embedded => Store {
                flags: vec!["--data-dir".into(), dir.path().display().to_string()],
                url: format!("sqlite://{}", dir.path().join("verkosto.db").display()),
                nats: None,
                _dir: dir,
            },
            Mode::Distributed => {
                let url = verkosto_testkit::PgServer::shared()
                    .await
                    .fresh_database()
                    .await
                    .unwrap();
                Store {
                    flags: vec!["--database-url".into(), url.clone()],
                    url,
                    nats: Some(verkosto_testkit::NatsServer::start().await.unwrap()),
                    _dir: dir,
                }
            }
        }
    }

    async fn events(&self) -> i64 {
        let log = verkosto_eventlog::EventLog::connect(&self.url)
            .await
            .unwrap();
        let n = log.count().await.unwrap();
        log.db().close().await;
        n
    }
}

/// A Keycloak-style subject: a UUID, starting with a digit.
const ADMIN_SUBJECT: &str = "5f0c2a4e-8d1b-4c7e-9a55-2f3b1d7e6c90";

/// `verkosto admin bootstrap` on `store` with the usual flags, then `extra`
/// (which clap lets override nothing: a test gives each flag once).
async fn bootstrap(store: &Store, subject: &str, extra: &[&str]) -> std::process::Output {
    let mut args: Vec<String> = vec!["admin".into(), "bootstrap".into()];
    args.extend(store.flags.iter().cloned());
    for (flag, value) in [
        ("--agency-id", "assistance-system"),
        ("--agency-kind", "assistance_system"),
        ("--agency-name", "Ihmiskaupan uhrien auttamisjärjestelmä"),
        ("--agency-name-en", "Assistance System"),
        ("--admin-subject", subject),
        ("--admin-name", "Anna Admin"),
        ("--operator", "ops-test"),
    ] {
        if !extra.contains(&flag) {
            args.extend([flag.to_string(), value.to_string()]);
        }
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    verkosto_testkit::verkosto()
        .args(&args)
        .env_remove("VERKOSTO_JWT_ISSUER")
        .output()
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

both_modes!(
    bootstrap_makes_the_providers_user_the_first_admin_without_dev_tokens,
    |mode| async move {
        let (idp, key) = identity_provider().await;
        let store = Store::fresh(mode).await;

        // First run: the agency and its admin, and the claims to issue.
        let out = bootstrap(&store, ADMIN_SUBJECT, &["--jwt-issuer", &idp]).await;
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{}{stdout}", text(&out.stderr));
        assert!(
            stdout.contains("registered agency assistance-system"),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("registered admin {ADMIN_SUBJECT}")),
            "{stdout}"
        );
        for claim in [
            format!("iss     {idp:?}"),
            "aud     \"verkosto\"".to_string(),
            format!("sub     {ADMIN_SUBJECT:?}"),
            "agency  \"assistance-system\"".to_string(),
            "roles   [\"admin\"]".to_string(),
        ] {
            assert!(stdout.contains(&claim), "{claim} missing: {stdout}");
        }
        let events = store.events().await;
        assert_eq!(events, 2, "one agency and one user event");

        // Again: nothing changes, and it says so.
        let out = bootstrap(&store, ADMIN_SUBJECT, &[]).await;
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{}{stdout}", text(&out.stderr));
        assert!(stdout.starts_with("nothing changed"), "{stdout}");
        assert_eq!(store.events().await, events);

        // Another subject is refused while an admin exists, unless asked for.
        let second = "7c1d3b5f-0e2a-4f6b-8c9d-1a2b3c4d5e6f";
        let out = bootstrap(&store, second, &[]).await;
        let stderr = text(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.starts_with("verkosto: --another-admin: the directory has an admin already"),
            "{stderr}"
        );
        assert_eq!(
            store.events().await,
            events,
            "nothing of a refusal is written"
        );
        // So is the same agency id with another kind.
        let out = bootstrap(&store, second, &["--agency-kind", "ngo", "--another-admin"]).await;
        let stderr = text(&out.stderr);
        assert!(
            !out.status.success() && stderr.starts_with("verkosto: --agency-id: agency"),
            "{stderr}"
        );
        assert_eq!(store.events().await, events);

        // Serve with the provider's JWKS and no dev auth.
        let jwks = format!("{idp}/jwks");
        let mut cmd = verkosto_testkit::verkosto();
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .args(["--jwks-url", &jwks, "--jwt-issuer", &idp])
            .args(["--jwt-algorithms", "EdDSA"])
            .args(&store.flags)
            .env_remove("VERKOSTO_DEV_AUTH")
            .env_remove("VERKOSTO_DEMO")
            .env("VERKOSTO_LOG", "warn");
        if let Some(nats) = &store.nats {
            cmd.args(["--target", "all"])
                .args(nats.client_args(&nats.url(), "all"));
        }
        let mut server = verkosto_testkit::ChildProcess::spawn(cmd).unwrap();
        let addr = server
            .wait_for_line("listening on ", std::time::Duration::from_secs(60))
            .await
            .unwrap();
        let base = format!("http://{addr}");
        let http = reqwest::Client::new();
        let call = |method: reqwest::Method, path: &str, token: &str, body: Option<Value>| {
            let mut r = http
                .request(method, format!("{base}{path}"))
                .bearer_auth(token);
            if let Some(body) = body {
                r = r.json(&body);
            }
            async move { verkosto_e2e::answer(r.send().await.unwrap()).await.unwrap() }
        };

        let r = http
            .post(format!("{base}/api/v1/dev/token"))
            .json(&json!({ "user": "admin" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "no dev tokens");

        let now = chrono::Utc::now().timestamp();
        let token = |sub: &str, agency: &str, role: &str| {
            key.issue_claims(&json!({ "iss": idp, "aud": "verkosto", "sub": sub,
                "agency": agency, "roles": [role], "iat": now, "nbf": now, "exp": now + 600 }))
        };
        let admin = token(ADMIN_SUBJECT, "assistance-system", "admin");

        // The directory lists what bootstrap registered.
        let (status, users) = call(reqwest::Method::GET, "/api/v1/users", &admin, None).await;
        assert_eq!(status, 200, "{users}");
        assert_eq!(users["users"][0]["id"], ADMIN_SUBJECT, "{users}");
        assert_eq!(users["users"][0]["roles"], json!(["admin"]), "{users}");

        // The admin registers a second agency and a facilitator in it.
        let (status, body) = call(
            reqwest::Method::POST,
            "/api/v1/agencies",
            &admin,
            Some(agency("ngo-support", "ngo")),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let facilitator = "0a9e8d7c-6b5a-4f3e-2d1c-0b9a8f7e6d5c";
        let (status, body) = call(
            reqwest::Method::POST,
            "/api/v1/users",
            &admin,
            Some(json!({ "id": facilitator, "agency": "ngo-support",
                         "roles": ["facilitator"], "display_name": "Nora" })),
        )
        .await;
        assert_eq!(status, 201, "{body}");

        // The facilitator's provider token works: a case, and the
        // bootstrapped agency can be invited into it.
        let nora = token(facilitator, "ngo-support", "facilitator");
        let (status, case) = call(
            reqwest::Method::POST,
            "/api/v1/cases",
            &nora,
            Some(json!({ "pseudonym": "A-1", "languages": ["fi"] })),
        )
        .await;
        assert_eq!(status, 201, "{case}");
        let members = format!("/api/v1/cases/{}/members", case["id"].as_str().unwrap());
        let invite = json!({ "agency": "assistance-system", "purpose": "assistance" });
        let (status, body) = verkosto_e2e::until_current(|| async {
            Ok(call(reqwest::Method::POST, &members, &nora, Some(invite.clone())).await)
        })
        .await
        .unwrap();
        assert_eq!(status, 201, "{body}");

        // Bootstrap beside the running server is still a no-op.
        let out = bootstrap(&store, ADMIN_SUBJECT, &[]).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stdout).starts_with("nothing changed"));
        server.terminate().await.unwrap();
    }
);

/// Bad flags: one line naming the flag, a non-zero exit, no panic, and
/// nothing written.
#[tokio::test]
async fn bootstrap_refuses_bad_flags_naming_them() {
    let store = Store::fresh(Mode::Embedded).await;
    for (extra, flag) in [
        (vec!["--agency-id", "Bad Id!"], "--agency-id"),
        (vec!["--agency-id", "system"], "--agency-id"),
        (vec!["--agency-kind", "pirates"], "--agency-kind"),
        (vec!["--agency-name", " "], "--agency-name"),
        (vec!["--agency-name-en", "a\u{202E}b"], "--agency-name-en"),
        (vec!["--admin-subject", "auth0|abc"], "--admin-subject"),
        (vec!["--admin-subject", "admin"], "--admin-subject"),
        (vec!["--admin-name", ""], "--admin-name"),
    ] {
        let out = bootstrap(&store, ADMIN_SUBJECT, &extra).await;
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{extra:?} accepted");
        assert!(
            stderr.starts_with(&format!("verkosto: {flag}: ")) && stderr.lines().count() == 1,
            "{extra:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // A missing flag: clap says which.
    let out = verkosto_testkit::verkosto()
        .args(["admin", "bootstrap", "--data-dir"])
        .arg(&store.flags[1])
        .args(["--agency-kind", "ngo", "--agency-name", "N"])
        .args(["--admin-subject", ADMIN_SUBJECT, "--admin-name", "A"])
        .args(["--operator", "ops-test"])
        .output()
        .await
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--agency-id"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !std::path::Path::new(&store.flags[1])
            .join("verkosto.db")
            .exists(),
        "bad input never opens the store"
    );
}

/// Every secret a process holds, with every log line it can write (debug),
/// through a day's work: none of them in its log, its `/metrics` or its
/// answers to others.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_never_reach_the_log_or_metrics() {
    let nats = verkosto_testkit::NatsServer::start().await.unwrap();
    let database_url = verkosto_testkit::PgServer::shared()
        .await
        .fresh_database()
        .await
        .unwrap();
    // The test cluster trusts loopback, so any password does: one to look for.
    let db_password = "HUNTER2DBPASSWORD";
    let with_password = database_url.replacen("postgres@", &format!("postgres:{db_password}@"), 1);
    assert_ne!(with_password, database_url, "{database_url}");
    let dir = tempfile::tempdir().unwrap();
    let url_file = dir.path().join("database-url");
    std::fs::write(&url_file, &with_password).unwrap();
    let oidc_file = dir.path().join("oidc-secret");
    let oidc_secret = "HUNTER2OIDCSECRET";
    std::fs::write(&oidc_file, oidc_secret).unwrap();
    let seed = "4855_4e54_4552_3253_4545_4448_554e_5445_5232_5345_4544_4855_4e54_4552_3253_4545"
        .replace('_', "");
    let mut cmd = verkosto_testkit::verkosto();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--demo"])
        .arg("--database-url-file")
        .arg(&url_file)
        .arg("--oidc-client-secret-file")
        .arg(&oidc_file)
        .args(nats.client_args(&nats.url(), "all"))
        .args(["--webhook-allow-host", "127.0.0.1"])
        .env("VERKOSTO_DEV_KEY_SEED", &seed)
        .env("VERKOSTO_LOG", "debug");
    let mut child = verkosto_testkit::ChildProcess::spawn(cmd).unwrap();
    let addr = child
        .wait_for_line("listening on ", Duration::from_secs(60))
        .await
        .unwrap();
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();
    let token = |user: &'static str| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let body: Value = http
                .post(format!("{base}/api/v1/dev/token"))
                .json(&json!({ "user": user }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["token"].as_str().unwrap().to_string()
        }
    };
    let (fiona, hanna) = (token("fiona").await, token("hanna").await);
    let post = |token: String, path: &'static str, body: Value| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let r = http
                .post(format!("{base}{path}"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{path}: {}", r.status());
            r.json::<Value>().await.unwrap()
        }
    };
    post(
        fiona.clone(),
        "/api/v1/cases",
        json!({ "pseudonym": "K-1", "languages": ["fi"] }),
    )
    .await;
    let webhook = post(
        fiona.clone(),
        "/api/v1/webhooks",
        json!({ "url": "http://127.0.0.1:9/hook" }),
    )
    .await;
    let webhook_secret = webhook["secret"].as_str().unwrap().to_string();
    let feed = post(hanna.clone(), "/api/v1/calendar/feed-tokens", json!({})).await;
    let feed_token = feed["token"].as_str().unwrap().to_string();
    let status = http
        .get(format!("{base}{}", feed["url"].as_str().unwrap()))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    // A wrong token and a broken one, to reach the error paths too.
    let _ = http
        .get(format!("{base}/api/v1/cases"))
        .bearer_auth(format!("{fiona}x"))
        .send()
        .await
        .unwrap();
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    child.terminate().await.unwrap();

    let log = std::fs::read_to_string(child.log_path()).unwrap();
    assert!(log.lines().count() > 20, "debug logging is on: {log}");
    let secrets = [
        ("the database password", db_password.to_string()),
        (
            "the NATS password",
            verkosto_testkit::nats_password("relay"),
        ),
        ("the OIDC client secret", oidc_secret.to_string()),
        ("the dev key seed", seed.clone()),
        ("a bearer token", fiona.clone()),
        ("a webhook secret", webhook_secret),
        ("a calendar feed token", feed_token),
    ];
    for (what, secret) in &secrets {
        assert!(!log.contains(secret.as_str()), "{what} is in the log");
        assert!(!metrics.contains(secret.as_str()), "{what} is in /metrics");
    }
}
