//! The exec channel: runs a local program (no shell) with the batch's JSON on stdin.
//!
//! - The environment is cleared but for `PATH=/usr/bin:/bin` and `SOLIDARITY_NOTIFY_SCHEMA`.
//! - The program runs in its own process group; at the timeout the whole group is killed.
//! - stdout is drained and dropped; the first [`STDERR_KEPT`] bytes of stderr are kept and its
//!   first line goes into the error reason (the admin wrote the hook; the daemon never puts an
//!   alert text there itself).
//!
//! Must not: inherit the daemon's stdin/stdout, run a shell, or leave a process behind.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::channel::SendError;
use super::config::ExecTarget;
use super::doc::{Batch, SCHEMA};

/// Stderr kept of one run: enough for a message, bounded against a chatty hook.
const STDERR_KEPT: usize = 4096;
/// Longest first stderr line shown in a reason.
const REASON_LINE_MAX: usize = 200;
/// The only search path the hook sees.
const HOOK_PATH: &str = "/usr/bin:/bin";

/// A ready exec channel.
pub struct ExecChannel {
    target: ExecTarget,
    timeout: Duration,
}

impl ExecChannel {
    /// Checks and keeps the target.
    pub fn new(target: &ExecTarget, timeout: Duration) -> anyhow::Result<Self> {
        if target.command.is_empty() {
            anyhow::bail!("an exec channel needs a command");
        }
        Ok(Self {
            target: target.clone(),
            timeout,
        })
    }

    /// Runs the program once with the batch on stdin; exit 0 is accepted.
    pub async fn send(&self, batch: &Batch) -> Result<(), SendError> {
        let program = &self.target.command[0];
        let mut command = Command::new(program);
        command
            .args(&self.target.command[1..])
            .env_clear()
            .env("PATH", HOOK_PATH)
            .env("SOLIDARITY_NOTIFY_SCHEMA", SCHEMA)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|error| SendError::new(format!("cannot start the command: {error}")))?;
        let pid = child.id();
        let json = batch.to_json();
        let mut stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let run = async {
            let feed = async {
                if let Some(mut stdin) = stdin.take() {
                    // A hook that does not read its stdin is not an error by itself.
                    let _ = stdin.write_all(&json).await;
                    let _ = stdin.shutdown().await;
                }
            };
            let (_, _, kept, status) = tokio::join!(
                feed,
                drain(stdout, 0),
                drain(stderr, STDERR_KEPT),
                child.wait()
            );
            (kept, status)
        };
        let outcome = tokio::time::timeout(self.timeout, run).await;
        match outcome {
            Err(_) => {
                // Killed before it is reaped, so the group id is still the hook's.
                kill_group(pid);
                let _ = child.kill().await;
                Err(SendError::new(format!(
                    "timed out after {} s (killed)",
                    self.timeout.as_secs()
                )))
            }
            Ok((kept, status)) => {
                // The hook was reaped: its process group id may be taken by another
                // process now, so it is not signalled (what the hook left running is its
                // own business).
                let status = status.map_err(|error| {
                    SendError::new(format!("cannot wait for the command: {error}"))
                })?;
                if status.success() {
                    return Ok(());
                }
                let what = match status.code() {
                    Some(code) => format!("exit code {code}"),
                    None => "killed by a signal".to_owned(),
                };
                let first_line = String::from_utf8_lossy(&kept)
                    .lines()
                    .find(|line| !line.trim().is_empty())
                    .map(|line| {
                        line.trim()
                            .chars()
                            .take(REASON_LINE_MAX)
                            .collect::<String>()
                    });
                Err(SendError::new(match first_line {
                    Some(line) => format!("{what}: {line}"),
                    None => what,
                }))
            }
        }
    }
}

/// Reads `pipe` to its end, keeping at most `keep` bytes.
async fn drain(pipe: Option<impl AsyncRead + Unpin>, keep: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut pipe) = pipe else {
        return kept;
    };
    let mut buffer = [0u8; 4096];
    loop {
        match pipe.read(&mut buffer).await {
            Ok(0) | Err(_) => return kept,
            Ok(read) => {
                let room = keep.saturating_sub(kept.len());
                kept.extend_from_slice(&buffer[..read.min(room)]);
            }
        }
    }
}

/// Kills the process group the hook leads (its pid is the group id, see `process_group(0)`).
fn kill_group(pid: Option<u32>) {
    let Some(pid) = pid.and_then(|pid| i32::try_from(pid).ok()) else {
        return;
    };
    if let Some(group) = rustix::process::Pid::from_raw(pid) {
        // The group may be gone already: nothing to do then.
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    }
}
