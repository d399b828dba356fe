//! Why the daemon refused a request: a stable code for scripts and one line for the admin.
//!
//! On the wire a refusal is `{"result":"error","code":"no_such_alert","message":"…"}`.
//! The `code` is part of the control API: a code is never renamed or reused for another
//! reason (a test pins every one); new reasons get new codes. A reader meets a code it does
//! not know (a newer daemon), or none at all (a daemon from before codes), as
//! [`RefusalCode::Unknown`] and still has the message. Nothing was changed by a refused
//! request unless its message says otherwise (a storage failure stops the daemon).

use serde::{Deserialize, Serialize};

/// A refused request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// What scripts match on.
    #[serde(default)]
    pub code: RefusalCode,
    /// One line for the admin, naming the state that made the daemon refuse.
    pub message: String,
}

impl Refusal {
    /// A refusal with its code and message.
    pub fn new(code: RefusalCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Every reason the daemon refuses a request, by its stable snake_case wire name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    // The request itself.
    /// The request line is not a request of this API (or could not be read).
    MalformedRequest,
    /// The request line is over [`crate::MAX_REQUEST_BYTES`].
    RequestTooLarge,
    /// The client sent no complete request in time.
    RequestTimeout,
    /// The caller is neither the daemon's user nor root.
    NotDaemonUser,
    /// The daemon is shutting down and takes no more requests.
    ShuttingDown,
    /// The daemon stopped before answering; the request may or may not have been carried out.
    StoppedBeforeAnswer,
    /// Too many store reads for the CLI are running now; ask again in a moment.
    Busy,
    /// `notify test` named a channel that `config.toml` does not have.
    NoSuchChannel,
    // The store.
    /// The store could not be read (or holds a message that no longer decodes).
    StoreUnreadable,
    /// A write failed: the message was not published and the daemon stops.
    StorageFailed,
    /// The store did not take the message; nothing was published.
    StoreRefused,
    // Members.
    /// The members file does not load or does not make a valid member list.
    MembersFileInvalid,
    /// `member retrust` of a key that is not marked compromised.
    NotCompromised,
    /// A node vouching for itself.
    SelfVouch,
    // Alerts.
    /// An event date that is not a real calendar date.
    InvalidEventDate,
    /// No stored alert has this id.
    NoSuchAlert,
    /// Only the author of an alert or offer may update or withdraw it.
    NotAuthor,
    /// The alert is retracted: a retraction is final.
    AlertRetracted,
    /// The status does not apply to an alert of this kind.
    StatusNotForKind,
    /// The alert already has this status and the update carries no note.
    StatusUnchanged,
    /// An author endorsing or disputing its own alert.
    OwnAlert,
    /// This node already holds this stance on the alert.
    StanceUnchanged,
    /// A retraction of a stance this node does not hold.
    NoStance,
    // Mirror offers.
    /// No stored offer has this id (expired offers are deleted).
    NoSuchOffer,
    /// The offer expired already.
    OfferExpired,
    /// The offer is withdrawn already.
    OfferWithdrawn,
    // Signing and publishing.
    /// A message of a kind this node cannot sign.
    UnknownKind,
    /// This node's key is revoked: it signs nothing more.
    OwnKeyRevoked,
    /// A fork proved this node's key is in two hands: it signs nothing more.
    OwnKeyCompromised,
    /// Signing waits until this node has its own chain back from a member.
    SigningPaused,
    /// This node's chain is at the highest sequence number there is.
    ChainExhausted,
    /// The message would be ignored by every member (a duplicate, out of the clock window,
    /// over a budget).
    MessageIgnored,
    /// The message is invalid (checked like any received message).
    MessageRejected,
    /// The store already holds another message at this signer's sequence number.
    ConflictsWithStored,
    /// Only statements (revocations, certificates) signed elsewhere may be published as such.
    NotAStatement,
    /// A code this reader does not know, or none (a daemon from before codes).
    #[default]
    #[serde(other)]
    Unknown,
}

impl RefusalCode {
    /// Every code but [`RefusalCode::Unknown`], in declaration order.
    pub const ALL: [Self; 35] = [
        Self::MalformedRequest,
        Self::RequestTooLarge,
        Self::RequestTimeout,
        Self::NotDaemonUser,
        Self::ShuttingDown,
        Self::StoppedBeforeAnswer,
        Self::StoreUnreadable,
        Self::StorageFailed,
        Self::StoreRefused,
        Self::MembersFileInvalid,
        Self::NotCompromised,
        Self::SelfVouch,
        Self::InvalidEventDate,
        Self::NoSuchAlert,
        Self::NotAuthor,
        Self::AlertRetracted,
        Self::StatusNotForKind,
        Self::StatusUnchanged,
        Self::OwnAlert,
        Self::StanceUnchanged,
        Self::NoStance,
        Self::NoSuchOffer,
        Self::OfferExpired,
        Self::OfferWithdrawn,
        Self::UnknownKind,
        Self::OwnKeyRevoked,
        Self::OwnKeyCompromised,
        Self::SigningPaused,
        Self::ChainExhausted,
        Self::MessageIgnored,
        Self::MessageRejected,
        Self::ConflictsWithStored,
        Self::NotAStatement,
        Self::Busy,
        Self::NoSuchChannel,
    ];

