//! Process faults in the distributed mode, under a mixed load.
//!
//! One `verkosto` process per target (relay, cases, consent, meetings,
//! tasks), a 3-node nats-server cluster configured as `deploy/nats/` (the
//! events stream replicated 3 ways) and PostgreSQL in a cluster this test
//! owns. Several clients run a mixed load (cases, invitations, consent grants
//! and withdrawals, records, meetings, plans whose agreement makes tasks,
//! manual tasks), recording every acknowledged command. In turn, under that
//! load: `kill -9` a service process, the relay, one nats-server, every
//! nats-server, PostgreSQL, then restart it. After each, once everything
//! has caught up, the checker (`verkosto_e2e::checker`) runs.
//!
//! Separately, every nats-server is down for a while as writes go on: they
//! are still accepted (the log is the truth) and the stream catches up.
//!
//! Quick by default (a few hundred commands, for CI); `VERKOSTO_FAULTS_FULL=1`
//! (`just faults`) runs 10,000 commands and NATS down for 30 s.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{SecondsFormat, Utc};
use serde_json::{json, Value};
use verkosto_e2e::checker::{self, Ack, Report};
use verkosto_e2e::cluster::NatsCluster;
use verkosto_testkit::{ChildProcess, PgServer};

const SERVICES: [&str; 4] = ["cases", "consent", "meetings", "tasks"];
const CLIENTS: usize = 6;
/// Writers that open cases while every nats-server is down.
const OUTAGE_WRITERS: usize = 4;

/// The sizes of one run.
struct Size {
    /// Acknowledged commands over all process-fault scenarios.
    commands: usize,
    /// How long a killed server stays down.
    down: Duration,
    /// How long NATS is down in the outage test.
    nats_outage: Duration,
}

fn size() -> Size {
    if std::env::var("VERKOSTO_FAULTS_FULL").is_ok_and(|v| v == "1") {
        Size {
            commands: 10_000,
            down: Duration::from_secs(3),
            nats_outage: Duration::from_secs(30),
        }
    } else {
        Size {
            commands: 300,
            down: Duration::from_millis(500),
            nats_outage: Duration::from_secs(3),
        }
    }
}

/// The processes, the servers under them, and where each target listens.
struct Deployment {
    pg: PgServer,
    database_url: String,
    nats: NatsCluster,
    processes: HashMap<&'static str, ChildProcess>,
    bases: Arc<RwLock<HashMap<&'static str, String>>>,
}

impl Deployment {
    async fn start() -> Result<Deployment> {
        let pg = PgServer::start_private().await?;
        let database_url = pg.fresh_database().await?;
        let nats = NatsCluster::start().await?;
        let mut d = Deployment {
            pg,
            database_url,
            nats,
            processes: HashMap::new(),
            bases: Arc::default(),
        };
        // The relay first: it creates the replicated stream.
        d.spawn("relay").await?;
        for target in SERVICES {
            d.spawn(target).await?;
        }
        Ok(d)
    }

    async fn spawn(&mut self, target: &'static str) -> Result<()> {
        let mut cmd = verkosto_testkit::verkosto();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--target", target])
            .args(["--dev-auth", "on", "--dev-key-seed", verkosto_e2e::DEV_SEED])
            .args(["--database-url", &self.database_url])
            .args(self.nats.node(0).client_args(&self.nats.url(), target))
            .args(["--stream-replicas", "3", "--db-pool", "8"])
            // Load from one address as a few users, on purpose.
            .args(verkosto_e2e::NO_RATE_LIMITS)
            .env("VERKOSTO_LOG", "warn");
        if target == "cases" {
            cmd.args(["--demo", "--demo-case", "off"]);
        }
        let mut child = ChildProcess::spawn(cmd)?;
        let addr = child
            .wait_for_line("listening on ", Duration::from_secs(120))
            .await
            .with_context(|| format!("start {target}"))?;
        self.bases
            .write()
            .unwrap()
            .insert(target, format!("http://{addr}"));
        self.processes.insert(target, child);
        Ok(())
    }

