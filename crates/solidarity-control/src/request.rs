//! One type per command, each naming its answer through [`crate::ControlRequest`].
//!
//! On the wire a request is one JSON object tagged with its operation,
//! `{"op":"alert_show","alert":"<64 hex>"}` (see [`crate::Request`]); fields unknown to
//! the daemon are refused rather than ignored, so a typo never becomes a default.

use serde::{Deserialize, Serialize};
use solidarity_proto::payload::{Alert, AlertStatus, CanaryCode, Stance};
use solidarity_proto::{AuthorKey, MessageId};

/// The node's own state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Status {}

/// Members and their connectivity, keys out of trust (revoked, forked, certificate ended)
/// and the admin's identity keys.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peers {}

/// Counters in the Prometheus text format.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {}

/// The member card with the addresses bound now.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Card {}

/// Re-read the members file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReloadMembers {}

/// Trust again a key marked compromised after a fork (the admin has checked with its
/// collective).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberRetrust {
    /// The key.
    pub key: AuthorKey,
}

/// Sign, store durably, publish an alert.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRaise {
    /// The alert.
    pub alert: Alert,
    /// Lifetime from now, ms; none: no expiry.
    pub expires_in_ms: Option<u64>,
}

/// Update one of this node's own alerts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertUpdate {
    /// The alert's id.
    pub alert: MessageId,
    /// The new state.
    pub status: AlertStatus,
    /// Free text.
    pub note: Option<String>,
}

/// The newest alerts with their state (every stored alert with `all`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertList {
    /// Every stored alert, not only the newest the status page shows.
    #[serde(default)]
    pub all: bool,
}

/// The stored alerts whose id starts with `prefix` (lowercase hex), to resolve a prefix
/// the admin typed; the daemon reads only ids with that prefix, never every alert.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertIds {
    /// The hex prefix.
    pub prefix: String,
}

/// One alert with everything known about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertShow {
    /// The alert's id.
    pub alert: MessageId,
}

/// Endorse, dispute, or retract this node's stance on another member's alert.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertEndorse {
    /// The alert's id.
    pub alert: MessageId,
    /// The stance.
    pub stance: Stance,
    /// Free text.
    pub note: Option<String>,
}

/// Vouch for a new member, or withdraw this node's vouch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberVouch {
    /// Its node key.
    pub key: AuthorKey,
    /// The name it goes by.
    pub name: String,
    /// Its addresses (multiaddrs).
    pub addresses: Vec<String>,
    /// False to withdraw.
    pub vouch: bool,
}

/// Publish a mirror offer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorOffer {
    /// The offer.
    pub offer: solidarity_proto::payload::MirrorOffer,
    /// Validity from now, ms.
    pub valid_for_ms: u64,
}

/// Withdraw one of this node's offers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorWithdraw {
    /// The offer's id.
    pub offer: MessageId,
}

/// Every live offer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorList {}

/// Publish this node's canary now. Withdrawn and restored codes stick for later scheduled
/// canaries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryPublish {
    /// Codes to withdraw (the event happened).
    pub withdraw: Vec<CanaryCode>,
    /// Codes to state again.
    pub restore: Vec<CanaryCode>,
}

/// Publish a statement signed elsewhere, e.g. a pre-generated revocation, after checking
/// it like any received message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishStatement {
    /// The envelope bytes (hex in JSON).
    #[serde(with = "hex_bytes")]
    pub envelope: Vec<u8>,
}

/// Publish a canary that looks normal but carries a duress token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryDuress {
    /// The duress token (hex in JSON): a fresh nonce and its tag under the duress
    /// commitment of the admins' passphrase (SPEC §8.7.1).
    pub token: MessageId,
}

/// Byte strings as hex in JSON.
pub(crate) mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer, de};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        hex::decode(text.trim()).map_err(de::Error::custom)
    }
}

/// `solidarity export`: a page of the stored chain messages (statements come with
/// [`ExportExtras`]), after `after` in id order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportPage {
    /// The last id of the previous page; none: from the first.
    pub after: Option<MessageId>,
}

/// `solidarity export`: the statements, kept canaries and fork evidence, with the members
/// file when `members`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportExtras {
    /// Include the members file's text.
    #[serde(default)]
    pub members: bool,
}

/// `solidarity import`: envelopes of an export, each checked like a received message and
/// stored when valid; the answer comes once they are durable.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Import {
    /// The envelopes, in the file's order.
    pub envelopes: Vec<ImportEnvelope>,
}

/// One envelope to import.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportEnvelope {
    /// The bytes, verbatim.
    pub envelope: crate::EnvelopeBytes,
    /// A canary kept past its expiry: checked as of just before it expired.
    #[serde(default)]
    pub kept: bool,
    /// Fork evidence: the envelopes of one group prove a fork together (and mark their
    /// key compromised), or none of them is stored; never written into the chain.
    #[serde(default)]
    pub fork_group: Option<u32>,
}

/// `solidarity notify test [CHANNEL]`: send a test message now on one channel, or on all.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyTest {
    /// The channel's name; none: every channel.
    pub channel: Option<String>,
}

/// `solidarity notify status`: each channel's queue, last success and last error.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyStatus {}

/// `solidarity notify list`: the recent notices, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyList {}
