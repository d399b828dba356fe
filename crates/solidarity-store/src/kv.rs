//! The store logic, written once over an ordered key-value [`Backend`].
//!
//! Key space (all integers big-endian, so byte order is numeric order):
//!
//! | prefix | key                          | value                                   |
//! |--------|------------------------------|-----------------------------------------|
//! | `E`    | id                           | envelope bytes, verbatim                |
//! | `M`    | id                           | author ‖ seq ‖ created_at ‖ expires_at (0: none) ‖ kind |
//! | `C`    | author ‖ seq                 | id (kept after expiry: the tombstone)   |
//! | `K`    | kind ‖ 0x00 ‖ id             | empty                                   |
//! | `X`    | expires_at ‖ id              | empty                                   |
//! | `S`    | author ‖ id                  | empty: a statement (seq 0, outside the chain) |
//! | `F`    | author ‖ seq ‖ id            | envelope conflicting with the chain (fork evidence) |
//! | `Z`    | author                       | detected_at ‖ from_seq: the author is marked compromised |
//!
//! Invariant: every key of one message is written in the same atomic batch.

use std::collections::HashSet;

use solidarity_proto::{AuthorKey, MessageId};

use crate::{
    Compromise, InsertOutcome, MessageMeta, NewMessage, Store, StoreError, StoredEnvelope,
};

const ENVELOPE: u8 = b'E';
const META: u8 = b'M';
const CHAIN: u8 = b'C';
const KIND: u8 = b'K';
const EXPIRY: u8 = b'X';
const FORK: u8 = b'F';
const STATEMENT: u8 = b'S';
const COMPROMISED: u8 = b'Z';

/// A key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// One write of a batch.
#[derive(Clone, Debug)]
pub enum BatchOp {
    /// Set a key.
    Put(Vec<u8>, Vec<u8>),
    /// Remove a key.
    Delete(Vec<u8>),
}

/// An ordered key-value space with atomic batches.
pub trait Backend: Send + Sync + 'static {
    /// The value of a key.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every entry whose key starts with `prefix` and is ≥ `start`, in key order.
    fn scan_prefix(&self, prefix: &[u8], start: &[u8]) -> Result<Vec<Entry>, StoreError>;
    /// The greatest entry whose key starts with `prefix`.
    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Entry>, StoreError>;
    /// Applies all ops atomically.
    fn apply(&self, ops: Vec<BatchOp>) -> Result<(), StoreError>;
    /// Makes applied batches durable.
    fn flush(&self) -> Result<(), StoreError>;
    /// Number of keys with the prefix.
    fn count_prefix(&self, prefix: &[u8]) -> Result<usize, StoreError>;
}

/// The [`Store`] over any [`Backend`].
#[derive(Debug, Default)]
pub struct KvStore<B> {
    backend: B,
}

impl<B: Backend> KvStore<B> {
    /// Wraps a backend.
    pub fn new(backend: B) -> Self {
        Self { backend }
    }
}

impl KvStore<crate::SledBackend> {
    /// Opens the sled store.
    pub fn open(options: &crate::SledOptions) -> Result<Self, StoreError> {
        crate::SledBackend::open(options).map(Self::new)
    }
}

fn key(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut key = vec![prefix];
    for part in parts {
        key.extend_from_slice(part);
    }
    key
}

fn chain_key(author: &AuthorKey, seq: u64) -> Vec<u8> {
    key(CHAIN, &[author.as_bytes(), &seq.to_be_bytes()])
}

fn kind_key(kind: &str, id: &MessageId) -> Vec<u8> {
    key(KIND, &[kind.as_bytes(), &[0], id.as_bytes()])
}

fn read_id(bytes: &[u8]) -> Result<MessageId, StoreError> {
    let array: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt { what: "id" })?;
    Ok(MessageId(array))
}

fn read_u64(bytes: &[u8]) -> Result<u64, StoreError> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt { what: "integer" })?;
    Ok(u64::from_be_bytes(array))
}

