//! The signed payload header and the v1 message kinds, with their field limits.
//!
//! A payload is `{ fed, seq, prev?, created_at, expires_at?, kind, body }`. `body` is the
//! CBOR encoding of the kind's own map, carried as a byte string, so a node can check and
//! relay a message of a kind it does not know without understanding its body.

use serde::{Deserialize, Serialize};

use crate::body_shape::{ShapeError, decode_body};
use crate::codec::{self, DecodeError};
pub use crate::duress::*;
use crate::field_rules::{
    TextShape, is_iso_date, jurisdictions, list, optional, optional_line, problem, required,
    too_many,
};
pub use crate::field_rules::{is_calendar_date, is_jurisdiction_code, is_valid_kind_name};
use crate::ids::{AuthorKey, FederationId, MessageId};

/// Kind name of [`Alert`].
pub const KIND_ALERT: &str = "alert";
/// Kind name of [`AlertUpdate`].
pub const KIND_ALERT_UPDATE: &str = "alert-update";
/// Kind name of [`MirrorOffer`].
pub const KIND_MIRROR_OFFER: &str = "mirror-offer";
/// Kind name of [`MirrorWithdraw`].
pub const KIND_MIRROR_WITHDRAW: &str = "mirror-withdraw";
/// Kind name of [`Canary`].
pub const KIND_CANARY: &str = "canary";
/// Kind name of [`Endorsement`].
pub const KIND_ENDORSEMENT: &str = "endorsement";
/// Kind name of [`Vouch`].
pub const KIND_VOUCH: &str = "vouch";
/// Kind name of [`Revocation`].
pub const KIND_REVOCATION: &str = "revocation";
/// Kind name of [`NodeCert`].
pub const KIND_NODE_CERT: &str = "node-cert";

/// Whether messages of this kind are **statements**: signed with seq 0 outside the
/// author's chain, so they can be made offline and in advance and published by anyone at
/// any time. A statement only speaks for its signer, so it is accepted from any key.
pub fn is_statement_kind(kind: &str) -> bool {
    crate::kinds::is_statement(kind)
}

/// Longest kind name, in bytes. Kind names are `[a-z0-9./-]+`.
pub const MAX_KIND_BYTES: usize = 64;
/// Longest alert subject (a host or domain name fits in 253).
pub const MAX_SUBJECT_BYTES: usize = 253;
/// Longest one-line summary.
pub const MAX_SUMMARY_BYTES: usize = 200;
/// Longest free-text details of an alert.
pub const MAX_DETAILS_BYTES: usize = 8192;
/// Longest note on an update, data policy or conditions of an offer.
pub const MAX_NOTE_BYTES: usize = 2000;
/// Longest short text field (authority, legal basis, upstream, contact, list items).
pub const MAX_SHORT_TEXT_BYTES: usize = 256;
/// Longest member name in a vouch.
pub const MAX_NAME_BYTES: usize = 64;
/// Most items in any list field.
pub const MAX_LIST_ITEMS: usize = 32;

/// The signed payload header. Field names and order are normative.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    /// The federation this message belongs to.
    pub fed: FederationId,
    /// The author's sequence number: 1 for their first message, then +1 per message.
    pub seq: u64,
    /// Id of the author's message with `seq - 1`; absent exactly when `seq == 1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<MessageId>,
    /// Creation time, milliseconds since the Unix epoch (UTC).
    pub created_at: u64,
    /// Expiry time in the same unit; after it nodes delete the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// The message kind, e.g. `alert`.
    pub kind: String,
    /// The kind's body, CBOR-encoded.
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

impl Payload {
    /// Decodes a payload header (the body stays opaque). The bytes must be the header's
    /// canonical encoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        codec::decode_canonical(bytes)
    }
}

/// Alert category (what happened).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs, reason = "the variant names are the documentation")]
pub enum AlertCategory {
    Seizure,
    Raid,
    Takedown,
    LegalRequest,
    GagOrder,
    Intrusion,
    KeyCompromise,
    Outage,
}

