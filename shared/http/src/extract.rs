//! Extractors that turn a request into checked values or a problem answer.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use verkosto_auth::{AuthError, Principal, Role, Verifier};
use verkosto_eventlog::{request_hash, Actor, CommandMeta, Execution, IdempotencyWrite};

use crate::problem::Problem;
use crate::request_id::RequestId;

/// A JSON body, parsed strictly; the raw bytes are kept for idempotency.
/// Errors name the field: `agency: missing field`, `kind: unknown variant`.
pub struct JsonBody<T> {
    /// The body, parsed.
    pub value: T,
    /// The body's bytes as received.
    pub raw: Bytes,
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                let ct = ct.split(';').next().unwrap_or("").trim();
                ct == "application/json" || ct.ends_with("+json")
            });
        if !is_json {
            return Err(Problem::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Content-Type must be application/json",
            ));
        }
        let raw = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(
                    e.status(),
                    "too-large",
                    "body: the request body is too large",
                )
            } else {
                Problem::bad_request(format!("body: {}", e.body_text()))
            }
        })?;
        let value = parse_json(&raw)?;
        Ok(JsonBody { value, raw })
    }
}

/// Parses JSON, naming the field at fault in the problem.
pub fn parse_json<T: DeserializeOwned>(raw: &[u8]) -> Result<T, Problem> {
    let text =
        std::str::from_utf8(raw).map_err(|_| Problem::bad_request("body: not valid UTF-8"))?;
    // Every body of this API is an object. serde reads a struct from an array
    // too (`[]` would be a struct with every field defaulted), so refuse
    // anything else before it gets that far.
    match text.trim_start().as_bytes().first() {
        Some(b'{') | None => {}
        Some(_) => return Err(Problem::invalid("body", "must be a JSON object")),
    }
    // NUL can be written in JSON (`\u0000`) but never stored in PostgreSQL
    // text, and no field has a use for it: refuse it here, naming the field,
    // before it reaches a lookup or an insert as a 500.
    if text.contains("\\u0000") {
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
            if let Some(field) = nul_at(&value, String::new()) {
                return Err(Problem::invalid(&field, "must not contain NUL characters"));
            }
        }
    }
    let de = &mut serde_json::Deserializer::from_str(text);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Ok(v),
        Err(err) if err.inner().is_syntax() || err.inner().is_eof() => Err(json_problem(err)),
        Err(err) => {
            // A field's value was refused (a shared value type checks while
            // parsing) before the parser reached a syntax error further on:
            // malformed JSON is said first, as for any other body.
            let de = &mut serde_json::Deserializer::from_str(text);
            match serde_path_to_error::deserialize::<_, serde_json::Value>(de) {
                Err(syntax) if syntax.inner().is_syntax() || syntax.inner().is_eof() => {
                    Err(json_problem(syntax))
                }
                _ => Err(json_problem(err)),
            }
        }
    }
}

/// The problem answer for a body serde refused, naming the field.
fn json_problem(err: serde_path_to_error::Error<serde_json::Error>) -> Problem {
    let path = err.path().to_string();
    let inner = err.into_inner();
    let field = if path == "." || path.is_empty() {
        "body".to_string()
    } else {
        path
    };
    let message = strip_position(&inner.to_string());
    if inner.is_syntax() || inner.is_eof() {
        // A syntax error inside a field (a number out of range, say)
        // still names the field it was reading.
        let mut problem = Problem::bad_request(format!("{field}: malformed JSON: {message}"));
        problem.field = (field != "body").then_some(field);
        problem
    } else if let Some(missing) = missing_field(&message) {
        let name = if field == "body" {
            missing.to_string()
        } else {
            format!("{field}.{missing}")
        };
        Problem::invalid(&name, "is required")
    } else {
        Problem::invalid(&field, message)
    }
}

/// The path (as serde_path_to_error writes it) of the first key or string
/// holding a NUL character.
fn nul_at(value: &serde_json::Value, path: String) -> Option<String> {
    use serde_json::Value;
    let here = || {
        if path.is_empty() {
            "body".to_string()
        } else {
            path.clone()
        }
    };
    match value {
        Value::String(s) if s.contains('\0') => Some(here()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_at(v, format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let at = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            if k.contains('\0') {
                Some(at)
            } else {
                nul_at(v, at)
            }
        }),
        _ => None,
    }
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
}

/// The verified caller. 401 without a valid token.
#[derive(Clone, Debug)]
pub struct Caller(pub Principal);

impl Caller {
    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<&Principal, Problem> {
        if roles.iter().any(|r| self.0.has_role(*r)) {
            Ok(&self.0)
        } else {
            let names: Vec<&str> = roles.iter().map(Role::as_str).collect();
            Err(Problem::forbidden(format!(
                "this needs the role {}",
                names.join(" or ")
            )))
        }
    }

    pub fn actor(&self) -> Actor {
        Actor {
            user: self.0.user.clone(),
            agency: self.0.agency.clone(),
        }
    }
}

/// A token's check, made by the rate limiter before the handler ran (its
/// request's own `Authorization` header): the extractor uses it rather
/// than checking the same token twice. Only server code sets extensions.
#[derive(Clone)]
pub(crate) struct TokenChecked(pub(crate) Arc<Result<Principal, AuthError>>);

