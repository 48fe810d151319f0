//! `/healthz`, `/readyz` and `/metrics`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tokio::sync::watch;
use verkosto_bus::RelayStatus;
use verkosto_eventlog::EventLog;

use crate::config::Target;

#[derive(Clone)]
pub struct Health {
    pub log: EventLog,
    pub nats: Option<async_nats::Client>,
    pub relay: Option<watch::Receiver<RelayStatus>>,
    pub target: Target,
    /// The consent guard, where this target reads client data.
    pub guard: Option<verkosto_guard::Guard>,
    /// The rate limits, for their refusal counts.
    pub limits: verkosto_http::limits::Limits,
}

impl Health {
    /// The consent and case events this process could not read: each
    /// makes its case withhold everything. None when unknown.
    async fn unreadable(&self) -> Option<Vec<verkosto_guard::UnreadableEvent>> {
        match &self.guard {
            None => Some(Vec::new()),
            Some(guard) => guard.unreadable().await.ok(),
        }
    }
}

/// Alive: the process answers.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready: the store answers, and NATS is connected where it is used.
pub async fn readyz(State(h): State<Health>) -> Response {
    let store = sqlx::query("SELECT 1")
        .execute(h.log.db().reader())
        .await
        .is_ok();
    let bus = h
        .nats
        .as_ref()
        .map(|c| c.connection_state() == async_nats::connection::State::Connected);
    let ready = store && bus.unwrap_or(true);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    // Ready still: the other cases are served. But say which cases read
    // nothing, and why, where an operator looks first.
    let unreadable = h.unreadable().await;
    let stale_cases: Option<std::collections::BTreeSet<&str>> = unreadable
        .as_ref()
        .map(|u| u.iter().map(|e| e.case_id.as_str()).collect());
    (
        status,
        Json(json!({
            "ready": ready,
            "store": store,
            "bus": bus,
            "unreadable_events": unreadable,
            "stale_cases": stale_cases,
        })),
    )
        .into_response()
}

/// Prometheus text format.
pub async fn metrics(State(h): State<Health>) -> Response {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, value: i64| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
        ));
    };
    gauge(
        "verkosto_clock_offset_ms",
        "The database's clock minus this machine's; events and expiry follow the database.",
        verkosto_eventlog::clock::offset().num_milliseconds(),
    );
    gauge(
        "verkosto_guard_unreadable_events",
        "Consent and case events this process cannot read; their cases withhold everything (-1: unknown).",
        h.unreadable().await.map_or(-1, |u| u.len() as i64),
    );
    let head = h.log.head_position().await.unwrap_or(-1);
    gauge(
        "verkosto_log_head_position",
        "Highest global position in the event log.",
        head,
    );
    if let Some(relay) = &h.relay {
        let s = *relay.borrow();
        gauge(
            "verkosto_relay_published_position",
            "Position of the last event on the stream.",
            s.published.position,
        );
        gauge(
            "verkosto_relay_lag_events",
            "Positions between the log head and the stream.",
            (head - s.published.position).max(0),
        );
        gauge(
            "verkosto_relay_stream_sequence",
            "Last sequence of the JetStream stream.",
            s.stream_sequence as i64,
        );
        gauge(
            "verkosto_relay_rewinds_total",
            "Times the relay found the stream behind and republished.",
            s.rewinds as i64,
        );
        gauge(
            "verkosto_relay_leading",
            "1 if this relay holds the lead, 0 if it stands by.",
            i64::from(s.leading),
        );
    }
    let checkpoints: Vec<(String, i64)> =
        sqlx::query_as("SELECT name, position FROM checkpoints ORDER BY name")
            .fetch_all(h.log.db().reader())
            .await
            .unwrap_or_default();
    out.push_str("# HELP verkosto_consumer_position Last position applied by each consumer.\n# TYPE verkosto_consumer_position gauge\n");
    for (name, position) in checkpoints {
        out.push_str(&format!(
            "verkosto_consumer_position{{consumer=\"{name}\"}} {position}\n"
        ));
    }
    out.push_str("# HELP verkosto_consumer_events_applied_total Events this process applied (or passed over) for each consumer.\n# TYPE verkosto_consumer_events_applied_total counter\n");
    for (name, count) in h.log.applied_counts() {
        out.push_str(&format!(
            "verkosto_consumer_events_applied_total{{consumer=\"{name}\"}} {count}\n"
        ));
    }
    out.push_str("# HELP verkosto_stream_refused_messages_total Stream messages each consumer refused as not the log's (forged or altered).\n# TYPE verkosto_stream_refused_messages_total counter\n");
    for (name, count) in h.log.refused_copies() {
        out.push_str(&format!(
            "verkosto_stream_refused_messages_total{{consumer=\"{name}\"}} {count}\n"
        ));
    }
    out.push_str("# HELP verkosto_rate_limited_total Requests answered 429, by the limit that refused them.\n# TYPE verkosto_rate_limited_total counter\n");
    for which in verkosto_http::limits::Which::ALL {
        out.push_str(&format!(
            "verkosto_rate_limited_total{{limit=\"{}\"}} {}\n",
            which.as_str(),
            h.limits.refused(which)
        ));
    }
    let quarantined: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM quarantine")
        .fetch_one(h.log.db().reader())
        .await
        .unwrap_or(0);
    out.push_str(&format!(
        "# HELP verkosto_quarantined_events Events consumers set aside as poison.\n# TYPE verkosto_quarantined_events gauge\nverkosto_quarantined_events {quarantined}\n"
    ));
    out.push_str(&format!("verkosto_up{{target=\"{:?}\"}} 1\n", h.target).to_lowercase());
    ([("content-type", "text/plain; version=0.0.4")], out).into_response()
}