/// Seq at the end of a `C` key.
fn chain_key_seq(key: &[u8]) -> Result<u64, StoreError> {
    key.get(33..41)
        .ok_or(StoreError::Corrupt { what: "chain" })
        .and_then(read_u64)
}

fn decode_compromise_marker(value: &[u8]) -> Result<(u64, u64), StoreError> {
    let corrupt = StoreError::Corrupt { what: "compromise" };
    let detected_at = read_u64(
        value
            .get(..8)
            .ok_or_else(|| StoreError::Corrupt { what: "compromise" })?,
    )?;
    let from_seq = read_u64(value.get(8..16).ok_or(corrupt)?)?;
    Ok((detected_at, from_seq))
}

fn encode_meta(message: &NewMessage) -> Vec<u8> {
    let mut value = Vec::with_capacity(56 + message.kind.len());
    value.extend_from_slice(message.author.as_bytes());
    value.extend_from_slice(&message.seq.to_be_bytes());
    value.extend_from_slice(&message.created_at.to_be_bytes());
    value.extend_from_slice(&message.expires_at.unwrap_or(0).to_be_bytes());
    value.extend_from_slice(message.kind.as_bytes());
    value
}

fn decode_meta(value: &[u8]) -> Result<MessageMeta, StoreError> {
    let corrupt = || StoreError::Corrupt { what: "meta" };
    if value.len() < 56 {
        return Err(corrupt());
    }
    let author: [u8; 32] = value[..32].try_into().map_err(|_| corrupt())?;
    let expires_at = read_u64(&value[48..56])?;
    Ok(MessageMeta {
        author: AuthorKey(author),
        seq: read_u64(&value[32..40])?,
        created_at: read_u64(&value[40..48])?,
        expires_at: (expires_at != 0).then_some(expires_at),
        kind: String::from_utf8(value[56..].to_vec()).map_err(|_| corrupt())?,
    })
}

impl<B: Backend> KvStore<B> {
    fn stored_envelope(
        &self,
        id: MessageId,
        seq: u64,
    ) -> Result<Option<StoredEnvelope>, StoreError> {
        Ok(self
            .backend
            .get(&key(ENVELOPE, &[id.as_bytes()]))?
            .map(|envelope| StoredEnvelope { id, seq, envelope }))
    }
}

impl<B: Backend> Store for KvStore<B> {
    fn insert_batch(&self, messages: &[NewMessage]) -> Result<Vec<InsertOutcome>, StoreError> {
        let mut ops = Vec::with_capacity(messages.len() * 5);
        let mut outcomes = Vec::with_capacity(messages.len());
        let mut ids_in_batch = HashSet::new();
        let mut chains_in_batch = HashSet::new();
        for message in messages {
            if message.seq == 0 {
                // Statements stand outside the chain: any number per author, by id.
                let outcome = if !ids_in_batch.insert(message.id) || self.contains(&message.id)? {
                    InsertOutcome::AlreadyStored
                } else {
                    let id = message.id.as_bytes();
                    ops.push(BatchOp::Put(key(ENVELOPE, &[id]), message.envelope.clone()));
                    ops.push(BatchOp::Put(key(META, &[id]), encode_meta(message)));
                    ops.push(BatchOp::Put(
                        key(STATEMENT, &[message.author.as_bytes(), id]),
                        Vec::new(),
                    ));
                    ops.push(BatchOp::Put(
                        kind_key(&message.kind, &message.id),
                        Vec::new(),
                    ));
                    InsertOutcome::Stored
                };
                outcomes.push(outcome);
                continue;
            }
            let chain = chain_key(&message.author, message.seq);
            let held_at_seq = self.backend.get(&chain)?;
            let outcome = if !ids_in_batch.insert(message.id)
                || held_at_seq.as_deref() == Some(message.id.as_bytes().as_slice())
            {
                InsertOutcome::AlreadyStored
            } else if held_at_seq.is_some() || !chains_in_batch.insert(chain.clone()) {
                InsertOutcome::SeqConflict
            } else {
                let id = message.id.as_bytes();
                ops.push(BatchOp::Put(key(ENVELOPE, &[id]), message.envelope.clone()));
                ops.push(BatchOp::Put(key(META, &[id]), encode_meta(message)));
                ops.push(BatchOp::Put(chain, id.to_vec()));
                ops.push(BatchOp::Put(
                    kind_key(&message.kind, &message.id),
                    Vec::new(),
                ));
                if let Some(expires_at) = message.expires_at {
                    ops.push(BatchOp::Put(
                        key(EXPIRY, &[&expires_at.to_be_bytes(), id]),
                        Vec::new(),
                    ));
                }
                InsertOutcome::Stored
            };
            outcomes.push(outcome);
        }
        if !ops.is_empty() {
            self.backend.apply(ops)?;
        }
        Ok(outcomes)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.backend.flush()
    }

