//! Sign-in with the organisation's identity provider: OpenID Connect, the
//! authorization code flow with PKCE (S256), a `state` against forgery and a
//! `nonce` against replay, kept in a short-lived `HttpOnly` cookie. The
//! protocol (discovery, the authorization request, the code exchange, the
//! ID token's signature, issuer, audience, expiry and nonce, `at_hash`) is
//! the `openidconnect` crate's; this module keeps the flow's cookie, the
//! pinned algorithms, Verkosto's claims and the error page. The access
//! token the provider issues is kept in a server-side session
//! (`session.rs`), never in the browser; the API verifies it on every call
//! against the provider's keys, as for any client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use http::header::SET_COOKIE;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AccessTokenHash, AdditionalClaims, AuthType, AuthorizationCode, ClaimsVerificationError,
    ClientId, ClientSecret, CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IdTokenFields, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, SignatureVerificationError, StandardErrorResponse,
    StandardTokenResponse, TokenResponse as _,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use verkosto_auth::Role;

use crate::session::{cookies_of, local_path, Page};
use crate::Web;

const FLOW: &str = "vk_oidc";
const B64: base64::engine::general_purpose::GeneralPurpose =
    base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The ID token signatures taken, as for the API's tokens (shared/auth's
/// default): never a shared-secret (HS…) one, whatever the provider lists.
const ALGORITHMS: [CoreJwsSigningAlgorithm; 3] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// The provider's keys are fetched again for an ID token signed with a key
/// they lack (the provider rotated them), at most this often.
const REDISCOVER_AFTER: Duration = Duration::from_secs(30);

/// Verkosto's claims, which the ID token carries as the access token does
/// (deploy/RUNBOOK.md): a provider that leaves them out fails here, with a
/// clear message, rather than at the first page.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct Membership {
    /// The user's agency id; required.
    agency: Option<String>,
    /// Verkosto's role names; required, each one Verkosto knows.
    roles: Option<Vec<String>>,
}
impl AdditionalClaims for Membership {}

type Tokens = StandardTokenResponse<
    IdTokenFields<
        Membership,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;

/// A client as discovery makes it: the authorization endpoint is known,
/// the token endpoint may be (it must, for this flow).
type Client = openidconnect::Client<
    Membership,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

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
    /// For the provider's discovery, keys and token endpoints (10 s
    /// timeout, no redirects followed).
    http: reqwest::Client,
    /// The discovery document with the provider's keys, and when it was read.
    discovered: Mutex<Option<(Arc<CoreProviderMetadata>, Instant)>>,
}

/// What the browser carries from the start of a sign-in to its callback.
struct Flow {
    /// Must come back as the callback's `state`.
    state: String,
    /// The PKCE code verifier, sent with the code.
    verifier: String,
    /// Must be the ID token's `nonce`.
    nonce: String,
    /// The local path to return to after signing in.
    next: Option<String>,
}

impl Flow {
    /// `state.verifier.nonce.next`: the first three are base64url, and so
    /// is the path to return to, so none holds a `.`.
    fn to_cookie(&self) -> String {
        let next = B64.encode(self.next.as_deref().unwrap_or_default());
        format!("{}.{}.{}.{next}", self.state, self.verifier, self.nonce)
    }

    fn from_cookie(value: &str) -> Option<Flow> {
        let mut parts = value.splitn(4, '.');
        Some(Flow {
            state: parts.next()?.to_string(),
            verifier: parts.next()?.to_string(),
            nonce: parts.next()?.to_string(),
            next: parts
                .next()
                .and_then(|n| B64.decode(n).ok())
                .and_then(|n| String::from_utf8(n).ok())
                .and_then(|n| local_path(&n)),
        })
    }
}

