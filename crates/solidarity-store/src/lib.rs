//! Durable storage of envelopes, with the indexes the node needs.
//!
//! It owns the on-disk layout and the [`Store`] trait. [`SledStore`] is the production
//! backend (the only place that names sled; sled types never leave this crate) and
//! [`MemoryStore`] serves tests and simulations. Both run the same logic in [`kv`] over a
//! small key-value [`kv::Backend`], so they cannot drift apart.
//!
//! Architecture invariant: no async, no protocol decisions. The store records what the node
//! accepted; validation lives in `solidarity-proto`. Every method blocks: callers run it off
//! the async worker threads (the node's single writer thread for writes).
//!
//! Layout: one ordered key space with a one-byte prefix per index (see [`kv`]); a message's
//! keys are written in one atomic batch, so a crash leaves a message either whole or absent.
//! The sled backend stages batches in memory and commits them to sled together, in one
//! atomic batch, at the next flush or once [`STAGED_MAX_OPS`] are staged (see
//! [`SledBackend`]): sled 0.34 costs per batch, not per key.
//! The records of expiring messages are sealed with per-hour keys kept outside sled (see
//! [`expiry_keys`]), which expiry destroys: sled cannot erase what it once wrote.

#![warn(missing_docs)]

mod engine_read;
pub mod expiry_keys;
pub mod kv;
mod memory;
pub mod migrate;
mod outbox_db;
mod sled_backend;

use solidarity_proto::{AuthorKey, MessageId};

pub use engine_read::engine_start;
pub use kv::KvStore;
pub use memory::MemoryBackend;
pub use outbox_db::{Entry as OutboxEntry, OutboxDb};
pub use sled_backend::{DEFAULT_CACHE_BYTES, STAGED_MAX_OPS, SledBackend, SledOptions};

/// The production store.
pub type SledStore = KvStore<SledBackend>;
/// The in-memory store for tests.
pub type MemoryStore = KvStore<MemoryBackend>;

/// A validated message to store (the engine's write output is stored as it is).
pub use solidarity_engine::NewMessage;

/// What an insert did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// The message is new and now stored.
    Stored,
    /// The same id was already stored (or expired and tombstoned): nothing changed.
    AlreadyStored,
    /// Another message holds (author, seq): nothing changed (record it with
    /// [`Store::record_fork`] when it is validly signed).
    SeqConflict,
}

/// The facts the store keeps beside each envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageMeta {
    /// Signer.
    pub author: AuthorKey,
    /// Author seq.
    pub seq: u64,
    /// Kind name.
    pub kind: String,
    /// Creation time, ms since the epoch.
    pub created_at: u64,
    /// Expiry, ms since the epoch.
    pub expires_at: Option<u64>,
    /// The message this one updates, endorses or withdraws.
    pub refers_to: Option<MessageId>,
}

/// A stored envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEnvelope {
    /// Content id.
    pub id: MessageId,
    /// Author seq.
    pub seq: u64,
    /// Envelope bytes, verbatim.
    pub envelope: Vec<u8>,
}

/// One signer's messages of a kind that refer to one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Referring {
    /// The signer.
    pub author: AuthorKey,
    /// How many are stored.
    pub total: u64,
    /// The newest of them (highest seq first), at most the limit asked for.
    pub newest: Vec<StoredEnvelope>,
}

