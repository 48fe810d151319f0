//! Scale-out: the distributed mode with two processes of every service on
//! one stream. A mixed load spread over the processes, and the figures that
//! show each event was handled once: every process counts, per consumer,
//! the events it moved past (`verkosto_consumer_events_applied_total`), so
//! the sum over a service's processes must equal the events in the log.
//! Shared by the scale-out test and the scale-out benchmark.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use futures::StreamExt;
use serde_json::{json, Value};

use crate::{answer, Split};

/// The service targets (each gets `replicas` processes) and the relay.
pub const SERVICES: [&str; 4] = ["cases", "consent", "meetings", "tasks"];

/// Starts the distributed mode with `replicas` processes of each service
/// and of the relay.
pub async fn start(replicas: usize) -> Result<Split> {
    // A load generator: the rate limits would measure themselves.
    let targets = ["relay", "cases", "consent", "meetings", "tasks"];
    let mut split = Split::start_with(&targets, &crate::NO_RATE_LIMITS).await?;
    for _ in 1..replicas {
        for target in ["relay", "cases", "consent", "meetings", "tasks"] {
            split.spawn_replica(target).await?;
        }
    }
    Ok(split)
}

/// What a load run did.
#[derive(Clone, Debug)]
pub struct LoadReport {
    pub commands: usize,
    pub elapsed: Duration,
    /// Tasks the agreed plans should have made.
    pub tasks_expected: usize,
}

impl LoadReport {
    pub fn per_second(&self) -> f64 {
        self.commands as f64 / self.elapsed.as_secs_f64()
    }
}

/// Sends commands round-robin over the processes of each target.
struct Client<'a> {
    split: &'a Split,
    http: reqwest::Client,
    next: AtomicUsize,
    commands: AtomicUsize,
}

impl Client<'_> {
    async fn send(
        &self,
        method: reqwest::Method,
        target: &str,
        token: &str,
        path: &str,
        body: &Value,
    ) -> Result<Value> {
        let bases = self.split.bases(target);
        let base = &bases[self.next.fetch_add(1, Ordering::Relaxed) % bases.len()];
        let r = self
            .http
            .request(method.clone(), format!("{base}{path}"))
            .bearer_auth(token)
            .json(body)
            .send()
            .await?;
        let (status, body) = answer(r).await?;
        ensure!(
            (200..300).contains(&status),
            "{method} {path} on {target} answered {status}: {body}"
        );
        self.commands.fetch_add(1, Ordering::Relaxed);
        Ok(body)
    }
}

/// Runs `cases` case lifecycles, `concurrency` at a time: open a case,
/// bring two agencies in, record consent and client records, agree a plan
/// with two measures (which the tasks service turns into two tasks).
pub async fn run_load(split: &Split, cases: usize, concurrency: usize) -> Result<LoadReport> {
    let client = Client {
        split,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
        next: AtomicUsize::new(0),
        commands: AtomicUsize::new(0),
    };
    let tokens = (
        split.token("fiona").await?,
        split.token("hanna").await?,
        split.token("liisa").await?,
    );
    let started = Instant::now();
    let results: Vec<Result<()>> = futures::stream::iter(0..cases)
        .map(|n| one_case(&client, &tokens, n))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    for r in results {
        r?;
    }
    Ok(LoadReport {
        commands: client.commands.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        tasks_expected: 2 * cases,
    })
}

async fn one_case(client: &Client<'_>, tokens: &(String, String, String), n: usize) -> Result<()> {
    use reqwest::Method;
    let (fiona, hanna, liisa) = tokens;
    let case = client
        .send(
            Method::POST,
            "cases",
            fiona,
            "/api/v1/cases",
            &json!({ "pseudonym": format!("S-{n}"), "languages": ["fi"] }),
        )
        .await?;
    let id = case["id"].as_str().context("case id")?.to_string();
    for (agency, token) in [("health-hus", hanna), ("police-helsinki", liisa)] {
        client
            .send(
                Method::POST,
                "cases",
                fiona,
                &format!("/api/v1/cases/{id}/members"),
                &json!({ "agency": agency, "purpose": "support" }),
            )
            .await?;
        client
            .send(
                Method::POST,
                "cases",
                token,
                &format!("/api/v1/cases/{id}/invitations/accept"),
                &json!({}),
            )
            .await?;
    }
    client
        .send(
            Method::POST,
            "consent",
            fiona,
            &format!("/api/v1/cases/{id}/consent/grants"),
            &json!({ "recipient": "health-hus", "categories": ["health"], "purpose": "care",
                     "obtained": { "method": "written", "language": "fi" } }),
        )
        .await?;
    for category in ["health", "legal"] {
        client
            .send(
                Method::POST,
                "cases",
                fiona,
                &format!("/api/v1/cases/{id}/records"),
                &json!({ "category": category, "body": format!("note {n}") }),
            )
            .await?;
    }
    let plan = format!("/api/v1/cases/{id}/plan");
    client
        .send(
            Method::PUT,
            "cases",
            fiona,
            &format!("{plan}/draft"),
            &json!({
                "goals": ["Safety first"],
                "measures": [
                    { "id": "m1", "category": "health", "responsible_agency": "health-hus", "description": "Health check", "due": "2030-01-10" },
                    { "id": "m2", "category": "legal", "responsible_agency": "police-helsinki", "description": "Hearing", "due": null }
                ]
            }),
        )
        .await?;
    client
        .send(
            Method::POST,
            "cases",
            fiona,
            &format!("{plan}/draft/propose"),
            &json!({}),
        )
        .await?;
    for token in [fiona, hanna, liisa] {
        client
            .send(
                Method::POST,
                "cases",
                token,
                &format!("{plan}/versions/1/approve"),
                &json!({}),
            )
            .await?;
    }
    client
        .send(
            Method::POST,
            "cases",
            fiona,
            &format!("{plan}/versions/1/client-agreement"),
            &json!({ "method": "verbal", "language": "fi" }),
        )
        .await?;
    Ok(())
}