/// The legal instrument behind a legal request or takedown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs, reason = "the variant names are the documentation")]
pub enum LegalType {
    Subpoena,
    Warrant,
    CourtOrder,
    DataRetentionOrder,
    PreservationOrder,
    GagOrder,
    TakedownNotice,
    Other,
}

/// How bad it is. Ordered from least to most severe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs, reason = "the variant names are the documentation")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

/// What the authority got hold of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs, reason = "the variant names are the documentation")]
pub enum Seized {
    None,
    EncryptedOnly,
    Metadata,
    Content,
    Keys,
    Unknown,
}

/// An alert's lifecycle state, set by its author's updates.
///
/// General: open → confirmed → resolved | retracted. Legal requests: received → contested →
/// complied | partially_complied | refused → gag_active → disclosed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs, reason = "the variant names are the documentation")]
pub enum AlertStatus {
    Open,
    Confirmed,
    Resolved,
    Retracted,
    Received,
    Contested,
    Complied,
    PartiallyComplied,
    Refused,
    GagActive,
    Disclosed,
}

impl AlertStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [AlertStatus; 11] = [
        AlertStatus::Open,
        AlertStatus::Confirmed,
        AlertStatus::Resolved,
        AlertStatus::Retracted,
        AlertStatus::Received,
        AlertStatus::Contested,
        AlertStatus::Complied,
        AlertStatus::PartiallyComplied,
        AlertStatus::Refused,
        AlertStatus::GagActive,
        AlertStatus::Disclosed,
    ];

    /// Whether an author may set this status on an alert of `category` (SPEC §8.4): the
    /// general statuses on every kind; the legal-process statuses on legal requests, gag
    /// orders and takedowns; `gag_active` and `disclosed` only on legal requests and gag
    /// orders. Receivers do not check it.
    pub fn applies_to(self, category: AlertCategory) -> bool {
        use AlertCategory::{GagOrder, LegalRequest, Takedown};
        match self {
            AlertStatus::Open
            | AlertStatus::Confirmed
            | AlertStatus::Resolved
            | AlertStatus::Retracted => true,
            AlertStatus::Received
            | AlertStatus::Contested
            | AlertStatus::Complied
            | AlertStatus::PartiallyComplied
            | AlertStatus::Refused => matches!(category, LegalRequest | GagOrder | Takedown),
            AlertStatus::GagActive | AlertStatus::Disclosed => {
                matches!(category, LegalRequest | GagOrder)
            }
        }
    }

    /// The statuses an author may set on an alert of `category`, in lifecycle order.
    pub fn valid_for(category: AlertCategory) -> Vec<AlertStatus> {
        Self::ALL
            .into_iter()
            .filter(|status| status.applies_to(category))
            .collect()
    }

    /// A retracted alert is final: its author sends no update after it (SPEC §8.4).
    pub fn is_final(self) -> bool {
        self == AlertStatus::Retracted
    }

    /// Resolved or retracted: no longer calls for action. Every other status is open.
    pub fn is_closed(self) -> bool {
        matches!(self, AlertStatus::Resolved | AlertStatus::Retracted)
    }
}

/// A service a mirror offer can take over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs, reason = "the variant names are the documentation")]
pub enum MirrorService {
    Web,
    Git,
    Mail,
    Lists,
    Dns,
    Onion,
    Pads,
    Storage,
    Chat,
}

/// An alert (kind `alert`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// What happened.
    pub category: AlertCategory,
    /// The legal instrument, for legal requests, gag orders and takedowns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_type: Option<LegalType>,
    /// How bad it is.
    pub severity: Severity,
    /// The server or domain concerned.
    pub subject: String,
    /// One line.
    pub summary: String,
    /// Free text, may span lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    /// ISO 3166-1 alpha-2 codes of the jurisdictions involved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jurisdictions: Vec<String>,
    /// The issuing authority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// The legal basis invoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_basis: Option<String>,
    /// When it happened, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_date: Option<String>,
    /// What was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seized: Option<Seized>,
    /// Affected services.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    /// Affected domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    /// The upstream (hosting or network) provider involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// References (case numbers, URLs of public statements).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
}

