//! HTTP conventions shared by every service: problem JSON for every error,
//! request ids, the body limit, rate limits, the bearer-token extractor,
//! `If-Match` and `Idempotency-Key`.
//!
//! Never: send an error's cause to the client (it goes to the log), or let a
//! panic or a bad input become anything but a problem answer.

mod command;
mod extract;
pub mod limits;
pub mod openapi;
mod problem;
pub mod request_id;

pub use command::{Action, Answer, Commands, InTransaction, Transaction, Unparsed, Write};
pub use extract::{parse_if_match, parse_json, AuthState, Caller, JsonBody, WriteConditions};
pub use problem::{Coded, FieldError, Problem};
pub use request_id::RequestId;

use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use verkosto_eventlog::Outcome;

/// The largest request body accepted.
pub const BODY_LIMIT: usize = 256 * 1024;

/// Wraps a router in the shared layers: request ids, a tracing span per
/// request, the body limit, problem answers for unknown routes, and panics
/// turned into a 500 problem.
pub fn conventions<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    conventions_with(router, None)
}

/// [`conventions`], with rate limits: inside the request id and the
/// tracing span (a 429 carries its id and is logged), before anything
/// else runs, unknown routes included.
pub fn conventions_with<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    limits: Option<limits::Limits>,
) -> Router<S> {
    let router = router
        .fallback(|| async { Problem::not_found("no such resource") })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "method not allowed here",
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(plain_errors_as_problems))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            tracing::error!("handler panicked");
            Problem::internal().into_response()
        }));
    let router = match limits {
        Some(limits) => router.layer(axum::middleware::from_fn_with_state(limits, limits::limit)),
        None => router,
    };
    router
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let route = req
                    .extensions()
                    .get::<MatchedPath>()
                    .map(|m| m.as_str().to_string())
                    .unwrap_or_default();
                let request_id = req
                    .extensions()
                    .get::<RequestId>()
                    .map(|r| r.0.clone())
                    .unwrap_or_default();
                let span = tracing::info_span!(
                    "request",
                    method = %req.method(),
                    route,
                    request_id,
                    user = tracing::field::Empty,
                );
                continue_trace(&span, req.headers());
                span
            }),
        )
        .layer(axum::middleware::from_fn(finish_writes))
        .layer(axum::middleware::from_fn(request_id::layer))
}

/// A request that comes with a W3C `traceparent` (another process of the
/// deployment calling, with traces on) continues that trace: its span
/// becomes a child of the caller's. Nothing happens unless the process
/// exports traces (`--otlp-endpoint` installs the propagator and the layer).
fn continue_trace(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if !headers.contains_key("traceparent") {
        return;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&opentelemetry_http::HeaderExtractor(headers))
    });
    // No tracing layer (traces off): there is nothing to join.
    let _ = span.set_parent(parent);
}

/// axum's own rejections (a body over the limit read as `Bytes`, a bad path
/// parameter) answer in plain text; every error here is problem JSON.
async fn plain_errors_as_problems(req: Request, next: axum::middleware::Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let plain = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            Problem::new(status, "too-large", "body: the request body is too large")
        }
        StatusCode::INTERNAL_SERVER_ERROR => {
            tracing::error!(cause = %text, "plain-text 500");
            Problem::internal()
        }
        _ => Problem::new(status, "bad-request", text),
    }
    .into_response()
}

/// A write, once started, runs to its end even if the client hangs up: the
/// handler runs in its own task, so a lost reply never leaves a write cut
/// off half way (the client's retry with its Idempotency-Key then gets the
/// stored answer).
async fn finish_writes(req: Request, next: axum::middleware::Next) -> Response {
    if req.method() == axum::http::Method::GET || req.method() == axum::http::Method::HEAD {
        return next.run(req).await;
    }
    let span = tracing::Span::current();
    match tokio::spawn(tracing::Instrument::instrument(next.run(req), span)).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "write handler failed");
            Problem::internal().into_response()
        }
    }
}

/// The first answer under the request's `Idempotency-Key`, when a request
/// with it has committed (422 when that request's body was another).
pub async fn earlier_answer(
    log: &verkosto_eventlog::EventLog,
    idempotency: Option<&verkosto_eventlog::IdempotencyWrite>,
) -> Result<Option<Response>, Problem> {
    let Some(stored) = command::stored_answer(log, idempotency).await? else {
        return Ok(None);
    };
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    Ok(Some((status, axum::Json(stored.response)).into_response()))
}

/// Commits a hand-written write (one that does not go through
/// `AggregateStore::execute`) with its `Idempotency-Key` answer stored in the
/// same transaction. None when it committed; when a concurrent request with
/// the same key committed first, nothing of this one is kept and that
/// request's answer is the answer (422 if its body was another).
pub async fn commit_idempotent(
    log: &verkosto_eventlog::EventLog,
    mut tx: sqlx::Transaction<'static, sqlx::Any>,
    idempotency: Option<&verkosto_eventlog::IdempotencyWrite>,
    version: i64,
) -> Result<Option<Response>, Problem> {
    use verkosto_eventlog::Error as LogError;
    if let Some(idem) = idempotency {
        match idem.clone().store(&mut tx, version).await {
            Ok(()) => {}
            Err(LogError::IdempotencyRace) => {
                drop(tx);
                let first = earlier_answer(log, Some(idem)).await?;
                return first
                    .map(Some)
                    .ok_or_else(|| LogError::IdempotencyRace.into());
            }
            Err(e) => return Err(e.into()),
        }
    }
    tx.commit().await.map_err(LogError::from)?;
    Ok(None)
}

/// The answer to a command: the fresh answer, or the stored one on a retry.
pub fn command_response<A>(
    outcome: Outcome<A>,
    fresh: impl FnOnce(&verkosto_eventlog::Appended) -> (u16, serde_json::Value),
) -> Response {
    let (status, body) = match outcome {
        Outcome::Committed { appended, .. } => fresh(&appended),
        Outcome::Replayed(answer) => (answer.status, answer.response),
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    if status == StatusCode::NO_CONTENT {
        return status.into_response();
    }
    (status, axum::Json(body)).into_response()
}
