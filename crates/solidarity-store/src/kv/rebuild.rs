//! Stores of layouts 1 and 2 (before expiring records were sealed) are upgraded by
//! rebuilding: every envelope, tombstone, fork evidence and compromise mark is read from
//! the old store and written into a new one beside it, which then takes the old one's
//! place. Their key spaces reuse prefixes with other meanings (`E` held envelopes in layout
//! 1, `C` unsealed records in layout 2), so they cannot be upgraded in place.
//!
//! Crash safety: the new store is built in `store.migrating`, flushed, and marked complete
//! (a file); then `store` is renamed to `store.replaced` and `store.migrating` to `store`,
//! and `store.replaced` is deleted. [`settle_interrupted`] runs before every open and
//! finishes or undoes whatever a crash interrupted, so `store` always ends up holding
//! either the old layout (the rebuild starts again) or the complete new one, never
//! neither. Every step only reads the old store; it is deleted last.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use solidarity_proto::{AuthorKey, MessageId};

use super::layout::{WATERMARK, chain_key, decode_record, key, read_id, read_u64};
use super::{Backend, KvStore};
use crate::sled_backend::{SledBackend, SledOptions};
use crate::{NewMessage, Store, StoreError};

/// The marked layouts upgraded by a rebuild (layout 1 has no mark: a store with data but
/// no layout byte is layout 1).
pub(super) const REBUILT: [u8; 1] = [2];
/// Where the new store is built, beside `store`.
const BUILDING: &str = "migrating";
/// Where the old store waits for deletion once the new one has taken its place.
const REPLACED: &str = "replaced";
/// The file that marks the new store complete (written after its last flush).
const COMPLETE: &str = "MIGRATION-COMPLETE";
/// Entries read from the old store per batch.
const CHUNK: usize = 1024;

/// The prefixes of the old layouts (same byte in both, where both have it).
mod old {
    /// Layout 1: id → envelope. Layout 2: id → author ‖ seq (its locator).
    pub(super) const ENVELOPE: u8 = b'E';
    /// Layout 1: author ‖ seq → id. Layout 2: author ‖ seq → id ‖ record (id alone: a
    /// tombstone).
    pub(super) const CHAIN: u8 = b'C';
    /// Layout 2: author ‖ id → record of a statement.
    pub(super) const STATEMENT: u8 = b'S';
    /// author ‖ seq ‖ id → envelope conflicting with the chain.
    pub(super) const FORK: u8 = b'F';
    /// author → detected_at ‖ from_seq.
    pub(super) const COMPROMISED: u8 = b'Z';
}

/// What a rebuild carried over, for the start-up log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rebuilt {
    /// Envelopes (chain messages and statements) stored in the new layout.
    pub(super) messages: u64,
    /// Tombstones of expired messages.
    pub(super) tombstones: u64,
    /// Fork evidence.
    pub(super) evidence: u64,
    /// Old records that could not be read (corrupt): left behind, and logged.
    pub(super) unreadable: u64,
    /// How long it took.
    pub(super) took: Duration,
}

fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

fn io(operation: &'static str) -> impl Fn(std::io::Error) -> StoreError {
    move |error| StoreError::Backend {
        operation,
        source: Box::new(error),
    }
}

/// Makes a rename or deletion in `path`'s parent durable.
fn sync_parent(path: &Path) -> Result<(), StoreError> {
    let parent = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(io("migration sync"))
}

fn remove_dir(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => sync_parent(path),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(io("migration cleanup")(error)),
    }
}

fn rename(from: &Path, to: &Path) -> Result<(), StoreError> {
    std::fs::rename(from, to).map_err(io("migration rename"))?;
    sync_parent(to)
}