/// An error with its causes, for the error page and the log.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
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
            // No redirects: the provider's endpoints answer themselves, and
            // a redirect must not turn a request to them into one elsewhere.
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("http client"),
            discovered: Mutex::new(None),
        }
    }

    /// The provider's discovery document and keys: read once, and again
    /// when `renew` (a key is missing) and the last read is not too recent.
    async fn provider(&self, renew: bool) -> Result<Arc<CoreProviderMetadata>, String> {
        let mut slot = self.discovered.lock().await;
        if let Some((metadata, at)) = &*slot {
            if !renew || at.elapsed() < REDISCOVER_AFTER {
                return Ok(metadata.clone());
            }
        }
        let issuer = IssuerUrl::new(self.issuer.clone()).map_err(|e| format!("issuer: {e}"))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| format!("discovery: {}", chain(&e)))?;
        let metadata = Arc::new(metadata);
        *slot = Some((metadata.clone(), Instant::now()));
        Ok(metadata)
    }

    fn client(
        &self,
        metadata: &CoreProviderMetadata,
        redirect_uri: &str,
    ) -> Result<Client, String> {
        let redirect = RedirectUrl::new(redirect_uri.to_string())
            .map_err(|e| format!("redirect URI {redirect_uri}: {e}"))?;
        Ok(Client::from_provider_metadata(
            metadata.clone(),
            ClientId::new(self.client_id.clone()),
            self.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect)
        // The client secret in the form, as this app always sent it
        // (`client_secret_post`), not in an Authorization header.
        .set_auth_type(AuthType::RequestBody))
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

    /// The provider's authorization URL for a new sign-in, and the flow
    /// to keep until the callback.
    async fn authorization(
        &self,
        redirect_uri: &str,
        next: Option<String>,
    ) -> Result<(String, Flow), String> {
        let metadata = self.provider(false).await?;
        let client = self.client(&metadata, redirect_uri)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge)
            .url();
        let flow = Flow {
            state: state.secret().clone(),
            verifier: verifier.secret().clone(),
            nonce: nonce.secret().clone(),
            next,
        };
        Ok((url.to_string(), flow))
    }

    /// Trades the code (with the PKCE verifier) for tokens and checks the
    /// ID token; returns the access token, the session's.
    async fn exchange(
        &self,
        redirect_uri: &str,
        code: String,
        flow: Flow,
    ) -> Result<String, String> {
        let metadata = self.provider(false).await?;
        let client = self.client(&metadata, redirect_uri)?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| format!("the provider has no token endpoint: {e}"))?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| format!("the token endpoint: {}", chain(&e)))?;
        let nonce = Nonce::new(flow.nonce);
        match self.check(&client, &tokens, &nonce) {
            // A key the provider's set lacked: it may have rotated them.
            Err(Rejected::NoKey) => {
                let metadata = self.provider(true).await?;
                let client = self.client(&metadata, redirect_uri)?;
                self.check(&client, &tokens, &nonce)
                    .map_err(Rejected::text)?;
            }
            checked => checked.map_err(Rejected::text)?,
        }
        Ok(tokens.access_token().secret().clone())
    }

    /// The ID token: signature by the provider's key with a pinned
    /// algorithm, issuer, audience (this client), expiry, nonce, the access
    /// token's hash when given, and Verkosto's claims.
    fn check(&self, client: &Client, tokens: &Tokens, nonce: &Nonce) -> Result<(), Rejected> {
        let id_token = tokens
            .id_token()
            .ok_or_else(|| Rejected::Other("the provider sent no ID token".into()))?;
        let verifier = client.id_token_verifier().set_allowed_algs(ALGORITHMS);
        let claims = id_token.claims(&verifier, nonce).map_err(|e| match e {
            ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            ) => Rejected::NoKey,
            e => Rejected::Other(format!("ID token: {}", chain(&e))),
        })?;
        if let Some(expected) = claims.access_token_hash() {
            let alg = id_token
                .signing_alg()
                .map_err(|e| Rejected::Other(format!("ID token: {e}")))?;
            let key = id_token
                .signing_key(&verifier)
                .map_err(|e| Rejected::Other(format!("ID token: {e}")))?;
            let actual = AccessTokenHash::from_token(tokens.access_token(), alg, key)
                .map_err(|e| Rejected::Other(format!("ID token: {e}")))?;
            if actual != *expected {
                return Err(Rejected::Other(
                    "ID token: at_hash does not match the access token".into(),
                ));
            }
        }
        let membership = claims.additional_claims();
        let (Some(agency), Some(roles)) = (&membership.agency, &membership.roles) else {
            return Err(Rejected::Other(
                "ID token: claims sub, agency and roles are required".into(),
            ));
        };
        if claims.subject().trim().is_empty() || agency.trim().is_empty() {
            return Err(Rejected::Other(
                "ID token: sub and agency must not be empty".into(),
            ));
        }
        if let Some(unknown) = roles.iter().find(|r| Role::parse(r).is_none()) {
            return Err(Rejected::Other(format!("ID token: unknown role {unknown}")));
        }
        Ok(())
    }
}

enum Rejected {
    /// No key of the provider's set matches the ID token's.
    NoKey,
    Other(String),
}