    /// Its wire name, e.g. `no_such_alert`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::MalformedRequest => "malformed_request",
            Self::RequestTooLarge => "request_too_large",
            Self::RequestTimeout => "request_timeout",
            Self::NotDaemonUser => "not_daemon_user",
            Self::ShuttingDown => "shutting_down",
            Self::StoppedBeforeAnswer => "stopped_before_answer",
            Self::Busy => "busy",
            Self::NoSuchChannel => "no_such_channel",
            Self::StoreUnreadable => "store_unreadable",
            Self::StorageFailed => "storage_failed",
            Self::StoreRefused => "store_refused",
            Self::MembersFileInvalid => "members_file_invalid",
            Self::NotCompromised => "not_compromised",
            Self::SelfVouch => "self_vouch",
            Self::InvalidEventDate => "invalid_event_date",
            Self::NoSuchAlert => "no_such_alert",
            Self::NotAuthor => "not_author",
            Self::AlertRetracted => "alert_retracted",
            Self::StatusNotForKind => "status_not_for_kind",
            Self::StatusUnchanged => "status_unchanged",
            Self::OwnAlert => "own_alert",
            Self::StanceUnchanged => "stance_unchanged",
            Self::NoStance => "no_stance",
            Self::NoSuchOffer => "no_such_offer",
            Self::OfferExpired => "offer_expired",
            Self::OfferWithdrawn => "offer_withdrawn",
            Self::UnknownKind => "unknown_kind",
            Self::OwnKeyRevoked => "own_key_revoked",
            Self::OwnKeyCompromised => "own_key_compromised",
            Self::SigningPaused => "signing_paused",
            Self::ChainExhausted => "chain_exhausted",
            Self::MessageIgnored => "message_ignored",
            Self::MessageRejected => "message_rejected",
            Self::ConflictsWithStored => "conflicts_with_stored",
            Self::NotAStatement => "not_a_statement",
        }
    }
}

impl std::fmt::Display for RefusalCode {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire names scripts match on: changing one breaks them, so this list only grows.
    const PINNED: [&str; 35] = [
        "malformed_request",
        "request_too_large",
        "request_timeout",
        "not_daemon_user",
        "shutting_down",
        "stopped_before_answer",
        "store_unreadable",
        "storage_failed",
        "store_refused",
        "members_file_invalid",
        "not_compromised",
        "self_vouch",
        "invalid_event_date",
        "no_such_alert",
        "not_author",
        "alert_retracted",
        "status_not_for_kind",
        "status_unchanged",
        "own_alert",
        "stance_unchanged",
        "no_stance",
        "no_such_offer",
        "offer_expired",
        "offer_withdrawn",
        "unknown_kind",
        "own_key_revoked",
        "own_key_compromised",
        "signing_paused",
        "chain_exhausted",
        "message_ignored",
        "message_rejected",
        "conflicts_with_stored",
        "not_a_statement",
        "busy",
        "no_such_channel",
    ];

    #[test]
    fn every_code_keeps_its_wire_name_and_reads_back() {
        for (code, pinned) in RefusalCode::ALL.into_iter().zip(PINNED) {
            let json = serde_json::to_value(code).expect("encode");
            assert_eq!(json, serde_json::Value::String(pinned.to_owned()));
            assert_eq!(code.as_str(), pinned);
            let back: RefusalCode = serde_json::from_value(json).expect("decode");
            assert_eq!(back, code);
        }
    }

    #[test]
    fn a_refusal_reads_as_its_message_and_carries_its_code() {
        let refusal = Refusal::new(RefusalCode::NoSuchAlert, "no alert with id 00ab");
        assert_eq!(refusal.to_string(), "no alert with id 00ab");
        let json = serde_json::to_string(&refusal).expect("encode");
        assert_eq!(
            json,
            r#"{"code":"no_such_alert","message":"no alert with id 00ab"}"#
        );
    }

    #[test]
    fn unknown_or_missing_codes_read_as_unknown_with_their_message() {
        let newer: Refusal =
            serde_json::from_str(r#"{"code":"from_the_future","message":"m"}"#).expect("newer");
        assert_eq!(newer, Refusal::new(RefusalCode::Unknown, "m"));
        let older: Refusal = serde_json::from_str(r#"{"message":"m"}"#).expect("older");
        assert_eq!(older, Refusal::new(RefusalCode::Unknown, "m"));
    }
}
