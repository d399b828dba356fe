//! Stores in layouts 1 and 2, the layouts solidarity shipped before expiring records were
//! sealed (commits ab2aa00 and 948abae), written key by key as those versions wrote them:
//! their `insert_batch`, `expire` and `record_fork`, ported line for line over today's
//! `Backend` (sled 0.34.7 then and now, the whole key space in sled's default tree). For
//! measuring and testing the rebuild that upgrades them (`solidarity_store::kv::rebuild`).
//!
//! `tests/tests/migration_crash.rs` includes this file and checks on every run that it
//! writes byte for byte what the old binaries wrote: it reads every envelope out of the
//! fixture data dirs they made (`tests/fixtures/stores/layout{1,2}`), writes them again
//! here and compares the two key spaces, key by key.

use std::collections::{BTreeMap, HashSet};

use solidarity_proto::{AuthorKey, MessageId};
use solidarity_store::kv::{Backend, BatchOp};
use solidarity_store::{NewMessage, StoreError};

// Layout 2 (948abae); layout 1 (ab2aa00) shares E, C, X, S, F and Z, with other values.
const ENVELOPE: u8 = b'E';
const CHAIN: u8 = b'C';
const RECENT: u8 = b'R';
const REFERS: u8 = b'T';
const EXPIRY: u8 = b'X';
const STATEMENT: u8 = b'S';
const WATERMARK: u8 = b'W';
const COUNT: u8 = b'N';
const LAYOUT: u8 = b'V';
const FORK: u8 = b'F';
const COMPROMISED: u8 = b'Z';
/// Layout 1 only: id → author ‖ seq ‖ created_at ‖ expires_at ‖ kind.
const META: u8 = b'M';
/// Layout 1 only: kind ‖ 0x00 ‖ id → empty.
const KIND: u8 = b'K';
/// Layout 2: fixed part of a record before the kind name.
const RECORD_HEADER: usize = 32 + 8 + 8 + 8 + 32 + 1;

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

fn read_u64(bytes: &[u8]) -> Result<u64, StoreError> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt { what: "integer" })?;
    Ok(u64::from_be_bytes(array))
}

fn read_id(bytes: &[u8]) -> Result<MessageId, StoreError> {
    let array: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt { what: "id" })?;
    Ok(MessageId(array))
}

/// Layout 2's record: author ‖ seq ‖ created_at ‖ expires_at ‖ refers_to ‖ kind length ‖
/// kind ‖ envelope.
fn encode_record(message: &NewMessage) -> Vec<u8> {
    let mut value = Vec::with_capacity(RECORD_HEADER + message.kind.len() + message.envelope.len());
    value.extend_from_slice(message.author.as_bytes());
    value.extend_from_slice(&message.seq.to_be_bytes());
    value.extend_from_slice(&message.created_at.to_be_bytes());
    value.extend_from_slice(&message.expires_at.unwrap_or(0).to_be_bytes());
    value.extend_from_slice(message.refers_to.map_or([0; 32], |id| id.0).as_slice());
    value.push(u8::try_from(message.kind.len()).unwrap_or(u8::MAX));
    value.extend_from_slice(message.kind.as_bytes());
    value.extend_from_slice(&message.envelope);
    value
}

/// Layout 1's meta value.
fn encode_meta(message: &NewMessage) -> Vec<u8> {
    let mut value = Vec::with_capacity(56 + message.kind.len());
    value.extend_from_slice(message.author.as_bytes());
    value.extend_from_slice(&message.seq.to_be_bytes());
    value.extend_from_slice(&message.created_at.to_be_bytes());
    value.extend_from_slice(&message.expires_at.unwrap_or(0).to_be_bytes());
    value.extend_from_slice(message.kind.as_bytes());
    value
}

/// What expiry needs of a stored message: author, seq, kind, created_at, refers_to.
struct Facts {
    author: [u8; 32],
    seq: u64,
    kind: Vec<u8>,
    created_at: u64,
    refers_to: Option<[u8; 32]>,
}

