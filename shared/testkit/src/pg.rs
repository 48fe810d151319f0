//! PostgreSQL clusters for tests.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sqlx::Connection;
use tokio::sync::OnceCell;

use crate::{free_port, is_root, log_tail, wait_for_port};

/// A PostgreSQL server for tests.
///
/// Either the cluster of the test run (`VERKOSTO_TEST_PG_ADMIN_URL`, started
/// by `scripts/test.sh`) or a private cluster in a temporary directory, owned
/// by this value: initdb'd on first use, `fsync = on`, listening on
/// 127.0.0.1 only on a free port, trust authentication for `postgres`. A
/// private cluster stops and its directory goes when the value drops, at exit
/// for the shared one, and, should the test process be killed, when a small
/// watchdog process sees it gone.
pub struct PgServer {
    /// URL of the `postgres` database as the `postgres` superuser.
    admin_url: String,
    /// The private cluster this value owns; none: the test run's server.
    cluster: Option<Cluster>,
}

struct Cluster {
    /// Holds the data directory (`data/`) and the server's log.
    dir: tempfile::TempDir,
    /// The port it listens on, on 127.0.0.1.
    port: u16,
    /// `sh` that stops the cluster if this process dies without doing so.
    watchdog: Mutex<Option<Child>>,
}

static SHARED: OnceCell<PgServer> = OnceCell::const_new();

/// Stops the shared private cluster when the test process exits (statics are
/// never dropped).
extern "C" fn stop_shared_cluster_at_exit() {
    if let Some(server) = SHARED.get() {
        server.stop_now(true);
    }
}