    async fn kill9(&mut self, target: &'static str) -> Result<()> {
        self.bases.write().unwrap().remove(target);
        if let Some(mut child) = self.processes.remove(target) {
            child.kill9().await?;
        }
        Ok(())
    }

    async fn stop(&mut self, target: &'static str) -> Result<()> {
        self.bases.write().unwrap().remove(target);
        if let Some(mut child) = self.processes.remove(target) {
            child.terminate().await?;
        }
        Ok(())
    }

    fn nats_url(&self) -> String {
        self.nats.url()
    }

    /// Waits until every process answers `/readyz` (store and bus reachable):
    /// a process that died of a dependency's outage is a failure.
    async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + timeout;
        let bases: Vec<_> = self.bases.read().unwrap().clone().into_iter().collect();
        for (target, base) in bases {
            loop {
                let ok = http
                    .get(format!("{base}/readyz"))
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200);
                if ok {
                    break;
                }
                anyhow::ensure!(
                    tokio::time::Instant::now() < deadline,
                    "{target} not ready after {timeout:?} (log: {})",
                    self.processes[target].log_path().display()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok(())
    }

    /// Waits for recovery, stops every process, runs the checker, and
    /// starts them again.
    async fn check(&mut self, acks: &[Ack]) -> Result<Report> {
        self.wait_ready(Duration::from_secs(120)).await?;
        let nats = self.nats_url();
        checker::wait_for_recovery(&self.database_url, Some(&nats), Duration::from_secs(180))
            .await?;
        // Every process: the checker copies the database, which PostgreSQL
        // does only while nothing is connected to it.
        for target in ["relay"].into_iter().chain(SERVICES) {
            self.stop(target).await?;
        }
        let report = checker::check(&self.database_url, Some(&nats), acks).await?;
        for target in ["relay"].into_iter().chain(SERVICES) {
            self.spawn(target).await?;
        }
        Ok(report)
    }
}

/// The load: clients, each running case scripts step by step.
#[derive(Clone)]
struct Load {
    http: reqwest::Client,
    bases: Arc<RwLock<HashMap<&'static str, String>>>,
    fiona: String,
    hanna: String,
    acks: Arc<Mutex<Vec<Ack>>>,
    /// Acknowledged in the current phase.
    acked: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
    /// Set to end the current phase early.
    stop: Arc<AtomicBool>,
}

/// Where a client is in its current case.
#[derive(Default)]
struct Script {
    case: Option<String>,
    step: usize,
    grant: Option<String>,
    plan_version: Option<u64>,
    n: usize,
}

fn in_hours(hours: i64) -> String {
    (Utc::now() + chrono::Duration::hours(hours)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Load {
    async fn new(d: &Deployment) -> Result<Load> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()?;
        let base = d.bases.read().unwrap()["cases"].clone();
        let mut tokens = Vec::new();
        for user in ["fiona", "hanna"] {
            let r = http
                .post(format!("{base}/api/v1/dev/token"))
                .json(&json!({ "user": user }))
                .send()
                .await?;
            let body: Value = r.json().await?;
            tokens.push(body["token"].as_str().context("token")?.to_string());
        }
        Ok(Load {
            http,
            bases: d.bases.clone(),
            hanna: tokens.pop().context("hanna")?,
            fiona: tokens.pop().context("fiona")?,
            acks: Arc::default(),
            acked: Arc::default(),
            refused: Arc::default(),
            stop: Arc::default(),
        })
    }

    /// Sends one command; on a 2xx answer records it as acknowledged.
    async fn send(
        &self,
        what: &'static str,
        target: &'static str,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: Value,
    ) -> Option<Value> {
        let base = self.bases.read().unwrap().get(target).cloned();
        let Some(base) = base else {
            // The target is down: not sent.
            self.refused.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(50)).await;
            return None;
        };
        let request_id = uuid::Uuid::new_v4().simple().to_string();
        let sent = self
            .http
            .request(method, format!("{base}{path}"))
            .bearer_auth(token)
            .header("x-request-id", &request_id)
            .json(&body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                let answer = r.json::<Value>().await.unwrap_or(Value::Null);
                self.acks.lock().unwrap().push(Ack { request_id, what });
                self.acked.fetch_add(1, Ordering::Relaxed);
                Some(answer)
            }
            _ => {
                // Refused or lost: its outcome is unknown, so the script
                // starts a new case rather than guess.
                self.refused.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
                None
            }
        }
    }

