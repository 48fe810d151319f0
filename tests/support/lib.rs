//! Support for the end-to-end tests: Verkosto started the way users start
//! it, in either mode, and a small HTTP client.
//!
//! Embedded: the real app in this process on port 0 with a fresh SQLite
//! file. Distributed: the real `verkosto` binary as a child process against
//! a fresh PostgreSQL database and a private nats-server.

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use verkosto_testkit::{ChildProcess, NatsServer, PgServer};

pub mod checker;
pub mod cluster;
pub mod scaleout;

/// Which mode a test runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Embedded,
    Distributed,
}

/// A running Verkosto and what it runs on.
pub struct Verkosto {
    pub base: String,
    pub mode: Mode,
    pub database_url: String,
    pub nats: Option<NatsServer>,
    embedded: Option<verkosto::app::Running>,
    child: Option<ChildProcess>,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
    /// Extra `serve` flags, kept for restarts.
    extra: Vec<String>,
}

impl Verkosto {
    /// The embedded store's data directory (the SQLite log, the key store,
    /// the key-encryption key); empty but present in the distributed mode.
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }
}

/// `serve` flags that turn the rate limits off, for load generators only
/// (benchmarks, the race and fault tests, the API fuzzer): their clients
/// hammer from one address as a handful of users, which is what the
/// limits are there to stop. Every other test runs with the defaults.
pub const NO_RATE_LIMITS: [&str; 6] = [
    "--rate-limit-per-user",
    "off",
    "--rate-limit-per-address",
    "off",
    "--rate-limit-sign-in",
    "off",
];

/// A fixed dev key seed, so tokens survive a restart of the process.
pub const DEV_SEED: &str = "0101010101010101010101010101010101010101010101010101010101010101";

impl Verkosto {
    pub async fn start(mode: Mode) -> Result<Verkosto> {
        Verkosto::start_with(mode, &[]).await
    }

    /// Starts with the demo agencies and users loaded.
    pub async fn start_demo(mode: Mode) -> Result<Verkosto> {
        Verkosto::start_with(mode, &["--demo", "--demo-case", "off"]).await
    }

    /// Starts with extra `serve` flags.
    pub async fn start_with(mode: Mode, extra: &[&str]) -> Result<Verkosto> {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let dir = tempfile::tempdir()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        match mode {
            Mode::Embedded => {
                let (running, database_url) = start_embedded(dir.path(), &extra).await?;
                Ok(Verkosto {
                    base: format!("http://{}", running.addr),
                    mode,
                    database_url,
                    nats: None,
                    embedded: Some(running),
                    child: None,
                    _dir: dir,
                    http,
                    extra,
                })
            }
            Mode::Distributed => {
                let database_url = PgServer::shared().await.fresh_database().await?;
                let nats = NatsServer::start().await?;
                let mut v = Verkosto {
                    base: String::new(),
                    mode,
                    database_url,
                    nats: Some(nats),
                    embedded: None,
                    child: None,
                    _dir: dir,
                    http,
                    extra,
                };
                v.spawn_process().await?;
                Ok(v)
            }
        }
    }

    /// Stops the app and starts it again on the same store (and, in the
    /// distributed mode, the same nats-server) with other extra flags.
    pub async fn restart_with(&mut self, extra: &[&str]) -> Result<()> {
        self.halt().await;
        self.extra = extra.iter().map(|s| s.to_string()).collect();
        match self.mode {
            Mode::Embedded => {
                let (running, _) = start_embedded(self._dir.path(), &self.extra).await?;
                self.base = format!("http://{}", running.addr);
                self.embedded = Some(running);
            }
            Mode::Distributed => self.spawn_process().await?,
        }
        Ok(())
    }

