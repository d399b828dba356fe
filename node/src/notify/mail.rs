//! STUB: to be written (see /work/briefs14/channels.md).

use std::time::Duration;

use super::channel::SendError;
use super::config::MailTarget;
use super::doc::Batch;

/// A ready mail channel.
pub struct MailChannel {
    _target: MailTarget,
    _timeout: Duration,
}

impl MailChannel {
    /// Checks and keeps the target.
    pub fn new(target: &MailTarget, timeout: Duration) -> anyhow::Result<Self> {
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