/// A lifecycle update of an alert (kind `alert-update`). Only the alert's author may send one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertUpdate {
    /// Id of the alert.
    pub alert: MessageId,
    /// The new state.
    pub status: AlertStatus,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// An offer to take over a threatened member's content or services (kind `mirror-offer`).
/// Its validity is the payload's `expires_at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorOffer {
    /// Services offered, at least one.
    pub services: Vec<MirrorService>,
    /// Storage offered, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_bytes: Option<u64>,
    /// ISO 3166-1 alpha-2 codes of where the mirror would run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jurisdictions: Vec<String>,
    /// Upstream provider of the mirror.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// What the mirror logs and for how long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_policy: Option<String>,
    /// Conditions attached to the offer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<String>,
    /// How to reach the offering collective.
    pub contact: String,
}

/// A CanaryTail-style code: present in a canary, it states that the event has NOT happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CanaryCode {
    /// No warrant was served.
    Warrant,
    /// No gag order was received.
    Gag,
    /// No subpoena was received.
    Subpoena,
    /// No trap-and-trace order was received.
    Trap,
    /// No cease-and-desist was received.
    Cease,
    /// The admins are not under duress.
    Duress,
    /// No raid happened.
    Raid,
    /// No hardware or data was seized.
    Seize,
    /// No credentials were compromised.
    Xcred,
    /// No operator was coerced or compromised.
    Xopers,
}

impl CanaryCode {
    /// Every code, in a fixed order.
    pub const ALL: [CanaryCode; 10] = [
        CanaryCode::Warrant,
        CanaryCode::Gag,
        CanaryCode::Subpoena,
        CanaryCode::Trap,
        CanaryCode::Cease,
        CanaryCode::Duress,
        CanaryCode::Raid,
        CanaryCode::Seize,
        CanaryCode::Xcred,
        CanaryCode::Xopers,
    ];
}

/// A signed warrant canary (kind `canary`), published on a schedule. Members treat a
/// missing canary as an alarm (dead-man's switch) and a withdrawn code as news.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Canary {
    /// Free text, e.g. "As of today we have received no warrant…".
    pub statement: String,
    /// Codes still true (each states that the event has NOT happened).
    pub codes: Vec<CanaryCode>,
    /// Seconds until the next canary is due; members count a member silent once it is
    /// overdue by their grace period.
    pub interval_secs: u64,
    /// 32 random bytes, or, under duress, a duress token ([`duress_token`]) that only the
    /// members holding the duress commitment of the member card can recognise.
    #[serde(with = "serde_bytes")]
    pub token: Vec<u8>,
}

/// A member's stance on someone else's alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stance {
    /// "We see it too."
    Endorse,
    /// "We have reason to doubt it."
    Dispute,
    /// Cancels the signer's own earlier endorsement or dispute, nothing else.
    Retract,
}

/// A member endorses or disputes an alert (kind `endorsement`). The signer's latest
/// endorsement of an alert (by seq) is its stance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endorsement {
    /// Id of the alert.
    pub alert: MessageId,
    /// The stance.
    pub stance: Stance,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A member vouches for a new member, or withdraws its vouch (kind `vouch`). Each node
/// accepts a key vouched for by enough members it trusts (its own threshold).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vouch {
    /// The vouched-for node key.
    pub member: AuthorKey,
    /// The name it goes by.
    pub name: String,
    /// Where it listens (multiaddrs as text), so members can dial it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// False to withdraw the signer's vouch.
    pub vouch: bool,
}

