//! Rate limits, against the real app: per address (requests without a
//! verified token), per user, stricter on sign-in, 429 problem answers with
//! `Retry-After` that a client can take at its word, and `X-Forwarded-For`
//! believed only from a trusted proxy. Small limits by flag; the defaults
//! are on (see ARCHITECTURE.md, "Rate limits").

use std::time::Duration;

use serde_json::{json, Value};
use verkosto_e2e::{both_modes, Mode, Verkosto};

/// A GET with optional token and `X-Forwarded-For`: status, Retry-After,
/// and the body (problem JSON checked for errors).
async fn get(
    v: &Verkosto,
    path: &str,
    token: Option<&str>,
    forwarded: Option<&str>,
) -> (u16, Option<u64>, Value) {
    let mut r = v.http().get(v.url(path));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(f) = forwarded {
        r = r.header("x-forwarded-for", f);
    }
    answered(r.send().await.unwrap()).await
}

/// A dev token request from (what `forwarded` says is) an address.
async fn sign_in(v: &Verkosto, user: &str, forwarded: Option<&str>) -> (u16, Option<u64>, Value) {
    let mut r = v
        .http()
        .post(v.url("/api/v1/dev/token"))
        .json(&json!({ "user": user }));
    if let Some(f) = forwarded {
        r = r.header("x-forwarded-for", f);
    }
    answered(r.send().await.unwrap()).await
}

async fn answered(r: reqwest::Response) -> (u16, Option<u64>, Value) {
    let retry_after = r.headers().get("retry-after").map(|v| {
        v.to_str()
            .unwrap()
            .parse::<u64>()
            .expect("Retry-After in seconds")
    });
    let (status, body) = verkosto_e2e::answer(r).await.unwrap();
    (status, retry_after, body)
}

/// A 429 as promised: problem JSON with the stable code, and a wait.
fn assert_limited(answer: &(u16, Option<u64>, Value), max_wait: u64) -> u64 {
    let (status, retry_after, body) = answer;
    assert_eq!(*status, 429, "{body}");
    assert_eq!(body["status"], 429, "{body}");
    assert_eq!(body["code"], "rate_limited", "{body}");
    assert_eq!(
        body["type"], "https://verkosto.fi/problems/rate-limited",
        "{body}"
    );
    let wait = retry_after.expect("429 without Retry-After");
    assert!((1..=max_wait).contains(&wait), "Retry-After {wait}: {body}");
    wait
}

both_modes!(
    a_burst_from_one_address_is_refused_with_retry_after_and_then_let_through,
    |mode| async move {
        let v = Verkosto::start_with(mode, &["--rate-limit-per-address", "1/s:3"])
            .await
            .unwrap();
        // No token: counted against the address (401 each, but counted).
        for _ in 0..3 {
            let (status, _, body) = get(&v, "/api/v1/agencies", None, None).await;
            assert_eq!(status, 401, "{body}");
        }
        let limited = get(&v, "/api/v1/agencies", None, None).await;
        let wait = assert_limited(&limited, 1);
        assert!(
            limited.2["detail"].as_str().unwrap().contains("address"),
            "{}",
            limited.2
        );
        // Every route, unknown ones too: nothing behind the limit runs.
        assert_limited(&get(&v, "/no/such/route", None, None).await, 1);

        // A client that waits as told gets through.
        tokio::time::sleep(Duration::from_secs(wait)).await;
        let (status, _, body) = get(&v, "/api/v1/agencies", None, None).await;
        assert_eq!(status, 401, "after Retry-After: {body}");
        v.stop().await;
    }
);

