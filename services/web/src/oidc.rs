//! Sign-in with the organisation's identity provider: OpenID Connect, the
//! authorization code flow with PKCE (S256), a `state` against forgery and a
//! `nonce` against replay, kept in a short-lived `HttpOnly` cookie. The
//! access token the provider issues is kept in a server-side session
//! (`session.rs`), never in the browser; the API verifies it on every call
//! against the provider's keys, as for any client.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use http::header::SET_COOKIE;
use serde::Deserialize;
use tokio::sync::OnceCell;
use verkosto_auth::{Algorithm, Verifier};

use crate::session::{cookies_of, local_path, Page};
use crate::Web;

const FLOW: &str = "vk_oidc";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The provider and this app's registration with it.
pub struct Oidc {
    /// The provider's issuer URL, without a trailing `/`: discovery starts
    /// there, and ID tokens must name it.
    pub issuer: String,
    /// This app's client id: sent to the provider, and the ID token's audience.
    pub client_id: String,
    /// The client secret for the token endpoint; none: a public client (PKCE only).
    pub client_secret: Option<String>,
    /// This app's public address (for the redirect URI); else the request's host.
    pub public_url: Option<String>,
    /// For the provider's discovery and token endpoints (10 s timeout).
    http: reqwest::Client,
    /// The provider's discovery document, fetched on first use.
    discovered: OnceCell<Discovery>,
}

#[derive(Clone, Deserialize)]
struct Discovery {
    /// Where the browser is sent to sign in.
    authorization_endpoint: String,
    /// Where the code is traded for tokens.
    token_endpoint: String,
    /// The provider's signing keys, for checking the ID token.
    jwks_uri: String,
}

impl Oidc {
    pub fn new(
        issuer: String,
        client_id: String,
        client_secret: Option<String>,
        public_url: Option<String>,
    ) -> Oidc {
        Oidc {
            issuer: issuer.trim_end_matches('/').to_string(),
            client_id,
            client_secret,
            public_url,
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .expect("http client"),
            discovered: OnceCell::new(),
        }
    }

    async fn discovery(&self) -> Result<&Discovery, String> {
        self.discovered
            .get_or_try_init(|| async {
                let url = format!("{}/.well-known/openid-configuration", self.issuer);
                let response = self
                    .http
                    .get(&url)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                response
                    .json::<Discovery>()
                    .await
                    .map_err(|e| e.to_string())
            })
            .await
    }

    fn redirect_uri(&self, headers: &http::HeaderMap) -> String {
        let base = self.public_url.clone().unwrap_or_else(|| {
            let host = headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            let local = host.starts_with("127.0.0.1")
                || host.starts_with("localhost")
                || host.starts_with("[::1]");
            format!("{}://{host}", if local { "http" } else { "https" })
        });
        format!("{}/oidc/callback", base.trim_end_matches('/'))
    }
}

fn random(n: usize) -> String {
    use ring::rand::SecureRandom;
    let mut bytes = vec![0u8; n];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("system randomness");
    B64.encode(bytes)
}

fn challenge(verifier: &str) -> String {
    B64.encode(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref())
}

