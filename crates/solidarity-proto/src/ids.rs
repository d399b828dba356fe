//! 32-byte identifiers. They encode as CBOR byte strings and as lowercase hex in
//! human-readable formats (JSON, the CLI).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// Why a hex identifier could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("expected 64 hexadecimal characters, got {got:?}")]
pub struct ParseIdError {
    got: String,
}

macro_rules! id32 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// Lowercase hex, 64 characters.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// The first 8 hex characters, for logs and narrow tables.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(s.trim(), &mut out).map_err(|_| ParseIdError {
                    got: s.chars().take(80).collect(),
                })?;
                Ok(Self(out))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                if serializer.is_human_readable() {
                    serializer.serialize_str(&self.to_hex())
                } else {
                    serializer.serialize_bytes(&self.0)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                if deserializer.is_human_readable() {
                    let text = String::deserialize(deserializer)?;
                    text.parse().map_err(de::Error::custom)
                } else {
                    deserializer.deserialize_bytes(Bytes32Visitor).map($name)
                }
            }
        }
    };
}

struct Bytes32Visitor;

impl<'de> de::Visitor<'de> for Bytes32Visitor {
    type Value = [u8; 32];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string of exactly 32 bytes")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        v.try_into()
            .map_err(|_| E::invalid_length(v.len(), &"32 bytes"))
    }
}

id32!(
    /// An author's ed25519 public key (the envelope `signer`).
    AuthorKey
);
id32!(
    /// A message's content id: see [`crate::envelope::message_id`].
    MessageId
);
id32!(
    /// A federation's id: SHA-256 over a domain prefix and the federation's name.
    FederationId
);

/// Domain-separation prefix for federation ids.
pub const FEDERATION_ID_DOMAIN: &[u8] = b"solidarity/v1/federation\0";

impl FederationId {
    /// The id of the federation with this human name (all members configure the same name).
    pub fn from_name(name: &str) -> Self {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        hasher.update(FEDERATION_ID_DOMAIN);
        hasher.update(name.as_bytes());
        Self(hasher.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_short_form() {
        let id = MessageId([0xab; 32]);
        assert_eq!(id.to_hex().parse::<MessageId>(), Ok(id));
        assert_eq!(id.short(), "abababab");
        assert!("xyz".parse::<MessageId>().is_err());
    }

    #[test]
    fn json_is_hex_and_cbor_is_bytes() {
        let key = AuthorKey([7; 32]);
        let json = serde_json::to_string(&key).expect("json");
        assert_eq!(json, format!("\"{}\"", "07".repeat(32)));
        let cbor = crate::codec::encode(&key);
        assert_eq!(cbor[0], 0x58); // byte string, one-byte length follows
        assert_eq!(crate::codec::decode::<AuthorKey>(&cbor).expect("cbor"), key);
    }
}