/// A key is compromised (kind `revocation`, a statement with seq 0). Typically generated
/// in advance and kept offline; anyone may publish it. It revokes its signer, or a node key
/// the signing collective identity certified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// Why, one line.
    pub reason: String,
    /// The revoked key when it is not the signer: a node key certified by the signer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<AuthorKey>,
    /// Messages the key signed from this time on (ms since the epoch) are suspect; absent:
    /// from the revocation's own `created_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compromised_since: Option<u64>,
}

/// A collective's offline identity key vouches that a node key speaks for the collective
/// for a limited time (kind `node-cert`, a statement with seq 0, signed by the identity).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCert {
    /// The certified node key.
    pub node_key: AuthorKey,
    /// Valid from (ms since the epoch).
    pub valid_from: u64,
    /// Valid until (ms since the epoch), exclusive.
    pub valid_until: u64,
    /// Where the node listens (multiaddrs as text), so members can dial it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
}

/// Withdrawal of the signer's own mirror offer (kind `mirror-withdraw`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorWithdraw {
    /// Id of the offer.
    pub offer: MessageId,
}

/// A decoded body of a kind this node understands, or the marker for one it does not.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs, reason = "each variant wraps the kind of the same name")]
pub enum Body {
    Alert(Alert),
    AlertUpdate(AlertUpdate),
    MirrorOffer(MirrorOffer),
    MirrorWithdraw(MirrorWithdraw),
    Canary(Canary),
    Endorsement(Endorsement),
    Vouch(Vouch),
    Revocation(Revocation),
    NodeCert(NodeCert),
    /// A kind this version does not know: relayed and stored, not displayed.
    Unknown,
}

/// Why a body was refused.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body is not the CBOR map its kind requires.
    #[error("body of kind {kind:?}: {source}")]
    Decode {
        /// The kind.
        kind: String,
        /// The decoder's complaint.
        source: DecodeError,
    },
    /// A field breaks its limit.
    #[error(transparent)]
    Field(#[from] FieldError),
}

/// A field that breaks its limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}` {problem}")]
pub struct FieldError {
    /// Field name.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: FieldProblem,
}

/// What is wrong with a field; the limits are stated so the author can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldProblem {
    /// Longer than its limit, in UTF-8 bytes.
    #[error("is too long: {given} bytes, at most {max}")]
    TooLong {
        /// The limit.
        max: usize,
        /// The given length.
        given: usize,
    },
    /// A list item longer than its limit, in UTF-8 bytes.
    #[error("has an item that is too long: {given} bytes, at most {max}")]
    ItemTooLong {
        /// The limit.
        max: usize,
        /// The given length.
        given: usize,
    },
    /// More items than its limit.
    #[error("has too many items: {given}, at most {max}")]
    TooManyItems {
        /// The limit.
        max: usize,
        /// The given count.
        given: usize,
    },
    /// A character refused in every text field (SPEC §8.1): a format character such as a
    /// bidi control or a zero-width character, or a line or paragraph separator.
    #[error(
        "contains U+{:04X}, an invisible formatting character (bidi controls, zero-width characters and line separators are not allowed)",
        u32::from(*.0)
    )]
    Invisible(char),
    /// Another rule, stated in words.
    #[error("{0}")]
    Rule(&'static str),
}

impl Body {
    /// The message this body updates, endorses or withdraws.
    pub fn refers_to(&self) -> Option<MessageId> {
        match self {
            Body::AlertUpdate(update) => Some(update.alert),
            Body::Endorsement(endorsement) => Some(endorsement.alert),
            Body::MirrorWithdraw(withdraw) => Some(withdraw.offer),
            _ => None,
        }
    }

