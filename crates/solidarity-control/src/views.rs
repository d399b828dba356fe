//! What the daemon answers: one response type per request (see [`crate::ControlRequest`])
//! and the views they carry. On the wire a response is its fields plus
//! `"result":"<its ControlResponse::RESULT>"`.

use serde::{Deserialize, Serialize};
use solidarity_proto::payload::{CanaryCode, Stance};
use solidarity_proto::state::{AlertView, OfferView};
use solidarity_proto::{AuthorKey, MessageId};

use crate::ControlResponse;

/// The node's and gossipsub's counters, Prometheus text format (counts only: no label
/// names a peer or an address).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsText {
    /// The exposition text.
    pub text: String,
}

/// One entry per listed key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Members {
    /// The members.
    pub members: Vec<MemberView>,
}

/// A one-line member card.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardLine {
    /// The card.
    pub card: String,
}

/// Done, nothing to report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {}

/// A message was signed and is durably stored; publishing is under way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Raised {
    /// Its id.
    pub id: MessageId,
}

/// Alerts, most severe and newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alerts {
    /// The alerts.
    pub alerts: Vec<AlertView>,
}

/// The ids a prefix names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMatches {
    /// Those found, in id order.
    pub ids: Vec<MessageId>,
    /// More ids of any kind share the prefix than the daemon read: it names no one id.
    pub more: bool,
}

/// Live mirror offers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offers {
    /// The offers.
    pub offers: Vec<OfferView>,
}

impl ControlResponse for IdMatches {
    const RESULT: &'static str = "id_matches";
}
impl ControlResponse for StatusView {
    const RESULT: &'static str = "status";
}
impl ControlResponse for MetricsText {
    const RESULT: &'static str = "metrics";
}
impl ControlResponse for Members {
    const RESULT: &'static str = "peers";
}
impl ControlResponse for CardLine {
    const RESULT: &'static str = "card";
}
impl ControlResponse for Done {
    const RESULT: &'static str = "done";
}
impl ControlResponse for Raised {
    const RESULT: &'static str = "raised";
}
impl ControlResponse for Alerts {
    const RESULT: &'static str = "alerts";
}
impl ControlResponse for AlertDetail {
    const RESULT: &'static str = "alert_detail";
}
impl ControlResponse for Offers {
    const RESULT: &'static str = "offers";
}

/// The node's view of itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusView {
    /// This node's key.
    pub node_key: AuthorKey,
    /// The node's libp2p peer id.
    pub peer_id: String,
    /// Federation name.
    pub federation: String,
    /// Daemon version.
    pub version: String,
    /// Start time, ms since the epoch.
    pub started_at: u64,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// TCP ports the p2p listener bound.
    pub p2p_ports: Vec<u16>,
    /// URL of the (public) status page.
    pub status_url: String,
    /// URL of the admin page when `admin_addr` is set (log in with the token of
    /// `DATA/admin.token`: `URL/login?token=TOKEN`).
    #[serde(default)]
    pub admin_url: Option<String>,
    /// URL of the Prometheus endpoint when `metrics_addr` is set.
    #[serde(default)]
    pub metrics_url: Option<String>,
    /// Members trusted now (`peers` also lists the keys out of trust).
    pub members: usize,
    /// Members connected now.
    pub connected: usize,
    /// Alerts known.
    pub alerts: usize,
    /// Live mirror offers.
    pub offers: usize,
    /// Messages in the store.
    pub stored_messages: usize,
    /// Sequence number of the newest message this node signed in its chain (0: none yet).
    #[serde(default)]
    pub own_seq: u64,
    /// Why this node signs nothing yet: its store holds less of its own chain than it had
    /// signed, and it waits to sync it from a member (`solidarity node --fresh-chain`
    /// overrides).
    #[serde(default)]
    pub signing_paused: Option<String>,
    /// When a fork proved that this node's own key is used by another party.
    pub own_key_compromised_at: Option<u64>,
    /// Since when this node's own key is revoked.
    pub own_key_revoked_since: Option<u64>,
    /// Tor, when the node uses it.
    #[serde(default)]
    pub tor: Option<TorView>,
}

/// How the node stands with tor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TorView {
    /// `tor-only` or `clearnet`.
    pub profile: String,
    /// Tor is reachable, bootstrapped, and the onion services are published.
    pub ready: bool,
    /// One line for the admin: what is up, or why not.
    pub state: String,
    /// The p2p onion address members dial (`/onion3/…`), when the node has one.
    pub onion: Option<String>,
    /// The status page's onion URL, when it is published so.
    pub status_onion: Option<String>,
}

/// One alert in full: its state, history and every member's standing stance on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertDetail {
    /// The alert, its updates (with notes), corroboration and suspect mark.
    pub alert: AlertView,
    /// Each other member's standing endorsement or dispute, with its note.
    pub stances: Vec<StanceView>,
}

