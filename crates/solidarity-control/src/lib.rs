//! The control API shared by the daemon and the CLI.
//!
//! - Transport: a Unix socket `control.sock` in the node's data dir (dir 0700, socket
//!   0600); one request per connection.
//! - Framing: the client writes one JSON [`Request`] and a newline; the daemon answers one
//!   JSON [`Response`] and a newline, then closes.
//! - Every CLI command is one request variant with a typed client method below.
//!
//! Architecture invariant: this crate holds types and a blocking client only; the server
//! side lives in the node. It depends on `solidarity-proto` for the message types, nothing else.

#![warn(missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use solidarity_proto::payload::{Alert, AlertStatus, CanaryCode, MirrorOffer, Stance};
use solidarity_proto::state::{AlertView, OfferView};
use solidarity_proto::{AuthorKey, MessageId};

/// File name of the socket inside the data dir.
pub const SOCKET_FILE: &str = "control.sock";
/// Largest request line the daemon reads; larger ones are refused unread.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// Largest response the client reads (a listing of every alert fits many times over).
pub const MAX_RESPONSE_BYTES: u64 = 256 * 1024 * 1024;
/// How long the client waits for the daemon.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A command to the daemon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The node's own state → [`Response::Status`].
    Status,
    /// Members and their connectivity, keys out of trust (revoked, forked, certificate
    /// ended) and the admin's identity keys → [`Response::Peers`].
    Peers,
    /// Counters in the Prometheus text format → [`Response::Metrics`].
    Metrics,
    /// The member card with the addresses bound now → [`Response::Card`].
    Card,
    /// Re-read the members file → [`Response::Done`].
    ReloadMembers,
    /// Trust again a key marked compromised after a fork (the admin has checked with its
    /// collective) → [`Response::Done`].
    MemberRetrust {
        /// The key.
        key: AuthorKey,
    },
    /// Sign, store durably, publish → [`Response::Raised`].
    AlertRaise {
        /// The alert.
        alert: Alert,
        /// Lifetime from now, ms; none: no expiry.
        expires_in_ms: Option<u64>,
    },
    /// Update one of this node's own alerts → [`Response::Raised`].
    AlertUpdate {
        /// The alert's id.
        alert: MessageId,
        /// The new state.
        status: AlertStatus,
        /// Free text.
        note: Option<String>,
    },
    /// The newest alerts with their state (every stored alert with `all`) →
    /// [`Response::Alerts`].
    AlertList {
        /// Every stored alert, not only the newest the status page shows.
        #[serde(default)]
        all: bool,
    },
    /// One alert with everything known about it → [`Response::AlertDetail`].
    AlertShow {
        /// The alert's id.
        alert: MessageId,
    },
    /// Endorse, dispute, or retract this node's stance on another member's alert →
    /// [`Response::Raised`].
    AlertEndorse {
        /// The alert's id.
        alert: MessageId,
        /// The stance.
        stance: Stance,
        /// Free text.
        note: Option<String>,
    },
    /// Vouch for a new member, or withdraw this node's vouch → [`Response::Raised`].
    MemberVouch {
        /// Its node key.
        key: AuthorKey,
        /// The name it goes by.
        name: String,
        /// Its addresses (multiaddrs).
        addresses: Vec<String>,
        /// False to withdraw.
        vouch: bool,
    },
    /// Publish a mirror offer → [`Response::Raised`].
    MirrorOffer {
        /// The offer.
        offer: MirrorOffer,
        /// Validity from now, ms.
        valid_for_ms: u64,
    },
    /// Withdraw one of this node's offers → [`Response::Raised`].
    MirrorWithdraw {
        /// The offer's id.
        offer: MessageId,
    },
    /// Every live offer → [`Response::Offers`].
    MirrorList,
    /// Publish this node's canary now → [`Response::Raised`]. Withdrawn and restored codes
    /// stick for later scheduled canaries.
    CanaryPublish {
        /// Codes to withdraw (the event happened).
        withdraw: Vec<CanaryCode>,
        /// Codes to state again.
        restore: Vec<CanaryCode>,
    },
    /// Publish a statement signed elsewhere, e.g. a pre-generated revocation, after
    /// checking it like any received message → [`Response::Raised`].
    PublishStatement {
        /// The envelope bytes.
        #[serde(with = "hex_bytes")]
        envelope: Vec<u8>,
    },
    /// Publish a canary that looks normal but carries a duress token → [`Response::Raised`].
    CanaryDuress {
        /// The duress token (hex in JSON): a fresh nonce and its tag under the duress
        /// commitment of the admins' passphrase (SPEC §8.7.1).
        token: MessageId,
    },
}