    /// Starts (or restarts) the distributed process: target `all`.
    pub async fn spawn_process(&mut self) -> Result<()> {
        let nats = self.nats.as_ref().context("distributed mode has NATS")?;
        let mut cmd = verkosto_testkit::verkosto();
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--target",
            "all",
            "--dev-auth",
            "on",
        ])
        .args(["--dev-key-seed", DEV_SEED])
        .args(["--database-url", &self.database_url])
        .args(nats.client_args(&nats.url(), "all"))
        .args(&self.extra)
        .env("VERKOSTO_LOG", "warn");
        let mut child = ChildProcess::spawn(cmd)?;
        let addr = child
            .wait_for_line("listening on ", Duration::from_secs(60))
            .await?;
        self.base = format!("http://{addr}");
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILL the distributed process.
    pub async fn kill9(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill9().await?;
        }
        Ok(())
    }

    pub fn child(&mut self) -> Option<&mut ChildProcess> {
        self.child.as_mut()
    }

    pub async fn stop(mut self) {
        self.halt().await;
    }

    /// Stops the app but keeps its store (and the temporary directory).
    pub async fn halt(&mut self) {
        if let Some(r) = self.embedded.take() {
            r.stop().await;
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.terminate().await;
        }
    }

    /// A log handle on the same store, for checks behind the API.
    pub async fn log(&self) -> Result<verkosto_eventlog::EventLog> {
        Ok(verkosto_eventlog::EventLog::connect(&self.database_url).await?)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A dev token for a user.
    pub async fn token(&self, user: &str) -> Result<String> {
        let r = self
            .http
            .post(self.url("/api/v1/dev/token"))
            .json(&json!({ "user": user }))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 200, "token for {user}: {}", r.status());
        let body: Value = r.json().await?;
        Ok(body["token"].as_str().context("token")?.to_string())
    }

    /// A signed-in web session for a demo user (dev sign-in), as the
    /// `cookie` header a browser would send: the web app's cookie is a
    /// session id, never the API token.
    pub async fn web_session(&self, user: &str) -> Result<String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let set_cookie = |r: &reqwest::Response, name: &str| -> Result<String> {
            let prefix = format!("{name}=");
            r.headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find(|c| c.starts_with(&prefix))
                .and_then(|c| c.split(';').next())
                .map(str::to_string)
                .with_context(|| format!("no {name} cookie"))
        };
        let r = http.get(self.url("/signin")).send().await?;
        let anonymous = set_cookie(&r, "vk_csrf")?;
        let page = r.text().await?;
        let at = page
            .find("name=\"csrf\" value=\"")
            .context("a CSRF field")?
            + 19;
        let csrf = page[at..].split('"').next().unwrap_or_default().to_string();
        let r = http
            .post(self.url("/signin"))
            .header("cookie", &anonymous)
            .form(&[("user", user), ("csrf", csrf.as_str())])
            .send()
            .await?;
        anyhow::ensure!(r.status() == 303, "web sign-in as {user}: {}", r.status());
        set_cookie(&r, "vk_session")
    }

    /// POST JSON with a bearer token; returns status and body.
    pub async fn post(&self, token: &str, path: &str, body: &Value) -> Result<(u16, Value)> {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await?;
        answer(r).await
    }

    /// PUT JSON with a bearer token.
    pub async fn put(&self, token: &str, path: &str, body: &Value) -> Result<(u16, Value)> {
        let r = self
            .http
            .put(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await?;
        answer(r).await
    }

    pub async fn delete(&self, token: &str, path: &str) -> Result<(u16, Value)> {
        let r = self
            .http
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await?;
        answer(r).await
    }

    /// A JSON answer that needs no token (`/readyz`, the OpenAPI document).
    pub async fn get_public(&self, path: &str) -> Result<Value> {
        Ok(self.http.get(self.url(path)).send().await?.json().await?)
    }

    pub async fn get(&self, token: &str, path: &str) -> Result<(u16, Value)> {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await?;
        answer(r).await
    }
}

/// The embedded app on port 0 with its store in `dir`, and the store's URL.
async fn start_embedded(
    dir: &std::path::Path,
    extra: &[String],
) -> Result<(verkosto::app::Running, String)> {
    let mut flags = vec![
        "--data-dir",
        dir.to_str().context("utf-8 path")?,
        "--dev-key-seed",
        DEV_SEED,
    ];
    // Tests sign in with dev tokens unless they say otherwise.
    if !extra.iter().any(|f| f == "--dev-auth" || f == "--demo") {
        flags.extend(["--dev-auth", "on"]);
    }
    flags.extend(extra.iter().map(String::as_str));
    let args = serve_args(&flags);
    let database_url = args.store.url();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    Ok((verkosto::app::start(args, listener).await?, database_url))
}

/// Sends a write again while it is answered 503: the process's view of the
/// case is behind (a busy machine) and it refuses to decide on a stale
/// network, as it should; nothing was written, and a client tries again.
pub async fn until_current<F, Fut>(mut send: F) -> Result<(u16, Value)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(u16, Value)>>,
{
    for _ in 0..50 {
        let (status, body) = send().await?;
        if status != 503 {
            return Ok((status, body));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("still 503 after 5 s of tries, each after the guard's own wait")
}

pub async fn answer(r: reqwest::Response) -> Result<(u16, Value)> {
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = r.text().await?;
    if status >= 400 {
        anyhow::ensure!(
            content_type == "application/problem+json",
            "error {status} is not problem JSON ({content_type}): {text}"
        );
    }
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)?
    };
    Ok((status, body))
}