/// A key that signed two conflicting messages, with the evidence kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compromise {
    /// The author key.
    pub author: AuthorKey,
    /// When this node first detected it, ms since the epoch.
    pub detected_at: u64,
    /// The lowest seq at which the author's chains are known to diverge: its messages
    /// from there on are suspect.
    pub from_seq: u64,
    /// The conflicting envelopes kept as evidence (the first-seen chain stays in the
    /// ordinary indexes).
    pub evidence: Vec<StoredEnvelope>,
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be opened.
    #[error("cannot open the store at {path}: {source}")]
    Open {
        /// Where.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A read, write or flush failed.
    #[error("storage {operation} failed: {source}")]
    Backend {
        /// Which operation.
        operation: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Stored bytes do not have the shape this version writes.
    #[error("the store holds a corrupt {what} record")]
    Corrupt {
        /// Which record type.
        what: &'static str,
    },
}

/// The store's interface. Every method blocks.
pub trait Store: Send + Sync + 'static {
    /// Stores each message unless its id (or its (author, seq)) is already taken. The writes
    /// are applied atomically per message but are durable only after [`Store::flush`].
    fn insert_batch(&self, messages: &[NewMessage]) -> Result<Vec<InsertOutcome>, StoreError>;
    /// Makes every applied write durable.
    fn flush(&self) -> Result<(), StoreError>;
    /// Whether an envelope with this id is stored (expired ones are not).
    fn contains(&self, id: &MessageId) -> Result<bool, StoreError>;
    /// The envelope bytes of a message.
    fn envelope(&self, id: &MessageId) -> Result<Option<Vec<u8>>, StoreError>;
    /// The facts kept beside a message.
    fn meta(&self, id: &MessageId) -> Result<Option<MessageMeta>, StoreError>;
    /// At most `limit` stored ids (expired ones are not) whose lowercase hex form starts
    /// with `hex`, in id order; none when `hex` is not lowercase hex. Reads only the ids
    /// with that prefix (the id index is ordered), so a CLI prefix resolves without loading
    /// every message.
    fn ids_with_prefix(&self, hex: &str, limit: usize) -> Result<Vec<MessageId>, StoreError>;
    /// At most `limit` stored ids (expired ones are not) after `after` (from the first id
    /// when none), in id order: pages through every message without loading them all.
    fn ids_after(
        &self,
        after: Option<&MessageId>,
        limit: usize,
    ) -> Result<Vec<MessageId>, StoreError>;
    /// The id at (author, seq), also after the message expired (its tombstone).
    fn id_at(&self, author: &AuthorKey, seq: u64) -> Result<Option<MessageId>, StoreError>;
    /// Every stored envelope of a kind, oldest first (for small kinds: statements, vouches).
    fn by_kind(&self, kind: &str) -> Result<Vec<StoredEnvelope>, StoreError>;
    /// The `limit` most recently created stored envelopes of a kind, newest first.
    fn newest(&self, kind: &str, limit: usize) -> Result<Vec<StoredEnvelope>, StoreError>;
    /// The messages of `kind` that refer to `target` (its updates, endorsements,
    /// withdrawals), per signer: how many are stored and the `limit` highest-seq ones,
    /// newest first. One signer's flood never hides another's messages, and nothing loads
    /// all of them.
    fn referring_newest(
        &self,
        target: &MessageId,
        kind: &str,
        limit: usize,
    ) -> Result<Vec<Referring>, StoreError>;
    /// The `per_author` most recently created envelopes of a kind of every signer that are
    /// live at `now_ms` (newest first per signer): one signer's many cannot hide another's.
    fn newest_per_author(
        &self,
        kind: &str,
        per_author: usize,
        now_ms: u64,
    ) -> Result<Vec<StoredEnvelope>, StoreError>;
    /// The `limit` most recently created envelopes of a kind by `author` live at `now_ms`,
    /// newest first.
    fn newest_by(
        &self,
        kind: &str,
        author: &AuthorKey,
        limit: usize,
        now_ms: u64,
    ) -> Result<Vec<StoredEnvelope>, StoreError>;
    /// Envelope bytes stored of `author` (chain messages and statements; a kept count).
    fn stored_bytes(&self, author: &AuthorKey) -> Result<u64, StoreError>;
    /// The author's stored envelopes with seq ≥ `from_seq`, ascending, at most `limit`.
    fn author_range(
        &self,
        author: &AuthorKey,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEnvelope>, StoreError>;
    /// Highest seq up to which the author's chain is held without a gap (tombstones count).
    fn watermark(&self, author: &AuthorKey) -> Result<u64, StoreError>;
    /// The author's highest known (seq, id), also from tombstones.
    fn chain_head(&self, author: &AuthorKey) -> Result<Option<(u64, MessageId)>, StoreError>;
    /// Deletes every message whose expiry is ≤ `now_ms`, keeping its (author, seq) → id
    /// tombstone. Returns how many were deleted. Durable after [`Store::flush`], except
    /// that once an hour of expiries has ended, its deletions are flushed and the key that
    /// sealed its messages is destroyed, so their text left in the files is unreadable.
    fn expire(&self, now_ms: u64) -> Result<usize, StoreError>;
    /// Keeps a validly signed message that conflicts with the author's stored chain as
    /// evidence, and marks the author compromised from `detected_at` (kept if already
    /// marked) with the chains diverging at `from_seq` (the lowest one recorded wins).
    /// Returns whether the author was newly marked. Durable after [`Store::flush`].
    fn record_fork(
        &self,
        evidence: &NewMessage,
        detected_at: u64,
        from_seq: u64,
    ) -> Result<bool, StoreError>;
    /// Every author currently marked compromised, with the evidence.
    fn compromised(&self) -> Result<Vec<Compromise>, StoreError>;
    /// Lifts the compromise mark (the admin trusts the key again); evidence is kept.
    fn clear_compromise(&self, author: &AuthorKey) -> Result<(), StoreError>;
    /// Each author's two latest canaries (by seq, oldest first), kept after they expired,
    /// so a member that stopped publishing stays silent (SPEC §13.3).
    fn kept_canaries(&self) -> Result<Vec<(AuthorKey, Vec<StoredEnvelope>)>, StoreError>;
    /// Number of stored envelopes (a kept count: no scan).
    fn len(&self) -> Result<usize, StoreError>;
    /// Whether nothing is stored.
    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }
}