/// Finishes or undoes a rebuild of the store at `path` that a crash interrupted.
pub(super) fn settle_interrupted(path: &Path) -> Result<(), StoreError> {
    let building = beside(path, BUILDING);
    let replaced = beside(path, REPLACED);
    let complete = building.join(COMPLETE).exists();
    if replaced.exists() {
        if !path.exists() {
            // Between the two renames: the new store was complete before the first one.
            if complete {
                rename(&building, path)?;
            } else {
                rename(&replaced, path)?;
            }
        }
        remove_dir(&replaced)?;
    }
    if building.exists() {
        if path.exists() {
            // An unfinished build: it starts again from the old store.
            remove_dir(&building)?;
        } else if complete {
            rename(&building, path)?;
        }
    }
    // A swap finished above, or a rebuild stopped just after its own, leaves the mark in
    // the store (only a complete new store ever holds one).
    let mark = path.join(COMPLETE);
    if mark.exists() {
        std::fs::remove_file(&mark).map_err(io("migration mark"))?;
        sync_parent(&mark)?;
    }
    Ok(())
}

/// Rebuilds the layout-`from` store at `options.path` (1 or 2) in the current layout.
pub(super) fn rebuild(options: &SledOptions, from: u8) -> Result<Rebuilt, StoreError> {
    let started = Instant::now();
    let building = beside(&options.path, BUILDING);
    remove_dir(&building)?;
    let mut rebuilt = {
        let old = SledBackend::open(options)?;
        let new = KvStore::open(&SledOptions {
            path: building.clone(),
            cache_bytes: options.cache_bytes,
        })?;
        let rebuilt = copy(&old, from, &new)?;
        new.flush()?;
        rebuilt
    };
    let mark = building.join(COMPLETE);
    std::fs::write(&mark, b"complete\n")
        .and_then(|()| std::fs::File::open(&mark)?.sync_all())
        .map_err(io("migration mark"))?;
    sync_parent(&mark)?;
    let replaced = beside(&options.path, REPLACED);
    rename(&options.path, &replaced)?;
    rename(&building, &options.path)?;
    remove_dir(&replaced)?;
    std::fs::remove_file(options.path.join(COMPLETE)).map_err(io("migration mark"))?;
    rebuilt.took = started.elapsed();
    Ok(rebuilt)
}

