//! STUB: to be written (see /work/briefs14/channels.md).

use std::time::Duration;

use super::channel::SendError;
use super::config::WebhookTarget;
use super::doc::Batch;

/// A ready webhook channel.
pub struct WebhookChannel {
    _target: WebhookTarget,
    _timeout: Duration,
}

impl WebhookChannel {
    /// Checks and keeps the target.
    pub fn new(target: &WebhookTarget, timeout: Duration) -> anyhow::Result<Self> {
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
