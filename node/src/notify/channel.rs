//! A channel sends one [`Batch`] and says whether the other side accepted it (SMTP 250,
//! HTTP 2xx, exit 0). It never retries: the outbox does (see `service`).

use super::config::{ChannelConfig, Target};
use super::doc::Batch;
use super::{exec, mail, webhook};

/// Why a send was not accepted.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct SendError {
    /// For `notify status` and the log: never an alert text, a key or a recipient address.
    pub reason: String,
}

impl SendError {
    /// A send error with `reason`.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

/// A configured channel, ready to send.
pub enum Channel {
    /// SMTP submission.
    Mail(mail::MailChannel),
    /// HTTP POST.
    Webhook(webhook::WebhookChannel),
    /// A local program.
    Exec(exec::ExecChannel),
}

impl Channel {
    /// Builds the channel (parses keys, TLS roots): an error stops the daemon's start.
    pub fn new(config: &ChannelConfig) -> anyhow::Result<Self> {
        Ok(match &config.target {
            Target::Mail(target) => Self::Mail(mail::MailChannel::new(target, config.timeout)?),
            Target::Webhook(target) => {
                Self::Webhook(webhook::WebhookChannel::new(target, config.timeout)?)
            }
            Target::Exec(target) => Self::Exec(exec::ExecChannel::new(target, config.timeout)?),
        })
    }

    /// Sends `batch` once, within the channel's timeout.
    pub async fn send(&self, batch: &Batch) -> Result<(), SendError> {
        match self {
            Self::Mail(channel) => channel.send(batch).await,
            Self::Webhook(channel) => channel.send(batch).await,
            Self::Exec(channel) => channel.send(batch).await,
        }
    }
}