    fn contains(&self, id: &MessageId) -> Result<bool, StoreError> {
        Ok(self.backend.get(&key(META, &[id.as_bytes()]))?.is_some())
    }

    fn envelope(&self, id: &MessageId) -> Result<Option<Vec<u8>>, StoreError> {
        self.backend.get(&key(ENVELOPE, &[id.as_bytes()]))
    }

    fn meta(&self, id: &MessageId) -> Result<Option<MessageMeta>, StoreError> {
        self.backend
            .get(&key(META, &[id.as_bytes()]))?
            .map(|value| decode_meta(&value))
            .transpose()
    }

    fn id_at(&self, author: &AuthorKey, seq: u64) -> Result<Option<MessageId>, StoreError> {
        self.backend
            .get(&chain_key(author, seq))?
            .map(|value| read_id(&value))
            .transpose()
    }

    fn by_kind(&self, kind: &str) -> Result<Vec<StoredEnvelope>, StoreError> {
        let prefix = key(KIND, &[kind.as_bytes(), &[0]]);
        let mut out = Vec::new();
        for (index_key, _) in self.backend.scan_prefix(&prefix, &prefix)? {
            let id = read_id(&index_key[prefix.len()..])?;
            let Some(meta) = self.meta(&id)? else {
                return Err(StoreError::Corrupt { what: "kind index" });
            };
            if let Some(stored) = self.stored_envelope(id, meta.seq)? {
                out.push(stored);
            }
        }
        Ok(out)
    }

    fn author_range(
        &self,
        author: &AuthorKey,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        let prefix = key(CHAIN, &[author.as_bytes()]);
        let start = chain_key(author, from_seq);
        let mut out = Vec::new();
        for (chain, value) in self.backend.scan_prefix(&prefix, &start)? {
            if out.len() >= limit {
                break;
            }
            let seq = chain_key_seq(&chain)?;
            // Tombstones (expired messages) have no envelope and are skipped.
            if let Some(stored) = self.stored_envelope(read_id(&value)?, seq)? {
                out.push(stored);
            }
        }
        Ok(out)
    }

    fn watermark(&self, author: &AuthorKey) -> Result<u64, StoreError> {
        let prefix = key(CHAIN, &[author.as_bytes()]);
        let seqs = self
            .backend
            .scan_prefix(&prefix, &prefix)?
            .iter()
            .map(|(chain, _)| chain_key_seq(chain))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(solidarity_proto::sync::contiguous_watermark(seqs))
    }

    fn chain_head(&self, author: &AuthorKey) -> Result<Option<(u64, MessageId)>, StoreError> {
        let prefix = key(CHAIN, &[author.as_bytes()]);
        self.backend
            .last_with_prefix(&prefix)?
            .map(|(chain, value)| Ok((chain_key_seq(&chain)?, read_id(&value)?)))
            .transpose()
    }

