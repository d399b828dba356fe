//! Catch-up sync: the requester says how far it has each author's chain, the responder
//! sends what is missing, in pages.
//!
//! - Requester → `SyncRequest { fed, have: [(author, seq)], limit }`. `have` lists every
//!   author the requester trusts with its *watermark*: the highest seq up to which it holds
//!   the author's chain without a gap (0 when it holds nothing of them).
//! - Responder → `SyncResponse { envelopes, more }`: for each listed author, first its own
//!   message at the watermark when that is not the requester's `head` (fork evidence), then
//!   the stored envelopes with seq above the watermark, in (author, seq) order, at most `limit` of
//!   them and at most [`MAX_PAGE_BYTES`]; `more` says a page was cut short.
//! - The requester validates every envelope like a gossiped one and, while `more`, asks
//!   again with its new watermarks (at most [`MAX_SYNC_ROUNDS`] times per session).
//!
//! Authors not listed in the request are never sent, so nodes never push messages of keys
//! the requester does not trust.
//!
//! A session begins with a **statement phase** (revocations and certificates, which stand
//! outside the chains): the requester sends `statements: [(signer, held ids)]` instead of
//! asking for chains, and the responder answers with statements only: every revocation
//! before any certificate, at most [`MAX_PAGE_STATEMENTS_PER_SIGNER`] per signer per page,
//! none the requester says it holds, with `more` when it holds others. The requester runs
//! statement rounds while `more` (at most [`MAX_STATEMENT_ROUNDS`]), whatever they carried,
//! then the chain phase (a request without `statements`), whose pages carry no statements:
//! no signer's statements can crowd out another's revocation, and no chain can crowd out a
//! revocation.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::codec::{self, DecodeError};
use crate::ids::{AuthorKey, FederationId, MessageId};

/// The libp2p protocol name of the exchange.
pub const SYNC_PROTOCOL: &str = "/solidarity/sync/1";
/// Most authors a request may list.
pub const MAX_SYNC_AUTHORS: usize = 4096;
/// Most envelopes a page may hold (the responder may send fewer).
pub const MAX_PAGE_ENVELOPES: u32 = 4096;
/// Most envelope bytes a page may hold; the responder stops before passing it.
pub const MAX_PAGE_BYTES: usize = 2 * 1024 * 1024;
/// Most request/response rounds the requester runs in one sync session.
pub const MAX_SYNC_ROUNDS: usize = 64;
/// Most signers a statement-phase request may list.
pub const MAX_STATEMENT_SIGNERS: usize = 4096;
/// Most held statement ids a request may give per signer.
pub const MAX_HELD_PER_SIGNER: usize = 256;
/// Most held statement ids a request may give in all.
pub const MAX_HELD_IDS: usize = 65_536;
/// Bytes of a held statement id: the first bytes of its message id.
pub const HELD_ID_BYTES: usize = 8;
/// Most statements of one signer in one statement page.
pub const MAX_PAGE_STATEMENTS_PER_SIGNER: usize = 16;
/// Most statement rounds the requester runs before the chain phase.
pub const MAX_STATEMENT_ROUNDS: usize = 16;
/// Largest encoded request: a full author list plus framing. A watermark encodes in at
/// most 94 bytes (map head 1, key `author` 7, 32-byte string 34, key `seq` 4, u64 9,
/// key `head` 5, 32-byte string 34).
/// A statement-phase request adds per signer at most 64 bytes of framing (map head 1, key
/// `signer` 7, 32-byte string 34, key `held` 5, string head 3) plus its held ids.
pub const MAX_REQUEST_BYTES: usize =
    64 + MAX_SYNC_AUTHORS * 96 + MAX_STATEMENT_SIGNERS * 64 + MAX_HELD_IDS * HELD_ID_BYTES;
/// Largest encoded response: a full page plus per-envelope framing.
pub const MAX_RESPONSE_BYTES: usize =
    MAX_PAGE_BYTES + crate::envelope::MAX_ENVELOPE_BYTES + 16 * 1024;

/// How far a node holds an author's chain without a gap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Watermark {
    /// The author.
    pub author: AuthorKey,
    /// Highest contiguous seq held (0: none).
    pub seq: u64,
    /// The id held at `seq`; absent when `seq` is 0. A responder holding another message
    /// there sends it first: that pair proves a fork of the author's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<MessageId>,
}

/// A request for what the requester misses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// The requester's federation; a responder of another federation answers with nothing.
    pub fed: FederationId,
    /// The requester's watermark of every author it trusts.
    pub have: Vec<Watermark>,
    /// Most envelopes wanted in this page (capped at [`MAX_PAGE_ENVELOPES`]).
    pub limit: u32,
    /// Present in the statement phase: the signers whose statements the requester wants,
    /// with the statements it holds of each. The responder then sends statements only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statements: Option<Vec<HeldStatements>>,
}