/// Every entry of `prefix` in the old store, a chunk at a time.
fn for_each_entry<B: Backend>(
    old: &B,
    prefix: u8,
    mut each: impl FnMut(Vec<(Vec<u8>, Vec<u8>)>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let prefix = [prefix];
    let mut start = prefix.to_vec();
    loop {
        let chunk = old.scan(&prefix, &start, CHUNK)?;
        let full = chunk.len() == CHUNK;
        let next = chunk.last().map(|(last, _)| {
            let mut next = last.clone();
            next.push(0);
            next
        });
        each(chunk)?;
        match next {
            Some(next) if full => start = next,
            _ => return Ok(()),
        }
    }
}

fn author_of(entry_key: &[u8]) -> Result<AuthorKey, StoreError> {
    let bytes: [u8; 32] = entry_key
        .get(1..33)
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(StoreError::Corrupt { what: "old key" })?;
    Ok(AuthorKey(bytes))
}

fn copy<O: Backend, N: Backend>(
    old: &O,
    from: u8,
    new: &KvStore<N>,
) -> Result<Rebuilt, StoreError> {
    let mut rebuilt = Rebuilt::default();
    // Tombstones first, so each batch of messages sees them in its watermark.
    let mut tombstoned = std::collections::BTreeSet::new();
    for_each_entry(old, old::CHAIN, |chunk| {
        let mut tombstones = Vec::new();
        for (entry_key, value) in chunk {
            let is_tombstone = match from {
                1 => old
                    .get(&key(old::ENVELOPE, &[value.get(..32).unwrap_or_default()]))?
                    .is_none(),
                _ => value.len() == 32,
            };
            if is_tombstone {
                let author = author_of(&entry_key)?;
                let seq = read_u64(entry_key.get(33..).unwrap_or_default())?;
                tombstones.push((author, seq, read_id(&value)?));
                tombstoned.insert(author);
            }
        }
        rebuilt.tombstones += tombstones.len() as u64;
        new.put_tombstones(&tombstones)
    })?;
    let store = |envelopes: Vec<Vec<u8>>, rebuilt: &mut Rebuilt| {
        let messages: Vec<NewMessage> = envelopes
            .iter()
            .filter_map(|envelope| NewMessage::from_envelope(envelope))
            .collect();
        rebuilt.unreadable += (envelopes.len() - messages.len()) as u64;
        rebuilt.messages += messages.len() as u64;
        new.insert_batch(&messages).map(|_| ())
    };
    match from {
        1 => for_each_entry(old, old::ENVELOPE, |chunk| {
            store(chunk.into_iter().map(|(_, v)| v).collect(), &mut rebuilt)
        })?,
        _ => {
            let record_envelope = |record: &[u8]| {
                decode_record(record)
                    .ok()
                    .map(|(_, envelope)| envelope.to_vec())
            };
            for_each_entry(old, old::CHAIN, |chunk| {
                let envelopes = chunk
                    .iter()
                    .filter(|(_, value)| value.len() > 32)
                    .map(|(_, value)| record_envelope(&value[32..]).unwrap_or_default())
                    .collect();
                store(envelopes, &mut rebuilt)
            })?;
            for_each_entry(old, old::STATEMENT, |chunk| {
                let envelopes = chunk
                    .iter()
                    .map(|(_, record)| record_envelope(record).unwrap_or_default())
                    .collect();
                store(envelopes, &mut rebuilt)
            })?;
        }
    }
    for author in tombstoned {
        new.advance_watermark(&author)?;
    }
    // Fork evidence last, against the complete chains; then the marks as they were.
    let mut marked = std::collections::BTreeMap::new();
    for_each_entry(old, old::COMPROMISED, |chunk| {
        for (entry_key, value) in chunk {
            let detected_at = read_u64(value.get(..8).unwrap_or_default())?;
            let from_seq = read_u64(value.get(8..16).unwrap_or_default())?;
            marked.insert(author_of(&entry_key)?, (detected_at, from_seq));
        }
        Ok(())
    })?;
    let mut evidenced = std::collections::BTreeSet::new();
    for_each_entry(old, old::FORK, |chunk| {
        for (_, envelope) in chunk {
            let Some(message) = NewMessage::from_envelope(&envelope) else {
                rebuilt.unreadable += 1;
                continue;
            };
            let (detected_at, from_seq) = marked
                .get(&message.author)
                .copied()
                .unwrap_or((message.created_at, message.seq));
            new.record_fork(&message, detected_at, from_seq)?;
            evidenced.insert(message.author);
            rebuilt.evidence += 1;
        }
        Ok(())
    })?;
    for author in evidenced {
        // Evidence outlives a mark the admin lifted (`member retrust`).
        if !marked.contains_key(&author) {
            new.clear_compromise(&author)?;
        }
    }
    Ok(rebuilt)
}

impl<B: Backend> KvStore<B> {
    /// Writes tombstones (author, seq → id) where the chain holds nothing yet.
    fn put_tombstones(&self, tombstones: &[(AuthorKey, u64, MessageId)]) -> Result<(), StoreError> {
        let mut ops = Vec::new();
        for (author, seq, id) in tombstones {
            let chain = chain_key(author, *seq);
            if self.backend.get(&chain)?.is_none() {
                ops.push(super::BatchOp::Put(chain, id.as_bytes().to_vec()));
            }
        }
        if ops.is_empty() {
            return Ok(());
        }
        self.apply(ops)
    }

    /// Moves the author's watermark over every gap-free seq the chain holds.
    fn advance_watermark(&self, author: &AuthorKey) -> Result<(), StoreError> {
        let before = self.watermark(author)?;
        let mut watermark = before;
        while self
            .backend
            .get(&chain_key(author, watermark + 1))?
            .is_some()
        {
            watermark += 1;
        }
        if watermark == before {
            return Ok(());
        }
        self.apply(vec![super::BatchOp::Put(
            key(WATERMARK, &[author.as_bytes()]),
            watermark.to_be_bytes().to_vec(),
        )])
    }
}
