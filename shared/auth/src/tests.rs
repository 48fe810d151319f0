use super::*;
use serde_json::json;

fn alice() -> Principal {
    Principal {
        user: "alice".into(),
        agency: "police-helsinki".into(),
        roles: vec![Role::Liaison],
    }
}

fn claims(overrides: serde_json::Value) -> serde_json::Value {
    let now = now();
    let mut c = json!({
        "sub": "alice", "agency": "police-helsinki", "roles": ["liaison"],
        "iss": DEV_ISSUER, "aud": DEV_AUDIENCE, "iat": now, "nbf": now, "exp": now + 600,
    });
    for (k, v) in overrides.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

async fn rejected(verifier: &Verifier, token: &str) -> AuthError {
    verifier
        .verify(token)
        .await
        .expect_err("token must be rejected")
}

#[tokio::test]
async fn a_dev_token_round_trips() {
    let (verifier, issuer) = Verifier::dev();
    let token = issuer.issue(&alice(), Duration::from_secs(60));
    assert_eq!(verifier.verify(&token).await.unwrap(), alice());
}

#[tokio::test]
async fn bad_tokens_are_rejected() {
    let (verifier, issuer) = Verifier::dev();
    let now = now() as i64;
    assert!(matches!(
        rejected(
            &verifier,
            &issuer.issue_claims(&claims(json!({"exp": now - 3600})))
        )
        .await,
        AuthError::Expired
    ));
    for (name, c) in [
        ("not yet valid", claims(json!({"nbf": now + 3600}))),
        ("wrong issuer", claims(json!({"iss": "someone-else"}))),
        ("wrong audience", claims(json!({"aud": "other-app"}))),
        ("unknown role", claims(json!({"roles": ["superuser"]}))),
        ("no roles", claims(json!({"roles": null}))),
        ("empty agency", claims(json!({"agency": ""}))),
    ] {
        let err = rejected(&verifier, &issuer.issue_claims(&c)).await;
        assert!(matches!(err, AuthError::Invalid(_)), "{name}: {err:?}");
    }
    let mut no_exp = claims(json!({}));
    no_exp.as_object_mut().unwrap().remove("exp");
    assert!(matches!(
        rejected(&verifier, &issuer.issue_claims(&no_exp)).await,
        AuthError::Invalid(_)
    ));
}

#[tokio::test]
async fn tokens_from_another_key_are_rejected() {
    let (verifier, _) = Verifier::dev();
    let (_, other) = Verifier::dev();
    let token = other.issue(&alice(), Duration::from_secs(60));
    assert!(matches!(
        rejected(&verifier, &token).await,
        AuthError::Invalid(_)
    ));
}

#[tokio::test]
async fn alg_none_and_tampering_are_rejected() {
    let (verifier, issuer) = Verifier::dev();
    let token = issuer.issue(&alice(), Duration::from_secs(60));
    let parts: Vec<&str> = token.split('.').collect();

    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{none_header}.{}.", parts[1]);
    assert!(matches!(
        rejected(&verifier, &unsigned).await,
        AuthError::Invalid(_)
    ));

    let admin_payload = URL_SAFE_NO_PAD.encode(claims(json!({"roles": ["admin"]})).to_string());
    let tampered = format!("{}.{admin_payload}.{}", parts[0], parts[2]);
    assert!(matches!(
        rejected(&verifier, &tampered).await,
        AuthError::Invalid(_)
    ));

    // Key confusion: HS256 signed with the public key as the secret.
    let public = URL_SAFE_NO_PAD
        .decode(issuer.jwks()["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(json!({})),
        &EncodingKey::from_secret(&public),
    )
    .unwrap();
    assert!(matches!(
        rejected(&verifier, &hs).await,
        AuthError::Invalid(_)
    ));

    for garbage in ["", "abc", "a.b.c", "....."] {
        assert!(verifier.verify(garbage).await.is_err());
    }
}

#[tokio::test]
async fn a_seeded_dev_key_is_shared_between_processes() {
    let seed = [7u8; 32];
    let (verifier, _) = Verifier::dev_from_seed(&seed);
    let (_, issuer) = Verifier::dev_from_seed(&seed);
    let token = issuer.issue(&alice(), Duration::from_secs(60));
    assert_eq!(verifier.verify(&token).await.unwrap(), alice());
}

#[tokio::test]
async fn jwks_json_verifies_the_issuers_tokens() {
    let (_, issuer) = Verifier::dev();
    let verifier = Verifier::from_jwks_json(
        &issuer.jwks().to_string(),
        DEV_ISSUER.into(),
        DEV_AUDIENCE.into(),
        vec![Algorithm::EdDSA],
    )
    .unwrap();
    let token = issuer.issue(&alice(), Duration::from_secs(60));
    assert_eq!(verifier.verify(&token).await.unwrap(), alice());

    // The same key, but the verifier pins RS256 only.
    let pinned = Verifier::from_jwks_json(
        &issuer.jwks().to_string(),
        DEV_ISSUER.into(),
        DEV_AUDIENCE.into(),
        vec![Algorithm::RS256],
    )
    .unwrap();
    assert!(pinned.verify(&token).await.is_err());

    // The production default accepts several families at once.
    let several = Verifier::from_jwks_json(
        &issuer.jwks().to_string(),
        DEV_ISSUER.into(),
        DEV_AUDIENCE.into(),
        vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
    )
    .unwrap();
    assert_eq!(several.verify(&token).await.unwrap(), alice());
}

#[tokio::test]
async fn keys_are_fetched_from_a_jwks_url_and_refetched_for_a_new_kid() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (_, issuer) = Verifier::dev();
    let jwks = issuer.jwks().to_string();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let body = jwks.clone();
            async move { body }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let verifier = Verifier::jwks(
        format!("http://{addr}/jwks.json"),
        DEV_ISSUER.into(),
        DEV_AUDIENCE.into(),
        vec![Algorithm::EdDSA],
    );
    let token = issuer.issue(&alice(), Duration::from_secs(60));
    assert_eq!(verifier.verify(&token).await.unwrap(), alice());
    assert_eq!(verifier.verify(&token).await.unwrap(), alice());
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "cached after the first fetch"
    );

    // An unknown kid triggers no refetch within the interval (no amplification).
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("rotated".into());
    let rotated = jsonwebtoken::encode(&header, &claims(json!({})), &issuer.inner.key).unwrap();
    assert!(verifier.verify(&rotated).await.is_err());
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_checked_token_is_reused_only_while_valid_and_for_a_minute() {
    let (verifier, issuer) = Verifier::dev();
    let now = now();
    let token = issuer.issue_claims(&claims(json!({ "exp": now + 120 })));
    assert_eq!(verifier.verify(&token).await.unwrap(), alice());
    assert_eq!(verifier.reuse(&token, now), Some(alice()));
    // A minute on, it is checked afresh.
    assert_eq!(verifier.reuse(&token, now + REUSE_SECS), None);
    assert_eq!(verifier.verify(&token).await.unwrap(), alice());
    // Past its expiry (and the leeway), never reused.
    assert_eq!(verifier.reuse(&token, now + 120 + LEEWAY_SECS + 1), None);
    // Another token, even one character apart, is not the checked one.
    let mut tampered = token.clone();
    tampered.pop();
    assert_eq!(verifier.reuse(&tampered, now), None);
    assert!(verifier.verify(&tampered).await.is_err());
}