    fn expire(&self, now_ms: u64) -> Result<usize, StoreError> {
        let prefix = [EXPIRY];
        let mut ops = Vec::new();
        let mut expired = 0;
        for (expiry_key, _) in self.backend.scan_prefix(&prefix, &prefix)? {
            let expires_at = read_u64(expiry_key.get(1..9).ok_or(StoreError::Corrupt {
                what: "expiry index",
            })?)?;
            if expires_at > now_ms {
                break;
            }
            let id = read_id(&expiry_key[9..])?;
            if let Some(meta) = self.meta(&id)? {
                ops.push(BatchOp::Delete(key(ENVELOPE, &[id.as_bytes()])));
                ops.push(BatchOp::Delete(key(META, &[id.as_bytes()])));
                ops.push(BatchOp::Delete(kind_key(&meta.kind, &id)));
                expired += 1;
            }
            ops.push(BatchOp::Delete(expiry_key));
        }
        if !ops.is_empty() {
            self.backend.apply(ops)?;
        }
        Ok(expired)
    }

    fn statements(&self, author: &AuthorKey) -> Result<Vec<StoredEnvelope>, StoreError> {
        let prefix = key(STATEMENT, &[author.as_bytes()]);
        let mut out = Vec::new();
        for (statement_key, _) in self.backend.scan_prefix(&prefix, &prefix)? {
            let id = read_id(&statement_key[prefix.len()..])?;
            if let Some(stored) = self.stored_envelope(id, 0)? {
                out.push(stored);
            }
        }
        Ok(out)
    }

    fn record_fork(
        &self,
        evidence: &NewMessage,
        detected_at: u64,
        from_seq: u64,
    ) -> Result<bool, StoreError> {
        let author = evidence.author.as_bytes();
        let marker = key(COMPROMISED, &[author]);
        let previous = self
            .backend
            .get(&marker)?
            .map(|value| decode_compromise_marker(&value))
            .transpose()?;
        let (detected_at, from_seq) = match previous {
            Some((first_detected, first_from)) => (first_detected, first_from.min(from_seq)),
            None => (detected_at, from_seq),
        };
        let mut marker_value = detected_at.to_be_bytes().to_vec();
        marker_value.extend_from_slice(&from_seq.to_be_bytes());
        self.backend.apply(vec![
            BatchOp::Put(
                key(
                    FORK,
                    &[author, &evidence.seq.to_be_bytes(), evidence.id.as_bytes()],
                ),
                evidence.envelope.clone(),
            ),
            BatchOp::Put(marker, marker_value),
        ])?;
        Ok(previous.is_none())
    }

    fn compromised(&self) -> Result<Vec<Compromise>, StoreError> {
        let mut out = Vec::new();
        for (marker, value) in self.backend.scan_prefix(&[COMPROMISED], &[COMPROMISED])? {
            let author: [u8; 32] = marker[1..]
                .try_into()
                .map_err(|_| StoreError::Corrupt { what: "compromise" })?;
            let prefix = key(FORK, &[&author]);
            let evidence = self
                .backend
                .scan_prefix(&prefix, &prefix)?
                .into_iter()
                .map(|(fork_key, envelope)| {
                    Ok(StoredEnvelope {
                        seq: read_u64(fork_key.get(33..41).ok_or(StoreError::Corrupt {
                            what: "fork evidence",
                        })?)?,
                        id: read_id(&fork_key[41..])?,
                        envelope,
                    })
                })
                .collect::<Result<_, StoreError>>()?;
            let (detected_at, from_seq) = decode_compromise_marker(&value)?;
            out.push(Compromise {
                author: AuthorKey(author),
                detected_at,
                from_seq,
                evidence,
            });
        }
        Ok(out)
    }

    fn clear_compromise(&self, author: &AuthorKey) -> Result<(), StoreError> {
        self.backend.apply(vec![BatchOp::Delete(key(
            COMPROMISED,
            &[author.as_bytes()],
        ))])
    }

    fn len(&self) -> Result<usize, StoreError> {
        self.backend.count_prefix(&[META])
    }
}
