//! The validation verdict: a pure function of (envelope bytes, now, trust view, store lookups).
//!
//! Checks run cheapest first; the signature is verified only after every check that can
//! reject without it. Order (normative, SPEC.md §9):
//! 1. size ≤ [`MAX_ENVELOPE_BYTES`], envelope decodes, `v` is supported;
//! 2. the id is already stored → Ignore(duplicate) (no signature check needed);
//! 3. the signer is a member → else Ignore(not member); then the payload header decodes,
//!    federation, seq/prev chain shape, kind name shape;
//! 4. `verify_strict`;
//! 5. clock window and expiry (Ignore: a peer is not punished for clocks);
//! 6. another message already holds (signer, seq), or the message names a `prev` other than
//!    the stored message at seq − 1 → Fork: two validly signed, conflicting messages prove
//!    the key is in two hands;
//! 7. a known kind's body decodes and keeps its limits; an update or withdrawal whose target
//!    is stored targets a message of the same signer and the right kind → else Ignore(not
//!    author / wrong target).
//!
//! Reject (which penalises the forwarding peer) is kept for what every honest relay refuses
//! whatever its member list and store: Ignore is used wherever the verdict depends on the
//! receiver's member list, store contents or clock, since those legitimately differ between
//! honest nodes.

use crate::envelope::{Envelope, MAX_ENVELOPE_BYTES};
use crate::ids::{AuthorKey, FederationId, MessageId};
use crate::payload::{self, Body, FieldError, Payload};

/// Largest accepted lead of `created_at` over the receiver's clock, in milliseconds.
pub const MAX_CLOCK_SKEW_MS: u64 = 10 * 60 * 1000;

/// What the validation decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Store it, show it if the kind is known, relay it.
    Accept(Box<Accepted>),
    /// Drop it without penalising the peer that forwarded it.
    Ignore(IgnoreReason),
    /// Drop it and penalise the peer that forwarded it.
    Reject(RejectReason),
    /// Validly signed, but conflicting with a stored message of the same author: keep it as
    /// evidence, stop trusting the key, relay it so every node learns of the fork.
    Fork(Box<Fork>),
}

/// Proof that an author key signed two conflicting chains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fork {
    /// Content id of the new message.
    pub id: MessageId,
    /// The author whose key signed both.
    pub signer: AuthorKey,
    /// The new message's header.
    pub payload: Payload,
    /// The stored message it conflicts with.
    pub conflicting: MessageId,
    /// Where the chains diverge.
    pub point: ForkPoint,
}

/// How two messages of one author conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForkPoint {
    /// Both carry the same seq.
    SameSeq,
    /// The new message's `prev` is not the stored message at seq − 1.
    DivergentPrev,
}

/// A message that passed validation, with everything decoded once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Content id.
    pub id: MessageId,
    /// The author.
    pub signer: AuthorKey,
    /// The decoded header.
    pub payload: Payload,
    /// The decoded body ([`Body::Unknown`] for kinds this version does not know).
    pub body: Body,
}

/// Reasons to drop a message without penalty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreReason {
    /// Already stored.
    #[error("duplicate")]
    Duplicate,
    /// `created_at` is further ahead of our clock than [`MAX_CLOCK_SKEW_MS`].
    #[error("created in the future (clock skew)")]
    FromFuture,
    /// `expires_at` has passed.
    #[error("expired")]
    Expired,
    /// The signer is not a member of our federation (member lists differ between nodes).
    #[error("signer is not a member")]
    NotMember,
    /// An update or withdrawal refers to a stored message of another author (whether the
    /// target is stored depends on arrival order).
    #[error("only the author of a message may update or withdraw it")]
    NotAuthor,
    /// An update or withdrawal refers to a stored message of the wrong kind.
    #[error("update or withdrawal targets a message of the wrong kind")]
    WrongTarget,
}

