//! Child processes (the real `verkosto` binary) for tests.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

use crate::log_tail;

/// A child process whose output goes to a log file in a temporary directory
/// and whose stdout is also read line by line for readiness
/// ([`ChildProcess::wait_for_line`]). Killed (SIGKILL) when dropped; when the
/// test is panicking the log is kept and its path printed.
pub struct ChildProcess {
    /// The process; SIGKILLed when this is dropped.
    child: tokio::process::Child,
    /// Its process id, remembered for after it exits (0 if unknown).
    pid: u32,
    /// The program's path as spawned, for messages.
    program: String,
    /// Its stdout lines, as read (they are also appended to the log).
    lines: mpsc::UnboundedReceiver<String>,
    /// The directory of the log; taken and kept when the test panics.
    log_dir: Option<tempfile::TempDir>,
    /// `output.log` in `log_dir`: stdout and stderr.
    log_path: PathBuf,
}

impl ChildProcess {
    /// Spawns `cmd` with stdout and stderr captured into the log (stderr
    /// directly, stdout line by line as it is read). Needs a Tokio runtime.
    pub fn spawn(mut cmd: tokio::process::Command) -> Result<ChildProcess> {
        let program = cmd.as_std().get_program().to_string_lossy().into_owned();
        let mut builder = tempfile::Builder::new();
        builder.prefix("verkosto-proc-");
        let log_dir = match crate::run_dir() {
            // Kept for the run's scan for secrets (scripts/test.sh).
            Some(run) => builder.disable_cleanup(true).tempdir_in(run),
            None => builder.tempdir(),
        }
        .context("temporary directory for a child's log")?;
        let log_path = log_dir.path().join("output.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        cmd.stdout(Stdio::piped())
            .stderr(log.try_clone()?)
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawn {program} (is it built?)"))?;
        let pid = child.id().unwrap_or(0);
        let stdout = child.stdout.take().context("the child's stdout")?;
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut log = log;
            let mut reader = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                // Small appends to a local file: fine on a runtime thread.
                let _ = writeln!(log, "{line}");
                // Keep logging after the receiver is gone.
                let _ = tx.send(line);
            }
        });
        Ok(ChildProcess {
            child,
            pid,
            program,
            lines,
            log_dir: Some(log_dir),
            log_path,
        })
    }

    /// Waits for a stdout line starting with `prefix` (e.g. `"listening on "`)
    /// and returns the rest of it, trimmed (e.g. the address). Fails, with the
    /// end of the log, on timeout or when the child closes its stdout first.
    pub async fn wait_for_line(&mut self, prefix: &str, timeout: Duration) -> Result<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    if let Some(rest) = line.trim_start().strip_prefix(prefix) {
                        return Ok(rest.trim().to_string());
                    }
                }
                Ok(None) => {
                    let status =
                        match tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await
                        {
                            Ok(Ok(status)) => status.to_string(),
                            _ => "still running".to_string(),
                        };
                    bail!(
                        "{} closed its stdout ({status}) before a line starting with {prefix:?}\n{}",
                        self.program,
                        log_tail(&self.log_path, 40)
                    );
                }
                Err(_) => bail!(
                    "{} printed no line starting with {prefix:?} within {timeout:?}\n{}",
                    self.program,
                    log_tail(&self.log_path, 40)
                ),
            }
        }
    }

    /// The process id (also after the process has exited).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The log of stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// SIGKILL, then reap. A child that already exited is fine.
    pub async fn kill9(&mut self) -> Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        self.child.kill().await?;
        Ok(())
    }

    /// SIGTERM, then wait for the exit.
    pub async fn terminate(&mut self) -> Result<std::process::ExitStatus> {
        if self.child.try_wait()?.is_none() {
            let pid = i32::try_from(self.pid)?;
            // SAFETY: a signal to our own child, not yet reaped (so the pid
            // cannot have been reused).
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        Ok(self.child.wait().await?)
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        // kill_on_drop sends the SIGKILL; Tokio reaps in the background.
        if std::thread::panicking() {
            if let Some(dir) = self.log_dir.take() {
                let kept = dir.keep();
                eprintln!(
                    "log of {} (pid {}) kept at {}",
                    self.program,
                    self.pid,
                    kept.join("output.log").display()
                );
            }
        }
    }
}
