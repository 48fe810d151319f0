//! Logs: JSON in production, readable in a terminal. Traces over OTLP
//! (HTTP/protobuf) only when the operator names a collector with
//! `--otlp-endpoint`; then the W3C `traceparent` header joins one request's
//! spans across processes (accepted in `verkosto_http`'s request span, sent
//! by the web app's calls to the API).

use std::io::IsTerminal;

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::{SubscriberInitExt, TryInitError};
use tracing_subscriber::{EnvFilter, Layer};

/// Logs only (the command-line tools).
pub fn init(json: Option<bool>) {
    let _ = install(json, None);
}

/// Logs, and traces to `otlp_endpoint` (the collector's base URL; the
/// traces go to `<url>/v1/traces`) as `service`. Keep the answer until
/// the end and [`Telemetry::shutdown`] it, so the last spans are sent.
pub fn init_with_traces(
    json: Option<bool>,
    otlp_endpoint: Option<&str>,
    service: &str,
) -> anyhow::Result<Telemetry> {
    let provider = match otlp_endpoint.filter(|url| !url.trim().is_empty()) {
        None => None,
        Some(url) => Some(tracer_provider(url.trim(), service)?),
    };
    let _ = install(json, provider.as_ref());
    if provider.is_some() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    }
    Ok(Telemetry { provider })
}

/// The trace exporter, when there is one.
#[must_use = "shut it down at the end, or the last spans are lost"]
pub struct Telemetry {
    /// The exporter's tracer provider; none without `--otlp-endpoint`.
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still waiting, and stops the exporter.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider {
            if let Err(e) = provider.shutdown() {
                eprintln!("verkosto: traces: the last spans were not all sent: {e}");
            }
        }
    }
}

fn tracer_provider(url: &str, service: &str) -> anyhow::Result<SdkTracerProvider> {
    let endpoint = format!("{}/v1/traces", url.trim_end_matches('/'));
    anyhow::ensure!(
        endpoint.starts_with("http://") || endpoint.starts_with("https://"),
        "--otlp-endpoint: `{url}` is not an http:// or https:// URL"
    );
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .build()
        .with_context(|| format!("--otlp-endpoint: cannot send traces to `{url}`"))?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(service.to_string())
                .build(),
        )
        .build())
}

fn install(json: Option<bool>, traces: Option<&SdkTracerProvider>) -> Result<(), TryInitError> {
    let filter = EnvFilter::try_from_env("VERKOSTO_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,async_nats=warn,tower_http=info"));
    let json = json.unwrap_or_else(|| !std::io::stderr().is_terminal());
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = if json {
        logs.json().with_current_span(true).boxed()
    } else {
        logs.boxed()
    };
    let traces = traces
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("verkosto")));
    tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(traces)
        .try_init()
}
