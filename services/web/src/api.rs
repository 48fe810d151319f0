//! The pages' only way to data: the HTTP API itself. In one process the
//! call goes straight into the API router; with `--target web` it goes over
//! HTTP. Either way the same handlers, checks and consent filter run: the
//! web app has no side door.

use axum::body::Body;
use axum::Router;
use http::{header, Method, Request};
use serde_json::Value;
use tower::ServiceExt;

#[derive(Clone)]
pub enum ApiClient {
    /// The API router of this process.
    Local(Router),
    /// Another process's API, e.g. `http://cases:8080`.
    Remote { http: reqwest::Client, base: String },
}

/// An API answer: status and JSON body (problem JSON on errors).
#[derive(Clone, Debug)]
pub struct Answer {
    /// The HTTP status code.
    pub status: u16,
    /// The JSON body; problem JSON when the status is not 2xx.
    pub body: Value,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The problem's detail, for showing next to a form.
    pub fn detail(&self) -> String {
        self.body["detail"]
            .as_str()
            .unwrap_or("something went wrong")
            .to_string()
    }

    /// The erased case this answer is about: a 410 (every read and write of
    /// an erased case answers so), with the case's id when the API names it.
    pub fn erased(&self) -> Option<&str> {
        (self.status == 410).then(|| self.body["case_id"].as_str().unwrap_or_default())
    }

    /// The field the problem names, if any.
    pub fn field(&self) -> Option<String> {
        self.body["field"].as_str().map(str::to_string).or_else(|| {
            let detail = self.body["detail"].as_str()?;
            Some(detail.split(':').next()?.trim().to_string())
        })
    }
}

const MAX_ANSWER: usize = 16 * 1024 * 1024;

impl ApiClient {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        let result = match self {
            ApiClient::Local(router) => local(router, method, path, token, body).await,
            ApiClient::Remote { http, base } => remote(http, base, method, path, token, body).await,
        };
        result.unwrap_or_else(|e| {
            tracing::error!(error = %e, %path, "API call from the web app failed");
            Answer {
                status: 503,
                body: serde_json::json!({ "detail": "the service is unavailable; try again" }),
            }
        })
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Answer {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }
}

async fn local(
    router: &Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<Answer, String> {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = match body {
        Some(b) => request
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => request.body(Body::empty()),
    }
    .map_err(|e| e.to_string())?;
    let response = router
        .clone()
        .oneshot(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), MAX_ANSWER)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Answer {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    })
}

async fn remote(
    http: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<Answer, String> {
    let method =
        reqwest::Method::from_bytes(method.as_str().as_bytes()).map_err(|e| e.to_string())?;
    let mut request = http
        .request(method, format!("{base}{path}"))
        .headers(trace_context());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(b) = body {
        request = request.json(b);
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| e.to_string())?;
    Ok(Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    })
}

/// The current span's trace as W3C `traceparent` (and `tracestate`), so the
/// API process's spans join this request's trace. Empty unless this process
/// exports traces (`--otlp-endpoint`).
fn trace_context() -> http::HeaderMap {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let mut headers = http::HeaderMap::new();
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(
            &context,
            &mut opentelemetry_http::HeaderInjector(&mut headers),
        )
    });
    headers
}
