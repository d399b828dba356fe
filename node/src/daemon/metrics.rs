//! The node's counters and gauges, exposed with gossipsub's, libp2p's and the outbox's
//! through `solidarity metrics` (the owner-only control socket) and, when `metrics_addr` is
//! set, the Prometheus endpoint (`metrics_endpoint.rs`); never on the status page.
//! Counts only: no label names a peer, a member or an address.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use solidarity_control::OverBudget;
use solidarity_engine::{Judged, Path};

/// How a received message was judged.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabel {
    /// `gossip` or `sync`.
    pub path: &'static str,
    /// `accept`, `ignore`, `reject`, `fork` or `over_budget`.
    pub verdict: &'static str,
}

/// Counters the node actor updates.
#[derive(Clone, Default)]
pub struct NodeMetrics {
    /// Messages judged, by path and verdict.
    pub verdicts: Family<VerdictLabel, Counter>,
    /// Messages durably stored.
    pub stored: Counter,
    /// Sync requests this node sent (one per round trip).
    pub sync_requests: Counter,
    /// Bytes of the sync requests this node sent.
    pub sync_request_bytes: Counter,
    /// Bytes of the sync responses this node received.
    pub sync_response_bytes: Counter,
    /// Bytes of envelopes inside the sync responses this node received.
    pub sync_envelope_bytes: Counter,
    /// Sync requests this node answered.
    pub sync_answered: Counter,
    /// Sync requests answered with an empty page because too many answers were in flight.
    pub sync_refused_busy: Counter,
    /// Times trust was derived again because a stored statement or vouch changed it.
    pub trust_recomputations: Counter,
    /// Messages held back by a member's budget, by budget.
    pub over_budget: Family<BudgetLabel, Counter>,
    /// Members shown as over budget now.
    pub members_over_budget: Gauge,
    /// Keys listed (trusted or not).
    pub members_listed: Gauge,
    /// Trusted members connected now.
    pub members_connected: Gauge,
    /// Alerts shown, by severity.
    pub alerts_shown: Family<SeverityLabel, Gauge>,
    /// Mirror offers shown.
    pub offers_shown: Gauge,
}

/// An alert's severity.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SeverityLabel {
    /// `info`, `low`, `medium`, `high` or `critical`.
    pub severity: &'static str,
}

const SEVERITIES: [(solidarity_proto::payload::Severity, &str); 5] = [
    (solidarity_proto::payload::Severity::Info, "info"),
    (solidarity_proto::payload::Severity::Low, "low"),
    (solidarity_proto::payload::Severity::Medium, "medium"),
    (solidarity_proto::payload::Severity::High, "high"),
    (solidarity_proto::payload::Severity::Critical, "critical"),
];

/// Which budget held a message back.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BudgetLabel {
    /// `message_rate`, `byte_rate` or `stored_bytes`.
    pub budget: &'static str,
}

impl NodeMetrics {
    /// Registers every counter under `registry`.
    pub fn register(&self, registry: &mut Registry) {
        // Series that exist before their first count, so dashboards show 0, not nothing.
        for budget in ["message_rate", "byte_rate", "stored_bytes"] {
            let _ = self.over_budget.get_or_create(&BudgetLabel { budget });
        }
        registry.register(
            "messages_judged",
            "Received messages by path and verdict",
            self.verdicts.clone(),
        );
        registry.register(
            "messages_stored",
            "Messages durably stored",
            self.stored.clone(),
        );
        registry.register(
            "trust_recomputations",
            "Times trust was derived again after a stored statement or vouch changed it",
            self.trust_recomputations.clone(),
        );
        registry.register(
            "sync_requests",
            "Sync requests sent (round trips)",
            self.sync_requests.clone(),
        );
        registry.register(
            "sync_request_bytes",
            "Bytes of sync requests sent",
            self.sync_request_bytes.clone(),
        );
        registry.register(
            "sync_response_bytes",
            "Bytes of sync responses received",
            self.sync_response_bytes.clone(),
        );
        registry.register(
            "sync_envelope_bytes",
            "Bytes of envelopes inside sync responses received",
            self.sync_envelope_bytes.clone(),
        );
        registry.register(
            "sync_answered",
            "Sync requests answered",
            self.sync_answered.clone(),
        );
        registry.register(
            "sync_refused_busy",
            "Sync requests answered empty because too many answers were in flight",
            self.sync_refused_busy.clone(),
        );
        registry.register(
            "messages_over_budget",
            "Received messages held back by a member's budget, by budget",
            self.over_budget.clone(),
        );
        registry.register(
            "members_listed",
            "Keys listed in the members file and by vouching, trusted or not",
            self.members_listed.clone(),
        );
        registry.register(
            "members_connected",
            "Trusted members connected now",
            self.members_connected.clone(),
        );
        registry.register(
            "alerts_shown",
            "Alerts shown on the status page, by severity",
            self.alerts_shown.clone(),
        );
        registry.register(
            "offers_shown",
            "Mirror offers shown on the status page",
            self.offers_shown.clone(),
        );
        registry.register(
            "members_over_budget",
            "Members whose messages were held back in the last minutes",
            self.members_over_budget.clone(),
        );
    }

    /// Sets the gauges from what the status page shows now.
    pub fn shown(&self, snapshot: &super::snapshot::Snapshot) {
        self.members_listed.set(snapshot.members.len() as i64);
        self.members_connected.set(snapshot.status.connected as i64);
        self.offers_shown.set(snapshot.offers.len() as i64);
        for (severity, label) in SEVERITIES {
            let count = snapshot
                .alerts
                .iter()
                .filter(|alert| alert.alert.severity == severity)
                .count();
            self.alerts_shown
                .get_or_create(&SeverityLabel { severity: label })
                .set(count as i64);
        }
    }

    /// Counts one received message by how it was judged.
    pub fn judged(&self, path: Path, judged: Judged) {
        let path = match path {
            Path::Gossip => "gossip",
            Path::Sync => "sync",
        };
        let verdict = match judged {
            Judged::Accept => "accept",
            Judged::OverBudget(why) => {
                let budget = match why {
                    OverBudget::MessageRate => "message_rate",
                    OverBudget::ByteRate => "byte_rate",
                    OverBudget::StoredBytes => "stored_bytes",
                };
                self.over_budget
                    .get_or_create(&BudgetLabel { budget })
                    .inc();
                "over_budget"
            }
            Judged::Ignore => "ignore",
            Judged::Reject => "reject",
            Judged::Fork => "fork",
        };
        self.verdicts
            .get_or_create(&VerdictLabel { path, verdict })
            .inc();
    }
}

/// The registry's text exposition.
pub fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    if let Err(error) = prometheus_client::encoding::text::encode(&mut text, registry) {
        tracing::error!(%error, "cannot encode metrics");
    }
    text
}