    /// Runs the next step of `s`; a failed step abandons the case.
    async fn step(&self, s: &mut Script) {
        use reqwest::Method;
        let (fiona, hanna) = (&self.fiona, &self.hanna);
        let case = s.case.clone().unwrap_or_default();
        let c = format!("/api/v1/cases/{case}");
        let plan = format!("{c}/plan");
        let ok = match s.step {
            0 => {
                s.n += 1;
                let body = json!({ "pseudonym": format!("F-{}", s.n), "languages": ["fi"], "flags": { "minor": false, "safety_risk": false } });
                let answer = self
                    .send("open case", "cases", Method::POST, fiona, "/api/v1/cases", body)
                    .await;
                s.case = answer.and_then(|a| a["id"].as_str().map(str::to_string));
                s.case.is_some()
            }
            1 => self
                .send("invite", "cases", Method::POST, fiona, &format!("{c}/members"), json!({ "agency": "health-hus", "purpose": "care" }))
                .await
                .is_some(),
            2 => self
                .send("accept", "cases", Method::POST, hanna, &format!("{c}/invitations/accept"), json!({}))
                .await
                .is_some(),
            3 => {
                let body = json!({ "recipient": "health-hus", "categories": ["health"], "purpose": "care", "valid_until": null, "obtained": { "method": "written", "language": "fi" } });
                let answer = self
                    .send("grant consent", "consent", Method::POST, fiona, &format!("{c}/consent/grants"), body)
                    .await;
                s.grant = answer.and_then(|a| a["grant_id"].as_str().map(str::to_string));
                s.grant.is_some()
            }
            4 => self
                .send("record", "cases", Method::POST, fiona, &format!("{c}/records"), json!({ "category": "health", "body": "Seen at the clinic." }))
                .await
                .is_some(),
            5 => {
                let body = json!({ "title": "Network meeting", "starts_at": in_hours(48), "ends_at": in_hours(49), "location": "Room 3", "participants": ["health-hus"], "client_attends": false, "interpreter_language": null, "agenda": ["Health"], "lead_time_override_reason": null });
                self.send("schedule meeting", "meetings", Method::POST, fiona, &format!("{c}/meetings"), body)
                    .await
                    .is_some()
            }
            6 => {
                let body = json!({ "goals": ["Feel safe"], "measures": [{ "id": "m1", "category": "health", "responsible_agency": "health-hus", "description": "Health check", "due": "2026-12-31" }] });
                self.send("plan draft", "cases", Method::PUT, fiona, &format!("{plan}/draft"), body)
                    .await
                    .is_some()
            }
            7 => {
                let answer = self
                    .send("propose plan", "cases", Method::POST, fiona, &format!("{plan}/draft/propose"), json!({}))
                    .await;
                s.plan_version = answer.and_then(|a| a["plan_version"].as_u64());
                s.plan_version.is_some()
            }
            8 | 9 => {
                let token = if s.step == 8 { fiona } else { hanna };
                let v = s.plan_version.unwrap_or(1);
                self.send("approve plan", "cases", Method::POST, token, &format!("{plan}/versions/{v}/approve"), json!({}))
                    .await
                    .is_some()
            }
            10 => {
                // The agreement makes a task per measure (the tasks reaction).
                let v = s.plan_version.unwrap_or(1);
                self.send("client agreement", "cases", Method::POST, fiona, &format!("{plan}/versions/{v}/client-agreement"), json!({ "method": "verbal", "language": "fi" }))
                    .await
                    .is_some()
            }
            11 => self
                .send("manual task", "tasks", Method::POST, fiona, &format!("{c}/tasks"), json!({ "description": "Call back", "category": "health", "assignee": "health-hus", "due": null }))
                .await
                .is_some(),
            _ => {
                let grant = s.grant.clone().unwrap_or_default();
                self.send("withdraw consent", "consent", Method::POST, fiona, &format!("{c}/consent/grants/{grant}/withdraw"), json!({ "reason": "asked to" }))
                    .await
                    .is_some()
            }
        };
        s.step = if ok && s.step < 12 { s.step + 1 } else { 0 };
    }

