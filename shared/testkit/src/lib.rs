//! Real servers for tests, never mocks.
//!
//! The tests of Verkosto run against the same software production runs on:
//! PostgreSQL ([`PgServer`]), a current `nats-server` with JetStream
//! ([`NatsServer`]) and the real `verkosto` binary ([`workspace_binary`],
//! [`ChildProcess`]). Every server gets a free port and its own temporary
//! directory, so tests run in parallel (nextest runs each test in its own
//! process) and leave nothing behind, including after a panic or a `kill -9`
//! of the test process.
//!
//! `scripts/test.sh` starts one PostgreSQL cluster per run and exports
//! `VERKOSTO_TEST_PG_ADMIN_URL`; tests make their own databases in it
//! ([`PgServer::fresh_database`]). Without that variable (plain `cargo test`)
//! each test process starts a private cluster on first use. It also exports
//! `VERKOSTO_NATS_SERVER`, the `nats-server` to run (>= 2.10, for
//! `sync_interval`), and `VERKOSTO_PG_BIN`, the PostgreSQL binaries.
//!
//! Crash tests own their servers: [`PgServer::start_private`] and
//! [`NatsServer::start`] can be killed with SIGKILL and restarted on the same
//! port with the same data.

mod nats;
mod pg;
mod process;

use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};

pub use nats::{nats_password, nats_server_binary, nats_user, NatsServer, NATS_USERS};
pub use pg::PgServer;
pub use process::ChildProcess;

/// A free TCP port on 127.0.0.1.
///
/// The port is free when this returns; the servers here retry with another
/// port when someone else takes it before they bind it.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// The root of this workspace: the nearest directory with a `Cargo.lock`
/// above `CARGO_MANIFEST_DIR` (of the running test, else of this crate).
/// Where a whole test run keeps every child's log and every secret the
/// harness made (`VERKOSTO_TEST_RUN_DIR`, set by `scripts/test.sh`, which
/// then looks for each secret in each log).
pub fn run_dir() -> Option<PathBuf> {
    std::env::var_os("VERKOSTO_TEST_RUN_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        // Gone (the run's scan is over): nothing to keep things for.
        .filter(|d| d.is_dir())
}

/// Notes a secret the harness made, for the run's scan of the logs.
pub fn note_secret(secret: &str) {
    use std::io::Write;
    if let Some(dir) = run_dir().filter(|_| !secret.is_empty()) {
        // One short append per line: whole even with tests writing at once.
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("secrets"))
        {
            let _ = file.write_all(format!("{secret}\n").as_bytes());
        }
    }
}

pub fn workspace_root() -> PathBuf {
    let start = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    start
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .map(Path::to_path_buf)
        .unwrap_or(start)
}

/// The key-encryption key every Verkosto a test starts is given
/// (`VERKOSTO_KEY`): the processes of one test deployment must share it.
/// Noted as a secret, so the run's scan fails if a log ever shows it.
pub const TEST_KEK: &str =
    "verkosto-kek-v1:5e3a1f0c9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";

/// A command that runs this workspace's `verkosto` binary with the test
/// key-encryption key ([`TEST_KEK`]) in its environment.
pub fn verkosto() -> tokio::process::Command {
    note_test_kek();
    let mut cmd = tokio::process::Command::new(workspace_binary("verkosto"));
    cmd.env("VERKOSTO_KEY", TEST_KEK);
    cmd
}

/// Notes [`TEST_KEK`] as a secret, once per test process.
fn note_test_kek() {
    static NOTED: std::sync::Once = std::sync::Once::new();
    NOTED.call_once(|| note_secret(TEST_KEK));
}

/// [`verkosto`], as a blocking `std` command.
pub fn verkosto_std() -> std::process::Command {
    note_test_kek();
    let mut cmd = std::process::Command::new(workspace_binary("verkosto"));
    cmd.env("VERKOSTO_KEY", TEST_KEK);
    cmd
}

/// Path to a binary built in this workspace's target directory (e.g.
/// `target/debug/verkosto`), for tests that spawn the real binary.
///
/// `CARGO_BIN_EXE_<name>` when cargo set it (tests of the binary's own
/// package); else `<target dir>/<profile>/<name>`, where the target dir is
/// `CARGO_TARGET_DIR` or `<workspace root>/target` and the profile is that of
/// the running test executable (`target/<profile>/deps/<test>`); else the
/// binary in the test executable's profile directory. The path may not
/// exist: build the binary first (`scripts/test.sh` does).
pub fn workspace_binary(name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(format!("CARGO_BIN_EXE_{name}")) {
        return path.into();
    }
    let file = format!("{name}{}", std::env::consts::EXE_SUFFIX);
    let exe_profile_dir = std::env::current_exe().ok().and_then(|exe| {
        let dir = exe.parent()?;
        if dir.file_name()? == "deps" {
            dir.parent().map(Path::to_path_buf)
        } else {
            Some(dir.to_path_buf())
        }
    });
    let profile = exe_profile_dir
        .as_deref()
        .and_then(Path::file_name)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("debug"));
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    };
    let in_target = target_dir.join(profile).join(&file);
    if in_target.exists() {
        return in_target;
    }
    match exe_profile_dir.map(|dir| dir.join(&file)) {
        Some(beside) if beside.exists() => beside,
        _ => in_target,
    }
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
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
            bail!("nothing listens on 127.0.0.1:{port} after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The last `lines` lines of a log file, for error messages.
fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = std::fs::File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    // A failed start ends in anyhow's error and then a long backtrace: keep
    // the error in view.
    let text = match text.find("\nStack backtrace:") {
        Some(at) => &text[..at],
        None => &text[..],
    };
    let all: Vec<&str> = text.lines().collect();
    let tail = all[all.len().saturating_sub(lines)..].join("\n");
    format!("last lines of {}:\n{tail}", path.display())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
