//! The solidarity protocol core, sans-IO.
//!
//! It owns the wire types (envelope, payload, message kinds, sync messages), their
//! canonical bytes, content ids, signing and verification, the validation verdict and
//! the derived state of alerts and mirror offers.
//!
//! Architecture invariant: no tokio, libp2p, sled, clock or randomness here. Time is an
//! argument (`now_ms`), keys are passed in, storage is reached through the [`Lookup`] and
//! [`TrustView`] traits. `protocol-spec/SPEC.md` is the normative description of every byte.
//!
//! Layout:
//! - [`codec`]: the only module that names the CBOR library.
//! - [`ids`]: 32-byte identifiers (author keys, message ids, federation ids).
//! - [`envelope`]: signed envelope, signing, id computation.
//! - [`payload`]: the signed payload header and the v1 message kinds with their limits.
//! - [`kinds`]: the one table of per-kind facts (chain or statement, target, shown, trust).
//! - [`mod@validate`]: the pure validation function and its verdicts.
//! - [`text`]: the characters refused in every text field and what counts as blank.
//! - [`sync`]: the catch-up exchange (watermarks in, missing envelopes out).
//! - [`state`]: derived current state of alerts and mirror offers.
//! - [`trust`]: whom a node trusts: its admin's list, certificates, vouches, revocations.

#![warn(missing_docs)]

pub mod codec;
pub mod duress;
pub mod envelope;
mod field_rules;
pub mod ids;
pub mod kinds;
pub mod payload;
pub mod state;
pub mod sync;
pub mod text;
pub mod trust;
pub mod validate;

pub use envelope::{Envelope, SignedMessage};
pub use ids::{AuthorKey, FederationId, MessageId};
pub use payload::{Body, Payload};
pub use validate::{
    Accepted, Fork, ForkPoint, IgnoreReason, Lookup, RejectReason, SignatureChecked, TrustView,
    Verdict, check_signature, validate, validate_checked,
};

/// Protocol version carried in every envelope's `v` field.
pub const PROTOCOL_VERSION: u8 = 1;
