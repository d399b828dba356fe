//! Backup and restore: `solidarity export` pages through the stored envelopes, verbatim,
//! and `solidarity import` hands them back to be checked like received ones.

use serde::{Deserialize, Serialize};
use solidarity_proto::MessageId;

use crate::ControlResponse;

/// Envelope bytes, verbatim (hex in JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EnvelopeBytes(#[serde(with = "crate::request::hex_bytes")] pub Vec<u8>);

/// One page of the stored chain messages, in id order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedPage {
    /// The envelopes.
    pub envelopes: Vec<EnvelopeBytes>,
    /// Where the next page starts; none after the last.
    pub next: Option<MessageId>,
}

/// What an export holds beside the chain messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedExtras {
    /// Every stored statement (revocations, node certificates): imported first, as sync
    /// sends them first.
    pub statements: Vec<EnvelopeBytes>,
    /// Each author's latest canaries, kept past their expiry (SPEC §13.3).
    pub kept_canaries: Vec<EnvelopeBytes>,
    /// Per key marked compromised after a fork: the conflicting envelopes kept as
    /// evidence, with the stored messages they conflict with (while they are stored).
    pub fork_evidence: Vec<Vec<EnvelopeBytes>>,
    /// The members file's text, when asked for.
    pub members: Option<String>,
}

/// What became of each envelope of an import, in the order sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Imported {
    /// One outcome per envelope.
    pub outcomes: Vec<ImportOutcome>,
}

/// What an import did with one envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ImportOutcome {
    /// Valid and now durably stored.
    Stored,
    /// Already held here: nothing changed.
    Held,
    /// It conflicts with a stored message of its signer: kept as fork evidence, and the
    /// key is marked compromised.
    ForkEvidence,
    /// It expired since it was exported: not stored.
    Expired,
    /// Valid but not stored here now; `retry`: it may be once the rest of the file is in
    /// (its signer's trust comes from a vouch or statement of the same file).
    Ignored {
        /// Why.
        reason: String,
        /// Worth sending again after the rest.
        retry: bool,
    },
    /// Invalid (bad signature, malformed, another federation): not stored.
    Rejected {
        /// Why.
        reason: String,
    },
}

impl ControlResponse for ExportedPage {
    const RESULT: &'static str = "exported_page";
}
impl ControlResponse for ExportedExtras {
    const RESULT: &'static str = "exported_extras";
}
impl ControlResponse for Imported {
    const RESULT: &'static str = "imported";
}