/// Reasons to drop a message and penalise the forwarding peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    /// Larger than [`MAX_ENVELOPE_BYTES`].
    #[error("envelope of {0} bytes is over the limit")]
    Oversize(usize),
    /// The envelope or payload header does not decode.
    #[error("malformed: {0}")]
    Malformed(String),
    /// `v` is not a version this node speaks.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// The payload names another federation.
    #[error("message of another federation")]
    WrongFederation,
    /// `seq` is 0, or `prev` is present on seq 1 / absent on later seqs.
    #[error("sequence number and prev do not fit together")]
    BadChain,
    /// The kind name has a forbidden shape.
    #[error("invalid kind name")]
    BadKind,
    /// `expires_at` is not after `created_at`.
    #[error("expires before it was created")]
    BadExpiry,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// A known kind's body breaks its schema.
    #[error("{0}")]
    BadBody(String),
    /// A field breaks its limit.
    #[error("{0}")]
    FieldLimit(FieldError),
}

/// Who this node trusts.
pub trait TrustView {
    /// Whether messages signed by `key` are accepted.
    fn is_member(&self, key: &AuthorKey) -> bool;
}

/// What validation needs to know about stored messages.
pub trait Lookup {
    /// Whether a message with this id is stored.
    fn contains(&self, id: &MessageId) -> bool;
    /// The id stored for (author, seq), if any.
    fn id_at(&self, author: &AuthorKey, seq: u64) -> Option<MessageId>;
    /// Author and kind of a stored message.
    fn author_and_kind(&self, id: &MessageId) -> Option<(AuthorKey, String)>;
}

/// Proof that an envelope's signature passed `verify_strict`, made ahead of validation so
/// that a batch (a sync page) can be verified on several threads. Only
/// [`check_signature`] makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignatureChecked {
    id: MessageId,
}

/// Verifies the signature of the envelope `bytes` alone (`verify_strict`, like
/// [`validate`]); `None` when it does not decode or does not verify.
pub fn check_signature(bytes: &[u8]) -> Option<SignatureChecked> {
    if bytes.len() > MAX_ENVELOPE_BYTES {
        return None;
    }
    let envelope = Envelope::decode(bytes).ok()?;
    envelope
        .verify()
        .then(|| SignatureChecked { id: envelope.id() })
}

/// Decides what to do with the envelope `bytes`, received at `now_ms`.
pub fn validate(
    bytes: &[u8],
    now_ms: u64,
    federation: &FederationId,
    trust: &impl TrustView,
    lookup: &impl Lookup,
) -> Verdict {
    validate_checked(bytes, now_ms, federation, trust, lookup, None)
}

/// As [`validate`]; a `checked` proof for these bytes stands in for the signature check
/// (a proof for other bytes is ignored and the signature verified as usual).
pub fn validate_checked(
    bytes: &[u8],
    now_ms: u64,
    federation: &FederationId,
    trust: &impl TrustView,
    lookup: &impl Lookup,
    checked: Option<SignatureChecked>,
) -> Verdict {
    match check(bytes, now_ms, federation, trust, lookup, checked) {
        Ok(accepted) => Verdict::Accept(Box::new(accepted)),
        Err(Outcome::Ignore(reason)) => Verdict::Ignore(reason),
        Err(Outcome::Reject(reason)) => Verdict::Reject(reason),
        Err(Outcome::Fork(fork)) => Verdict::Fork(fork),
    }
}

enum Outcome {
    Ignore(IgnoreReason),
    Reject(RejectReason),
    Fork(Box<Fork>),
}

fn reject(reason: RejectReason) -> Outcome {
    Outcome::Reject(reason)
}

