//! The outbox's figures, per channel (labelled by the channel's configured name, never by a
//! recipient, URL or member).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// A channel's name in `config.toml`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabel {
    /// The channel's `name`.
    pub channel: String,
}

/// Counters and gauges of the outbox.
#[derive(Clone, Default)]
pub struct NotifyMetrics {
    /// Notices made (before routing).
    pub notices: Counter,
    /// Notices waiting per channel.
    pub queued: Family<ChannelLabel, Gauge>,
    /// Messages (batches) the channel accepted.
    pub sent: Family<ChannelLabel, Counter>,
    /// Notices inside the accepted messages.
    pub notices_sent: Family<ChannelLabel, Counter>,
    /// Attempts that failed.
    pub failures: Family<ChannelLabel, Counter>,
    /// Notices given up after `give_up_after_secs`.
    pub given_up: Family<ChannelLabel, Counter>,
    /// Unix time of the last accepted message.
    pub last_success: Family<ChannelLabel, Gauge>,
}

impl NotifyMetrics {
    /// Registers every figure under `registry` (prefix `solidarity_notify_`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register("notices", "Notices made", self.notices.clone());
        registry.register(
            "queued",
            "Notices waiting to be sent, per channel",
            self.queued.clone(),
        );
        registry.register("sent", "Messages a channel accepted", self.sent.clone());
        registry.register(
            "notices_sent",
            "Notices inside messages a channel accepted",
            self.notices_sent.clone(),
        );
        registry.register(
            "failures",
            "Send attempts that failed",
            self.failures.clone(),
        );
        registry.register(
            "given_up",
            "Notices given up after give_up_after_secs",
            self.given_up.clone(),
        );
        registry.register(
            "last_success_timestamp_seconds",
            "Unix time of the last message a channel accepted",
            self.last_success.clone(),
        );
    }

    /// The label of `channel`.
    pub fn label(channel: &str) -> ChannelLabel {
        ChannelLabel {
            channel: channel.to_owned(),
        }
    }
}