    /// The kind name this body travels under.
    pub fn kind(&self) -> Option<&'static str> {
        Some(match self {
            Body::Alert(_) => KIND_ALERT,
            Body::AlertUpdate(_) => KIND_ALERT_UPDATE,
            Body::MirrorOffer(_) => KIND_MIRROR_OFFER,
            Body::MirrorWithdraw(_) => KIND_MIRROR_WITHDRAW,
            Body::Canary(_) => KIND_CANARY,
            Body::Endorsement(_) => KIND_ENDORSEMENT,
            Body::Vouch(_) => KIND_VOUCH,
            Body::Revocation(_) => KIND_REVOCATION,
            Body::NodeCert(_) => KIND_NODE_CERT,
            Body::Unknown => return None,
        })
    }

    /// The body's CBOR bytes (empty for [`Body::Unknown`]).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Body::Alert(body) => codec::encode(body),
            Body::AlertUpdate(body) => codec::encode(body),
            Body::MirrorOffer(body) => codec::encode(body),
            Body::MirrorWithdraw(body) => codec::encode(body),
            Body::Canary(body) => codec::encode(body),
            Body::Endorsement(body) => codec::encode(body),
            Body::Vouch(body) => codec::encode(body),
            Body::Revocation(body) => codec::encode(body),
            Body::NodeCert(body) => codec::encode(body),
            Body::Unknown => Vec::new(),
        }
    }

    /// Decodes and checks the body of a payload of the given kind, by the rule of SPEC
    /// §8.2: a body that is not the kind's canonical map (known keys in declaration order,
    /// unknown keys skipped) is [`BodyError::Decode`]; a decoded field that breaks a limit,
    /// a 32-byte id or key of another length included, is [`BodyError::Field`].
    pub fn decode(kind: &str, bytes: &[u8]) -> Result<Self, BodyError> {
        fn shaped<T: Serialize + serde::de::DeserializeOwned>(
            kind: &str,
            bytes: &[u8],
            fixed: &[&'static str],
        ) -> Result<T, BodyError> {
            decode_body(bytes, fixed).map_err(|error| match error {
                ShapeError::Decode(source) => BodyError::Decode {
                    kind: kind.to_owned(),
                    source,
                },
                ShapeError::Field(field) => BodyError::Field(field),
            })
        }
        let body = match kind {
            KIND_ALERT => Body::Alert(shaped(kind, bytes, &[])?),
            KIND_ALERT_UPDATE => Body::AlertUpdate(shaped(kind, bytes, &["alert"])?),
            KIND_MIRROR_OFFER => Body::MirrorOffer(shaped(kind, bytes, &[])?),
            KIND_MIRROR_WITHDRAW => Body::MirrorWithdraw(shaped(kind, bytes, &["offer"])?),
            KIND_CANARY => Body::Canary(shaped(kind, bytes, &[])?),
            KIND_ENDORSEMENT => Body::Endorsement(shaped(kind, bytes, &["alert"])?),
            KIND_VOUCH => Body::Vouch(shaped(kind, bytes, &["member"])?),
            KIND_REVOCATION => Body::Revocation(shaped(kind, bytes, &["key"])?),
            KIND_NODE_CERT => Body::NodeCert(shaped(kind, bytes, &["node_key"])?),
            _ => Body::Unknown,
        };
        body.check()?;
        Ok(body)
    }

    /// Checks every field against its limit.
    pub fn check(&self) -> Result<(), FieldError> {
        match self {
            Body::Alert(alert) => alert.check(),
            Body::AlertUpdate(update) => optional(
                "note",
                update.note.as_deref(),
                MAX_NOTE_BYTES,
                TextShape::MultiLine,
            ),
            Body::MirrorOffer(offer) => offer.check(),
            Body::Canary(canary) => canary.check(),
            Body::Endorsement(endorsement) => optional(
                "note",
                endorsement.note.as_deref(),
                MAX_NOTE_BYTES,
                TextShape::MultiLine,
            ),
            Body::Revocation(revocation) => {
                required("reason", &revocation.reason, MAX_SHORT_TEXT_BYTES)
            }
            Body::NodeCert(cert) => {
                if cert.valid_until <= cert.valid_from {
                    return Err(problem("valid_until", "must be after valid_from"));
                }
                list("addresses", &cert.addresses)
            }
            Body::Vouch(vouch) => {
                required("name", &vouch.name, MAX_NAME_BYTES)?;
                list("addresses", &vouch.addresses)
            }
            Body::MirrorWithdraw(_) | Body::Unknown => Ok(()),
        }
    }
}