fn failed(detail: &str) -> Response {
    tracing::warn!(detail, "sign-in with the identity provider failed");
    (
        http::StatusCode::BAD_GATEWAY,
        format!("Sign-in failed: {detail}"),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct Start {
    /// `?next=`: the local path to return to after signing in.
    next: Option<String>,
}

/// Sends the browser to the provider.
pub async fn start(
    State(web): State<Web>,
    headers: http::HeaderMap,
    Query(q): Query<Start>,
) -> Response {
    let Some(oidc) = &web.oidc else {
        return Redirect::to("/signin").into_response();
    };
    let discovery = match oidc.discovery().await {
        Ok(d) => d,
        Err(e) => return failed(&e),
    };
    let (state, verifier, nonce) = (random(16), random(32), random(16));
    let redirect_uri = oidc.redirect_uri(&headers);
    let mut url = reqwest::Url::parse(&discovery.authorization_endpoint).expect("endpoint URL");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &oidc.client_id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", "openid profile")
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge(&verifier))
        .append_pair("code_challenge_method", "S256");
    // Where to go after signing in rides along (base64url: no `.` in it).
    let next = q.next.as_deref().and_then(local_path).unwrap_or_default();
    let mut response = Redirect::to(url.as_str()).into_response();
    response.headers_mut().append(
        SET_COOKIE,
        web.sessions.cookie(
            FLOW,
            &format!("{state}.{verifier}.{nonce}.{}", B64.encode(next)),
            Some(600),
        ),
    );
    response
}

#[derive(Deserialize)]
pub struct Callback {
    /// The authorization code to trade for tokens.
    code: Option<String>,
    /// Must equal the `state` this browser's sign-in started with.
    state: Option<String>,
    /// The provider's error code, when the sign-in failed there.
    error: Option<String>,
}

#[derive(Deserialize)]
struct Tokens {
    /// The API token the session keeps and calls the API with.
    access_token: String,
    /// Checked (signature, issuer, audience, `nonce`), then dropped.
    id_token: String,
}

/// Back from the provider: checks `state`, trades the code (with the PKCE
/// verifier) for tokens, checks the ID token and its `nonce`, and starts
/// the session.
pub async fn callback(
    State(web): State<Web>,
    page: Page,
    headers: http::HeaderMap,
    Query(back): Query<Callback>,
) -> Response {
    let Some(oidc) = &web.oidc else {
        return Redirect::to("/signin").into_response();
    };
    if let Some(error) = back.error {
        return failed(&error);
    }
    let jar = cookies_of(&headers);
    let Some((state, verifier, nonce, next)) = jar.get(FLOW).and_then(|f| {
        let mut parts = f.splitn(4, '.');
        Some((
            parts.next()?.to_string(),
            parts.next()?.to_string(),
            parts.next()?.to_string(),
            parts
                .next()
                .and_then(|n| B64.decode(n).ok())
                .and_then(|n| String::from_utf8(n).ok())
                .and_then(|n| local_path(&n)),
        ))
    }) else {
        return failed("the sign-in was not started here (or took over ten minutes)");
    };
    if back.state.as_deref() != Some(state.as_str()) {
        return failed("state does not match");
    }
    let Some(code) = back.code else {
        return failed("no code");
    };
    let discovery = match oidc.discovery().await {
        Ok(d) => d.clone(),
        Err(e) => return failed(&e),
    };
    let redirect_uri = oidc.redirect_uri(&headers);
    let mut form = vec![
        ("grant_type", "authorization_code".to_string()),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("client_id", oidc.client_id.clone()),
        ("code_verifier", verifier),
    ];
    if let Some(secret) = &oidc.client_secret {
        form.push(("client_secret", secret.clone()));
    }
    let tokens: Tokens = match oidc
        .http
        .post(&discovery.token_endpoint)
        .form(&form)
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => match r.json().await {
            Ok(t) => t,
            Err(e) => return failed(&e.to_string()),
        },
        Ok(r) => return failed(&format!("the token endpoint answered {}", r.status())),
        Err(e) => return failed(&e.to_string()),
    };
    // The ID token is for this app: its audience is our client id.
    let id_verifier = Verifier::jwks(
        discovery.jwks_uri.clone(),
        oidc.issuer.clone(),
        oidc.client_id.clone(),
        vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
    );
    if let Err(e) = id_verifier.verify(&tokens.id_token).await {
        return failed(&format!("ID token: {e}"));
    }
    let claims = tokens
        .id_token
        .split('.')
        .nth(1)
        .and_then(|p| B64.decode(p).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    if claims.as_ref().and_then(|c| c["nonce"].as_str()) != Some(nonce.as_str()) {
        return failed("nonce does not match");
    }
    let to = next.unwrap_or_else(|| "/".to_string());
    let mut response = web.sessions.sign_in(&page, &tokens.access_token, &to).await;
    response
        .headers_mut()
        .append(SET_COOKIE, web.sessions.cookie(FLOW, "", Some(0)));
    response
}

pub type Shared = Arc<Oidc>;
