//! Identity tokens: verifying JWTs, and issuing them in dev mode.
//!
//! Owns the token rules (issuer, audience, expiry, pinned algorithms) and
//! the dev signing key. Never: take the algorithm from the token, accept
//! `alg: none`, or know anything of cases or consent. Its only I/O is
//! fetching the identity provider's key set.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
pub use jsonwebtoken::Algorithm;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use ring::signature::KeyPair;
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

/// What a user may do; carried in the token's `roles` claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Facilitator,
    Liaison,
    Auditor,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Facilitator, Role::Liaison, Role::Auditor, Role::Admin];

    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Facilitator => "facilitator",
            Role::Liaison => "liaison",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Who is calling, as proven by a verified token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The user's id, from the token's `sub` claim (a directory user id, or
    /// `admin` for the built-in dev administrator).
    pub user: String,
    /// The id of the agency the user acts for, from the `agency` claim.
    pub agency: String,
    /// What the user may do, from the `roles` claim; unknown roles refuse the token.
    pub roles: Vec<Role>,
}

impl Principal {
    pub fn has_role(&self, r: Role) -> bool {
        self.roles.contains(&r)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("expired token")]
    Expired,
    #[error("key set unavailable: {0}")]
    KeysUnavailable(String),
}

#[derive(Deserialize)]
struct Claims {
    /// The user's id; must not be empty.
    sub: String,
    /// The user's agency id; must not be empty.
    agency: String,
    /// Role names as sent, parsed into [`Role`] after the signature check.
    roles: Vec<String>,
    /// Expiry, in seconds since the epoch; kept to bound reuse of the check.
    exp: u64,
}

const DEV_ISSUER: &str = "verkosto-dev";
const DEV_AUDIENCE: &str = "verkosto";
const DEV_KID: &str = "verkosto-dev-1";
const LEEWAY_SECS: u64 = 30;
const REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// Verifies tokens. The algorithm list is pinned by configuration.
#[derive(Clone)]
pub struct Verifier {
    /// Shared by all clones, so they share the keys and the memory of checks.
    inner: Arc<VerifierInner>,
}

struct VerifierInner {
    /// The only `iss` accepted.
    issuer: String,
    /// The only `aud` accepted.
    audience: String,
    /// The algorithms a token's header may name, pinned by configuration;
    /// never taken from the token.
    algorithms: Vec<Algorithm>,
    /// Where the signature keys come from, by `kid`.
    keys: Keys,
    /// Recently checked tokens by their full text, for [`Verifier::reuse`];
    /// cleared when it reaches [`REMEMBERED`] entries.
    verified: std::sync::Mutex<HashMap<String, Verified>>,
}

/// A token whose signature and claims were checked a moment ago. Checking
/// an Ed25519 signature is a tenth of a request's CPU; a client sends the
/// same token many times.
struct Verified {
    /// Who the token speaks for.
    principal: Principal,
    /// The token's `exp`, in seconds since the epoch.
    expires: u64,
    /// When the check was made, in seconds since the epoch.
    checked: u64,
}

/// How long a check is reused: short, so that a signing key taken out of
/// the key set stops being honoured soon after.
const REUSE_SECS: u64 = 60;

/// Most tokens remembered; the memory starts over when full.
const REMEMBERED: usize = 10_000;

enum Keys {
    Static(HashMap<String, DecodingKey>),
    Remote {
        /// The identity provider's JWKS URL.
        url: String,
        /// HTTP client for fetching the key set (5 s timeout).
        client: reqwest::Client,
        /// The last fetched keys by `kid`, and when they were fetched (none:
        /// never); refetched at most every [`REFETCH_INTERVAL`].
        cache: RwLock<(HashMap<String, DecodingKey>, Option<Instant>)>,
    },
}

