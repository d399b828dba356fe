//! What the engine reads from the store, as a trait the store implements
//! (`solidarity-store` implements it for every store it has). Reads block and are cheap
//! (an index lookup or a bounded range); the engine never writes: writes are outputs.

use solidarity_proto::{AuthorKey, MessageId};

/// A failed store read. The engine treats it as "not found" (the write that follows is
/// idempotent, and a store that cannot read fails its next write, which stops the node).
#[derive(Debug, thiserror::Error)]
#[error("store read failed: {source}")]
pub struct ReadError {
    /// Why.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// One stored envelope of an author's chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainEnvelope {
    /// Author seq.
    pub seq: u64,
    /// Envelope bytes, verbatim.
    pub envelope: Vec<u8>,
}

/// The reads the engine needs.
pub trait StoreRead {
    /// Whether an envelope with this id is stored (expired ones are not).
    fn contains(&self, id: &MessageId) -> Result<bool, ReadError>;
    /// The envelope bytes of a message.
    fn envelope(&self, id: &MessageId) -> Result<Option<Vec<u8>>, ReadError>;
    /// A stored message's signer and kind.
    fn author_and_kind(&self, id: &MessageId) -> Result<Option<(AuthorKey, String)>, ReadError>;
    /// The id at (author, seq), also after the message expired (its tombstone).
    fn id_at(&self, author: &AuthorKey, seq: u64) -> Result<Option<MessageId>, ReadError>;
    /// Highest seq up to which the author's chain is held without a gap.
    fn watermark(&self, author: &AuthorKey) -> Result<u64, ReadError>;
    /// The author's highest known (seq, id), also from tombstones.
    fn chain_head(&self, author: &AuthorKey) -> Result<Option<(u64, MessageId)>, ReadError>;
    /// The author's stored envelopes with seq ≥ `from_seq`, ascending, at most `limit`.
    fn author_range(
        &self,
        author: &AuthorKey,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<ChainEnvelope>, ReadError>;
    /// Envelope bytes stored of `author`.
    fn stored_bytes(&self, author: &AuthorKey) -> Result<u64, ReadError>;
    /// The conflicting envelopes kept as evidence that `author` forked.
    fn fork_evidence(&self, author: &AuthorKey) -> Result<Vec<Vec<u8>>, ReadError>;
}

impl<T: StoreRead + ?Sized> StoreRead for std::sync::Arc<T> {
    fn contains(&self, id: &MessageId) -> Result<bool, ReadError> {
        (**self).contains(id)
    }
    fn envelope(&self, id: &MessageId) -> Result<Option<Vec<u8>>, ReadError> {
        (**self).envelope(id)
    }
    fn author_and_kind(&self, id: &MessageId) -> Result<Option<(AuthorKey, String)>, ReadError> {
        (**self).author_and_kind(id)
    }
    fn id_at(&self, author: &AuthorKey, seq: u64) -> Result<Option<MessageId>, ReadError> {
        (**self).id_at(author, seq)
    }
    fn watermark(&self, author: &AuthorKey) -> Result<u64, ReadError> {
        (**self).watermark(author)
    }
    fn chain_head(&self, author: &AuthorKey) -> Result<Option<(u64, MessageId)>, ReadError> {
        (**self).chain_head(author)
    }
    fn author_range(
        &self,
        author: &AuthorKey,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<ChainEnvelope>, ReadError> {
        (**self).author_range(author, from_seq, limit)
    }
    fn stored_bytes(&self, author: &AuthorKey) -> Result<u64, ReadError> {
        (**self).stored_bytes(author)
    }
    fn fork_evidence(&self, author: &AuthorKey) -> Result<Vec<Vec<u8>>, ReadError> {
        (**self).fork_evidence(author)
    }
}

/// A read's value, or `fallback` after logging the failure (see [`ReadError`]).
pub(crate) fn or_log<T>(result: Result<T, ReadError>, fallback: T) -> T {
    result.unwrap_or_else(|error| {
        tracing::error!(%error, "store read failed");
        fallback
    })
}
