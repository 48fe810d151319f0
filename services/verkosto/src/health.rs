//! `/healthz`, `/readyz` and `/metrics`.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use prometheus_client::encoding::{prometheus_text, EncodeLabelSet};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;

use serde_json::json;
use tokio::sync::watch;
use verkosto_bus::RelayStatus;
use verkosto_eventlog::EventLog;

use crate::config::Target;

#[derive(Clone)]
pub struct Health {
    /// The event log: the store `/readyz` checks and `/metrics` reads.
    pub log: EventLog,
    /// The NATS connection, in the distributed mode: `/readyz` wants it
    /// connected.
    pub nats: Option<async_nats::Client>,
    /// The relay's status, where this process runs the relay.
    pub relay: Option<watch::Receiver<RelayStatus>>,
    /// Which service(s) this process runs: the `target` label of `verkosto_up`.
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

/// Prometheus text format (0.0.4), read at each scrape and encoded by the
/// Prometheus client.
pub async fn metrics(State(h): State<Health>) -> Response {
    let head = h.log.head_position().await.unwrap_or(-1);
    let readings = Readings {
        clock_offset_ms: verkosto_eventlog::clock::offset().num_milliseconds(),
        unreadable: h.unreadable().await.map_or(-1, |u| u.len() as i64),
        head,
        relay: h.relay.as_ref().map(|relay| *relay.borrow()),
        checkpoints: sqlx::query_as("SELECT name, position FROM checkpoints ORDER BY name")
            .fetch_all(h.log.db().reader())
            .await
            .unwrap_or_default(),
        applied: h.log.applied_counts(),
        refused: h.log.refused_copies(),
        rate_limited: verkosto_http::limits::Which::ALL
            .map(|which| (which.as_str(), h.limits.refused(which))),
        quarantined: sqlx::query_scalar("SELECT COUNT(*) FROM quarantine")
            .fetch_one(h.log.db().reader())
            .await
            .unwrap_or(0),
        target: format!("{:?}", h.target).to_lowercase(),
    };
    match exposition(readings) {
        Ok(out) => ([(CONTENT_TYPE, prometheus_text::CONTENT_TYPE)], out).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode /metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// What `/metrics` shows, as read at one scrape.
struct Readings {
    /// The database's clock minus this machine's, in milliseconds.
    clock_offset_ms: i64,
    /// -1: unknown.
    unreadable: i64,
    /// The highest position in the log; -1: unknown.
    head: i64,
    /// The relay's status, where this process runs the relay.
    relay: Option<RelayStatus>,
    /// Each consumer's last applied position, by consumer name.
    checkpoints: Vec<(String, i64)>,
    /// Events this process applied or passed over, by consumer.
    applied: BTreeMap<String, u64>,
    /// Stream messages refused as not the log's, by consumer.
    refused: BTreeMap<String, u64>,
    /// Requests each rate limit refused, by the limit's name.
    rate_limited: [(&'static str, u64); 3],
    /// Events consumers set aside as poison.
    quarantined: i64,
    /// Which service(s) this process runs, in lowercase.
    target: String,
}

/// The readings in the Prometheus text format. Counters are registered
/// without `_total`: the encoder adds it, so the exposed names are the ones
/// operators, alerts and tests know.
fn exposition(r: Readings) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    gauge(
        &mut registry,
        "verkosto_clock_offset_ms",
        "The database's clock minus this machine's; events and expiry follow the database.",
        r.clock_offset_ms,
    );
    gauge(
        &mut registry,
        "verkosto_guard_unreadable_events",
        "Consent and case events this process cannot read; their cases withhold everything (-1: unknown).",
        r.unreadable,
    );
    gauge(
        &mut registry,
        "verkosto_log_head_position",
        "Highest global position in the event log.",
        r.head,
    );
    if let Some(s) = r.relay {
        gauge(
            &mut registry,
            "verkosto_relay_published_position",
            "Position of the last event on the stream.",
            s.published.position,
        );
        gauge(
            &mut registry,
            "verkosto_relay_lag_events",
            "Positions between the log head and the stream.",
            (r.head - s.published.position).max(0),
        );
        gauge(
            &mut registry,
            "verkosto_relay_stream_sequence",
            "Last sequence of the JetStream stream.",
            s.stream_sequence as i64,
        );
        counter(
            &mut registry,
            "verkosto_relay_rewinds",
            "Times the relay found the stream behind and republished.",
            s.rewinds,
        );
        gauge(
            &mut registry,
            "verkosto_relay_leading",
            "1 if this relay holds the lead, 0 if it stands by.",
            i64::from(s.leading),
        );
    }
    let positions = Family::<Consumer, Gauge>::default();
    for (consumer, position) in r.checkpoints {
        positions
            .get_or_create(&Consumer { consumer })
            .set(position);
    }
    registry.register(
        "verkosto_consumer_position",
        help("Last position applied by each consumer."),
        positions,
    );
    per_consumer(
        &mut registry,
        "verkosto_consumer_events_applied",
        "Events this process applied (or passed over) for each consumer.",
        r.applied,
    );
    per_consumer(
        &mut registry,
        "verkosto_stream_refused_messages",
        "Stream messages each consumer refused as not the log's (forged or altered).",
        r.refused,
    );
    let refusals = Family::<Limit, Counter>::default();
    for (limit, refused) in r.rate_limited {
        refusals.get_or_create(&Limit { limit }).inc_by(refused);
    }
    registry.register(
        "verkosto_rate_limited",
        help("Requests answered 429, by the limit that refused them."),
        refusals,
    );
    gauge(
        &mut registry,
        "verkosto_quarantined_events",
        "Events consumers set aside as poison.",
        r.quarantined,
    );
    let up = Family::<Up, Gauge>::default();
    up.get_or_create(&Up { target: r.target }).set(1);
    registry.register(
        "verkosto_up",
        help("1 while this process runs, by target."),
        up,
    );
    let mut out = String::new();
    prometheus_text::encode(&mut out, &registry)?;
    Ok(out)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Consumer {
    /// The consumer's name.
    consumer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Limit {
    /// The rate limit's name.
    limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Up {
    /// Which service(s) this process runs.
    target: String,
}

/// The registry adds the final period to every help text.
fn help(text: &str) -> &str {
    text.strip_suffix('.').unwrap_or(text)
}

fn gauge(registry: &mut Registry, name: &str, text: &str, value: i64) {
    registry.register(name, help(text), ConstGauge::new(value));
}

/// A counter as read now; exposed as `<name>_total`.
fn counter(registry: &mut Registry, name: &str, text: &str, value: u64) {
    registry.register(name, help(text), ConstCounter::new(value));
}

/// A counter per consumer; exposed as `<name>_total{consumer="..."}`.
fn per_consumer(
    registry: &mut Registry,
    name: &str,
    text: &str,
    counts: impl IntoIterator<Item = (String, u64)>,
) {
    let family = Family::<Consumer, Counter>::default();
    for (consumer, count) in counts {
        family.get_or_create(&Consumer { consumer }).inc_by(count);
    }
    registry.register(name, help(text), family);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name, label and value as the hand-written exposition had them.
    #[test]
    fn the_exposition_keeps_every_name_label_and_value() {
        let relay = RelayStatus {
            published: verkosto_eventlog::Cursor {
                tx: 7,
                position: 40,
            },
            stream_sequence: 39,
            rewinds: 2,
            leading: true,
        };
        let consumers =
            |n: u64| BTreeMap::from([("cases".to_string(), n), ("tasks".to_string(), n + 1)]);
        let text = exposition(Readings {
            clock_offset_ms: -12,
            unreadable: 1,
            head: 42,
            relay: Some(relay),
            checkpoints: vec![("cases".to_string(), 41), ("tasks".to_string(), 42)],
            applied: consumers(10),
            refused: consumers(0),
            rate_limited: [("per_user", 3), ("per_address", 0), ("sign_in", 1)],
            quarantined: 0,
            target: "all".to_string(),
        })
        .unwrap();
        let samples: std::collections::BTreeSet<&str> =
            text.lines().filter(|l| !l.starts_with('#')).collect();
        let expected = [
            "verkosto_clock_offset_ms -12",
            "verkosto_guard_unreadable_events 1",
            "verkosto_log_head_position 42",
            "verkosto_relay_published_position 40",
            "verkosto_relay_lag_events 2",
            "verkosto_relay_stream_sequence 39",
            "verkosto_relay_rewinds_total 2",
            "verkosto_relay_leading 1",
            "verkosto_consumer_position{consumer=\"cases\"} 41",
            "verkosto_consumer_position{consumer=\"tasks\"} 42",
            "verkosto_consumer_events_applied_total{consumer=\"cases\"} 10",
            "verkosto_consumer_events_applied_total{consumer=\"tasks\"} 11",
            "verkosto_stream_refused_messages_total{consumer=\"cases\"} 0",
            "verkosto_stream_refused_messages_total{consumer=\"tasks\"} 1",
            "verkosto_rate_limited_total{limit=\"per_user\"} 3",
            "verkosto_rate_limited_total{limit=\"per_address\"} 0",
            "verkosto_rate_limited_total{limit=\"sign_in\"} 1",
            "verkosto_quarantined_events 0",
            "verkosto_up{target=\"all\"} 1",
        ];
        assert_eq!(samples, expected.into_iter().collect(), "{text}");
        // Typed as before; help texts end with one period; no OpenMetrics EOF.
        for line in [
            "# TYPE verkosto_log_head_position gauge",
            "# TYPE verkosto_consumer_events_applied_total counter",
            "# TYPE verkosto_stream_refused_messages_total counter",
            "# TYPE verkosto_rate_limited_total counter",
            "# HELP verkosto_log_head_position Highest global position in the event log.",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in {text}");
        }
        assert!(!text.contains("..") && !text.contains("# EOF"), "{text}");
    }

    #[test]
    fn without_a_relay_its_metrics_are_left_out() {
        let text = exposition(Readings {
            clock_offset_ms: 0,
            unreadable: -1,
            head: 0,
            relay: None,
            checkpoints: Vec::new(),
            applied: BTreeMap::new(),
            refused: BTreeMap::new(),
            rate_limited: [("per_user", 0), ("per_address", 0), ("sign_in", 0)],
            quarantined: 0,
            target: "web".to_string(),
        })
        .unwrap();
        assert!(!text.contains("verkosto_relay_"), "{text}");
        assert!(
            text.contains("verkosto_guard_unreadable_events -1\n"),
            "{text}"
        );
        assert!(text.contains("verkosto_up{target=\"web\"} 1\n"), "{text}");
    }
}