impl Verifier {
    /// Dev mode: a fresh Ed25519 key made in this process.
    pub fn dev() -> (Verifier, DevIssuer) {
        let mut seed = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed)
            .expect("the system random source works");
        Self::dev_from_seed(&seed)
    }

    /// Dev mode with a given key seed, so that several processes of one dev
    /// deployment accept each other's tokens.
    pub fn dev_from_seed(seed: &[u8; 32]) -> (Verifier, DevIssuer) {
        let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(seed)
            .expect("a 32-byte seed is a valid Ed25519 key");
        let public = pair.public_key().as_ref().to_vec();
        // PKCS#8 v1 wrapping of the seed (RFC 8410), as the encoder expects.
        let mut pkcs8 = hex_bytes("302e020100300506032b657004220420");
        pkcs8.extend_from_slice(seed);
        let issuer = DevIssuer {
            inner: Arc::new(DevIssuerInner {
                key: EncodingKey::from_ed_der(&pkcs8),
                public: public.clone(),
            }),
        };
        let mut keys = HashMap::new();
        keys.insert(DEV_KID.to_string(), DecodingKey::from_ed_der(&public));
        let verifier = Verifier {
            inner: Arc::new(VerifierInner {
                issuer: DEV_ISSUER.into(),
                audience: DEV_AUDIENCE.into(),
                algorithms: vec![Algorithm::EdDSA],
                keys: Keys::Static(keys),
                verified: Default::default(),
            }),
        };
        (verifier, issuer)
    }

    /// Production: keys from the identity provider's JWKS URL, fetched on
    /// first use and again when an unknown `kid` appears (at most every 30 s).
    pub fn jwks(
        url: String,
        issuer: String,
        audience: String,
        algorithms: Vec<Algorithm>,
    ) -> Verifier {
        Verifier {
            inner: Arc::new(VerifierInner {
                issuer,
                audience,
                algorithms,
                keys: Keys::Remote {
                    url,
                    client: reqwest::Client::builder()
                        .timeout(Duration::from_secs(5))
                        .build()
                        .expect("http client builds"),
                    cache: RwLock::new((HashMap::new(), None)),
                },
                verified: Default::default(),
            }),
        }
    }

    /// Keys from a JWKS document given as text (a static key file, tests).
    pub fn from_jwks_json(
        json: &str,
        issuer: String,
        audience: String,
        algorithms: Vec<Algorithm>,
    ) -> Result<Verifier, AuthError> {
        let keys = parse_jwks(json)?;
        Ok(Verifier {
            inner: Arc::new(VerifierInner {
                issuer,
                audience,
                algorithms,
                keys: Keys::Static(keys),
                verified: Default::default(),
            }),
        })
    }

    /// Checks the token and returns who it speaks for.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let now = now();
        if let Some(principal) = self.reuse(token, now) {
            return Ok(principal);
        }
        let (principal, expires) = self.check(token).await?;
        let mut verified = self.inner.verified.lock().expect("verified tokens lock");
        if verified.len() >= REMEMBERED {
            verified.clear();
        }
        verified.insert(
            token.to_string(),
            Verified {
                principal: principal.clone(),
                expires,
                checked: now,
            },
        );
        Ok(principal)
    }

    /// The principal of `token` if it was fully checked a moment ago: no
    /// signature check, no key fetch. The rate limiter asks this first, so
    /// that a flood of unknown tokens is counted against its address before
    /// any of them costs a signature check.
    pub fn recently_verified(&self, token: &str) -> Option<Principal> {
        self.reuse(token, now())
    }

    /// The principal of `token` if it was checked in the last
    /// [`REUSE_SECS`] and has not expired since (with the usual leeway).
    fn reuse(&self, token: &str, now: u64) -> Option<Principal> {
        let mut verified = self.inner.verified.lock().expect("verified tokens lock");
        let v = verified.get(token)?;
        if now >= v.checked + REUSE_SECS || now > v.expires + LEEWAY_SECS {
            verified.remove(token);
            return None;
        }
        Some(v.principal.clone())
    }

    /// The full check: algorithm, key, signature, issuer, audience, times.
    async fn check(&self, token: &str) -> Result<(Principal, u64), AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::Invalid("malformed token".into()))?;
        if !self.inner.algorithms.contains(&header.alg) {
            return Err(AuthError::Invalid("algorithm not accepted".into()));
        }
        let key = self.key_for(header.kid.as_deref()).await?;
        // Only the token's own algorithm, already checked to be accepted:
        // jsonwebtoken refuses a list that mixes key families (RS/ES/EdDSA).
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.set_issuer(&[&self.inner.issuer]);
        validation.set_audience(&[&self.inner.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| match e
            .kind()
        {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::Invalid("token not yet valid".into()),
            ErrorKind::InvalidIssuer => AuthError::Invalid("wrong issuer".into()),
            ErrorKind::InvalidAudience => AuthError::Invalid("wrong audience".into()),
            ErrorKind::InvalidSignature => AuthError::Invalid("bad signature".into()),
            ErrorKind::MissingRequiredClaim(c) => AuthError::Invalid(format!("missing claim {c}")),
            ErrorKind::InvalidAlgorithm => AuthError::Invalid("algorithm not accepted".into()),
            ErrorKind::Json(_) => {
                AuthError::Invalid("claims sub, agency and roles are required".into())
            }
            _ => AuthError::Invalid("malformed token".into()),
        })?;
        let c = data.claims;
        if c.sub.trim().is_empty() || c.agency.trim().is_empty() {
            return Err(AuthError::Invalid(
                "sub and agency must not be empty".into(),
            ));
        }
        let roles = c
            .roles
            .iter()
            .map(|r| Role::parse(r).ok_or_else(|| AuthError::Invalid(format!("unknown role {r}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let principal = Principal {
            user: c.sub,
            agency: c.agency,
            roles,
        };
        Ok((principal, c.exp))
    }

    async fn key_for(&self, kid: Option<&str>) -> Result<DecodingKey, AuthError> {
        match &self.inner.keys {
            Keys::Static(keys) => lookup(keys, kid),
            Keys::Remote { url, client, cache } => {
                {
                    let guard = cache.read().await;
                    if let Ok(k) = lookup(&guard.0, kid) {
                        return Ok(k);
                    }
                    if guard.1.is_some_and(|t| t.elapsed() < REFETCH_INTERVAL) {
                        return Err(AuthError::Invalid("unknown signing key".into()));
                    }
                }
                let mut guard = cache.write().await;
                if guard.1.is_none_or(|t| t.elapsed() >= REFETCH_INTERVAL) {
                    let text = client
                        .get(url)
                        .send()
                        .await
                        .and_then(|r| r.error_for_status())
                        .map_err(|e| AuthError::KeysUnavailable(e.to_string()))?
                        .text()
                        .await
                        .map_err(|e| AuthError::KeysUnavailable(e.to_string()))?;
                    guard.0 = parse_jwks(&text)?;
                    guard.1 = Some(Instant::now());
                    tracing::info!(keys = guard.0.len(), "fetched signing keys");
                }
                lookup(&guard.0, kid)
            }
        }
    }
}

fn lookup(
    keys: &HashMap<String, DecodingKey>,
    kid: Option<&str>,
) -> Result<DecodingKey, AuthError> {
    match kid {
        Some(kid) => keys.get(kid).cloned(),
        // Without a kid, only an unambiguous single key will do.
        None if keys.len() == 1 => keys.values().next().cloned(),
        None => None,
    }
    .ok_or_else(|| AuthError::Invalid("unknown signing key".into()))
}

fn parse_jwks(json: &str) -> Result<HashMap<String, DecodingKey>, AuthError> {
    let set: JwkSet = serde_json::from_str(json)
        .map_err(|e| AuthError::KeysUnavailable(format!("bad JWKS: {e}")))?;
    let mut keys = HashMap::new();
    for (i, jwk) in set.keys.iter().enumerate() {
        let kid = jwk
            .common
            .key_id
            .clone()
            .unwrap_or_else(|| format!("key-{i}"));
        match DecodingKey::from_jwk(jwk) {
            Ok(k) => {
                keys.insert(kid, k);
            }
            Err(e) => tracing::warn!(kid, error = %e, "skipping unusable key in JWKS"),
        }
    }
    Ok(keys)
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("constant hex"))
        .collect()
}

/// Issues dev tokens.
#[derive(Clone)]
pub struct DevIssuer {
    /// Shared by all clones.
    inner: Arc<DevIssuerInner>,
}

struct DevIssuerInner {
    /// The Ed25519 signing key (PKCS#8 DER of the seed).
    key: EncodingKey,
    /// The raw 32-byte Ed25519 public key, published by [`DevIssuer::jwks`].
    public: Vec<u8>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl DevIssuer {
    /// A token for `principal`, valid for `ttl`.
    pub fn issue(&self, principal: &Principal, ttl: Duration) -> String {
        let now = now();
        let roles: Vec<&str> = principal.roles.iter().map(Role::as_str).collect();
        self.issue_claims(&serde_json::json!({
            "sub": principal.user,
            "agency": principal.agency,
            "roles": roles,
            "iss": DEV_ISSUER,
            "aud": DEV_AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + ttl.as_secs(),
        }))
    }

    /// A token with exactly these claims (tests build bad tokens with it).
    pub fn issue_claims(&self, claims: &serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(DEV_KID.into());
        jsonwebtoken::encode(&header, claims, &self.inner.key)
            .expect("Ed25519 signing does not fail")
    }

    pub fn issuer(&self) -> &str {
        DEV_ISSUER
    }

    pub fn audience(&self) -> &str {
        DEV_AUDIENCE
    }

    /// The public key as a JWKS document.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [{
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
            "kid": DEV_KID, "x": URL_SAFE_NO_PAD.encode(&self.inner.public),
        }]})
    }
}

#[cfg(test)]
mod tests;