/// The daemon's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    /// See [`StatusView`].
    Status(Box<StatusView>),
    /// The node's and gossipsub's counters, Prometheus text format (counts only: no
    /// label names a peer or an address).
    Metrics {
        /// The exposition text.
        text: String,
    },
    /// One entry per member.
    Peers {
        /// The members.
        members: Vec<MemberView>,
    },
    /// A one-line member card.
    Card {
        /// The card.
        card: String,
    },
    /// Done, nothing to report.
    Done,
    /// A message was signed and is durably stored; publishing is under way.
    Raised {
        /// Its id.
        id: MessageId,
    },
    /// Alerts, most severe and newest first.
    Alerts {
        /// The alerts.
        alerts: Vec<AlertView>,
    },
    /// One alert in full.
    AlertDetail(Box<AlertDetail>),
    /// Live mirror offers.
    Offers {
        /// The offers.
        offers: Vec<OfferView>,
    },
    /// The request was refused; nothing changed.
    Error {
        /// One line for the admin.
        message: String,
    },
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

/// Byte strings as hex in JSON.
mod hex_bytes {
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

/// Why a control call failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Nobody listens on the socket (the CLI adds how to start the daemon).
    #[error("the solidarity daemon is not running for data dir {}", data_dir.display())]
    DaemonNotRunning {
        /// The data dir.
        data_dir: PathBuf,
    },
    /// The socket exists but may not be opened.
    #[error("no permission to use the control socket {socket}: run as the daemon's user")]
    PermissionDenied {
        /// The socket path.
        socket: PathBuf,
    },
    /// Talking to the daemon failed midway.
    #[error("control connection failed: {source}")]
    Io {
        /// Why.
        #[from]
        source: std::io::Error,
    },
    /// The daemon closed the connection without answering.
    #[error(
        "the daemon closed the connection without answering (is it stopping?); the request may or may not have been carried out"
    )]
    NoAnswer,
    /// The daemon's answer does not parse.
    #[error("the daemon sent an answer this CLI cannot read (version mismatch?): {source}")]
    BadResponse {
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The daemon refused the request.
    #[error("{message}")]
    Refused {
        /// The daemon's reason.
        message: String,
    },
    /// The daemon answered with a response of the wrong type.
    #[error("the daemon answered {got} to a request that expects {expected}")]
    Unexpected {
        /// What was expected.
        expected: &'static str,
        /// What came.
        got: String,
    },
}

/// Why a request line was refused by the daemon.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Over [`MAX_REQUEST_BYTES`].
    #[error("request larger than {MAX_REQUEST_BYTES} bytes")]
    TooLarge,
    /// Not a request.
    #[error("malformed request: {0}")]
    Malformed(#[from] serde_json::Error),
}

/// Parses one request line.
pub fn parse_request(line: &[u8]) -> Result<Request, RequestError> {
    if line.len() > MAX_REQUEST_BYTES {
        return Err(RequestError::TooLarge);
    }
    Ok(serde_json::from_slice(line)?)
}

/// Encodes a response line (with its newline).
pub fn encode_response(response: &Response) -> Vec<u8> {
    let mut line = serde_json::to_vec(response).unwrap_or_else(|error| {
        // The response types hold only strings, integers and ids: this cannot fail.
        format!("{{\"result\":\"error\",\"message\":\"cannot encode response: {error}\"}}")
            .into_bytes()
    });
    line.push(b'\n');
    line
}

/// The socket path inside a data dir.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_FILE)
}

/// Blocking client of one node's control socket.
#[derive(Debug, Clone)]
pub struct Client {
    data_dir: PathBuf,
}

macro_rules! expect {
    ($response:expr, $pattern:pat => $value:expr, $expected:literal) => {
        match $response {
            $pattern => Ok($value),
            other => Err(ControlError::Unexpected {
                expected: $expected,
                got: format!("{other:?}").chars().take(80).collect(),
            }),
        }
    };
}