/// The statements of one signer the requester holds (or saw and refused this session).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeldStatements {
    /// The signer.
    pub signer: AuthorKey,
    /// Concatenated [`HELD_ID_BYTES`]-byte prefixes of the held statements' ids.
    pub held: ByteBuf,
}

impl HeldStatements {
    /// The held id prefixes given for `ids` (at most [`MAX_HELD_PER_SIGNER`] of them).
    pub fn new(signer: AuthorKey, ids: impl IntoIterator<Item = MessageId>) -> Self {
        let held: Vec<u8> = ids
            .into_iter()
            .take(MAX_HELD_PER_SIGNER)
            .flat_map(|id| held_id(&id))
            .collect();
        Self {
            signer,
            held: ByteBuf::from(held),
        }
    }

    /// Whether the requester holds `id`.
    pub fn holds(&self, id: &MessageId) -> bool {
        let prefix = held_id(id);
        self.held
            .chunks_exact(HELD_ID_BYTES)
            .any(|chunk| chunk == prefix)
    }
}

/// The prefix of `id` a requester lists for a held statement.
pub fn held_id(id: &MessageId) -> [u8; HELD_ID_BYTES] {
    let mut prefix = [0u8; HELD_ID_BYTES];
    prefix.copy_from_slice(&id.as_bytes()[..HELD_ID_BYTES]);
    prefix
}

/// One page of missing envelopes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncResponse {
    /// Envelope bytes, verbatim as stored; at most [`MAX_PAGE_ENVELOPES`], refused while
    /// decoding as soon as there are more (a hostile responder's 2 MiB of empty strings
    /// would otherwise be a vector of two million before any check).
    #[serde(deserialize_with = "at_most_a_page")]
    pub envelopes: Vec<ByteBuf>,
    /// True when the responder holds more than it sent.
    pub more: bool,
}

/// Why a sync message was refused.
#[derive(Debug, thiserror::Error)]
pub enum SyncDecodeError {
    /// It does not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// It is over a limit.
    #[error("sync message over its limit: {0}")]
    OverLimit(&'static str),
}

impl SyncRequest {
    /// Encodes the request.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes and bounds-checks a request; it must be in canonical encoding (SPEC §11.2).
    pub fn decode(bytes: &[u8]) -> Result<Self, SyncDecodeError> {
        if bytes.len() > MAX_REQUEST_BYTES {
            return Err(SyncDecodeError::OverLimit("request size"));
        }
        let request: Self = codec::decode_canonical(bytes)?;
        if request.have.len() > MAX_SYNC_AUTHORS {
            return Err(SyncDecodeError::OverLimit("author count"));
        }
        if let Some(statements) = &request.statements {
            if statements.len() > MAX_STATEMENT_SIGNERS {
                return Err(SyncDecodeError::OverLimit("signer count"));
            }
            if statements.iter().any(|signer| {
                signer.held.len() % HELD_ID_BYTES != 0
                    || signer.held.len() > MAX_HELD_PER_SIGNER * HELD_ID_BYTES
            }) {
                return Err(SyncDecodeError::OverLimit("held statement ids"));
            }
            let held: usize = statements.iter().map(|signer| signer.held.len()).sum();
            if held > MAX_HELD_IDS * HELD_ID_BYTES {
                return Err(SyncDecodeError::OverLimit("held statement ids"));
            }
        }
        Ok(request)
    }

    /// The page size the responder should use.
    pub fn page_limit(&self) -> usize {
        self.limit.clamp(1, MAX_PAGE_ENVELOPES) as usize
    }
}

impl SyncResponse {
    /// Encodes the response.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes and bounds-checks a response; it must be in canonical encoding (SPEC §11.2).
    pub fn decode(bytes: &[u8]) -> Result<Self, SyncDecodeError> {
        if bytes.len() > MAX_RESPONSE_BYTES {
            return Err(SyncDecodeError::OverLimit("response size"));
        }
        Ok(codec::decode_canonical(bytes)?)
    }
}

/// Deserializes a page's envelopes, failing at the first one over [`MAX_PAGE_ENVELOPES`].
fn at_most_a_page<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<ByteBuf>, D::Error> {
    struct AtMostAPage;
    impl<'de> serde::de::Visitor<'de> for AtMostAPage {
        type Value = Vec<ByteBuf>;
        fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(formatter, "at most {MAX_PAGE_ENVELOPES} envelopes")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let page = MAX_PAGE_ENVELOPES as usize;
            let mut envelopes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(page));
            while let Some(envelope) = seq.next_element::<ByteBuf>()? {
                if envelopes.len() == page {
                    return Err(serde::de::Error::custom(format!(
                        "over its limit: more than {page} envelopes"
                    )));
                }
                envelopes.push(envelope);
            }
            Ok(envelopes)
        }
    }
    deserializer.deserialize_seq(AtMostAPage)
}