    /// Runs `CLIENTS` clients until `target` commands of this phase are
    /// acknowledged.
    fn run(&self, target: usize) -> tokio::task::JoinHandle<()> {
        self.acked.store(0, Ordering::SeqCst);
        let load = self.clone();
        tokio::spawn(async move {
            let clients = (0..CLIENTS).map(|_| {
                let load = load.clone();
                tokio::spawn(async move {
                    let mut script = Script::default();
                    while load.acked.load(Ordering::Relaxed) < target
                        && !load.stop.load(Ordering::Relaxed)
                    {
                        load.step(&mut script).await;
                    }
                })
            });
            for c in futures::future::join_all(clients).await {
                c.unwrap();
            }
        })
    }

    async fn wait_acked(&self, n: usize) {
        while self.acked.load(Ordering::Relaxed) < n {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn acks(&self) -> Vec<Ack> {
        self.acks.lock().unwrap().clone()
    }
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    Service,
    Relay,
    OneNats,
    AllNats,
    Postgres,
}

/// Kills what `fault` names, waits `down`, starts it again.
async fn inject(d: &mut Deployment, fault: Fault, down: Duration) -> Result<()> {
    match fault {
        Fault::Service => d.kill9("cases").await?,
        Fault::Relay => d.kill9("relay").await?,
        Fault::OneNats => d.nats.kill9(1)?,
        Fault::AllNats => d.nats.kill9_all()?,
        Fault::Postgres => d.pg.kill9()?,
    }
    tokio::time::sleep(down).await;
    match fault {
        Fault::Service => d.spawn("cases").await?,
        Fault::Relay => d.spawn("relay").await?,
        Fault::OneNats => d.nats.restart(1).await?,
        Fault::AllNats => d.nats.restart_all().await?,
        Fault::Postgres => d.pg.restart().await?,
    }
    Ok(())
}

fn print(what: &str, r: &Report, refused: usize) {
    println!(
        "faults: {what}: {} acknowledged, {} checked and found once in the log; {} events in \
         the log, {} on the stream, {} streams, {} tasks, {} projection rows equal to a fresh \
         rebuild of {} projections; {refused} commands refused or lost (not acknowledged); \
         duplicates 0",
        r.acknowledged,
        r.found,
        r.events,
        r.on_stream.unwrap_or(0),
        r.streams,
        r.tasks,
        r.rows_compared,
        r.projections_rebuilt,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn process_faults_under_load_lose_and_duplicate_nothing() {
    let size = size();
    let mut d = Deployment::start().await.unwrap();
    let (replicas, _) = d.nats.stream_replicas().await.unwrap();
    assert_eq!(replicas, 3, "the events stream is replicated 3 ways");
    let load = Load::new(&d).await.unwrap();
    let faults = [
        Fault::Service,
        Fault::Relay,
        Fault::OneNats,
        Fault::AllNats,
        Fault::Postgres,
    ];
    let per_phase = size.commands / faults.len();
    for fault in faults {
        let running = load.run(per_phase);
        load.wait_acked(per_phase / 3).await;
        inject(&mut d, fault, size.down)
            .await
            .unwrap_or_else(|e| panic!("inject {fault:?}: {e:#}"));
        running.await.unwrap();
        let report = d
            .check(&load.acks())
            .await
            .unwrap_or_else(|e| panic!("after {fault:?}: {e:#}"));
        print(
            &format!("kill -9 {fault:?}"),
            &report,
            load.refused.load(Ordering::Relaxed),
        );
    }
    let acks = load.acks();
    assert!(acks.len() >= size.commands, "{} acknowledged", acks.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_are_accepted_while_nats_is_down_and_the_stream_catches_up() {
    let size = size();
    let mut d = Deployment::start().await.unwrap();
    let load = Load::new(&d).await.unwrap();
    let running = load.run(usize::MAX);
    load.wait_acked(30).await;

    d.nats.kill9_all().unwrap();
    // Cases are opened on the log alone: every one is accepted while the
    // whole NATS cluster is down. Each answer waits (up to 5 s) for the
    // cases read model, which cannot move without the stream, so several
    // writers run at once.
    let deadline = tokio::time::Instant::now() + size.nats_outage;
    let base = d.bases.read().unwrap()["cases"].clone();
    let writers = (0..OUTAGE_WRITERS).map(|w| {
        let (load, base) = (load.clone(), base.clone());
        tokio::spawn(async move {
            let (mut accepted, mut slowest) = (0, Duration::ZERO);
            while tokio::time::Instant::now() < deadline {
                let sent_at = tokio::time::Instant::now();
                let request_id = uuid::Uuid::new_v4().simple().to_string();
                let r = load
                    .http
                    .post(format!("{base}/api/v1/cases"))
                    .bearer_auth(&load.fiona)
                    .header("x-request-id", &request_id)
                    .json(&json!({ "pseudonym": format!("N-{w}-{accepted}"), "languages": ["fi"] }))
                    .send()
                    .await
                    .unwrap();
                let status = r.status();
                slowest = slowest.max(sent_at.elapsed());
                assert_eq!(
                    status,
                    201,
                    "open a case with NATS down: {}",
                    r.text().await.unwrap()
                );
                load.acks.lock().unwrap().push(Ack {
                    request_id,
                    what: "open case (NATS down)",
                });
                accepted += 1;
            }
            (accepted, slowest)
        })
    });
    let (mut accepted, mut slowest) = (0, Duration::ZERO);
    for w in futures::future::join_all(writers).await {
        let (n, s) = w.unwrap();
        assert!(n > 0, "a writer got no answer while NATS was down");
        accepted += n;
        slowest = slowest.max(s);
    }
    d.nats.restart_all().await.unwrap();
    let before = load.acked.load(Ordering::Relaxed);
    // The mixed load resumes too.
    load.wait_acked(before + 30).await;
    load.stop.store(true, Ordering::SeqCst);
    running.await.unwrap();

    let report = d.check(&load.acks()).await.unwrap();
    assert!(accepted > 0);
    print(
        &format!(
            "NATS down {:?}, {accepted} cases opened meanwhile (slowest answer {slowest:?})",
            size.nats_outage
        ),
        &report,
        load.refused.load(Ordering::Relaxed),
    );
}

/// The checker finds what it is there to find: a command acknowledged but
/// missing from the log, and a read-model row that a rebuild would not make.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_checker_notices_a_lost_command_and_a_wrong_read_model() {
    let mut v = verkosto_e2e::Verkosto::start_demo(verkosto_e2e::Mode::Embedded)
        .await
        .unwrap();
    let fiona = v.token("fiona").await.unwrap();
    let r = v
        .http()
        .post(v.url("/api/v1/cases"))
        .bearer_auth(&fiona)
        .header("x-request-id", "checker-case-1")
        .json(&json!({ "pseudonym": "C-1", "languages": ["fi"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    v.halt().await;
    let url = v.database_url.clone();
    let opened = Ack {
        request_id: "checker-case-1".into(),
        what: "open case",
    };
    let report = checker::check(&url, None, std::slice::from_ref(&opened))
        .await
        .unwrap();
    assert_eq!(report.found, 1);
    assert!(report.rows_compared > 0);

    let lost = Ack {
        request_id: "never-sent".into(),
        what: "open case",
    };
    let err = checker::check(&url, None, &[opened.clone(), lost])
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("is not in the log"), "{err:#}");

    let log = v.log().await.unwrap();
    sqlx::query("UPDATE cases_headers SET pseudonym = 'changed'")
        .execute(log.db().writer())
        .await
        .unwrap();
    log.db().close().await;
    let err = checker::check(&url, None, &[opened]).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("cases_headers differs from a fresh rebuild"),
        "{err:#}"
    );
}