/// Layout 2's record facts.
fn record_facts(record: &[u8]) -> Result<Facts, StoreError> {
    let corrupt = || StoreError::Corrupt { what: "record" };
    if record.len() < RECORD_HEADER {
        return Err(corrupt());
    }
    let refers_to: [u8; 32] = record[56..88].try_into().map_err(|_| corrupt())?;
    let kind_end = RECORD_HEADER + usize::from(record[88]);
    Ok(Facts {
        author: record[..32].try_into().map_err(|_| corrupt())?,
        seq: read_u64(&record[32..40])?,
        created_at: read_u64(&record[40..48])?,
        refers_to: (refers_to != [0; 32]).then_some(refers_to),
        kind: record
            .get(RECORD_HEADER..kind_end)
            .ok_or_else(corrupt)?
            .to_vec(),
    })
}

/// A store of layout 1 or 2 over `B`, written as that version wrote it.
pub struct OldStore<B> {
    backend: B,
    layout: u8,
}

impl<B: Backend> OldStore<B> {
    /// A new store of `layout` (1 or 2) over an empty `backend`; layout 2 stamped its
    /// layout byte when it opened an empty store, layout 1 had none.
    pub fn create(backend: B, layout: u8) -> Result<Self, StoreError> {
        assert!(layout == 1 || layout == 2, "layouts 1 and 2 only");
        if layout == 2 && backend.is_empty()? {
            backend.apply(vec![BatchOp::Put(vec![LAYOUT], vec![2])])?;
            backend.flush()?;
        }
        Ok(Self { backend, layout })
    }