/// `verkosto_consumer_events_applied_total`, summed per consumer over every
/// process of the split.
pub async fn applied_totals(split: &Split) -> Result<BTreeMap<String, u64>> {
    let http = reqwest::Client::new();
    let mut totals = BTreeMap::new();
    for target in SERVICES {
        for base in split.bases(target) {
            let text = http
                .get(format!("{base}/metrics"))
                .send()
                .await?
                .text()
                .await?;
            for (consumer, count) in parse_applied(&text) {
                *totals.entry(consumer).or_default() += count;
            }
        }
    }
    Ok(totals)
}

fn parse_applied(metrics: &str) -> Vec<(String, u64)> {
    const PREFIX: &str = "verkosto_consumer_events_applied_total{consumer=\"";
    metrics
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(PREFIX)?;
            let (name, value) = rest.split_once("\"} ")?;
            Some((name.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

/// The value of a gauge without labels on the process at `base`.
pub async fn gauge(base: &str, name: &str) -> Result<Option<i64>> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .next())
}

/// Waits until every consumer named in `consumers` has a checkpoint at the
/// log's head.
pub async fn wait_for_consumers(
    log: &verkosto_eventlog::EventLog,
    consumers: impl IntoIterator<Item = &String> + Clone,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let head = log.head_position().await?;
        let mut behind = Vec::new();
        for name in consumers.clone() {
            let at = log.checkpoint(name).await?;
            if at.position < head {
                behind.push(format!("{name} at {}", at.position));
            }
        }
        if behind.is_empty() {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "consumers behind the head {head}: {}",
            behind.join(", ")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What [`check_once_each`] found.
#[derive(Clone, Debug)]
pub struct OnceEach {
    pub events: u64,
    pub consumers: usize,
    pub tasks: usize,
}

/// Waits for quiet, then checks: per consumer, the processes' applied
/// counts add up to exactly the events in the log (none handled twice, none
/// missed); each task was created once; the stream equals the log.
pub async fn check_once_each(
    split: &Split,
    log: &verkosto_eventlog::EventLog,
    tasks_expected: usize,
) -> Result<OnceEach> {
    crate::wait_for_stream(log, &split.nats.url(), Duration::from_secs(60)).await?;
    let consumers: Vec<String> = applied_totals(split).await?.into_keys().collect();
    ensure!(
        consumers.iter().any(|c| c == "tasks-reactions"),
        "the tasks processes report their consumers: {consumers:?}"
    );
    wait_for_consumers(log, &consumers, Duration::from_secs(60)).await?;
    let events = log.count().await? as u64;
    // A process counts a batch just after its commit: allow it a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let wrong: Vec<String> = applied_totals(split)
            .await?
            .into_iter()
            .filter(|(_, applied)| *applied != events)
            .map(|(consumer, applied)| format!("{consumer}: {applied}"))
            .collect();
        if wrong.is_empty() {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the log holds {events} events, but the processes handled: {}",
            wrong.join(", ")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let created: Vec<(String, i64)> = sqlx::query_as(
        "SELECT stream_id, COUNT(*) FROM events WHERE event_type = 'TaskCreated' \
         GROUP BY stream_id",
    )
    .fetch_all(log.db().reader())
    .await?;
    ensure!(
        created.iter().all(|(_, n)| *n == 1),
        "a task was created twice"
    );
    ensure!(
        created.len() == tasks_expected,
        "{} tasks, {tasks_expected} measures agreed",
        created.len()
    );
    crate::assert_stream_matches_log(log, &split.nats.url()).await?;
    Ok(OnceEach {
        events,
        consumers: consumers.len(),
        tasks: created.len(),
    })
}