impl Alert {
    /// Checks every field against its limit.
    pub fn check(&self) -> Result<(), FieldError> {
        required("subject", &self.subject, MAX_SUBJECT_BYTES)?;
        required("summary", &self.summary, MAX_SUMMARY_BYTES)?;
        optional(
            "details",
            self.details.as_deref(),
            MAX_DETAILS_BYTES,
            TextShape::MultiLine,
        )?;
        jurisdictions("jurisdictions", &self.jurisdictions)?;
        optional_line("authority", self.authority.as_deref())?;
        optional_line("legal_basis", self.legal_basis.as_deref())?;
        if let Some(date) = &self.event_date
            && !is_iso_date(date)
        {
            return Err(problem("event_date", "must be YYYY-MM-DD"));
        }
        list("services", &self.services)?;
        list("domains", &self.domains)?;
        optional_line("upstream", self.upstream.as_deref())?;
        list("references", &self.references)
    }
}

impl MirrorOffer {
    /// Checks every field against its limit.
    pub fn check(&self) -> Result<(), FieldError> {
        if self.services.is_empty() {
            return Err(problem("services", "must name at least one service"));
        }
        too_many("services", self.services.len(), MAX_LIST_ITEMS)?;
        jurisdictions("jurisdictions", &self.jurisdictions)?;
        optional_line("upstream", self.upstream.as_deref())?;
        optional(
            "data_policy",
            self.data_policy.as_deref(),
            MAX_NOTE_BYTES,
            TextShape::MultiLine,
        )?;
        optional(
            "conditions",
            self.conditions.as_deref(),
            MAX_NOTE_BYTES,
            TextShape::MultiLine,
        )?;
        required("contact", &self.contact, MAX_SHORT_TEXT_BYTES)
    }
}