/// What the auth extractor needs from the app state.
#[derive(Clone)]
pub struct AuthState {
    /// Checks bearer tokens; the rate limiter must share it, so a token is checked once.
    pub verifier: Arc<Verifier>,
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    AuthState: FromRef<S>,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = AuthState::from_ref(state);
        let token = bearer(&parts.headers)
            .ok_or_else(|| Problem::unauthorized("Authorization: a Bearer token is required"))?;
        let checked = match parts.extensions.get::<TokenChecked>() {
            Some(TokenChecked(checked)) => checked.clone(),
            None => Arc::new(auth.verifier.verify(token).await),
        };
        match &*checked {
            Ok(p) => {
                tracing::Span::current().record("user", p.user.as_str());
                Ok(Caller(p.clone()))
            }
            Err(AuthError::KeysUnavailable(e)) => {
                tracing::error!(error = %e, "signing keys unavailable");
                Err(Problem::unavailable("token keys are unavailable"))
            }
            Err(e) => Err(Problem::unauthorized(format!("Authorization: {e}"))),
        }
    }
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

/// The conditions a write may carry: `If-Match` and `Idempotency-Key`,
/// with the request id, method and path.
#[derive(Clone, Debug)]
pub struct WriteConditions {
    /// `If-Match`: the version the caller last saw; none: no header.
    pub if_match: Option<i64>,
    /// `Idempotency-Key` (1 to 255 printable ASCII characters); none: no header.
    pub idempotency_key: Option<String>,
    /// The request's id (`X-Request-Id`, or a fresh UUIDv7): the events' `correlation_id`.
    pub request_id: String,
    /// The HTTP method, for the idempotency request hash.
    pub method: String,
    /// The request's path (no query), for the idempotency request hash.
    pub path: String,
}

impl<S: Send + Sync> FromRequestParts<S> for WriteConditions {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let if_match = match parts.headers.get(header::IF_MATCH) {
            None => None,
            Some(v) => Some(parse_if_match(v.to_str().unwrap_or(""))?),
        };
        let idempotency_key = match parts.headers.get("idempotency-key") {
            None => None,
            Some(v) => {
                let key = v.to_str().unwrap_or("").trim();
                if key.is_empty() || key.len() > 255 || !key.chars().all(|c| c.is_ascii_graphic()) {
                    return Err(Problem::bad_request(
                        "Idempotency-Key: must be 1 to 255 printable ASCII characters",
                    ));
                }
                Some(key.to_string())
            }
        };
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        Ok(WriteConditions {
            if_match,
            idempotency_key,
            request_id,
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
        })
    }
}

/// `"7"`, `W/"7"` or `7` → 7.
pub fn parse_if_match(value: &str) -> Result<i64, Problem> {
    let v = value.trim().trim_start_matches("W/").trim_matches('"');
    v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
        Problem::bad_request("If-Match: must be a version number in quotes, like \"3\"")
    })
}

impl WriteConditions {
    /// The execution settings for a command by `caller` with this raw body.
    /// `respond` builds the answer from the stream's new version; it is
    /// stored with the events when an idempotency key was given.
    pub fn execution(
        &self,
        caller: &Caller,
        raw_body: &[u8],
        respond: impl Fn(i64) -> (u16, serde_json::Value) + Send + Sync + 'static,
    ) -> Execution {
        let mut meta = CommandMeta::new(caller.actor());
        meta.correlation_id = self.request_id.clone();
        Execution {
            meta,
            if_match: self.if_match,
            idempotency: self.idempotency_key.as_ref().map(|key| IdempotencyWrite {
                scope: caller.0.user.clone(),
                key: key.clone(),
                request_hash: request_hash(&self.method, &self.path, raw_body),
                respond: Arc::new(respond),
            }),
        }
    }
}

#[cfg(test)]
mod parse_tests {
    use super::parse_json;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        #[serde(default)]
        flag: bool,
        #[serde(default)]
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Item {
        text: String,
    }

    fn field(raw: &str) -> (u16, Option<String>) {
        let p = parse_json::<Body>(raw.as_bytes()).unwrap_err();
        (p.status, p.field)
    }

    #[test]
    fn bodies_that_are_not_objects_are_refused_even_when_every_field_is_optional() {
        for raw in ["[]", "null", "1", "\"x\"", "  [true]"] {
            assert_eq!(field(raw), (422, Some("body".into())), "{raw}");
        }
        assert!(parse_json::<Body>(b"{}").is_ok());
    }

    #[test]
    fn nul_and_out_of_range_numbers_name_their_field() {
        assert_eq!(
            field(r#"{"items":[{"text":"a\u0000b"}]}"#),
            (422, Some("items[0].text".into()))
        );
        assert_eq!(field(r#"{"flag":1e400}"#), (400, Some("flag".into())));
        assert_eq!(field(r#"{"flag":"yes"}"#), (422, Some("flag".into())));
    }

    #[test]
    fn malformed_json_is_said_before_a_refused_value_ahead_of_it() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Typed {
            id: verkosto_types::AgencyId,
        }
        let p = parse_json::<Typed>(br#"{"id": "x","#).unwrap_err();
        assert_eq!(p.status, 400, "{}", p.detail);
        assert!(p.detail.contains("malformed JSON"), "{}", p.detail);
        let p = parse_json::<Typed>(br#"{"id": "x"}"#).unwrap_err();
        assert_eq!((p.status, p.field.as_deref()), (422, Some("id")));
    }
}