/// The highest seq `s` such that every seq in `1..=s` is in `held` (sorted ascending,
/// possibly with duplicates).
pub fn contiguous_watermark(held: impl IntoIterator<Item = u64>) -> u64 {
    let mut watermark: u64 = 0;
    for seq in held {
        match watermark.checked_add(1) {
            Some(next) if seq == next => watermark = seq,
            Some(next) if seq > next => break,
            // Duplicates, or nothing can follow the highest seq there is.
            _ => {}
        }
    }
    watermark
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_seq_neither_overflows_nor_counts_without_its_predecessors() {
        assert_eq!(contiguous_watermark([u64::MAX]), 0);
        assert_eq!(contiguous_watermark([1, 2, u64::MAX]), 2);
    }

    #[test]
    fn watermark_stops_at_the_first_gap() {
        assert_eq!(contiguous_watermark([]), 0);
        assert_eq!(contiguous_watermark([1, 2, 3]), 3);
        assert_eq!(contiguous_watermark([1, 2, 4, 5]), 2);
        assert_eq!(contiguous_watermark([2, 3]), 0);
        assert_eq!(contiguous_watermark([1, 1, 2]), 2);
    }

    #[test]
    fn request_round_trips_and_is_bounded() {
        let request = SyncRequest {
            fed: FederationId([1; 32]),
            have: vec![Watermark {
                author: AuthorKey([2; 32]),
                seq: 7,
                head: None,
            }],
            limit: 100_000,
            statements: None,
        };
        let decoded = SyncRequest::decode(&request.encode()).expect("decodes");
        assert_eq!(decoded, request);
        assert_eq!(decoded.page_limit(), MAX_PAGE_ENVELOPES as usize);
        assert!(SyncRequest::decode(&vec![0u8; MAX_REQUEST_BYTES + 1]).is_err());
    }

    #[test]
    fn sync_messages_in_another_encoding_are_refused() {
        let response = SyncResponse {
            envelopes: vec![ByteBuf::from(vec![7u8; 3])],
            more: true,
        };
        let canonical = response.encode();
        assert_eq!(SyncResponse::decode(&canonical).expect("decodes"), response);
        // The same response with its keys swapped: `more` first.
        let reordered = [
            &[0xa2, 0x64][..],
            b"more",
            &[0xf5, 0x69],
            b"envelopes",
            &[0x81, 0x43, 7, 7, 7],
        ]
        .concat();
        assert!(SyncResponse::decode(&reordered).is_err());
        let request = SyncRequest {
            fed: FederationId([1; 32]),
            have: Vec::new(),
            limit: 5,
            statements: None,
        };
        let mut long_limit = request.encode();
        let at = long_limit.len() - 1;
        assert_eq!(long_limit[at], 5, "limit is the last item");
        long_limit.splice(at.., [0x18, 5]);
        assert!(
            SyncRequest::decode(&long_limit).is_err(),
            "non-shortest limit"
        );
        assert_eq!(
            SyncRequest::decode(&request.encode()).expect("decodes"),
            request
        );
    }

    #[test]
    fn statement_requests_round_trip_and_bound_their_held_ids() {
        let held = HeldStatements::new(AuthorKey([3; 32]), [MessageId([4; 32])]);
        assert!(held.holds(&MessageId([4; 32])));
        assert!(!held.holds(&MessageId([5; 32])));
        let mut request = SyncRequest {
            fed: FederationId([1; 32]),
            have: Vec::new(),
            limit: 10,
            statements: Some(vec![held]),
        };
        assert_eq!(
            SyncRequest::decode(&request.encode()).expect("decodes"),
            request
        );
        // A ragged or oversized id list is refused.
        for bad in [7, (MAX_HELD_PER_SIGNER + 1) * HELD_ID_BYTES] {
            request.statements = Some(vec![HeldStatements {
                signer: AuthorKey([3; 32]),
                held: ByteBuf::from(vec![0u8; bad]),
            }]);
            assert!(
                SyncRequest::decode(&request.encode()).is_err(),
                "{bad} bytes"
            );
        }
        let full = HeldStatements::new(
            AuthorKey([3; 32]),
            (0..=MAX_HELD_PER_SIGNER).map(|n| {
                let mut id = [0u8; 32];
                id[..8].copy_from_slice(&(n as u64).to_be_bytes());
                MessageId(id)
            }),
        );
        assert_eq!(full.held.len(), MAX_HELD_PER_SIGNER * HELD_ID_BYTES);
    }
}
