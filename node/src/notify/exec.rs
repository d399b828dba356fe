//! STUB: to be written (see /work/briefs14/channels.md).

use std::time::Duration;

use super::channel::SendError;
use super::config::ExecTarget;
use super::doc::Batch;

/// A ready exec channel.
pub struct ExecChannel {
    _target: ExecTarget,
    _timeout: Duration,
}

impl ExecChannel {
    /// Checks and keeps the target.
    pub fn new(target: &ExecTarget, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            _target: target.clone(),
            _timeout: timeout,
        })
    }

    /// Sends one batch.
    pub async fn send(&self, _batch: &Batch) -> Result<(), SendError> {
        Err(SendError::new("not written yet"))
    }
}
