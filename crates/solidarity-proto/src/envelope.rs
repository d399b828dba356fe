//! The signed envelope: `{ v, signer, payload, sig }`.
//!
//! - The author encodes the [`Payload`] once; those exact bytes are signed, stored, gossiped
//!   and served verbatim. Nobody re-encodes a payload to verify it.
//! - `sig` = ed25519 over [`SIGNATURE_DOMAIN`] ‖ payload bytes, checked with `verify_strict`.
//! - The content id = SHA-256([`ID_DOMAIN`] ‖ signer ‖ payload bytes). It does not cover the
//!   signature or the envelope framing, so deduplication needs no signature check.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteArray;
use sha2::Digest;

use crate::codec::{self, DecodeError};
use crate::ids::{AuthorKey, MessageId};
use crate::payload::Payload;

/// Domain-separation prefix of the signed bytes.
pub const SIGNATURE_DOMAIN: &[u8] = b"solidarity/v1/sig\0";
/// Domain-separation prefix of the content id.
pub const ID_DOMAIN: &[u8] = b"solidarity/v1/id\0";
/// Largest encoded envelope a node accepts or produces, in bytes.
pub const MAX_ENVELOPE_BYTES: usize = 16 * 1024;

/// The wire envelope. Field names and order are normative (see SPEC.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Protocol version, [`crate::PROTOCOL_VERSION`].
    pub v: u8,
    /// The author's ed25519 public key.
    pub signer: AuthorKey,
    /// The payload's CBOR bytes, exactly as the author encoded them.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
    /// ed25519 signature over [`SIGNATURE_DOMAIN`] ‖ `payload`.
    pub sig: ByteArray<64>,
}

impl Envelope {
    /// Decodes an envelope without checking anything beyond its shape. The bytes must be
    /// the envelope's canonical encoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        codec::decode_canonical(bytes)
    }

    /// The envelope's CBOR bytes.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// The content id of this envelope.
    pub fn id(&self) -> MessageId {
        message_id(&self.signer, &self.payload)
    }

    /// Checks the signature with `verify_strict` (rejects small-order keys and
    /// non-canonical signatures).
    pub fn verify(&self) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(self.signer.as_bytes()) else {
            return false;
        };
        let signature = Signature::from_bytes(&self.sig);
        key.verify_strict(&signed_bytes(&self.payload), &signature)
            .is_ok()
    }
}

/// The content id of a payload by a signer.
pub fn message_id(signer: &AuthorKey, payload: &[u8]) -> MessageId {
    let mut hasher = sha2::Sha256::new();
    hasher.update(ID_DOMAIN);
    hasher.update(signer.as_bytes());
    hasher.update(payload);
    MessageId(hasher.finalize().into())
}

/// Content id of raw envelope bytes, or `None` when they are not an envelope.
/// Used as the gossipsub message id, so duplicates are dropped before any verification.
pub fn message_id_of_envelope_bytes(bytes: &[u8]) -> Option<MessageId> {
    if bytes.len() > MAX_ENVELOPE_BYTES {
        return None;
    }
    Envelope::decode(bytes).ok().map(|envelope| envelope.id())
}

fn signed_bytes(payload: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNATURE_DOMAIN.len() + payload.len());
    message.extend_from_slice(SIGNATURE_DOMAIN);
    message.extend_from_slice(payload);
    message
}

/// A freshly signed message: its id and its envelope bytes, ready to store and publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedMessage {
    /// Content id.
    pub id: MessageId,
    /// Encoded envelope.
    pub bytes: Vec<u8>,
}

/// Encodes `payload`, signs it with `key` and wraps it in an envelope.
pub fn sign(key: &SigningKey, payload: &Payload) -> SignedMessage {
    let payload_bytes = codec::encode(payload);
    let signer = AuthorKey(key.verifying_key().to_bytes());
    let sig = key.sign(&signed_bytes(&payload_bytes)).to_bytes();
    let envelope = Envelope {
        v: crate::PROTOCOL_VERSION,
        signer,
        payload: payload_bytes,
        sig: ByteArray::new(sig),
    };
    SignedMessage {
        id: envelope.id(),
        bytes: envelope.encode(),
    }
}

/// The author key of a signing key.
pub fn author_key(key: &SigningKey) -> AuthorKey {
    AuthorKey(key.verifying_key().to_bytes())
}

/// Domain-separation prefix of the gossip message id.
pub const RAW_GOSSIP_ID_DOMAIN: &[u8] = b"solidarity/v1/raw\0";

/// The gossipsub message id of received bytes: a hash of the bytes themselves, signature
/// included. A corrupted copy of a message (bad signature, another `v`) therefore has an
/// id of its own and cannot make gossipsub drop the honest copy as a duplicate; identical
/// copies share one id. (An envelope has one canonical encoding, so two valid copies of
/// one message differ only if its signer signed it twice.)
pub fn gossip_message_id(bytes: &[u8]) -> [u8; 32] {
    let mut hasher = sha2::Sha256::new();
    hasher.update(RAW_GOSSIP_ID_DOMAIN);
    hasher.update(bytes);
    hasher.finalize().into()
}