impl Client {
    /// A client of the node whose data dir is `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
        }
    }

    /// Sends one request and returns the daemon's answer; a refusal becomes an error.
    pub fn call(&self, request: &Request) -> Result<Response, ControlError> {
        let socket = socket_path(&self.data_dir);
        let mut stream = UnixStream::connect(&socket).map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                ControlError::DaemonNotRunning {
                    data_dir: self.data_dir.clone(),
                }
            }
            std::io::ErrorKind::PermissionDenied => ControlError::PermissionDenied {
                socket: socket.clone(),
            },
            _ => ControlError::Io { source: error },
        })?;
        stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
        stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
        let mut line = serde_json::to_vec(request).map_err(|source| ControlError::Io {
            source: std::io::Error::other(source),
        })?;
        line.push(b'\n');
        stream.write_all(&line)?;
        let mut answer = Vec::new();
        BufReader::new(stream.take(MAX_RESPONSE_BYTES)).read_until(b'\n', &mut answer)?;
        if answer.is_empty() {
            return Err(ControlError::NoAnswer);
        }
        let response: Response = serde_json::from_slice(&answer)
            .map_err(|source| ControlError::BadResponse { source })?;
        match response {
            Response::Error { message } => Err(ControlError::Refused { message }),
            other => Ok(other),
        }
    }

    /// `solidarity status`.
    pub fn status(&self) -> Result<StatusView, ControlError> {
        expect!(self.call(&Request::Status)?, Response::Status(status) => *status, "status")
    }

    /// `solidarity metrics`.
    pub fn metrics(&self) -> Result<String, ControlError> {
        expect!(self.call(&Request::Metrics)?, Response::Metrics { text } => text, "metrics")
    }

    /// `solidarity peers`, by name then key.
    pub fn peers(&self) -> Result<Vec<MemberView>, ControlError> {
        let mut members =
            expect!(self.call(&Request::Peers)?, Response::Peers { members } => members, "peers")?;
        members.sort_by(|a, b| a.name.cmp(&b.name).then(a.key.cmp(&b.key)));
        Ok(members)
    }

    /// `solidarity id` while the daemon runs.
    pub fn card(&self) -> Result<String, ControlError> {
        expect!(self.call(&Request::Card)?, Response::Card { card } => card, "card")
    }

    /// Lifts the compromise mark of a key.
    pub fn retrust(&self, key: AuthorKey) -> Result<(), ControlError> {
        expect!(self.call(&Request::MemberRetrust { key })?, Response::Done => (), "done")
    }

    /// Tells the daemon the members file changed.
    pub fn reload_members(&self) -> Result<(), ControlError> {
        expect!(self.call(&Request::ReloadMembers)?, Response::Done => (), "done")
    }

    /// Sends a request that signs a message; returns its id once durably stored.
    pub fn sign(&self, request: &Request) -> Result<MessageId, ControlError> {
        expect!(self.call(request)?, Response::Raised { id } => id, "raised")
    }

    /// `solidarity alert list`.
    pub fn alerts(&self) -> Result<Vec<AlertView>, ControlError> {
        expect!(self.call(&Request::AlertList { all: false })?, Response::Alerts { alerts } => alerts, "alerts")
    }

    /// `solidarity alert list --all`: every stored alert.
    pub fn all_alerts(&self) -> Result<Vec<AlertView>, ControlError> {
        expect!(self.call(&Request::AlertList { all: true })?, Response::Alerts { alerts } => alerts, "alerts")
    }

    /// `solidarity alert show`.
    pub fn alert_show(&self, alert: MessageId) -> Result<AlertDetail, ControlError> {
        expect!(self.call(&Request::AlertShow { alert })?, Response::AlertDetail(detail) => *detail, "alert detail")
    }

    /// `solidarity mirror list`.
    pub fn offers(&self) -> Result<Vec<OfferView>, ControlError> {
        expect!(self.call(&Request::MirrorList)?, Response::Offers { offers } => offers, "offers")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_unknown_fields_are_refused() {
        let request = Request::AlertUpdate {
            alert: MessageId([1; 32]),
            status: AlertStatus::Confirmed,
            note: Some("seen".into()),
        };
        let line = serde_json::to_vec(&request).expect("encode");
        assert_eq!(parse_request(&line).expect("parse"), request);
        let extra = format!(
            r#"{{"op":"mirror_withdraw","offer":"{}","extra":1}}"#,
            "00".repeat(32)
        );
        assert!(parse_request(extra.as_bytes()).is_err());
        assert!(parse_request(b"not json").is_err());
        assert!(matches!(
            parse_request(&vec![b' '; MAX_REQUEST_BYTES + 1]),
            Err(RequestError::TooLarge)
        ));
    }

    #[test]
    fn a_missing_daemon_is_named_as_such() {
        let dir = std::env::temp_dir().join("solidarity-no-daemon-here");
        let error = Client::new(&dir).status().expect_err("no daemon");
        assert!(
            matches!(error, ControlError::DaemonNotRunning { .. }),
            "{error}"
        );
    }
}