    /// The backend, to read back or flush.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Makes everything written durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.backend.flush()
    }

    /// Stores messages as the old `insert_batch` did: duplicates and seq conflicts are
    /// skipped; returns how many were stored.
    pub fn insert(&self, messages: &[NewMessage]) -> Result<usize, StoreError> {
        match self.layout {
            1 => self.insert_layout_1(messages),
            _ => self.insert_layout_2(messages),
        }
    }

    fn insert_layout_1(&self, messages: &[NewMessage]) -> Result<usize, StoreError> {
        let mut ops = Vec::with_capacity(messages.len() * 5);
        let mut ids_in_batch = HashSet::new();
        let mut chains_in_batch = HashSet::new();
        let mut stored = 0;
        for message in messages {
            let id = message.id.as_bytes();
            let kind_key = key(KIND, &[message.kind.as_bytes(), &[0], id]);
            if message.seq == 0 {
                if ids_in_batch.insert(message.id) && self.backend.get(&key(META, &[id]))?.is_none()
                {
                    ops.push(BatchOp::Put(key(ENVELOPE, &[id]), message.envelope.clone()));
                    ops.push(BatchOp::Put(key(META, &[id]), encode_meta(message)));
                    ops.push(BatchOp::Put(
                        key(STATEMENT, &[message.author.as_bytes(), id]),
                        Vec::new(),
                    ));
                    ops.push(BatchOp::Put(kind_key, Vec::new()));
                    stored += 1;
                }
                continue;
            }
            let chain = chain_key(&message.author, message.seq);
            let held_at_seq = self.backend.get(&chain)?;
            if !ids_in_batch.insert(message.id)
                || held_at_seq.as_deref() == Some(id.as_slice())
                || held_at_seq.is_some()
                || !chains_in_batch.insert(chain.clone())
            {
                continue;
            }
            ops.push(BatchOp::Put(key(ENVELOPE, &[id]), message.envelope.clone()));
            ops.push(BatchOp::Put(key(META, &[id]), encode_meta(message)));
            ops.push(BatchOp::Put(chain, id.to_vec()));
            ops.push(BatchOp::Put(kind_key, Vec::new()));
            if let Some(expires_at) = message.expires_at {
                ops.push(BatchOp::Put(
                    key(EXPIRY, &[&expires_at.to_be_bytes(), id]),
                    Vec::new(),
                ));
            }
            stored += 1;
        }
        if !ops.is_empty() {
            self.backend.apply(ops)?;
        }
        Ok(stored)
    }

    fn watermark(&self, author: &AuthorKey) -> Result<u64, StoreError> {
        self.backend
            .get(&key(WATERMARK, &[author.as_bytes()]))?
            .map_or(Ok(0), |bytes| read_u64(&bytes))
    }

    fn count(&self) -> Result<u64, StoreError> {
        self.backend
            .get(&[COUNT])?
            .map_or(Ok(0), |bytes| read_u64(&bytes))
    }

    fn insert_layout_2(&self, messages: &[NewMessage]) -> Result<usize, StoreError> {
        let mut ops = Vec::with_capacity(messages.len() * 5);
        let mut ids_in_batch = HashSet::new();
        let mut chains_in_batch = HashSet::new();
        let mut grown: BTreeMap<AuthorKey, u64> = BTreeMap::new();
        let mut stored = 0u64;
        for message in messages {
            let id = message.id.as_bytes();
            let is_stored = if message.seq == 0 {
                if !ids_in_batch.insert(message.id)
                    || self.backend.get(&key(ENVELOPE, &[id]))?.is_some()
                {
                    false
                } else {
                    ops.push(BatchOp::Put(
                        key(STATEMENT, &[message.author.as_bytes(), id]),
                        encode_record(message),
                    ));
                    true
                }
            } else {
                let chain = chain_key(&message.author, message.seq);
                let held_at_seq = self.backend.get(&chain)?;
                let held_id = held_at_seq.as_deref().and_then(|held| held.get(..32));
                if !ids_in_batch.insert(message.id)
                    || held_id == Some(id.as_slice())
                    || held_at_seq.is_some()
                    || !chains_in_batch.insert(chain.clone())
                {
                    false
                } else {
                    let mut value = id.to_vec();
                    value.extend_from_slice(&encode_record(message));
                    ops.push(BatchOp::Put(chain, value));
                    if let Some(expires_at) = message.expires_at {
                        ops.push(BatchOp::Put(
                            key(EXPIRY, &[&expires_at.to_be_bytes(), id]),
                            Vec::new(),
                        ));
                    }
                    if let std::collections::btree_map::Entry::Vacant(entry) =
                        grown.entry(message.author)
                    {
                        entry.insert(self.watermark(&message.author)?);
                    }
                    true
                }
            };
            if is_stored {
                stored += 1;
                let mut locator = message.author.as_bytes().to_vec();
                locator.extend_from_slice(&message.seq.to_be_bytes());
                ops.push(BatchOp::Put(key(ENVELOPE, &[id]), locator));
                ops.push(BatchOp::Put(
                    key(
                        RECENT,
                        &[
                            message.kind.as_bytes(),
                            &[0],
                            &message.created_at.to_be_bytes(),
                            id,
                        ],
                    ),
                    Vec::new(),
                ));
                if let Some(target) = message.refers_to {
                    ops.push(BatchOp::Put(
                        key(REFERS, &[target.as_bytes(), id]),
                        Vec::new(),
                    ));
                }
            }
        }
        for (author, mut watermark) in grown {
            let before = watermark;
            loop {
                let next = chain_key(&author, watermark + 1);
                if chains_in_batch.contains(&next) || self.backend.get(&next)?.is_some() {
                    watermark += 1;
                } else {
                    break;
                }
            }
            if watermark != before {
                ops.push(BatchOp::Put(
                    key(WATERMARK, &[author.as_bytes()]),
                    watermark.to_be_bytes().to_vec(),
                ));
            }
        }
        if stored > 0 {
            let count = self.count()? + stored;
            ops.push(BatchOp::Put(vec![COUNT], count.to_be_bytes().to_vec()));
        }
        if !ops.is_empty() {
            self.backend.apply(ops)?;
        }
        Ok(usize::try_from(stored).unwrap_or(usize::MAX))
    }

    /// Deletes what expired by `now_ms` as the old sweep did (the chain keeps the id: the
    /// tombstone); returns how many messages expired.
    pub fn expire(&self, now_ms: u64) -> Result<usize, StoreError> {
        let mut ops = Vec::new();
        let mut removed = 0u64;
        for (expiry_key, _) in self.backend.scan(&[EXPIRY], &[EXPIRY], usize::MAX)? {
            let expires_at = read_u64(expiry_key.get(1..9).unwrap_or_default())?;
            if expires_at > now_ms {
                break;
            }
            let id = read_id(expiry_key.get(9..).unwrap_or_default())?;
            let id_bytes = id.as_bytes();
            if let Some(facts) = self.facts(&id)? {
                ops.push(BatchOp::Delete(key(ENVELOPE, &[id_bytes])));
                if self.layout == 1 {
                    ops.push(BatchOp::Delete(key(META, &[id_bytes])));
                    ops.push(BatchOp::Delete(key(KIND, &[&facts.kind, &[0], id_bytes])));
                } else {
                    ops.push(BatchOp::Put(
                        key(CHAIN, &[&facts.author, &facts.seq.to_be_bytes()]),
                        id_bytes.to_vec(),
                    ));
                    ops.push(BatchOp::Delete(key(
                        RECENT,
                        &[&facts.kind, &[0], &facts.created_at.to_be_bytes(), id_bytes],
                    )));
                    if let Some(target) = facts.refers_to {
                        ops.push(BatchOp::Delete(key(REFERS, &[&target, id_bytes])));
                    }
                }
                removed += 1;
            }
            ops.push(BatchOp::Delete(expiry_key));
        }
        if removed > 0 && self.layout == 2 {
            let count = self.count()?.saturating_sub(removed);
            ops.push(BatchOp::Put(vec![COUNT], count.to_be_bytes().to_vec()));
        }
        if !ops.is_empty() {
            self.backend.apply(ops)?;
        }
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    }

    fn facts(&self, id: &MessageId) -> Result<Option<Facts>, StoreError> {
        let id_bytes = id.as_bytes();
        if self.layout == 1 {
            let Some(meta) = self.backend.get(&key(META, &[id_bytes]))? else {
                return Ok(None);
            };
            let corrupt = || StoreError::Corrupt { what: "meta" };
            return Ok(Some(Facts {
                author: meta
                    .get(..32)
                    .ok_or_else(corrupt)?
                    .try_into()
                    .map_err(|_| corrupt())?,
                seq: read_u64(meta.get(32..40).ok_or_else(corrupt)?)?,
                created_at: read_u64(meta.get(40..48).ok_or_else(corrupt)?)?,
                refers_to: None,
                kind: meta.get(56..).ok_or_else(corrupt)?.to_vec(),
            }));
        }
        let Some(locator) = self.backend.get(&key(ENVELOPE, &[id_bytes]))? else {
            return Ok(None);
        };
        let (author, seq) = locator
            .split_at_checked(32)
            .ok_or(StoreError::Corrupt { what: "locator" })?;
        let record = if read_u64(seq)? == 0 {
            self.backend.get(&key(STATEMENT, &[author, id_bytes]))?
        } else {
            self.backend
                .get(&key(CHAIN, &[author, seq]))?
                .and_then(|mut value| (value.len() > 32).then(|| value.split_off(32)))
        };
        record.map(|record| record_facts(&record)).transpose()
    }

    /// Records fork evidence and marks its author compromised, as the old `record_fork`
    /// did (the same in both layouts).
    pub fn record_fork(
        &self,
        evidence: &NewMessage,
        detected_at: u64,
        from_seq: u64,
    ) -> Result<(), StoreError> {
        let author = evidence.author.as_bytes();
        let marker = key(COMPROMISED, &[author]);
        let (detected_at, from_seq) = match self.backend.get(&marker)? {
            Some(value) => (
                read_u64(value.get(..8).unwrap_or_default())?,
                read_u64(value.get(8..16).unwrap_or_default())?.min(from_seq),
            ),
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
        ])
    }
}