impl PgServer {
    /// The server shared by this test process: the test run's
    /// (`VERKOSTO_TEST_PG_ADMIN_URL`), else a private temporary cluster,
    /// started on first use and stopped when the process exits.
    ///
    /// Panics when no server can be started: a test without its database
    /// cannot run.
    pub async fn shared() -> &'static PgServer {
        SHARED
            .get_or_init(|| async {
                match std::env::var("VERKOSTO_TEST_PG_ADMIN_URL") {
                    Ok(url) if !url.trim().is_empty() => PgServer {
                        admin_url: url.trim().to_string(),
                        cluster: None,
                    },
                    _ => {
                        let server = PgServer::start_private()
                            .await
                            .expect("start a private PostgreSQL cluster for this test process");
                        // SAFETY: registers a function without arguments that
                        // only reads a static; atexit has no other preconditions.
                        unsafe { libc::atexit(stop_shared_cluster_at_exit) };
                        server
                    }
                }
            })
            .await
    }

    /// URL of the `postgres` database as the `postgres` superuser.
    pub fn admin_url(&self) -> String {
        self.admin_url.clone()
    }

    /// `CREATE DATABASE verkosto_test_<uuid>` (empty, from `template0`) and
    /// its URL. Safe to call from many tests and processes at once.
    pub async fn fresh_database(&self) -> Result<String> {
        let name = format!("verkosto_test_{}", uuid::Uuid::new_v4().simple());
        let sql = format!("CREATE DATABASE {name} TEMPLATE template0");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = async {
                let mut conn = sqlx::PgConnection::connect(&self.admin_url).await?;
                sqlx::query(&sql).execute(&mut conn).await?;
                conn.close().await
            }
            .await;
            match result {
                Ok(()) => break,
                // An earlier attempt created it but lost the answer.
                Err(e) if attempt > 1 && sqlstate(&e).as_deref() == Some("42P04") => break,
                Err(e) if attempt < 6 && transient(&e) => {
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("CREATE DATABASE {name} on {}", self.admin_url))
                }
            }
        }
        Ok(with_database(&self.admin_url, &name))
    }

    /// Starts a cluster this test owns, on its own port and directory, so
    /// that it can be killed ([`PgServer::kill9`]) and restarted
    /// ([`PgServer::restart`]). Takes a second or two (initdb).
    pub async fn start_private() -> Result<PgServer> {
        let builder = {
            let mut b = tempfile::Builder::new();
            b.prefix("verkosto-pg-");
            b
        };
        // The postgres user must reach the directory: not under /root.
        let dir = if is_root() {
            builder.tempdir_in("/tmp")
        } else {
            builder.tempdir()
        }
        .context("temporary directory for a PostgreSQL cluster")?;
        if is_root() {
            let (uid, gid) = postgres_user()?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .context("chown the cluster directory to postgres")?;
        }
        let data = dir.path().join("data");
        let out = tokio::process::Command::from(pg_command("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"])
            // The server runs with fsync on; syncing initdb's files only
            // matters for a power loss during the test run.
            .args(["--no-sync", "--no-instructions"])
            .stdin(Stdio::null())
            .output()
            .await
            .context("run initdb")?;
        if !out.status.success() {
            bail!(
                "initdb failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let base_conf = format!(
            "\n# verkosto-testkit\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             max_connections = 300\nshared_buffers = 64MB\nfsync = on\nsynchronous_commit = on\n",
            dir.path().display()
        );
        let conf_path = data.join("postgresql.conf");
        let original = std::fs::read_to_string(&conf_path)?;
        let watchdog = spawn_watchdog(dir.path()).ok();
        let mut server = PgServer {
            admin_url: String::new(),
            cluster: Some(Cluster {
                dir,
                port: 0,
                watchdog: Mutex::new(watchdog),
            }),
        };
        // A free port can be taken before the postmaster binds it: retry.
        let mut last_error = None;
        for _ in 0..3 {
            let port = free_port();
            std::fs::write(&conf_path, format!("{original}{base_conf}port = {port}\n"))?;
            server.admin_url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
            if let Some(c) = server.cluster.as_mut() {
                c.port = port;
            }
            match server.start_cluster().await {
                Ok(()) => return Ok(server),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.expect("three attempts"))
    }

    fn cluster(&self) -> Result<&Cluster> {
        self.cluster
            .as_ref()
            .context("not a private cluster (the test run's server is shared)")
    }

    async fn start_cluster(&mut self) -> Result<()> {
        let c = self.cluster()?;
        let data = c.dir.path().join("data");
        let log = c.dir.path().join("server.log");
        let out = tokio::process::Command::from(pg_command("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "start"])
            .stdin(Stdio::null())
            .output()
            .await
            .context("run pg_ctl start")?;
        if !out.status.success() {
            bail!(
                "pg_ctl start failed: {}\n{}",
                String::from_utf8_lossy(&out.stderr).trim(),
                log_tail(&log, 20)
            );
        }
        wait_for_port(c.port, Duration::from_secs(30)).await
    }

    fn postmaster_pid(&self) -> Result<i32> {
        let c = self.cluster()?;
        let text = std::fs::read_to_string(c.dir.path().join("data/postmaster.pid"))
            .context("read postmaster.pid: is the cluster running?")?;
        Ok(text.lines().next().unwrap_or("").trim().parse()?)
    }

    /// SIGKILL the postmaster and every process of the cluster, as a crash
    /// would, and wait until they are gone. Private clusters only.
    pub fn kill9(&mut self) -> Result<()> {
        let pid = self.postmaster_pid()?;
        // SAFETY: signals to the postmaster of a cluster this value owns.
        // Stopped first, so that it forks nothing while its children are listed.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        let mut pids = children_of(pid);
        pids.push(pid);
        for &p in &pids {
            // SAFETY: as above; these are that postmaster's children.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while pids.iter().any(|&p| alive(p)) {
            if Instant::now() > deadline {
                bail!("PostgreSQL processes still alive 10 s after SIGKILL");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Starts the cluster again (after [`PgServer::kill9`]: with crash
    /// recovery) on the same port with the same data. Private clusters only.
    pub async fn restart(&mut self) -> Result<()> {
        let c = self.cluster()?;
        let pid_file = c.dir.path().join("data/postmaster.pid");
        if let Ok(pid) = self.postmaster_pid() {
            if alive(pid) {
                bail!("the cluster is running (postmaster {pid})");
            }
            // Stale: its processes are gone. A postmaster that is a zombie
            // until init reaps it would make the new one refuse to start.
            let _ = std::fs::remove_file(&pid_file);
            for entry in std::fs::read_dir(c.dir.path())?.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with(".s.PGSQL.") && name.ends_with(".lock") {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        self.start_cluster().await
    }

    /// Immediate shutdown of a private cluster; also removes its directory
    /// when `remove_dir` (at exit, where the `TempDir` is never dropped).
    fn stop_now(&self, remove_dir: bool) {
        let Some(c) = &self.cluster else { return };
        let data = c.dir.path().join("data");
        if data.join("postmaster.pid").exists() {
            let _ = pg_command("pg_ctl")
                .arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "stop"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if let Ok(mut guard) = c.watchdog.lock() {
            if let Some(mut watchdog) = guard.take() {
                if let Ok(pid) = i32::try_from(watchdog.id()) {
                    // SAFETY: the watchdog leads its own process group (setsid).
                    unsafe { libc::kill(-pid, libc::SIGKILL) };
                }
                let _ = watchdog.wait();
            }
        }
        if remove_dir {
            let _ = std::fs::remove_dir_all(c.dir.path());
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop_now(false);
    }
}

/// The directory with initdb and pg_ctl: `VERKOSTO_PG_BIN`, else the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian), else where `initdb` is on PATH.
fn pg_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("VERKOSTO_PG_BIN").filter(|d| !d.is_empty()) {
        return dir.into();
    }
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.join("bin/initdb").is_file())
                .map(|p| {
                    let version = p
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or("")
                        .split('.')
                        .map(|n| n.parse().unwrap_or(0))
                        .collect();
                    (version, p.join("bin"))
                })
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return dir;
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .find(|dir| dir.join("initdb").is_file())
        .unwrap_or_else(|| PathBuf::from("/usr/bin"))
}

/// A PostgreSQL tool, run as the `postgres` user when we are root (initdb
/// and postgres refuse to run as root).
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

fn postgres_user() -> Result<(u32, u32)> {
    // SAFETY: a NUL-terminated name; the result is read before any other
    // getpw* call on this thread could overwrite it.
    let pw = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
    if pw.is_null() {
        bail!("running as root needs a `postgres` OS user to run PostgreSQL (apt-get install postgresql creates it)");
    }
    // SAFETY: non-null pointer returned by getpwnam.
    Ok(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

/// A detached `sh` that stops the cluster and removes its directory once
/// this process is gone, should it die without doing so (SIGKILL, abort).
fn spawn_watchdog(dir: &Path) -> Result<Child> {
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
    let pg_ctl = quote(&pg_bin_dir().join("pg_ctl"));
    let pg_ctl = if is_root() {
        format!("runuser -u postgres -- {pg_ctl}")
    } else {
        pg_ctl
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         {pg_ctl} -D {data} -m immediate stop >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        data = quote(&dir.join("data")),
        dir = quote(dir),
    );
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe. Its own session, so that the
    // signals for the test's process group (nextest's timeout) spare it.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    Ok(cmd.spawn()?)
}

/// Pids whose parent is `parent`, from /proc.
fn children_of(parent: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| proc_stat(pid).is_some_and(|(_, ppid)| ppid == parent))
        .collect()
}

/// State and parent pid of a process, from /proc/<pid>/stat.
fn proc_stat(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may contain anything but ends at the last ')'.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Alive: exists and is not a zombie waiting for its (adoptive) parent.
fn alive(pid: i32) -> bool {
    proc_stat(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

fn sqlstate(e: &sqlx::Error) -> Option<String> {
    e.as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.into_owned())
}

/// Worth another try: the server is busy or (re)starting, or the template is
/// in use by someone else.
fn transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
        _ => matches!(
            sqlstate(e).as_deref(),
            Some("53300" | "55006" | "57P03" | "40001" | "40P01")
        ),
    }
}

/// `url` with its database name replaced by `name` (query string kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let server = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h:1/postgres?sslmode=disable", "x"),
            "postgres://u:p@h:1/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "x"), "postgres://h:1/x");
    }
}