impl Rejected {
    fn text(self) -> String {
        match self {
            Rejected::NoKey => "ID token: no key of the provider's matches its signature".into(),
            Rejected::Other(text) => text,
        }
    }
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
    // Where to go after signing in rides along.
    let next = q.next.as_deref().and_then(local_path);
    let (url, flow) = match oidc.authorization(&oidc.redirect_uri(&headers), next).await {
        Ok(started) => started,
        Err(e) => return failed(&e),
    };
    let mut response = Redirect::to(&url).into_response();
    response.headers_mut().append(
        SET_COOKIE,
        web.sessions.cookie(FLOW, &flow.to_cookie(), Some(600)),
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
    let Some(flow) = jar.get(FLOW).and_then(|f| Flow::from_cookie(f)) else {
        return failed("the sign-in was not started here (or took over ten minutes)");
    };
    if back.state.as_deref() != Some(flow.state.as_str()) {
        return failed("state does not match");
    }
    let Some(code) = back.code else {
        return failed("no code");
    };
    let to = flow.next.clone().unwrap_or_else(|| "/".to_string());
    let access_token = match oidc
        .exchange(&oidc.redirect_uri(&headers), code, flow)
        .await
    {
        Ok(token) => token,
        Err(e) => return failed(&e),
    };
    let mut response = web.sessions.sign_in(&page, &access_token, &to).await;
    response
        .headers_mut()
        .append(SET_COOKIE, web.sessions.cookie(FLOW, "", Some(0)));
    response
}

pub type Shared = Arc<Oidc>;

#[cfg(test)]
mod tests {
    //! Against a provider shaped as a Keycloak realm: its issuer has a
    //! path, its discovery document is Keycloak's (every algorithm, grant
    //! and response mode it lists), its key set holds an encryption key
    //! beside the RS256 signing key, and it signs with RS256.

    use std::collections::HashMap;
    use std::sync::Mutex;

    use axum::extract::{Form, State};
    use axum::routing::{get, post};
    use rsa::traits::PublicKeyParts;
    use serde_json::{json, Value};
    use sha2::Digest;

    use super::*;

    const SECRET: &str = "kc-client-secret";
    const REDIRECT: &str = "https://verkosto.example.fi/oidc/callback";

    struct Realm {
        /// `http://127.0.0.1:<port>/realms/verkosto`.
        issuer: String,
        /// The realm's RS256 signing key.
        key: rsa::RsaPrivateKey,
        /// The nonce of the sign-in under way (the realm's session).
        nonce: Mutex<String>,
        /// How the next ID token is signed: "RS256", or "HS256" with the secret.
        alg: Mutex<&'static str>,
        /// The last token request's form, and the access token answered.
        form: Mutex<HashMap<String, String>>,
        access_token: Mutex<String>,
    }

    fn b64(bytes: &[u8]) -> String {
        B64.encode(bytes)
    }

    fn jwt(realm: &Realm, alg: &str, claims: &Value) -> String {
        let header = json!({ "alg": alg, "typ": "JWT", "kid": "sig-1" });
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = match alg {
            "RS256" => realm
                .key
                .sign(
                    rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                    &sha2::Sha256::digest(input.as_bytes()),
                )
                .unwrap(),
            _ => {
                let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
                ring::hmac::sign(&key, input.as_bytes()).as_ref().to_vec()
            }
        };
        format!("{input}.{}", b64(&signature))
    }