/// A member's standing endorsement or dispute of an alert.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StanceView {
    /// The member.
    pub author: AuthorKey,
    /// Endorse or dispute.
    pub stance: Stance,
    /// Its note.
    pub note: Option<String>,
    /// When it took the stance, ms since the epoch.
    pub created_at: u64,
}

/// One listed key as this node sees it: a member trusted now, a key that a revocation, a
/// fork or the end of its certificate took out of trust (`trusted` false, `distrust` says
/// why), or a collective identity key on the admin's list. Never holds an address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    /// The member's name, as the admin gave it.
    pub name: String,
    /// The collective it belongs to (its name unless the admin said otherwise).
    pub collective: String,
    /// Its key.
    pub key: AuthorKey,
    /// Whether a connection is up now.
    pub connected: bool,
    /// Creation time of the newest message seen from it, ms since the epoch.
    pub last_message_at: Option<u64>,
    /// When a fork proved its key is in two hands; its messages are refused since.
    pub compromised_at: Option<u64>,
    /// Its warrant canary, once one was seen.
    pub canary: Option<CanaryView>,
    /// Empty when this node's admin added it; else the names of the members that vouched.
    pub vouched_by: Vec<String>,
    /// For a vouched member: the other labels its vouchers gave (its name is the first
    /// one given; a vouch never renames a member).
    #[serde(default)]
    pub label_conflicts: Vec<String>,
    /// Revoked by its own revocation: its messages from this time on are suspect.
    pub revoked_since: Option<u64>,
    /// For a node key trusted through its collective's certificate: when it ends.
    pub certified_until: Option<u64>,
    /// The path by which it is (or was, when `trusted` is false) trusted.
    pub trust: TrustBasis,
    /// Trusted now: admitted, dialled, its messages accepted.
    pub trusted: bool,
    /// Why it is no longer trusted (none when `trusted`).
    pub distrust: Option<Distrust>,
    /// Some of its messages were held back in the last minutes: over which budget.
    #[serde(default)]
    pub over_budget: Option<OverBudget>,
}

/// Which per-member budget held its messages back (SPEC §10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverBudget {
    /// More messages per minute than `member_messages_per_minute`.
    MessageRate,
    /// More bytes per minute than `member_kib_per_minute`.
    ByteRate,
    /// More stored here than `member_stored_mib`.
    StoredBytes,
}

impl OverBudget {
    /// How the admin reads it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::MessageRate => "over its message rate",
            Self::ByteRate => "over its byte rate",
            Self::StoredBytes => "over its stored bytes",
        }
    }
}

/// Why a key is (or was) trusted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "basis", rename_all = "snake_case")]
pub enum TrustBasis {
    /// The admin added it to the members file.
    AddedByAdmin,
    /// A collective identity on the admin's list certified it.
    Certified {
        /// The identity's name.
        identity: String,
        /// End of the certificate, ms since the epoch.
        until: u64,
    },
    /// Trusted members vouched for it.
    Vouched {
        /// The vouchers' names.
        by: Vec<String>,
        /// Vouches needed.
        threshold: usize,
    },
    /// A collective identity key on the admin's list: it certifies node keys, never
    /// connects itself.
    Identity,
}

/// Why a listed key is no longer trusted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Distrust {
    /// Revoked; its messages from `since` on are suspect.
    Revoked {
        /// Suspect from then on, ms since the epoch.
        since: u64,
        /// Who signed the revocation.
        by: RevocationSigner,
    },
    /// The identity that certified it is revoked: its certificates no longer count (the
    /// key itself is not revoked by that alone, see SPEC §13).
    IdentityRevoked {
        /// The identity's name.
        identity: String,
        /// Since when the identity is revoked, ms since the epoch.
        since: u64,
    },
    /// A fork proved the key is in two hands.
    Compromised {
        /// When this node detected it, ms since the epoch.
        detected_at: u64,
        /// Its messages from this seq on are suspect.
        from_seq: u64,
    },
    /// Its certificate ended.
    CertificateEnded {
        /// When, ms since the epoch.
        at: u64,
    },
}

/// Who signed a revocation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "signer", rename_all = "snake_case")]
pub enum RevocationSigner {
    /// The revoked key itself (a pre-generated revocation certificate).
    Itself,
    /// The collective identity that certified it.
    Identity {
        /// The identity's name.
        name: String,
    },
}

/// A member's warrant canary as this node reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryView {
    /// Creation time of its latest canary, ms since the epoch.
    pub last_at: u64,
    /// When the next one was due, ms since the epoch (before the grace period).
    pub due_at: u64,
    /// What the canary says.
    pub state: CanaryState,
    /// Codes its latest canary does not state (each denies an event that happened).
    pub withdrawn: Vec<CanaryCode>,
}

/// What a member's canary says, most alarming first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CanaryState {
    /// The latest canary carries the member's duress key: its admins are coerced.
    Duress,
    /// The next canary is overdue past the grace period: the member went silent.
    Silent,
    /// The latest canary does not state every code (see `withdrawn`).
    Changed,
    /// On time, nothing withdrawn.
    Ok,
}