/// `ServeArgs` as the command line would build them.
pub fn serve_args(extra: &[&str]) -> verkosto::config::ServeArgs {
    use clap::Parser;
    let mut argv = vec!["verkosto", "serve", "--listen", "127.0.0.1:0"];
    argv.extend_from_slice(extra);
    match verkosto::config::Cli::parse_from(argv).command {
        verkosto::config::Command::Serve(args) => *args,
        _ => unreachable!(),
    }
}

/// An agency registration body.
pub fn agency(id: &str, kind: &str) -> Value {
    json!({ "id": id, "kind": kind, "name": { "fi": format!("{id} fi"), "sv": format!("{id} sv"), "en": format!("{id} en") } })
}

/// Runs a test body in both modes.
#[macro_export]
macro_rules! both_modes {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn embedded() {
                ($body)($crate::Mode::Embedded).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn distributed() {
                ($body)($crate::Mode::Distributed).await;
            }
        }
    };
}

/// How a test connects to its NATS servers as `user` (of
/// `deploy/nats/users.conf`; `operator` to look at the stream).
pub fn nats_access(user: &str) -> verkosto_bus::NatsAccess {
    verkosto_bus::NatsAccess {
        user: Some(user.to_string()),
        password: Some(verkosto_testkit::nats_password(user)),
        ..Default::default()
    }
}

/// Every message on the events stream, in stream order: `(cursor, event id)`.
pub async fn stream_contents(nats_url: &str) -> Result<Vec<(verkosto_eventlog::Cursor, String)>> {
    let js = verkosto_bus::connect(nats_url, &nats_access("operator")).await?;
    let stream = js.get_stream(verkosto_bus::STREAM_NAME).await?;
    let info = stream.get_info().await?;
    let mut out = Vec::new();
    for seq in info.state.first_sequence..=info.state.last_sequence {
        if info.state.messages == 0 {
            break;
        }
        let msg = stream.get_raw_message(seq).await?;
        let cursor = msg
            .headers
            .get(verkosto_bus::CURSOR_HEADER)
            .context("cursor header")?
            .as_str()
            .parse()
            .map_err(|e: String| anyhow::anyhow!(e))?;
        let id = msg
            .headers
            .get("Nats-Msg-Id")
            .context("msg id")?
            .as_str()
            .to_string();
        out.push((cursor, id));
    }
    Ok(out)
}

/// Asserts that the stream holds every event of the log exactly once, in
/// the log's commit order, and nothing else.
pub async fn assert_stream_matches_log(
    log: &verkosto_eventlog::EventLog,
    nats_url: &str,
) -> Result<usize> {
    let expected: Vec<_> = read_everything(log)
        .await?
        .into_iter()
        .map(|e| (e.cursor(), e.event_id))
        .collect();
    let actual = stream_contents(nats_url).await?;
    let mut seen = std::collections::HashSet::new();
    for (_, id) in &actual {
        anyhow::ensure!(seen.insert(id.clone()), "event {id} is on the stream twice");
    }
    anyhow::ensure!(
        actual.len() == expected.len(),
        "stream has {} events, log has {}",
        actual.len(),
        expected.len()
    );
    anyhow::ensure!(
        actual == expected,
        "stream order differs from the log's commit order"
    );
    Ok(actual.len())
}

