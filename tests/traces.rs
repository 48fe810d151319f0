//! Traces over OTLP: off unless the operator names a collector with
//! `--otlp-endpoint`; with it, one request's spans reach the collector from
//! every process it crosses, in one trace (W3C `traceparent`), and the last
//! ones are sent at shutdown.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;
use verkosto_testkit::ChildProcess;

/// A trace the test starts, as a caller outside the deployment would.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// One span as the collector received it.
#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
}

/// Every POST that reached the collector, by path, with its body.
type Posts = Arc<Mutex<Vec<(String, Bytes)>>>;

/// A small OTLP/HTTP collector: keeps every POST; answers each with an
/// empty (valid) protobuf export response.
async fn collector() -> (String, Posts) {
    let posts: Posts = Arc::default();
    let app = axum::Router::new()
        .fallback(
            |State(posts): State<Posts>, uri: axum::http::Uri, body: Bytes| async move {
                posts.lock().unwrap().push((uri.path().to_string(), body));
                ([("content-type", "application/x-protobuf")], Bytes::new())
            },
        )
        .with_state(posts.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), posts)
}

/// The spans of every export posted to `/v1/traces`.
fn spans(posts: &Posts) -> Vec<Span> {
    let mut spans = Vec::new();
    for (path, body) in posts.lock().unwrap().iter() {
        assert_eq!(path, "/v1/traces", "only traces are exported");
        let export = ExportTraceServiceRequest::decode(body.as_ref()).unwrap();
        for resource_spans in export.resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref()?.value.as_ref())
                .map(|v| match v {
                    Value::StringValue(s) => s.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
                spans.push(Span {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                });
            }
        }
    }
    spans
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `verkosto serve` with `args`, and none of OpenTelemetry's variables but
/// those in `env`.
async fn serve(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (ChildProcess, String) {
    let mut cmd = verkosto_testkit::verkosto();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("OTEL_") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(env.iter().copied());
    let mut child = ChildProcess::spawn(cmd).unwrap();
    let addr = child
        .wait_for_line("listening on ", Duration::from_secs(60))
        .await
        .unwrap();
    (child, format!("http://{addr}"))
}

/// The sign-in page of the web app, in a trace the caller started: the web
/// process asks the API process for the demo users to show.
async fn sign_in_page(web: &str) {
    let page = reqwest::Client::new()
        .get(format!("{web}/signin"))
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("fiona"), "the API's users are shown: {html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_is_one_trace_across_the_web_and_the_api_process() {
    let (collector, posts) = collector().await;
    let (api_dir, web_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut api, api_url) = serve(
        api_dir.path(),
        &["--demo", "--otlp-endpoint", &collector],
        &[],
    )
    .await;
    // The web target's collector comes from OpenTelemetry's own variable.
    let (mut web, web_url) = serve(
        web_dir.path(),
        &["--target", "web", "--dev-auth", "on", "--api-url", &api_url],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &collector)],
    )
    .await;
    sign_in_page(&web_url).await;
    // The exporters send what is left when the processes stop.
    assert!(web.terminate().await.unwrap().success());
    assert!(api.terminate().await.unwrap().success());

    let spans = spans(&posts);
    let in_trace: Vec<&Span> = spans.iter().filter(|s| s.trace_id == TRACE_ID).collect();
    // The web process's request span continues the caller's trace...
    let page = in_trace
        .iter()
        .find(|s| s.service == "verkosto-web" && s.name == "request")
        .unwrap_or_else(|| panic!("the web's request span in the caller's trace: {spans:#?}"));
    assert_eq!(page.parent_span_id, CALLER_SPAN, "{page:?}");
    // ...and the API process's request spans are children of the web's
    // spans: the trace crossed the process boundary with the call.
    let web_spans: Vec<&str> = in_trace
        .iter()
        .filter(|s| s.service == "verkosto-web")
        .map(|s| s.span_id.as_str())
        .collect();
    let api_requests: Vec<&&Span> = in_trace
        .iter()
        .filter(|s| s.service == "verkosto-all" && s.name == "request")
        .collect();
    // POST /api/v1/dev/token and GET /api/v1/users.
    assert!(
        api_requests.len() >= 2,
        "the API's requests in the trace: {spans:#?}"
    );
    for span in api_requests {
        assert!(
            web_spans.contains(&span.parent_span_id.as_str()),
            "{span:?} has a parent in the web process: {spans:#?}"
        );
    }
    assert!(
        spans
            .iter()
            .all(|s| s.service == "verkosto-web" || s.service == "verkosto-all"),
        "a service name per target: {spans:#?}"
    );
}

#[tokio::test]
async fn without_an_endpoint_no_trace_is_sent() {
    let (collector, posts) = collector().await;
    let dir = tempfile::tempdir().unwrap();
    // A variable an exporter would read if one were built: none is.
    let traces = format!("{collector}/v1/traces");
    let (mut app, url) = serve(
        dir.path(),
        &["--demo"],
        &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &traces)],
    )
    .await;
    sign_in_page(&url).await;
    assert!(app.terminate().await.unwrap().success());
    assert!(
        posts.lock().unwrap().is_empty(),
        "sent: {:?}",
        posts.lock().unwrap().len()
    );
}