both_modes!(
    another_user_keeps_working_while_one_user_is_limited,
    |mode| async move {
        let v = Verkosto::start_with(
            mode,
            &[
                "--demo",
                "--demo-case",
                "off",
                "--rate-limit-per-user",
                "1/s:5",
            ],
        )
        .await
        .unwrap();
        let fiona = v.token("fiona").await.unwrap();
        let hanna = v.token("hanna").await.unwrap();
        for _ in 0..5 {
            let (status, _, body) = get(&v, "/api/v1/agencies", Some(&fiona), None).await;
            assert_eq!(status, 200, "{body}");
        }
        let limited = get(&v, "/api/v1/agencies", Some(&fiona), None).await;
        assert_limited(&limited, 1);
        assert!(
            limited.2["detail"].as_str().unwrap().contains("user"),
            "{}",
            limited.2
        );
        // Same address, another user: not limited.
        for _ in 0..3 {
            let (status, _, body) = get(&v, "/api/v1/agencies", Some(&hanna), None).await;
            assert_eq!(status, 200, "hanna while fiona is limited: {body}");
        }
        // Operators see it.
        let metrics = v
            .http()
            .get(v.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let refused = metrics
            .lines()
            .find(|l| l.starts_with("verkosto_rate_limited_total{limit=\"per_user\"}"))
            .unwrap_or_else(|| panic!("no per-user count in {metrics}"));
        assert!(!refused.ends_with(" 0"), "{refused}");
        // And fiona gets through after the wait.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (status, _, body) = get(&v, "/api/v1/agencies", Some(&fiona), None).await;
        assert_eq!(status, 200, "{body}");
        v.stop().await;
    }
);

both_modes!(
    sign_in_is_limited_per_address_more_strictly,
    |mode| async move {
        // The gateway (here: the test, on 127.0.0.1) says who the client is.
        let v = Verkosto::start_with(
            mode,
            &[
                "--demo",
                "--demo-case",
                "off",
                "--rate-limit-sign-in",
                "2/m:3",
                "--trusted-proxy",
                "127.0.0.1",
            ],
        )
        .await
        .unwrap();
        let a = Some("198.51.100.1");
        for _ in 0..3 {
            let (status, _, body) = sign_in(&v, "fiona", a).await;
            assert_eq!(status, 200, "{body}");
        }
        // 2 a minute: the next is 30 s away.
        let limited = sign_in(&v, "fiona", a).await;
        assert_limited(&limited, 30);
        assert!(
            limited.2["detail"].as_str().unwrap().contains("sign in"),
            "{}",
            limited.2
        );
        // The web app's sign-in routes share the limit.
        assert_limited(&get(&v, "/oidc/callback?code=x&state=y", None, a).await, 30);
        // Other addresses sign in; the limited one's API calls go on.
        let (status, _, body) = sign_in(&v, "hanna", Some("198.51.100.2")).await;
        assert_eq!(status, 200, "{body}");
        let token = body["token"].as_str().unwrap().to_string();
        let (status, _, body) = get(&v, "/api/v1/agencies", Some(&token), a).await;
        assert_eq!(status, 200, "{body}");

        // The contract says so.
        let doc = v.get_public("/api/v1/openapi.json").await.unwrap();
        assert_eq!(
            doc["paths"]["/api/v1/dev/token"]["post"]["responses"]["429"]["$ref"],
            "#/components/responses/TooManyRequests"
        );
        assert!(
            doc["components"]["responses"]["TooManyRequests"]["headers"]["Retry-After"].is_object()
        );
        v.stop().await;
    }
);

/// `X-Forwarded-For` from a peer that is not a trusted proxy changes
/// nothing: a client cannot make itself many clients.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forwarded_for_is_ignored_from_peers_that_are_not_trusted_proxies() {
    for trusted in [None, Some("10.0.0.0/8")] {
        let mut flags = vec!["--rate-limit-per-address", "1/m:2"];
        if let Some(t) = trusted {
            flags.extend(["--trusted-proxy", t]);
        }
        let v = Verkosto::start_with(Mode::Embedded, &flags).await.unwrap();
        for i in 0..2 {
            let forged = format!("203.0.113.{i}");
            let (status, _, body) = get(&v, "/healthz", None, Some(&forged)).await;
            assert_eq!(status, 200, "{body}");
        }
        let limited = get(&v, "/healthz", None, Some("203.0.113.77")).await;
        // One a minute: the next in up to 60 s.
        assert_limited(&limited, 60);
        v.stop().await;
    }
    // The same from a trusted proxy: each address counts on its own.
    let v = Verkosto::start_with(
        Mode::Embedded,
        &[
            "--rate-limit-per-address",
            "1/m:2",
            "--trusted-proxy",
            "127.0.0.0/8",
        ],
    )
    .await
    .unwrap();
    for i in 0..6 {
        let client = format!("203.0.113.{i}");
        let (status, _, body) = get(&v, "/healthz", None, Some(&client)).await;
        assert_eq!(status, 200, "{body}");
    }
    v.stop().await;
}