/// Waits until the stream has caught up with the log.
pub async fn wait_for_stream(
    log: &verkosto_eventlog::EventLog,
    nats_url: &str,
    timeout: Duration,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let want = log.count().await? as usize;
        let have = stream_contents(nats_url)
            .await
            .map(|c| c.len())
            .unwrap_or(0);
        if have >= want {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "stream stuck at {have} of {want} events"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every event in commit order, once all of them are readable. On
/// PostgreSQL the safe horizon is cluster-wide: a transaction of a test
/// running in another database can hold tailing back for a moment.
pub async fn read_everything(
    log: &verkosto_eventlog::EventLog,
) -> Result<Vec<verkosto_eventlog::RecordedEvent>> {
    let count = log.count().await? as usize;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut out = Vec::new();
        let mut at = verkosto_eventlog::Cursor::START;
        loop {
            let batch = log.read_after(at, 1000).await?;
            let Some(last) = batch.last() else { break };
            at = last.cursor();
            out.extend(batch);
        }
        if out.len() >= count {
            return Ok(out);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "only {} of {count} events readable",
            out.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs raw SQL as the database owner, bypassing the append-only triggers
/// (to show that tampering is detected).
pub async fn tamper(log: &verkosto_eventlog::EventLog, sql: &str) {
    use verkosto_eventlog::DbKind;
    let mut tx = log.db().writer().begin().await.unwrap();
    match log.db().kind() {
        DbKind::Postgres => {
            sqlx::query("SET LOCAL session_replication_role = replica")
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        DbKind::Sqlite => {
            for t in ["events_no_update", "events_no_delete"] {
                sqlx::query(&format!("DROP TRIGGER IF EXISTS {t}"))
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
        }
    }
    sqlx::raw_sql(sql).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
}

/// The distributed mode as separate processes, one per target, sharing one
/// PostgreSQL database and one nats-server: what a real deployment runs.
pub struct Split {
    pub database_url: String,
    pub nats: NatsServer,
    processes: Vec<(String, String, ChildProcess)>,
    http: reqwest::Client,
    /// `serve` flags of every process, replicas included.
    flags: Vec<String>,
}

impl Split {
    /// Starts `targets` (e.g. `["relay", "cases", "consent"]`); the `cases`
    /// target loads the demo directory.
    pub async fn start(targets: &[&str]) -> Result<Split> {
        Split::start_with(targets, &[]).await
    }

    /// [`Split::start`] with `flags` for every process, replicas and later
    /// spawns included (e.g. [`NO_RATE_LIMITS`]).
    pub async fn start_with(targets: &[&str], flags: &[&str]) -> Result<Split> {
        let database_url = PgServer::shared().await.fresh_database().await?;
        let nats = NatsServer::start().await?;
        let mut split = Split {
            database_url,
            nats,
            processes: Vec::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            flags: flags.iter().map(|f| f.to_string()).collect(),
        };
        for target in targets {
            split.spawn(target).await?;
        }
        Ok(split)
    }

    /// Starts one more process for `target`.
    pub async fn spawn(&mut self, target: &str) -> Result<()> {
        self.spawn_process(target, target == "cases", &[], &[])
            .await
    }

    /// Starts one more process for `target` with extra `serve` flags and
    /// environment (e.g. libfaketime's, for a process whose clock is off).
    pub async fn spawn_with(
        &mut self,
        target: &str,
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> Result<()> {
        self.spawn_process(target, target == "cases", flags, env)
            .await
    }

    /// Starts another process of a `target` that already runs (a replica:
    /// same database, same stream, no demo loading).
    pub async fn spawn_replica(&mut self, target: &str) -> Result<()> {
        self.spawn_process(target, false, &[], &[]).await
    }

    /// The base URLs of every process of `target`, in start order.
    pub fn bases(&self, target: &str) -> Vec<String> {
        self.processes
            .iter()
            .filter(|(t, _, _)| t == target)
            .map(|(_, base, _)| base.clone())
            .collect()
    }

    async fn spawn_process(
        &mut self,
        target: &str,
        demo: bool,
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> Result<()> {
        let mut cmd = verkosto_testkit::verkosto();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--target", target])
            .args(["--dev-auth", "on", "--dev-key-seed", DEV_SEED])
            .args(["--database-url", &self.database_url])
            .args(self.nats.client_args(&self.nats.url(), target))
            .args(&self.flags)
            .args(flags)
            .envs(env.iter().copied())
            .env("VERKOSTO_LOG", "warn");
        if demo {
            cmd.arg("--demo");
        }
        let mut child = ChildProcess::spawn(cmd)?;
        let addr = child
            .wait_for_line("listening on ", Duration::from_secs(60))
            .await?;
        self.processes
            .push((target.to_string(), format!("http://{addr}"), child));
        Ok(())
    }

    /// SIGKILL every process of `target`.
    pub async fn kill9(&mut self, target: &str) -> Result<()> {
        let mut kept = Vec::new();
        for (t, base, mut child) in self.processes.drain(..) {
            if t == target {
                child.kill9().await?;
            } else {
                kept.push((t, base, child));
            }
        }
        self.processes = kept;
        Ok(())
    }

    /// SIGKILL the one process serving at `base`.
    pub async fn kill9_at(&mut self, base: &str) -> Result<()> {
        let at = self
            .processes
            .iter()
            .position(|(_, b, _)| b == base)
            .with_context(|| format!("no process at {base}"))?;
        let (_, _, mut child) = self.processes.remove(at);
        child.kill9().await
    }

    /// The base URL of the first process of `target`.
    pub fn base(&self, target: &str) -> &str {
        self.processes
            .iter()
            .find(|(t, _, _)| t == target)
            .map(|(_, base, _)| base.as_str())
            .unwrap_or_else(|| panic!("no {target} process"))
    }

    pub async fn token(&self, user: &str) -> Result<String> {
        let r = self
            .http
            .post(format!("{}/api/v1/dev/token", self.base("cases")))
            .json(&json!({ "user": user }))
            .send()
            .await?;
        let body: Value = r.json().await?;
        Ok(body["token"].as_str().context("token")?.to_string())
    }

    pub async fn post(
        &self,
        target: &str,
        token: &str,
        path: &str,
        body: &Value,
    ) -> Result<(u16, Value)> {
        let r = self
            .http
            .post(format!("{}{path}", self.base(target)))
            .bearer_auth(token)
            .json(body)
            .send()
            .await?;
        answer(r).await
    }

    pub async fn delete_as(&self, target: &str, token: &str, path: &str) -> Result<(u16, Value)> {
        let r = self
            .http
            .delete(format!("{}{path}", self.base(target)))
            .bearer_auth(token)
            .send()
            .await?;
        answer(r).await
    }

    pub async fn get(&self, target: &str, token: &str, path: &str) -> Result<(u16, Value)> {
        let r = self
            .http
            .get(format!("{}{path}", self.base(target)))
            .bearer_auth(token)
            .send()
            .await?;
        answer(r).await
    }

    /// Opens a case as `lead` (through the cases process) and brings
    /// `agency` into its network, `member` accepting; returns the case id.
    pub async fn case_with_member(
        &self,
        lead: &str,
        pseudonym: &str,
        agency: &str,
        member: &str,
    ) -> Result<String> {
        let (status, case) = self
            .post(
                "cases",
                lead,
                "/api/v1/cases",
                &json!({ "pseudonym": pseudonym, "languages": ["fi"] }),
            )
            .await?;
        anyhow::ensure!(status == 201, "open: {status} {case}");
        let case = case["id"].as_str().context("case id")?.to_string();
        let invite = json!({ "agency": agency, "purpose": "support" });
        let (status, body) = self
            .post(
                "cases",
                lead,
                &format!("/api/v1/cases/{case}/members"),
                &invite,
            )
            .await?;
        anyhow::ensure!(status == 201, "invite: {status} {body}");
        let accept = format!("/api/v1/cases/{case}/invitations/accept");
        let (status, body) = self.post("cases", member, &accept, &json!({})).await?;
        anyhow::ensure!(status == 200, "accept: {status} {body}");
        Ok(case)
    }

    pub async fn stop(mut self) {
        for (_, _, mut child) in self.processes.drain(..) {
            let _ = child.terminate().await;
        }
    }
}

/// A demo case led by the assistance system (fiona), with health-hus (hanna)
/// and police-helsinki (liisa) in its network.
pub struct DemoCase {
    pub id: String,
    pub fiona: String,
    pub hanna: String,
    pub liisa: String,
}

impl Verkosto {
    /// Opens a case as fiona with `body` and brings health-hus and
    /// police-helsinki into its network.
    pub async fn case_with_network(&self, body: Value) -> DemoCase {
        let fiona = self.token("fiona").await.unwrap();
        let hanna = self.token("hanna").await.unwrap();
        let liisa = self.token("liisa").await.unwrap();
        let (status, answer) = self.post(&fiona, "/api/v1/cases", &body).await.unwrap();
        assert_eq!(status, 201, "{answer}");
        let id = answer["id"].as_str().unwrap().to_string();
        for (agency, token) in [("health-hus", &hanna), ("police-helsinki", &liisa)] {
            let path = format!("/api/v1/cases/{id}/members");
            let invite = json!({ "agency": agency, "purpose": "support" });
            assert_eq!(self.post(&fiona, &path, &invite).await.unwrap().0, 201);
            let accept = format!("/api/v1/cases/{id}/invitations/accept");
            assert_eq!(self.post(token, &accept, &json!({})).await.unwrap().0, 200);
        }
        DemoCase {
            id,
            fiona,
            hanna,
            liisa,
        }
    }
}