fn check(
    bytes: &[u8],
    now_ms: u64,
    federation: &FederationId,
    trust: &impl TrustView,
    lookup: &impl Lookup,
    checked: Option<SignatureChecked>,
) -> Result<Accepted, Outcome> {
    if bytes.len() > MAX_ENVELOPE_BYTES {
        return Err(reject(RejectReason::Oversize(bytes.len())));
    }
    let envelope =
        Envelope::decode(bytes).map_err(|e| reject(RejectReason::Malformed(e.to_string())))?;
    if envelope.v != crate::PROTOCOL_VERSION {
        return Err(reject(RejectReason::UnsupportedVersion(envelope.v)));
    }
    let id = envelope.id();
    if lookup.contains(&id) {
        return Err(Outcome::Ignore(IgnoreReason::Duplicate));
    }
    let member = trust.is_member(&envelope.signer);
    let payload = Payload::decode(&envelope.payload);
    // A statement (revocation, certificate) only speaks for its signer: it is welcome from
    // any key, a revocation most of all from one no longer trusted.
    let statement = payload
        .as_ref()
        .is_ok_and(|payload| payload::is_statement_kind(&payload.kind));
    if !member && !statement {
        return Err(Outcome::Ignore(IgnoreReason::NotMember));
    }
    let payload = payload.map_err(|e| reject(RejectReason::Malformed(e.to_string())))?;
    if payload.fed != *federation {
        return Err(reject(RejectReason::WrongFederation));
    }
    let chain_ok = match (payload.seq, payload.prev) {
        (0, prev) => prev.is_none() && payload::is_statement_kind(&payload.kind),
        (1, prev) => prev.is_none() && !payload::is_statement_kind(&payload.kind),
        (_, prev) => prev.is_some() && !payload::is_statement_kind(&payload.kind),
    };
    if !chain_ok {
        return Err(reject(RejectReason::BadChain));
    }
    if !payload::is_valid_kind_name(&payload.kind) {
        return Err(reject(RejectReason::BadKind));
    }
    if payload
        .expires_at
        .is_some_and(|expires| expires <= payload.created_at)
    {
        return Err(reject(RejectReason::BadExpiry));
    }
    let proven = checked.is_some_and(|checked| checked.id == id);
    if !proven && !envelope.verify() {
        return Err(reject(RejectReason::BadSignature));
    }
    if payload.created_at > now_ms.saturating_add(MAX_CLOCK_SKEW_MS) {
        return Err(Outcome::Ignore(IgnoreReason::FromFuture));
    }
    if payload.expires_at.is_some_and(|expires| expires <= now_ms) {
        return Err(Outcome::Ignore(IgnoreReason::Expired));
    }
    // Statements (seq 0) stand outside the chain and cannot fork it.
    let same_seq = lookup
        .id_at(&envelope.signer, payload.seq)
        .filter(|_| payload.seq > 0)
        .filter(|other| *other != id)
        .map(|other| (other, ForkPoint::SameSeq));
    let divergent_prev = || {
        let before = lookup.id_at(
            &envelope.signer,
            payload.seq.checked_sub(1).filter(|seq| *seq > 0)?,
        )?;
        (Some(before) != payload.prev).then_some((before, ForkPoint::DivergentPrev))
    };
    if let Some((conflicting, point)) = same_seq.or_else(divergent_prev) {
        return Err(Outcome::Fork(Box::new(Fork {
            id,
            signer: envelope.signer,
            payload,
            conflicting,
            point,
        })));
    }
    let body = Body::decode(&payload.kind, &payload.body).map_err(|e| match e {
        payload::BodyError::Field(field) => reject(RejectReason::FieldLimit(field)),
        decode @ payload::BodyError::Decode { .. } => {
            reject(RejectReason::BadBody(decode.to_string()))
        }
    })?;
    // Anyone may endorse or dispute an alert, but only an alert; one updates or withdraws
    // only what one signed. A target we have not seen yet is accepted: the derived state
    // only ever applies updates whose signer matches the target's author, whatever the
    // arrival order.
    let rule = crate::kinds::facts(&payload.kind).and_then(|facts| facts.target);
    if let (Some(rule), Some(target)) = (rule, body.refers_to())
        && let Some((author, kind)) = lookup.author_and_kind(&target)
    {
        if rule.same_author && author != envelope.signer {
            return Err(Outcome::Ignore(IgnoreReason::NotAuthor));
        }
        if kind != rule.kind {
            return Err(Outcome::Ignore(IgnoreReason::WrongTarget));
        }
    }
    Ok(Accepted {
        id,
        signer: envelope.signer,
        payload,
        body,
    })
}