    async fn discovery(State(realm): State<Arc<Realm>>) -> axum::Json<Value> {
        let i = &realm.issuer;
        let algs = json!([
            "PS384", "RS384", "EdDSA", "ES384", "HS256", "HS512", "ES256", "RS256", "HS384",
            "ES512", "PS256", "PS512", "RS512"
        ]);
        // Two halves: one `json!` this long is past the macro recursion limit.
        let mut document = axum::Json(json!({
            "issuer": i,
            "authorization_endpoint": format!("{i}/protocol/openid-connect/auth"),
            "token_endpoint": format!("{i}/protocol/openid-connect/token"),
            "introspection_endpoint": format!("{i}/protocol/openid-connect/token/introspect"),
            "userinfo_endpoint": format!("{i}/protocol/openid-connect/userinfo"),
            "end_session_endpoint": format!("{i}/protocol/openid-connect/logout"),
            "frontchannel_logout_session_supported": true,
            "frontchannel_logout_supported": true,
            "jwks_uri": format!("{i}/protocol/openid-connect/certs"),
            "check_session_iframe": format!("{i}/protocol/openid-connect/login-status-iframe.html"),
            "grant_types_supported": ["authorization_code", "implicit", "refresh_token", "password",
                "client_credentials", "urn:openid:params:grant-type:ciba",
                "urn:ietf:params:oauth:grant-type:device_code"],
            "acr_values_supported": ["0", "1"],
            "response_types_supported": ["code", "none", "id_token", "token", "id_token token",
                "code id_token", "code token", "code id_token token"],
            "subject_types_supported": ["public", "pairwise"],
            "prompt_values_supported": ["none", "login", "consent"],
            "id_token_signing_alg_values_supported": algs,
            "id_token_encryption_alg_values_supported": ["ECDH-ES+A256KW", "ECDH-ES+A192KW",
                "ECDH-ES+A128KW", "RSA-OAEP", "RSA-OAEP-256", "RSA1_5", "ECDH-ES"],
            "id_token_encryption_enc_values_supported": ["A256GCM", "A192GCM", "A128GCM",
                "A128CBC-HS256", "A192CBC-HS384", "A256CBC-HS512"],
        }));
        let more = json!({
            "userinfo_signing_alg_values_supported": algs.as_array().unwrap().iter()
                .cloned().chain([json!("none")]).collect::<Vec<_>>(),
            "request_object_signing_alg_values_supported": algs.as_array().unwrap().iter()
                .cloned().chain([json!("none")]).collect::<Vec<_>>(),
            "response_modes_supported": ["query", "fragment", "form_post", "query.jwt",
                "fragment.jwt", "form_post.jwt", "jwt"],
            "registration_endpoint": format!("{i}/clients-registrations/openid-connect"),
            "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic",
                "client_secret_post", "tls_client_auth", "client_secret_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": algs,
            "claims_supported": ["aud", "sub", "iss", "auth_time", "name", "given_name",
                "family_name", "preferred_username", "email", "acr"],
            "claim_types_supported": ["normal"],
            "claims_parameter_supported": true,
            "scopes_supported": ["openid", "phone", "address", "basic", "profile", "web-origins",
                "acr", "microprofile-jwt", "roles", "email", "organization", "offline_access"],
            "request_parameter_supported": true,
            "request_uri_parameter_supported": true,
            "require_request_uri_registration": true,
            "code_challenge_methods_supported": ["plain", "S256"],
            "tls_client_certificate_bound_access_tokens": true,
            "revocation_endpoint": format!("{i}/protocol/openid-connect/revoke"),
            "backchannel_logout_supported": true,
            "backchannel_logout_session_supported": true,
            "backchannel_authentication_endpoint": format!("{i}/protocol/openid-connect/ext/ciba/auth"),
            "require_pushed_authorization_requests": false,
            "pushed_authorization_request_endpoint": format!("{i}/protocol/openid-connect/ext/par/request"),
            "mtls_endpoint_aliases": { "token_endpoint": format!("{i}/protocol/openid-connect/token") },
            "authorization_response_iss_parameter_supported": true,
        });
        let doc = document.0.as_object_mut().unwrap();
        doc.extend(more.as_object().unwrap().clone());
        document
    }

    async fn certs(State(realm): State<Arc<Realm>>) -> axum::Json<Value> {
        let public = realm.key.to_public_key();
        let (n, e) = (
            b64(&public.n().to_bytes_be()),
            b64(&public.e().to_bytes_be()),
        );
        axum::Json(json!({ "keys": [
            { "kid": "enc-1", "kty": "RSA", "alg": "RSA-OAEP", "use": "enc", "n": n, "e": e,
              "x5c": ["MIIC"], "x5t": "abc", "x5t#S256": "def" },
            { "kid": "sig-1", "kty": "RSA", "alg": "RS256", "use": "sig", "n": n, "e": e,
              "x5c": ["MIIC"], "x5t": "abc", "x5t#S256": "def" },
        ]}))
    }

