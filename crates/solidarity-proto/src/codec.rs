//! CBOR encoding, kept in this one module so that replacing serde_cbor (which carries an
//! "unmaintained" advisory) with another CBOR library touches one file.
//!
//! Encoding rules: structs become maps keyed by field name in declaration order, byte
//! strings use `serde_bytes`, no floats and no hash maps appear in signed data.

use serde::{Serialize, de::DeserializeOwned};

/// Why bytes could not be decoded as the expected CBOR structure.
#[derive(Debug, thiserror::Error)]
#[error("malformed CBOR: {reason}")]
pub struct DecodeError {
    reason: String,
}

impl DecodeError {
    pub(crate) fn new(reason: String) -> Self {
        Self { reason }
    }
}

/// Encodes a value as CBOR.
///
/// Encoding the protocol's own types cannot fail (no maps with non-string keys, no
/// unsupported types); the `Vec` is returned directly for that reason.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    match serde_cbor::to_vec(value) {
        Ok(bytes) => bytes,
        // The protocol types are plain structs of integers, strings, byte strings and
        // sequences; serde_cbor only fails on I/O errors of its writer (a Vec cannot fail).
        Err(error) => unreachable!("CBOR encoding of a protocol type failed: {error}"),
    }
}

/// Decodes one complete CBOR item; trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    serde_cbor::from_slice(bytes).map_err(|error| DecodeError {
        reason: error.to_string(),
    })
}

/// Decodes one complete CBOR item and requires `bytes` to be exactly what [`encode`]
/// produces for the decoded value.
///
/// The decoder is lenient (any key order, byte-string or integer keys, arrays for maps,
/// tags, indefinite lengths, non-minimal integers), so without this check the same
/// envelope has many encodings and anyone relaying it could change its bytes, keeping its
/// id and signature valid.
pub fn decode_canonical<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let value: T = decode(bytes)?;
    if encode(&value) != bytes {
        return Err(DecodeError {
            reason: "not in canonical encoding".to_owned(),
        });
    }
    Ok(value)
}