impl Canary {
    /// Checks every field against its limit; the fixed-length `token` first (SPEC §8.2).
    pub fn check(&self) -> Result<(), FieldError> {
        if self.token.len() != 32 {
            return Err(problem("token", "must be 32 bytes"));
        }
        optional(
            "statement",
            Some(&self.statement),
            MAX_NOTE_BYTES,
            TextShape::MultiLine,
        )?;
        too_many("codes", self.codes.len(), CanaryCode::ALL.len())?;
        if self.interval_secs == 0 {
            return Err(problem("interval_secs", "must be positive"));
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn duress_tokens_share_nothing_and_only_the_commitment_recognises_them() {
        let author = crate::AuthorKey([7; 32]);
        let started = std::time::Instant::now();
        let key = duress_key(&author, "orange balloons at dawn");
        eprintln!("Argon2id duress key derived in {:?}", started.elapsed());
        let commitment = duress_commitment(&key);
        let first = duress_token(&commitment, &author, [1; DURESS_NONCE_BYTES]);
        let second = duress_token(&commitment, &author, [2; DURESS_NONCE_BYTES]);
        assert_ne!(first, second);
        assert_ne!(first[DURESS_NONCE_BYTES..], second[DURESS_NONCE_BYTES..]);
        assert!(
            first != key && second != key,
            "the key never leaves the CLI"
        );
        assert!(is_duress_token(&commitment, &author, &first));
        assert!(is_duress_token(&commitment, &author, &second));
        // A routine random token, another member's commitment, another author's canary.
        assert!(!is_duress_token(&commitment, &author, &[3; 32]));
        let other = duress_commitment(&duress_key(&author, "another passphrase"));
        assert!(!is_duress_token(&other, &author, &first));
        assert!(!is_duress_token(
            &commitment,
            &crate::AuthorKey([8; 32]),
            &first
        ));
        assert!(!is_duress_token(&commitment, &author, &first[..31]));
    }

    pub(crate) fn sample_alert() -> Alert {
        Alert {
            category: AlertCategory::Seizure,
            legal_type: None,
            severity: Severity::Critical,
            subject: "a.example".into(),
            summary: "Two servers taken from our rack at 06:00".into(),
            details: None,
            jurisdictions: vec!["FR".into()],
            authority: None,
            legal_basis: None,
            event_date: Some("2026-11-28".into()),
            seized: Some(Seized::Unknown),
            services: vec![],
            domains: vec![],
            upstream: None,
            references: vec![],
        }
    }

    #[test]
    fn body_round_trips_through_its_kind() {
        let body = Body::Alert(sample_alert());
        let decoded = Body::decode(KIND_ALERT, &body.encode()).expect("decodes");
        assert_eq!(decoded, body);
    }

    #[test]
    fn limits_name_the_field() {
        let mut alert = sample_alert();
        alert.summary = "x".repeat(MAX_SUMMARY_BYTES + 1);
        assert_eq!(alert.check().map_err(|e| e.field), Err("summary"));
        let mut alert = sample_alert();
        alert.summary = "two\nlines".into();
        assert_eq!(alert.check().map_err(|e| e.field), Err("summary"));
        let mut alert = sample_alert();
        alert.jurisdictions = vec!["France".into()];
        assert_eq!(alert.check().map_err(|e| e.field), Err("jurisdictions"));
        let mut alert = sample_alert();
        alert.event_date = Some("28/11/2026".into());
        assert_eq!(alert.check().map_err(|e| e.field), Err("event_date"));
    }

    #[test]
    fn limit_errors_state_the_limit_and_the_size() {
        let mut alert = sample_alert();
        alert.summary = "x".repeat(MAX_SUMMARY_BYTES + 50);
        assert_eq!(
            alert.check().expect_err("too long").to_string(),
            "field `summary` is too long: 250 bytes, at most 200"
        );
        let mut alert = sample_alert();
        alert.references = vec!["r".into(); MAX_LIST_ITEMS + 1];
        assert_eq!(
            alert.check().expect_err("too many").to_string(),
            "field `references` has too many items: 33, at most 32"
        );
        let mut alert = sample_alert();
        alert.domains = vec!["d".repeat(300)];
        assert_eq!(
            alert.check().expect_err("item too long").to_string(),
            "field `domains` has an item that is too long: 300 bytes, at most 256"
        );
    }

    #[test]
    fn calendar_dates_know_months_and_leap_years() {
        for good in ["2026-11-28", "2024-02-29", "2000-02-29", "2026-12-31"] {
            assert!(is_calendar_date(good), "{good}");
        }
        for bad in [
            "2026-02-29",
            "1900-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-04-31",
            "2026-01-00",
            "28/11/2026",
            "2026-1-1",
        ] {
            assert!(!is_calendar_date(bad), "{bad}");
        }
    }

    #[test]
    fn legal_statuses_only_for_legal_kinds() {
        assert!(AlertStatus::GagActive.applies_to(AlertCategory::GagOrder));
        assert!(AlertStatus::GagActive.applies_to(AlertCategory::LegalRequest));
        assert!(!AlertStatus::GagActive.applies_to(AlertCategory::Takedown));
        assert!(!AlertStatus::Received.applies_to(AlertCategory::Seizure));
        assert!(AlertStatus::Refused.applies_to(AlertCategory::Takedown));
        assert_eq!(
            AlertStatus::valid_for(AlertCategory::Outage),
            vec![
                AlertStatus::Open,
                AlertStatus::Confirmed,
                AlertStatus::Resolved,
                AlertStatus::Retracted
            ]
        );
        assert!(AlertStatus::Retracted.is_final() && !AlertStatus::Resolved.is_final());
    }

    #[test]
    fn unknown_kinds_decode_as_unknown() {
        assert_eq!(
            Body::decode("key-cert", b"anything").expect("unknown is fine"),
            Body::Unknown
        );
        assert!(is_valid_kind_name("key-cert/2"));
        assert!(!is_valid_kind_name("Alert"));
        assert!(!is_valid_kind_name(""));
    }
}