    async fn token(
        State(realm): State<Arc<Realm>>,
        Form(form): Form<HashMap<String, String>>,
    ) -> axum::Json<Value> {
        *realm.form.lock().unwrap() = form;
        let now = chrono::Utc::now().timestamp();
        let access_token = jwt(
            &realm,
            "RS256",
            &json!({ "iss": realm.issuer, "aud": "verkosto", "sub": "fiona",
                     "agency": "assistance-system", "roles": ["facilitator"], "azp": "verkosto-web",
                     "iat": now, "exp": now + 300, "typ": "Bearer" }),
        );
        let at_hash = b64(&sha2::Sha256::digest(access_token.as_bytes())[..16]);
        let alg = *realm.alg.lock().unwrap();
        let id_token = jwt(
            &realm,
            alg,
            &json!({ "iss": realm.issuer, "aud": "verkosto-web", "sub": "fiona",
                     "agency": "assistance-system", "roles": ["facilitator"], "azp": "verkosto-web",
                     "typ": "ID", "nonce": *realm.nonce.lock().unwrap(), "at_hash": at_hash,
                     "sid": "s-1", "acr": "1", "auth_time": now, "iat": now, "exp": now + 300 }),
        );
        *realm.access_token.lock().unwrap() = access_token.clone();
        axum::Json(json!({
            "access_token": access_token, "expires_in": 300, "refresh_expires_in": 1800,
            "refresh_token": "r", "token_type": "Bearer", "id_token": id_token,
            "not-before-policy": 0, "session_state": "s-1", "scope": "openid profile verkosto",
        }))
    }

    async fn realm() -> Arc<Realm> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let realm = Arc::new(Realm {
            issuer: format!("http://{}/realms/verkosto", listener.local_addr().unwrap()),
            key: rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap(),
            nonce: Mutex::default(),
            alg: Mutex::new("RS256"),
            form: Mutex::default(),
            access_token: Mutex::default(),
        });
        let routes = axum::Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/protocol/openid-connect/certs", get(certs))
            .route("/protocol/openid-connect/token", post(token))
            .with_state(realm.clone());
        let app = axum::Router::new().nest("/realms/verkosto", routes);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        realm
    }

    /// A sign-in as the browser would make it, the realm answering.
    async fn sign_in(oidc: &Oidc, realm: &Realm) -> Result<String, String> {
        let (url, flow) = oidc
            .authorization(REDIRECT, Some("/tasks".into()))
            .await
            .unwrap();
        let url = reqwest::Url::parse(&url).unwrap();
        assert_eq!(
            url.as_str().split('?').next().unwrap(),
            format!("{}/protocol/openid-connect/auth", realm.issuer)
        );
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "verkosto-web");
        assert_eq!(q["redirect_uri"], REDIRECT);
        assert_eq!(q["scope"], "openid profile");
        assert_eq!((&q["state"], &q["nonce"]), (&flow.state, &flow.nonce));
        assert_eq!(q["code_challenge_method"], "S256");
        let challenge = b64(&sha2::Sha256::digest(flow.verifier.as_bytes()));
        assert_eq!(q["code_challenge"], challenge);
        let cookie = flow.to_cookie();
        let flow = Flow::from_cookie(&cookie).unwrap();
        assert_eq!(flow.next.as_deref(), Some("/tasks"));
        *realm.nonce.lock().unwrap() = flow.nonce.clone();
        let verifier = flow.verifier.clone();
        let answer = oidc.exchange(REDIRECT, "kc-code".into(), flow).await;
        let form = realm.form.lock().unwrap().clone();
        assert_eq!(form["grant_type"], "authorization_code");
        assert_eq!(form["code"], "kc-code");
        assert_eq!(form["redirect_uri"], REDIRECT);
        assert_eq!(form["code_verifier"], verifier);
        // client_secret_post, as before.
        assert_eq!(form["client_id"], "verkosto-web");
        assert_eq!(form["client_secret"], SECRET);
        answer
    }

    #[tokio::test]
    async fn a_keycloak_realm_signs_in_with_rs256_and_never_with_the_client_secret() {
        let realm = realm().await;
        // Configured with a trailing slash, as operators write it.
        let oidc = Oidc::new(
            format!("{}/", realm.issuer),
            "verkosto-web".into(),
            Some(SECRET.into()),
            Some("https://verkosto.example.fi".into()),
        );
        let token = sign_in(&oidc, &realm).await.unwrap();
        assert_eq!(token, *realm.access_token.lock().unwrap());

        // The realm lists HS256, but an ID token "signed" with the client
        // secret (which the client itself holds) is refused: the pinned
        // algorithms, not the provider's list, decide.
        *realm.alg.lock().unwrap() = "HS256";
        let refused = sign_in(&oidc, &realm).await.unwrap_err();
        assert!(
            refused.contains("Signature verification failed") && refused.contains("HS256"),
            "{refused}"
        );
    }
}
