//! Exec channel: runs the configured program (no shell, no PATH lookup, a cleared
//! environment) with the batch's JSON on stdin, in a process group of its own that is
//! killed at the timeout. Exit status 0 means accepted.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::channel::SendError;
use super::config::ExecTarget;
use super::doc::{Batch, SCHEMA};

/// Most bytes of the program's stderr kept (its first line goes into the error).
const STDERR_KEPT: usize = 4096;
/// The environment the program gets: nothing of the daemon's but this.
const PATH: &str = "/usr/bin:/bin";

/// A ready exec channel.
pub struct ExecChannel {
    target: ExecTarget,
    timeout: Duration,
}

impl ExecChannel {
    /// Checks that the program exists and may be run.
    pub fn new(target: &ExecTarget, timeout: Duration) -> anyhow::Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let program = &target.command[0];
        let metadata = std::fs::metadata(program)
            .map_err(|error| anyhow::anyhow!("`command`: cannot use {program}: {error}"))?;
        if !metadata.is_file() || metadata.permissions().mode() & 0o111 == 0 {
            anyhow::bail!("`command`: {program} is not an executable file");
        }
        Ok(Self {
            target: target.clone(),
            timeout,
        })
    }

    /// Runs the program once with `batch` on stdin.
    pub async fn send(&self, batch: &Batch) -> Result<(), SendError> {
        let mut child = tokio::process::Command::new(&self.target.command[0])
            .args(&self.target.command[1..])
            .env_clear()
            .env("PATH", PATH)
            .env("SOLIDARITY_NOTIFY_SCHEMA", SCHEMA)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| SendError::new(format!("cannot start the command: {error}")))?;
        let group = child.id();
        let json = batch.to_json();
        let mut stdin = child.stdin.take();
        let mut stderr = child.stderr.take();
        let run = async {
            if let Some(stdin) = stdin.as_mut() {
                // A program that does not read its input may close it: not an error.
                let _ = stdin.write_all(&json).await;
            }
            drop(stdin.take());
            let mut kept = Vec::new();
            if let Some(stderr) = stderr.as_mut() {
                let _ = stderr.take(STDERR_KEPT as u64).read_to_end(&mut kept).await;
            }
            (child.wait().await, kept)
        };
        match tokio::time::timeout(self.timeout, run).await {
            Ok((Ok(status), _)) if status.success() => Ok(()),
            Ok((Ok(status), kept)) => {
                let first_line = String::from_utf8_lossy(&kept)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect::<String>();
                let code = status
                    .code()
                    .map_or_else(|| "a signal".to_owned(), |code| format!("code {code}"));
                Err(SendError::new(if first_line.is_empty() {
                    format!("the command exited with {code}")
                } else {
                    format!("the command exited with {code}: {first_line}")
                }))
            }
            Ok((Err(error), _)) => Err(SendError::new(format!(
                "cannot wait for the command: {error}"
            ))),
            Err(_) => {
                if let Some(group) = group {
                    kill_group(group);
                }
                Err(SendError::new(format!(
                    "the command did not finish within {} s and was killed",
                    self.timeout.as_secs()
                )))
            }
        }
    }
}

/// Kills the program's whole process group (what it started, too).
fn kill_group(group: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(group as i32) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}
